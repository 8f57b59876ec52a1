"""`surveyor credential …` and `surveyor secrets rotate` against a real console process: the
secrets typed at a hidden prompt or piped in are never echoed, printed, logged or stored in
the clear, and a console left on the old key after a rotation says so in words."""

from __future__ import annotations

import os
import pty
import select
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.conftest import SURVEYOR, ConsoleProcess
from tests.acceptance.test_cli import COMMAND_SECONDS, Cli


@pytest.fixture
def cli(console_process: ConsoleProcess, tmp_path: Path) -> Cli:
    return Cli(console_process, tmp_path)


def _read_until(controller: int, wanted: bytes, seen: bytes) -> bytes:
    deadline = time.monotonic() + COMMAND_SECONDS
    while wanted not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


def typed_at_the_prompt(cli: Cli, secret: str, *args: str) -> tuple[int, str]:
    """Run `surveyor *args` on a terminal, type `secret` at its hidden prompt, and return the
    exit code and everything the terminal showed."""
    env = cli.environment(url=cli.console.url, token=cli.console.token)
    controller, terminal = pty.openpty()
    # A session of its own: no controlling terminal but this one to read the secret from.
    process = subprocess.Popen(
        [SURVEYOR, *args],
        env=env,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
    )
    os.close(terminal)
    try:
        # The space after the colon is written once echo is off and pending input flushed:
        # what is typed from then on is read, unseen.
        seen = _read_until(controller, b"(hidden): ", b"")
        assert b"(hidden): " in seen, seen.decode(errors="replace")
        os.write(controller, secret.encode() + b"\n")
        seen = _read_until(controller, b"Created credential", seen)
        code = process.wait(timeout=COMMAND_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
    return code, seen.decode(errors="replace")


def files_under(root: Path) -> Iterator[Path]:
    return (path for path in root.rglob("*") if path.is_file())


def test_secrets_from_the_cli_are_never_shown_logged_or_stored_and_rotation_is_announced(
    cli: Cli,
) -> None:
    typed = f"typed-{uuid.uuid4().hex}"
    piped = f"piped-{uuid.uuid4().hex}"
    replaced = f"replaced-{uuid.uuid4().hex}"
    data = {"SURVEYOR_DATA": str(cli.console.data_dir)}

    code, terminal = typed_at_the_prompt(
        cli, typed, "credential", "create", "directory", "--kind", "ldap",
        "--field", "bind_dn=cn=svc,dc=lab",
    )  # fmt: skip
    assert code == 0, terminal
    assert "Created credential" in terminal
    assert typed not in terminal

    created = cli.json(
        "credential", "create", "switches", "--kind", "snmp", "--field", "version=2c",
        "--secrets-stdin", stdin=piped + "\n",
    )  # fmt: skip
    assert created["fields"]["community"]["set"] is True
    on_the_line = cli.run(
        "credential", "create", "x", "--kind", "ldap", "--field", f"password={piped}"
    )
    assert on_the_line.returncode == 2
    assert "never on the command line" in on_the_line.stderr

    listed = cli.ok("credential", "list")
    assert "directory" in listed
    assert "password: set" in listed
    shown = cli.json("credential", "show", str(created["id"]))
    assert shown["fields"]["community"]["set"] is True

    edited = cli.json(
        "credential", "edit", str(created["id"]), "--secret", "community", "--secrets-stdin",
        "--field", "version=2c", stdin=replaced + "\n",
    )  # fmt: skip
    assert edited["fields"]["community"]["set"] is True
    assert edited["fields"]["community"]["set_at"] > created["fields"]["community"]["set_at"]
    nothing = cli.run("credential", "edit", str(created["id"]))
    assert nothing.returncode == 2
    assert "nothing to change" in nothing.stderr

    tried = cli.run("credential", "verify", str(created["id"]), "--server", "127.0.0.1:9")
    assert tried.returncode == 1
    assert "Verify failed:" in tried.stderr

    new_key_file = cli.home / "shared.key"
    rotated = cli.ok("secrets", "rotate", "--new-key-file", str(new_key_file), extra_env=data)
    assert "Re-encrypted 2 secret(s) of 2 credential(s)" in rotated
    assert (new_key_file.stat().st_mode & 0o777) == 0o600
    # The running console still holds the old key: it refuses, naming both keys.
    stale = cli.run("credential", "verify", str(created["id"]), "--server", "127.0.0.1:9")
    assert stale.returncode == 1
    assert "credential 'switches' was encrypted with key k-" in stale.stderr
    assert "this console has key k-" in stale.stderr
    again = cli.run("secrets", "rotate", "--new-key-file", str(new_key_file), extra_env=data)
    assert again.returncode == 0, again.stderr
    assert "Re-encrypted 0 secret(s) of 0 credential(s)" in again.stdout
    assert "(2 already were)" in again.stdout

    assert "Deleted credential" in cli.ok("credential", "delete", str(created["id"]))
    outputs = "\n".join(
        [listed, str(shown), str(edited), on_the_line.stderr, tried.stderr, rotated, stale.stderr]
    )
    log = (cli.console.data_dir / "console.log").read_text(errors="replace")
    database = cli.console.data_dir / "surveyor.db"
    with sqlite3.connect(database) as conn:
        dump = "\n".join(conn.iterdump())
    assert "v1.k-" in dump  # the remaining credential's password, sealed
    for secret in (typed, piped, replaced):
        assert secret not in outputs
        assert secret not in log
        assert secret not in dump
        for path in [*files_under(cli.console.data_dir), *files_under(cli.home)]:
            assert secret.encode() not in path.read_bytes(), f"a secret is in {path}"
