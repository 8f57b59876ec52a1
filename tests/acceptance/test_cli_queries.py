"""`surveyor query …` against a real console process: a search saved, listed, pinned (a Query
task is queued), refused with a caret under its fault, and deleted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.acceptance.conftest import ConsoleProcess
from tests.acceptance.test_cli import Cli


@pytest.fixture
def cli(console_process: ConsoleProcess, tmp_path: Path) -> Cli:
    return Cli(console_process, tmp_path)


def test_a_search_is_saved_pinned_listed_and_deleted_from_the_cli(cli: Cli) -> None:
    name = f"SSH servers {os.getpid()}"
    said = cli.ok("query", "create", name, "port:22 alive:true", "--threshold", "10")
    assert "(not pinned)" in said
    created = next(q for q in cli.json("query", "list") if q["name"] == name)
    assert (created["kind"], created["search"], created["threshold"]) == (
        "asset",
        "port:22 alive:true",
        10,
    )
    assert created["pinned"] is False

    assert "pinned to the Dashboard" in cli.ok("query", "pin", str(created["id"]))
    listing = cli.ok("query", "list")
    assert name in listing
    assert "yes" in listing
    queued = cli.json("task", "list", "--tab", "all", "--search", "type:query")
    assert [(t["name"], t["created_by"]) for t in queued][:1] == [("Query", "system")]

    assert "taken off" in cli.ok("query", "pin", str(created["id"]), "--off")
    assert f"Deleted query {created['id']}" in cli.ok("query", "delete", str(created["id"]))
    assert name not in cli.ok("query", "list")


def test_a_bad_search_is_refused_with_a_caret_under_its_fault(cli: Cli) -> None:
    refused = cli.run("query", "create", "broken", "status:failed", "--kind", "service")
    assert refused.returncode != 0
    assert "status" in refused.stderr
    assert "  status:failed\n  ^" in refused.stderr
    task_query = cli.json("query", "create", "failures", "status:canceled", "--kind", "task")
    assert task_query["link"] == "/tasks?search=status%3Acanceled"
    cli.ok("query", "delete", str(task_query["id"]))
