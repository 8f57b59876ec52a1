"""Where the CLI finds its console and token: flags, then environment, then the config file.

The file is `$XDG_CONFIG_HOME/surveyor/cli.toml` (`~/.config/surveyor/cli.toml` by default),
written by `surveyor login` and readable only by its owner because it holds a session token.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_CONSOLE = "http://127.0.0.1:8470"
URL_VARIABLE = "SURVEYOR_URL"
TOKEN_VARIABLE = "SURVEYOR_TOKEN"  # noqa: S105 (the name of a variable, not a secret)
#: The keys the file may hold, in the order they are written.
FILE_KEYS = ("console", "token", "email", "expires_at")


class ConfigError(Exception):
    """A setting that cannot be used (an unreadable file, a console URL without a scheme)."""


@dataclass(frozen=True)
class CliSettings:
    """The console to talk to and the token to send, with where each came from."""

    console: str
    token: str | None
    console_source: str
    token_source: str | None


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """The config file, honouring XDG_CONFIG_HOME (an empty value means unset, per the spec)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "surveyor" / "cli.toml"


def read_config(path: Path) -> dict[str, str]:
    """The string settings of the file; a missing file is empty."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    import tomllib

    try:
        data: dict[str, Any] = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix it or log in again") from exc
    return {key: value for key, value in data.items() if isinstance(value, str) and value}


def _toml_string(value: str) -> str:
    """A TOML basic string; control characters are escaped as the TOML spec requires."""
    escaped = []
    for char in value:
        if char in ('"', "\\"):
            escaped.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04X}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def write_config(path: Path, settings: Mapping[str, str | None]) -> None:
    """Replace the file atomically with mode 0600; keys with no value are left out."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lines = ["# Surveyor CLI settings, written by `surveyor login`. Keep this file private."]
    for key in FILE_KEYS:
        value = settings.get(key)
        if value:
            lines.append(f"{key} = {_toml_string(value)}")
    fd, temporary = tempfile.mkstemp(prefix=".cli-", suffix=".toml", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def normalize_console(url: str) -> str:
    """A console base URL without a trailing slash; anything else is a usage error."""
    cleaned = url.strip().rstrip("/")
    problem = f"the console URL {url!r} is not valid; use http://HOST:PORT or https://HOST"
    try:
        parts = urlsplit(cleaned)
        _ = parts.port
    except ValueError as exc:
        raise ConfigError(problem) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(problem)
    return cleaned


def _first(*candidates: tuple[str | None, str]) -> tuple[str | None, str | None]:
    for value, source in candidates:
        if value:
            return value, source
    return None, None


def resolve_console(
    console: str | None, environ: Mapping[str, str], stored: Mapping[str, str]
) -> tuple[str, str]:
    """The console URL and where it came from: flag, environment, file, default."""
    value, source = _first(
        (console, "--console"),
        (environ.get(URL_VARIABLE), URL_VARIABLE),
        (stored.get("console"), "config file"),
    )
    if value is None or source is None:
        return DEFAULT_CONSOLE, "default"
    return normalize_console(value), source


def resolve_settings(
    console: str | None = None,
    token: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> CliSettings:
    """Each setting from the first place that has it: flag, environment, file, default."""
    env = os.environ if environ is None else environ
    stored = read_config(path or config_path(env))
    chosen_console, console_source = resolve_console(console, env, stored)
    # A saved session belongs to the console that issued it; never send it anywhere else.
    stored_token = stored.get("token")
    stored_console = stored.get("console")
    if stored_console and normalize_console(stored_console) != chosen_console:
        stored_token = None
    chosen_token, token_source = _first(
        ((token or "").strip(), "--token"),
        (env.get(TOKEN_VARIABLE, "").strip(), TOKEN_VARIABLE),
        (stored_token, "config file"),
    )
    return CliSettings(chosen_console, chosen_token, console_source, token_source)
