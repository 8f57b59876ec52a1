"""Scan progress: hosts done over hosts in scope, reported at a bounded rate."""

from __future__ import annotations

from datetime import UTC, datetime

from surveyor.scan.progress import ProgressReporter, ScanProgress


class FakeClock:
    def __init__(self) -> None:
        self.seconds = 0.0

    def now(self) -> datetime:
        return datetime(2030, 1, 1, tzinfo=UTC)

    def monotonic(self) -> float:
        return self.seconds


def progress(done: int, total: int = 10) -> ScanProgress:
    return ScanProgress(hosts_done=done, hosts_total=total, probes_sent=done * 4, open_ports=0)


def test_progress_is_hosts_done_over_hosts_in_scope() -> None:
    assert progress(0).progress == 0.0
    assert progress(5).progress == 0.5
    assert progress(10).progress == 1.0
    assert progress(0, total=0).progress == 1.0


def test_reports_are_spaced_out_but_the_last_word_always_goes_out() -> None:
    clock, seen = FakeClock(), []
    reporter = ProgressReporter(seen.append, interval=0.1, clock=clock)
    reporter.update(progress(1))
    reporter.update(progress(2))  # too soon
    clock.seconds = 0.1
    reporter.update(progress(3))
    reporter.update(progress(3), final=True)  # nothing new
    reporter.update(progress(10), final=True)
    assert [p.hosts_done for p in seen] == [1, 3, 10]


def test_without_a_callback_nothing_happens() -> None:
    ProgressReporter(None, interval=0.1, clock=FakeClock()).update(progress(1), final=True)
