"""Scan progress: hosts done over hosts in scope, reported at a bounded rate."""

from __future__ import annotations

from datetime import UTC, datetime

from surveyor.scan.progress import PARTIAL_CAP, ProgressReporter, ScanProgress


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


def test_probes_move_progress_while_hosts_are_scanned_together() -> None:
    def partial(done: int, sent: int, total: int = 4, planned: int = 1200) -> float:
        return ScanProgress(done, total, sent, 0, probes_planned=planned).progress

    # four hosts worked on at once: none done yet, but a quarter of their probes are out
    assert partial(0, 300) == 0.25
    # hosts done count when they are ahead of the probes (down hosts cost few probes)
    assert partial(3, 30) == 0.75
    # retries push probes past the plan: still short of done until the last host is
    assert partial(3, 5000) == PARTIAL_CAP
    assert partial(4, 5000) == 1.0
    # one host, all ports: progress moves with the probes
    assert [partial(0, sent, total=1, planned=65535) for sent in (0, 6553, 65535)] == [
        0.0,
        6553 / 65535,
        PARTIAL_CAP,
    ]


def test_progress_from_probes_never_goes_back() -> None:
    seen = [
        ScanProgress(done, 50, sent, 0, probes_planned=5000).progress
        for done, sent in (
            (0, 0),
            (0, 900),
            (10, 900),
            (10, 2600),
            (30, 2700),
            (49, 9000),
            (50, 9000),
        )
    ]
    assert seen == sorted(seen)
    assert seen[-1] == 1.0
