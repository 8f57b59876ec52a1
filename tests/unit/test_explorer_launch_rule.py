"""The launch rule as a table: who may run a due scan, and why it waits when nobody can."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from surveyor.core.task import Task
from surveyor.core.tasks import LAUNCH_FAILURE_TEXT, WAIT_REASON_TEXT, WaitReason
from surveyor.scheduler.firing import launch_expired_error
from surveyor.service.launch import (
    POLL_RETURN_GRACE,
    Runner,
    ZoneLoad,
    is_online,
    may_run,
    wait_reason,
)
from tests.support.tasks import a_task

ORG, SITE, OTHER_SITE, ZONE = 1, 10, 11, 100


def runner(
    runner_id: int = 1,
    *,
    online: bool = True,
    busy: bool = False,
    site: int | None = None,
    zone: int | None = None,
    org: int = ORG,
) -> Runner:
    return Runner(runner_id, f"explorer {runner_id}", org, site, zone, online, busy)


def scan(*, explorer: int | None = None, zone: int | None = None) -> Task:
    return a_task(organization_id=ORG, site_id=SITE, explorer_id=explorer, hosted_zone_id=zone)


@pytest.mark.parametrize(
    ("task", "candidate", "allowed"),
    [
        (scan(explorer=1), runner(1), True),
        (scan(explorer=1), runner(2), False),
        (scan(zone=ZONE), runner(zone=ZONE), True),
        (scan(zone=ZONE), runner(zone=None), False),
        (scan(), runner(site=SITE), True),
        (scan(), runner(site=None), True),
        (scan(), runner(site=OTHER_SITE), False),
        (scan(), runner(org=2), False),
        (scan(explorer=1), runner(1, site=OTHER_SITE), True),
    ],
    ids=[
        "pinned-to-it",
        "pinned-elsewhere",
        "zone-member",
        "not-a-zone-member",
        "same-site",
        "no-site-serves-all",
        "other-site",
        "other-organization",
        "pinning-overrides-site",
    ],
)
def test_who_may_run_a_scan(task: Task, candidate: Runner, allowed: bool) -> None:
    assert may_run(task, candidate) is allowed


@pytest.mark.parametrize(
    ("task", "runners", "zone", "reason"),
    [
        (scan(explorer=1), [runner(1)], None, None),
        (scan(explorer=1), [runner(1, online=False)], None, WaitReason.EXPLORER_OFFLINE),
        (scan(explorer=1), [runner(1, busy=True)], None, WaitReason.EXPLORER_BUSY),
        (scan(explorer=1), [runner(2)], None, WaitReason.EXPLORER_OFFLINE),
        (scan(zone=ZONE), [runner(zone=ZONE)], ZoneLoad(ZONE, 2, 1), None),
        (scan(zone=ZONE), [runner(zone=ZONE)], ZoneLoad(ZONE, 2, 2), WaitReason.ZONE_FULL),
        (
            scan(zone=ZONE),
            [runner(1, zone=ZONE, busy=True), runner(2, zone=ZONE, online=False)],
            ZoneLoad(ZONE, 3, 1),
            WaitReason.EXPLORER_BUSY,
        ),
        (scan(zone=ZONE), [], ZoneLoad(ZONE, 1, 0), WaitReason.ZONE_EMPTY),
        (
            scan(zone=ZONE),
            [runner(zone=None), runner(2, zone=ZONE, org=2)],
            ZoneLoad(ZONE, 1, 0),
            WaitReason.ZONE_EMPTY,
        ),
        (
            scan(zone=ZONE),
            [runner(zone=ZONE, online=False)],
            ZoneLoad(ZONE, 1, 0),
            WaitReason.EXPLORER_OFFLINE,
        ),
        (scan(), [runner(site=OTHER_SITE)], None, WaitReason.EXPLORER_OFFLINE),
        (scan(), [runner(1, busy=True), runner(2, site=SITE)], None, None),
    ],
    ids=[
        "online-idle",
        "offline",
        "busy",
        "no-such-explorer",
        "zone-with-free-slot",
        "zone-full",
        "zone-members-busy-or-offline",
        "zone-without-members",
        "zone-without-members-of-its-organization",
        "zone-whose-members-are-offline",
        "no-explorer-for-the-site",
        "one-idle-explorer-is-enough",
    ],
)
def test_why_a_due_scan_waits(
    task: Task, runners: list[Runner], zone: ZoneLoad | None, reason: WaitReason | None
) -> None:
    assert wait_reason(task, runners, zone) is reason


NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WINDOW = 60


def test_an_explorer_is_online_while_its_last_check_in_is_within_the_window() -> None:
    assert is_online(NOW - timedelta(seconds=59), now=NOW, window=WINDOW)
    assert not is_online(NOW - timedelta(seconds=61), now=NOW, window=WINDOW)
    assert not is_online(None, now=NOW, window=WINDOW)


def test_an_explorer_whose_poll_dropped_is_offline_once_the_grace_is_over() -> None:
    checked_in = NOW - timedelta(seconds=5)
    dropped = NOW - POLL_RETURN_GRACE

    assert not is_online(checked_in, now=NOW, window=WINDOW, poll_dropped_at=dropped)
    assert is_online(
        checked_in,
        now=NOW - timedelta(milliseconds=1),
        window=WINDOW,
        poll_dropped_at=dropped,
    )


@pytest.mark.parametrize("reason", list(WaitReason))
def test_every_wait_reason_is_explained_in_words(reason: WaitReason) -> None:
    assert WAIT_REASON_TEXT[reason].startswith("waiting for ")
    if reason is not WaitReason.NOT_DUE:
        assert LAUNCH_FAILURE_TEXT[reason]


def test_a_scan_canceled_after_waiting_for_an_empty_zone_says_so() -> None:
    assert launch_expired_error(3600, WaitReason.ZONE_EMPTY.value) == (
        "could not launch within its 1 hour grace period: its hosted zone had no explorer"
    )
