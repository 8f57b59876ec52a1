"""A lean asyncio HTTP/1.1 client for the fleet benchmark's simulated explorers.

One keep-alive connection per simulated explorer, as a real explorer has, written and read
by hand: thousands of explorers share the benchmark's machine with the console, and a
general-purpose client spent more CPU per request than the console did to answer it, so the
figures measured the simulator. The bytes on the wire are an ordinary HTTP/1.1 exchange.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlsplit

MAX_HEAD_BYTES = 64 * 1024


class WireError(Exception):
    """The exchange broke off (connection refused, reset or closed mid-answer, timed out)."""


class Answer:
    def __init__(self, status: int, body: bytes) -> None:
        self.status_code = status
        self.content = body

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


class Connection:
    """One explorer's connection to one console; reopened when the console closed it or it
    idled past `keep_alive` seconds."""

    def __init__(self, url: str, *, keep_alive: float, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"a plain http://host:port URL is needed, not {url!r}")
        self.host, self.port = parts.hostname, parts.port
        self.keep_alive = keep_alive
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._idle_since = 0.0

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        timeout: float | None = None,
    ) -> Answer:
        body = content if content is not None else b""
        head = {"Host": f"{self.host}:{self.port}", "Content-Length": str(len(body))}
        if json_body is not None:
            body = json.dumps(json_body).encode()
            head |= {"Content-Type": "application/json", "Content-Length": str(len(body))}
        head |= headers or {}
        lines = "".join(f"{name}: {value}\r\n" for name, value in head.items())
        data = f"{method} {path} HTTP/1.1\r\n{lines}\r\n".encode("latin-1") + body
        try:
            return await asyncio.wait_for(self._exchange(data), timeout or self.timeout)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            self.close()
            raise WireError(f"{type(exc).__name__}: {exc}") from exc
        except TimeoutError as exc:
            self.close()
            raise WireError("timed out") from exc

    async def _exchange(self, data: bytes) -> Answer:
        if self._writer is not None and (
            self._writer.is_closing()
            or self._reader is None
            or self._reader.at_eof()
            or time.monotonic() - self._idle_since > self.keep_alive
        ):
            self.close()
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(
                self.host, self.port, limit=MAX_HEAD_BYTES
            )
        assert self._reader is not None
        self._writer.write(data)
        await self._writer.drain()
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        fields = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
        if fields.get("transfer-encoding", "").lower() == "chunked":
            body = await self._chunked()
        else:
            body = await self._reader.readexactly(int(fields.get("content-length", "0")))
        if fields.get("connection", "").lower() == "close":
            self.close()
        self._idle_since = time.monotonic()
        return Answer(status, body)

    async def _chunked(self) -> bytes:
        assert self._reader is not None
        parts: list[bytes] = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
