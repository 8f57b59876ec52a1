"""The explorer's HTTP client for the console's explorer protocol (`/api/v1/explorer/…`).

It owns the URLs, the bearer credential and the meaning of answers; the transport is
injectable (`httpx2.MockTransport(handler)` in tests), so no test needs a network. Failures
become one of four exceptions, each telling the agent what to do next: try again later
(`ConsoleUnreachable`), give the task up (`TaskGone`), stop altogether
(`ExplorerRejected`), or accept a refusal (`Refused`).

An explorer may know several consoles of one deployment (consoles on one database, behind
no load balancer or several): it talks to one at a time and, when that one stops answering,
moves to the next. Its secret and attempt tokens live in the shared database, so any
console accepts the reports of a scan another console launched. A request that never
reached the console (the connection was refused) is sent to the next console at once;
any other failure moves to the next console for the agent's next try.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2

from surveyor import __version__
from surveyor.core.closing import Closing
from surveyor.core.explorer_protocol import CLIENT_KEEP_ALIVE_SECONDS, HostInfo

log = logging.getLogger("surveyor.explorer")

API = "/api/v1/explorer"
DEFAULT_TIMEOUT = 15.0
#: Extra time a held poll may take beyond the wait the explorer asked for.
POLL_MARGIN_SECONDS = 10.0
UPLOAD_CHUNK_BYTES = 64 * 1024
#: Marks an upload as partial data: what a stopped scan found before it halted.
PARTIAL_HEADER = "X-Surveyor-Partial"
UPLOAD_TIMEOUT = 300.0


class ConsoleUnreachable(Exception):
    """No usable answer (network error, timeout, console failing or restarting): retry."""


class ExplorerRejected(Exception):
    """The console does not accept this explorer's credential: it was deleted, the
    enrollment token is invalid, or the state directory belongs to another console."""


class TaskGone(Exception):
    """The task is no longer this attempt's to report on (superseded, stopped, canceled)."""

    def __init__(self, message: str, *, code: str, status: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class Refused(Exception):
    """Any other refusal, with the console's code and message."""

    def __init__(self, message: str, *, code: str, http_status: int) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status


@dataclass(frozen=True)
class Enrollment:
    explorer_id: int
    organization_id: int
    name: str
    secret: str


@dataclass(frozen=True)
class Assignment:
    """A scan launched on this explorer; every report about it carries `attempt_token`."""

    task_id: int
    name: str
    attempt: int
    attempt_token: str
    params: dict[str, Any]
    scope_cap: int
    report_interval: float
    #: The longest a report about this task may wait between retries.
    report_retry_max: float = 15.0
    #: The task's type (SPEC §4): `scan`, or `connector`.
    type: str = "scan"
    #: A connector run's credential fields, secrets included, sent for this attempt only:
    #: kept in memory, never written to disk, never shown by repr (so never logged).
    credential: dict[str, str] | None = field(default=None, repr=False)


def _error_of(response: httpx2.Response) -> tuple[str, str, dict[str, Any]]:
    try:
        error = response.json()["error"]
        return str(error["code"]), str(error["message"]), dict(error.get("details") or {})
    except (ValueError, KeyError, TypeError):
        return "error", f"HTTP {response.status_code}", {}


def console_urls(given: str | Iterable[str]) -> list[str]:
    """The console URLs an explorer was given (repeated options, comma lists or both), in
    order, without trailing slashes or repeats."""
    items = [given] if isinstance(given, str) else list(given)
    urls: list[str] = []
    for item in items:
        for part in item.split(","):
            url = part.strip().rstrip("/")
            if url and url not in urls:
                urls.append(url)
    return urls


class ExplorerClient(Closing):
    """Calls to the consoles of one deployment, one at a time, with the explorer's secret
    once it has one."""

    def __init__(
        self,
        console: str | Iterable[str],
        *,
        secret: str | None = None,
        transport: httpx2.BaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.consoles = console_urls(console)
        if not self.consoles:
            raise ValueError("an explorer needs the URL of at least one console")
        self.secret = secret
        self._current = 0
        self._clients = [
            httpx2.Client(
                base_url=url,
                headers={"User-Agent": f"surveyor-explorer/{__version__}"},
                timeout=timeout,
                limits=httpx2.Limits(keepalive_expiry=CLIENT_KEEP_ALIVE_SECONDS),
                transport=transport,
                trust_env=False,
            )
            for url in self.consoles
        ]

    @property
    def console(self) -> str:
        """The console this explorer talks to now."""
        return self.consoles[self._current]

    @property
    def _http(self) -> httpx2.Client:
        return self._clients[self._current]

    def fail_over(self) -> None:
        """Move to the next console (a no-op with only one)."""
        if len(self.consoles) < 2:
            return
        failed = self.console
        self._current = (self._current + 1) % len(self.consoles)
        log.warning("the console at %s stopped answering; moving to %s", failed, self.console)

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def _send(
        self,
        method: str,
        path: str,
        *,
        bearer: str | None = None,
        json: Any = None,
        content: Iterator[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        credential = bearer or self.secret
        sent_headers = dict(headers or {})
        if credential:
            sent_headers["Authorization"] = f"Bearer {credential}"
        # A refused connection sent nothing: the next console may take the same request.
        tries = len(self.consoles) if content is None else 1
        for tried in range(1, tries + 1):
            try:
                response = self._http.request(
                    method,
                    path,
                    json=json,
                    content=content,
                    headers=sent_headers,
                    timeout=timeout if timeout is not None else httpx2.USE_CLIENT_DEFAULT,
                )
            except httpx2.ConnectError as exc:
                unreachable = self._unreachable(exc)
                self.fail_over()
                if tried == tries:
                    raise unreachable from exc
            except httpx2.TransportError as exc:
                unreachable = self._unreachable(exc)
                self.fail_over()
                raise unreachable from exc
            else:
                break
        status = response.status_code
        if status < 400:
            return dict(response.json()) if response.content else {}
        code, message, details = _error_of(response)
        if status == 401:
            raise ExplorerRejected(message)
        if status >= 500 or status in (408, 429):
            failed = self.console
            self.fail_over()
            raise ConsoleUnreachable(f"the console at {failed} answered {status}: {message}")
        if status in (404, 409) and path.startswith((f"{API}/tasks/", f"{API}/task-data/")):
            raise TaskGone(message, code=code, status=details.get("current_status"))
        raise Refused(message, code=code, http_status=status)

    def _unreachable(self, exc: Exception) -> ConsoleUnreachable:
        return ConsoleUnreachable(
            f"cannot reach the console at {self.console} ({exc or type(exc).__name__})"
        )

    def healthy(self) -> bool:
        """Whether the console answers its health check."""
        try:
            return self._http.get("/healthz").status_code == 200
        except httpx2.TransportError:
            return False

    def enroll(self, token: str, host: HostInfo, *, name: str | None) -> Enrollment:
        body = {**host.as_dict(), "name": name}
        answer = self._send("POST", f"{API}/enroll", bearer=token, json=body)
        return Enrollment(
            explorer_id=int(answer["explorer_id"]),
            organization_id=int(answer["organization_id"]),
            name=str(answer["name"]),
            secret=str(answer["secret"]),
        )

    def poll(self, host: HostInfo, *, wait: float) -> Assignment | None:
        """Check in and wait up to `wait` seconds for a scan to run."""
        answer = self._send(
            "POST",
            f"{API}/poll",
            json={**host.as_dict(), "wait": wait},
            timeout=wait + POLL_MARGIN_SECONDS,
        )
        task = answer.get("task")
        if not task:
            return None
        return Assignment(
            task_id=int(task["id"]),
            name=str(task["name"]),
            attempt=int(task["attempt"]),
            attempt_token=str(task["attempt_token"]),
            params=dict(task["params"]),
            scope_cap=int(task["scope_cap"]),
            report_interval=float(task["report_interval"]),
            report_retry_max=float(task.get("report_retry_max", 15.0)),
            type=str(task.get("type") or "scan"),
            credential=dict(task["credential"]) if task.get("credential") else None,
        )

    def report_progress(
        self, task: Assignment, *, collect: float, stats: Mapping[str, int | float]
    ) -> bool:
        """Report progress; True when the console says to stop the scan."""
        answer = self._send(
            "POST",
            f"{API}/tasks/{task.task_id}/progress",
            json={"attempt_token": task.attempt_token, "collect": collect, "stats": dict(stats)},
        )
        return bool(answer.get("stop"))

    def confirm_stopped(self, task: Assignment) -> None:
        self._send(
            "POST",
            f"{API}/tasks/{task.task_id}/stopped",
            json={"attempt_token": task.attempt_token},
        )

    def report_failure(self, task: Assignment, error: str) -> None:
        self._send(
            "POST",
            f"{API}/tasks/{task.task_id}/failed",
            json={"attempt_token": task.attempt_token, "error": error[:2000]},
        )

    def upload(
        self, task_id: int, attempt_token: str, path: Path, *, sha256: str, partial: bool = False
    ) -> dict[str, Any]:
        """Stream the task data file (a chunked body) with its SHA-256 for the console to
        check. Uploading the same data again is safe: the console answers it as stored.
        `partial` says the data covers only part of the scope (the scan was stopped)."""

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as handle:
                while chunk := handle.read(UPLOAD_CHUNK_BYTES):
                    yield chunk

        return self._send(
            "PUT",
            f"{API}/task-data/{task_id}",
            content=chunks(),
            headers={
                "Content-Type": "application/gzip",
                "X-Surveyor-Attempt-Token": attempt_token,
                "X-Surveyor-Content-SHA256": sha256,
                **({PARTIAL_HEADER: "true"} if partial else {}),
            },
            timeout=UPLOAD_TIMEOUT,
        )
