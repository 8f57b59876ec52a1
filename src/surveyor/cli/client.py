"""The CLI's HTTP client for the console API.

It owns the base URL, the bearer token and the translation of failures into `CliError`s with
the API's own message and the exit code the user sees. A console at a plain `http://` URL is
asked through `cli/plain_http.py` (the standard library), one at `https://` through httpx2,
which is imported only then. The transport is injectable, so tests can answer requests with a
function instead of a server (through httpx2, whatever the URL).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from surveyor.cli.config import ConfigError, resolve_settings
from surveyor.core.closing import Closing

if TYPE_CHECKING:
    import httpx2

    from surveyor.cli.plain_http import Answer, PlainHttp

# The HTTP client is imported when a client is made, so that a command's `--help` does without
# it; httpx2 only for an `https://` console (or an injected transport).

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_AUTH = 4

API_PREFIX = "/api/v1"
DEFAULT_TIMEOUT = 15.0
#: A download may take long in all; no single read may wait longer than this.
DOWNLOAD_TIMEOUT = 120.0
ConsoleOption = Annotated[
    str | None,
    typer.Option(
        "--console",
        metavar="URL",
        rich_help_panel="Connection",
        help="Console URL (default: SURVEYOR_URL, then the config file, "
        "then http://127.0.0.1:8470).",
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        rich_help_panel="Connection",
        help="API token (default: SURVEYOR_TOKEN, then the `surveyor login` session).",
    ),
]
LOGIN_HINT = "log in with `surveyor login`, or pass a valid API token (--token or SURVEYOR_TOKEN)"


class CliError(Exception):
    """A failure to show the user: a message, an exit code, and what to do about it."""

    def __init__(
        self,
        message: str,
        exit_code: int = EXIT_REFUSED,
        *,
        hint: str | None = None,
        code: str | None = None,
        status: int | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.hint = hint
        self.code = code
        self.status = status
        self.details: dict[str, Any] = dict(details or {})
        self.notes: list[str] = []


@dataclass(frozen=True)
class Failures:
    """The exceptions an HTTP client raises for a URL it cannot use, for no answer in time,
    and for no answer at all (which includes no answer in time)."""

    invalid_url: type[Exception]
    timeout: type[Exception]
    transport: type[Exception]


def _api_error(response: httpx2.Response | Answer) -> CliError:
    """The error the API answered with, or a description of an answer that is not ours."""
    status = response.status_code
    code: str | None = None
    details: dict[str, Any] = {}
    try:
        body = response.json()
        error = body["error"]
        message = str(error["message"])
        code = str(error.get("code") or "") or None
        details = dict(error.get("details") or {})
    except (ValueError, KeyError, TypeError):
        message = f"the console answered HTTP {status} {response.reason_phrase}".rstrip()
    if status == 401:
        return CliError(
            message, EXIT_AUTH, hint=LOGIN_HINT, code=code, status=status, details=details
        )
    if status >= 500 and code is not None:
        message = f"the console failed: {message}"
    return CliError(message, EXIT_REFUSED, code=code, status=status, details=details)


def given(**options: Any) -> dict[str, Any]:
    """A request body of the options the user passed (None means not given)."""
    return {key: value for key, value in options.items() if value is not None}


class ApiClient(Closing):
    """Calls to `/api/v1` of one console with one token (or none, for login)."""

    def __init__(
        self,
        console: str,
        token: str | None = None,
        *,
        transport: httpx2.BaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.console = console.rstrip("/")
        headers = {"Accept": "application/json", "User-Agent": "surveyor-cli"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http: httpx2.Client | PlainHttp
        if transport is None and self.console.lower().startswith("http://"):
            from surveyor.cli import plain_http

            self._http = plain_http.PlainHttp(self.console, headers=headers, timeout=timeout)
            self._failures = Failures(
                plain_http.InvalidURL, plain_http.TimeoutException, plain_http.TransportError
            )
            return
        import httpx2

        self._http = httpx2.Client(
            base_url=self.console,
            headers=headers,
            timeout=timeout,
            transport=transport,
            trust_env=False,
        )
        self._failures = Failures(httpx2.InvalidURL, httpx2.TimeoutException, httpx2.TransportError)

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """The decoded JSON answer (None for an empty one); failures raise `CliError`.

        `content` sends raw bytes (or an iterator of them) instead of JSON, as uploads do.
        """
        failures = self._failures
        query = {key: value for key, value in (params or {}).items() if value is not None}
        extra: dict[str, Any] = {"timeout": timeout} if timeout is not None else {}
        try:
            response = self._http.request(
                method,
                API_PREFIX + path,
                params=query,
                json=json,
                content=content,
                headers=headers,
                **extra,
            )
        except failures.invalid_url as exc:
            raise CliError(
                f"the console URL {self.console!r} is not valid ({exc})", EXIT_USAGE
            ) from exc
        except failures.timeout as exc:
            raise CliError(
                f"the console at {self.console} did not answer in time",
                EXIT_UNREACHABLE,
                hint="check that it is running (`surveyor up`) and not overloaded",
            ) from exc
        except failures.transport as exc:
            reason = str(exc) or type(exc).__name__
            raise CliError(
                f"cannot reach the console at {self.console} ({reason})",
                EXIT_UNREACHABLE,
                hint="start it with `surveyor up`, or point the CLI at another "
                "console with --console or SURVEYOR_URL",
            ) from exc
        if response.status_code >= 400:
            raise _api_error(response)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise CliError(
                f"{self.console} did not answer with JSON; is it a Surveyor console?",
                EXIT_UNREACHABLE,
            ) from exc

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def download(
        self,
        path: str,
        write: Callable[[bytes], object],
        *,
        params: Mapping[str, Any] | None = None,
        on_bytes: Callable[[int, int | None], None] | None = None,
    ) -> int:
        """Stream a download into `write`, a block at a time; returns the bytes received.
        `on_bytes` is told (received so far, total if the console said it)."""
        failures = self._failures
        query = {key: value for key, value in (params or {}).items() if value is not None}
        received = 0
        try:
            with self._http.stream(
                "GET", API_PREFIX + path, params=query, timeout=DOWNLOAD_TIMEOUT
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _api_error(response)
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                for block in response.iter_bytes():
                    write(block)
                    received += len(block)
                    if on_bytes is not None:
                        on_bytes(received, total)
        except failures.timeout as exc:
            raise CliError(
                f"the console at {self.console} stopped sending the download",
                EXIT_UNREACHABLE,
                hint="try again; a very large export may need a quieter console",
            ) from exc
        except failures.transport as exc:
            raise CliError(
                f"the download from {self.console} broke off ({exc or type(exc).__name__})",
                EXIT_UNREACHABLE,
            ) from exc
        return received

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def page(
        self, path: str, *, limit: int, every_page: bool, **params: Any
    ) -> tuple[list[Any], str | None]:
        """The items of a cursor-paginated listing (one page, or all of them) and the cursor
        of the page after the last one read."""
        items: list[Any] = []
        cursor: str | None = None
        while True:
            answer = self.get(path, limit=limit, cursor=cursor, **params)
            items.extend(answer["items"])
            cursor = answer.get("next_cursor")
            if not every_page or not cursor:
                return items, cursor


def connect(
    console: str | None = None,
    token: str | None = None,
    *,
    transport: httpx2.BaseTransport | None = None,
) -> ApiClient:
    """A client for the console and token chosen by flags, environment or config file."""
    try:
        settings = resolve_settings(console, token)
    except ConfigError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    return ApiClient(settings.console, settings.token, transport=transport)
