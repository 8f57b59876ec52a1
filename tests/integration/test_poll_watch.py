"""The held polls' one look for work (`store.explorers.launch_work`, `console/poll_watch.py`)
answers for every explorer what its own reads would (`launch.may_have_work`), on a real
database with explorers of two organizations, sites, a zone, and scans of every target."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from surveyor.core.resources import Explorer
from surveyor.core.tasks import TaskStatus
from surveyor.service import launch
from surveyor.store import accounts
from surveyor.store import explorers as explorer_store
from surveyor.store.engine import Database
from tests.support.explorers import new_explorer, new_scan, new_site, new_zone, utcnow


def test_one_look_agrees_with_each_explorers_own_reads(db: Database) -> None:
    chance = random.Random(7)
    now = utcnow()
    with db.write() as conn:
        fleets: list[dict[str, Any]] = []
        for name in ("North", "South"):
            org = accounts.create_organization(conn, name)["id"]
            sites = [new_site(conn, org)["id"] for _ in range(3)]
            zone = new_zone(conn, org)["id"]
            members = [
                new_explorer(conn, org, site_id=site, now=now) for site in [*sites, None]
            ] + [new_explorer(conn, org, zone_id=zone, site_id=sites[0], now=now)]
            fleets.append({"org": org, "sites": sites, "zone": zone, "explorers": members})
    all_explorers = [explorer for fleet in fleets for explorer in fleet["explorers"]]

    def agree() -> int:
        with db.read() as conn:
            work = explorer_store.launch_work(conn, now=now)
            answers = {}
            for row in all_explorers:
                explorer = explorer_store.get_explorer(conn, row["id"])
                assert isinstance(explorer, Explorer)
                own = launch.may_have_work(conn, explorer.id, now=now)
                assert work.may_serve(explorer) == own, (explorer, work)
                answers[explorer.id] = own
        return sum(answers.values())

    assert agree() == 0  # nothing due yet
    served = []
    for round_ in range(12):
        fleet = chance.choice(fleets)
        target = chance.choice(["explorer", "zone", "site"])
        with db.write() as conn:
            scan = new_scan(
                conn,
                fleet["org"],
                chance.choice(fleet["sites"]),
                explorer_id=chance.choice(fleet["explorers"])["id"]
                if target == "explorer"
                else None,
                zone_id=fleet["zone"] if target == "zone" else None,
                # every third one is not due yet: nobody may be woken for it
                start_time=now + timedelta(hours=1) if round_ % 3 == 2 else None,
                now=now,
            )
        if round_ % 4 == 3 and scan.explorer_id is not None:
            # launched: a scan running on its explorer occupies it
            with db.write() as conn:
                launched = launch.next_work(conn, scan.explorer_id, now=now)
            assert launched is not None
            assert launched.status == TaskStatus.ACTIVE
        served.append(agree())
    assert max(served) > 0
