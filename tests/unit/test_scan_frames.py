"""Messages to and from worker processes, and the daemon threads that run service probes."""

from __future__ import annotations

import io
import threading

from surveyor.scan.daemon_pool import DaemonPool
from surveyor.scan.frames import read_frame, write_frame
from surveyor.scan.jobs import HostScan


def test_frames_carry_messages_in_order_and_end_cleanly() -> None:
    stream = io.BytesIO()
    write_frame(stream, HostScan(1, "127.0.0.1", True, (22,)))
    write_frame(stream, None)
    write_frame(stream, {"done": True})
    stream.seek(0)
    assert read_frame(stream) == HostScan(1, "127.0.0.1", True, (22,))
    assert read_frame(stream) is None
    assert read_frame(stream) == {"done": True}
    assert read_frame(stream) is None


def test_a_stream_cut_mid_message_reads_as_its_end() -> None:
    stream = io.BytesIO()
    write_frame(stream, list(range(100)))
    cut = io.BytesIO(stream.getvalue()[:-3])
    assert read_frame(cut) is None


def test_the_pool_runs_work_on_daemon_threads_and_drops_what_is_queued_at_close() -> None:
    pool = DaemonPool(1, "test-pool")
    release = threading.Event()
    started = threading.Event()

    def blocking() -> str:
        started.set()
        release.wait(5)
        assert threading.current_thread().daemon
        return "done"

    first = pool.submit(blocking)
    assert started.wait(5)
    queued = pool.submit(str.upper, "never")
    pool.close()
    release.set()
    assert first.result(5) == "done"
    assert queued.cancelled()
    assert pool.submit(str.upper, "late").cancelled()


def test_failures_reach_the_caller() -> None:
    pool = DaemonPool(2, "test-pool")
    try:
        future = pool.submit(int, "not a number")
        assert isinstance(future.exception(5), ValueError)
    finally:
        pool.close()
