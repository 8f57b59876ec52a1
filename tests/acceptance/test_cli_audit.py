"""`surveyor audit list` against a real console process."""

from __future__ import annotations

import os

from tests.acceptance.conftest import ADMIN_EMAIL
from tests.acceptance.test_cli import Cli, cli  # noqa: F401 (the fixture)


def test_audit_list_shows_who_did_what_to_an_object_newest_first(
    cli: Cli,  # noqa: F811
) -> None:
    zone = cli.json("zone", "create", f"audited-{os.getpid()}")
    cli.ok("zone", "edit", str(zone["id"]), "--max-concurrent", "2")
    cli.ok("zone", "delete", str(zone["id"]))
    about_zone = ("--object-type", "hosted_zone", "--object-id", str(zone["id"]))

    entries = cli.json("audit", "list", *about_zone)
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("delete", ADMIN_EMAIL),
        ("edit", ADMIN_EMAIL),
        ("create", ADMIN_EMAIL),
    ]
    shown = cli.ok("audit", "list", *about_zone)
    assert f"hosted zone {zone['id']}" in shown
    assert "fields: max_concurrent" in shown
    assert shown.index("delete") < shown.index("edit") < shown.index("create")

    only_edits = cli.json("audit", "list", *about_zone, "--action", "edit")
    assert [e["action"] for e in only_edits] == ["edit"]
    by_admin = cli.json("audit", "list", "--actor", ADMIN_EMAIL.upper(), "--limit", "1000")
    assert {e["actor"] for e in by_admin} == {ADMIN_EMAIL}
    assert "No entry matches." in cli.ok("audit", "list", "--actor", "nobody@example.test")


def test_audit_list_pages_and_takes_times_in_rfc_3339_or_local(cli: Cli) -> None:  # noqa: F811
    for number in range(3):
        cli.json("zone", "create", f"paged-{number}-{os.getpid()}")
    first = cli.ok("audit", "list", "--action", "create", "--limit", "2")
    assert "--all-pages shows the rest" in first
    every = cli.json("audit", "list", "--action", "create", "--limit", "2", "--all-pages")
    assert len(every) >= 3
    assert len({e["id"] for e in every}) == len(every)

    future = cli.ok("audit", "list", "--since", "2099-01-01T00:00:00Z")
    assert "No entry matches." in future
    assert cli.json("audit", "list", "--until", "2000-01-01 00:00") == []
    upside_down = cli.run(
        "audit", "list", "--since", "2030-01-02T00:00:00Z", "--until", "2030-01-01T00:00:00Z"
    )
    assert upside_down.returncode == 1
    assert "'until' is before 'since'" in upside_down.stderr
    not_a_time = cli.run("audit", "list", "--since", "yesterday-ish")
    assert not_a_time.returncode == 2
    assert "RFC 3339" in not_a_time.stderr
