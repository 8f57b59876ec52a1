"""Counts that add up over independent pieces, read side by side on several connections.

A searched tab count walks a range of an index entry by entry, and one statement runs on
one core. Counted by a statement a tab, the tabs are read on as many connections as the
machine has cores (up to a few): the answer comes as soon as the longest tab is read, or
half the total on two cores, instead of the total. The work done is the same.

The calling thread takes the first piece before any helper starts, and goes on taking
pieces on its own connection, so a count never waits for a helper: when every helper is
busy (many counts at once) it reads all of them itself. Each helper reads in a transaction
of its own, so the pieces are not one snapshot: right for a count shown beside a live list,
wrong for anything that must agree with a write.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Executable

__all__ = ["MOST", "CountPiece", "ParallelReads"]


#: The parameter of a count's statement that says how many matches it counts at the most.
MOST = "most"


@dataclass(frozen=True)
class CountPiece:
    """The parameters of one count (where to count), and the group (a tab) it adds to."""

    group: str
    parameters: Mapping[str, Any]


class _Pieces:
    """The pieces still to read, and the sums so far; shared by the threads reading them."""

    def __init__(
        self, statement: Executable, pieces: Sequence[CountPiece], limit: int | None
    ) -> None:
        self.statement = statement
        self.pieces = pieces
        self.limit = limit
        self.sums: dict[str, int] = {piece.group: 0 for piece in pieces}
        self._next = 0
        self._reading = 0
        self._error: BaseException | None = None
        self._changed = threading.Condition()

    def take(self) -> tuple[CountPiece, int | None] | None:
        with self._changed:
            while self._error is None and self._next < len(self.pieces):
                piece = self.pieces[self._next]
                self._next += 1
                most = None if self.limit is None else self.limit - self.sums[piece.group]
                if most is not None and most <= 0:
                    continue  # the group has reached its limit: its count is known
                self._reading += 1
                return piece, most
            return None

    def _done(self, piece: CountPiece, count: int | None, error: BaseException | None) -> None:
        with self._changed:
            self._reading -= 1
            if error is not None:
                self._error = self._error or error
            elif count is not None:
                self.sums[piece.group] += count
            self._changed.notify_all()

    @property
    def exhausted(self) -> bool:
        with self._changed:
            return self._error is not None or self._next >= len(self.pieces)

    def read(self, conn: Connection, taken: tuple[CountPiece, int | None] | None = None) -> None:
        """Read pieces on `conn` (`taken` first, when given) until none is left to take."""
        taken = taken or self.take()
        while taken is not None:
            piece, most = taken
            try:
                parameters = piece.parameters if most is None else {**piece.parameters, MOST: most}
                count = int(conn.execute(self.statement, parameters).scalar_one())
            except BaseException as error:
                self._done(piece, None, error)
                raise
            self._done(piece, count, None)
            taken = self.take()

    def wait(self) -> None:
        """Until every piece taken has been read; raises what a reader raised."""
        with self._changed:
            while self._reading:
                self._changed.wait()
            if self._error is not None:
                raise self._error


class ParallelReads:
    """Reads count pieces on the caller's connection and on up to `workers - 1` others,
    each opened by `open_read` on a thread of its own. With one worker (an in-memory SQLite
    database has one connection) everything is read on the caller's connection."""

    def __init__(
        self, open_read: Callable[[], AbstractContextManager[Connection]], workers: int
    ) -> None:
        self.workers = max(1, workers)
        self._open_read = open_read
        self._helpers = (
            ThreadPoolExecutor(max_workers=self.workers - 1, thread_name_prefix="surveyor-read")
            if self.workers > 1
            else None
        )

    def count(
        self,
        conn: Connection,
        statement: Executable,
        pieces: Sequence[CountPiece],
        *,
        limit: int | None,
    ) -> dict[str, int]:
        """The sum of the counts of `statement`, run with each piece's parameters, per
        group; pieces are read in the order given. A piece counts no further than its group
        still lacks of `limit` when it is taken (bound as `MOST`), and a group that has
        reached `limit` takes no further piece: its sum is then `limit` or more, not exact.
        One statement serves every piece, so it is compiled once."""
        work = _Pieces(statement, pieces, limit)
        first = work.take()  # the caller's, before a helper can take them all
        helping: list[Future[None]] = []
        if self._helpers is not None and len(pieces) > 1:
            helping = [
                self._helpers.submit(self._help, work)
                for _ in range(min(self.workers, len(pieces)) - 1)
            ]
        try:
            work.read(conn, first)
        finally:
            for helper in helping:
                helper.cancel()  # one that has not started would find nothing left
            work.wait()
        return work.sums

    def _help(self, work: _Pieces) -> None:
        if work.exhausted:
            return
        try:
            with self._open_read() as conn:
                work.read(conn)
        except Exception:
            return

    def close(self) -> None:
        if self._helpers is not None:
            self._helpers.shutdown(wait=False, cancel_futures=True)
