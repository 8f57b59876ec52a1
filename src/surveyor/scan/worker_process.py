"""A connect worker in a process of its own: `python -m surveyor.scan.worker_process`.

Its standard input brings one frame, `(plan, share)`; its standard output takes `WorkerReport`
frames, the last one `done`. Reports are written by a thread of their own, so a slow reader
never holds up the scan. The engine ends the process with SIGTERM when the scan is stopped;
if the engine's process dies instead, the next report finds the pipe broken and the worker
stops, so no scan outlives the program that started it.
"""

from __future__ import annotations

import queue
import sys
import threading
from typing import IO, Any

from surveyor.scan.frames import read_frame, write_frame
from surveyor.scan.jobs import ConnectPlan
from surveyor.scan.workers import WorkerReport, WorkerShare, run_worker


class _Outbox:
    """Reports queued here and written as frames to the engine by a writer thread."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        #: set when the engine is gone
        self.orphaned = threading.Event()
        self._queue: queue.SimpleQueue[WorkerReport] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write, daemon=True)
        self._writer.start()

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        self._queue.put(item)

    def _write(self) -> None:
        while True:
            report = self._queue.get()
            try:
                write_frame(self._stream, report)
            except OSError:  # the engine's end of the pipe is closed: it died
                self.orphaned.set()
                return
            if report.done:
                return

    def drain(self) -> None:
        """Wait until the last report is written."""
        self._writer.join()


def main() -> None:
    start = read_frame(sys.stdin.buffer)
    if start is None:
        return
    plan, share = start
    assert isinstance(plan, ConnectPlan)
    assert isinstance(share, WorkerShare)
    outbox = _Outbox(sys.stdout.buffer)
    run_worker(plan, share, outbox, outbox.orphaned)
    outbox.drain()


if __name__ == "__main__":
    main()
