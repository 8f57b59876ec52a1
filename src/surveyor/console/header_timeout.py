"""Closing connections that never finish sending a request's headers.

uvicorn's own timer covers idle keep-alive connections only (`timeout_keep_alive`, armed
after a response and cancelled by any byte that arrives), so a client that connects and
sends half a request line would hold its socket, and a slot of the server, forever. The
console runs uvicorn's httptools protocol (llhttp, a C parser; h11, in pure Python, took
about a quarter of the event loop's time under a fleet of explorers) with one more timer:
armed when a connection opens and after each response, cancelled once a request's headers
are complete. When it fires, the connection is closed without an answer (no request was
received to answer).
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for request headers (`header_timeout` s)."""

    header_timeout: ClassVar[float] = 10.0
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._answering() and not self.transport.is_closing():
            self._arm_header_deadline()

    def _answering(self) -> bool:
        """A request whose headers are complete is being answered (or waits its turn)."""
        return self.cycle is not None and not self.cycle.response_complete

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        if not self._answering() and not self.transport.is_closing():
            self.transport.close()


def header_deadline_protocol(seconds: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class for uvicorn's `http` option, with a deadline of `seconds`."""
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout": seconds})
