"""The tasks API as a user meets it: creation, tabs, search, actions, every kind of bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from surveyor.core.tasks import TaskStatus
from surveyor.store import tasks as store
from tests.support.console import Api, ConsoleUnderTest

FUTURE = "2099-01-01T00:00:00Z"


def create(api: Api, **body: Any) -> dict[str, Any]:
    response = api.post("/api/v1/tasks", json={"name": "sweep", **body})
    assert response.status_code == 201, response.text
    return response.json()


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["message"]
    return error


def force_status(console: ConsoleUnderTest, task_id: int, *steps: TaskStatus) -> None:
    for step in steps:
        with console.db.write() as conn:
            store.transition(conn, console.organization_id, task_id, step, actor="system")


def test_a_scan_without_targets_scans_its_sites_scope(console: ConsoleUnderTest) -> None:
    task = create(console.admin)
    assert task["status"] == "new"
    assert task["status_label"] == "New"
    assert task["type"] == "scan"
    assert task["params"]["targets"] == "127.0.0.1"
    assert task["params"]["scope_size"] == 1
    assert task["created_by"] == console.admin.email
    assert task["progress"] == {"collect": 0.0, "process": 0.0}
    assert task["created_at"].endswith("Z")


def test_a_scan_for_later_waits_in_the_scheduled_tab_saying_why(console: ConsoleUnderTest) -> None:
    task = create(console.admin, start_time=FUTURE)
    assert task["wait_reason"] == "not_due"
    page = console.admin.get("/api/v1/tasks", params={"tab": "scheduled"}).json()
    assert [t["id"] for t in page["items"]] == [task["id"]]


@pytest.mark.parametrize(
    ("params", "field", "token"),
    [
        ({"targets": "127.0.0.1, 127.0.0.300"}, "params.targets", "127.0.0.300"),
        ({"targets": "127.0.0.1", "excludes": "nope!"}, "params.excludes", "nope!"),
        ({"tcp_ports": "22,70000"}, "params.tcp_ports", "70000"),
        ({"rate": "fast"}, "params.rate", None),
        ({"colour": "blue"}, "params.colour", "colour"),
    ],
)
def test_bad_scan_params_are_refused_naming_the_offending_token(
    console: ConsoleUnderTest, params: dict[str, Any], field: str, token: str | None
) -> None:
    error = error_of(console.admin.post("/api/v1/tasks", json={"name": "x", "params": params}), 400)
    assert error["code"] == "invalid_task"
    assert error["details"]["field"] == field
    if token is not None:
        assert token in error["message"]
        assert error["details"]["token"] == token
    assert console.admin.get("/api/v1/tasks/counts").json()["counts"]["all"] == 0


def test_the_scope_cap_refuses_a_scan_that_is_too_big(console: ConsoleUnderTest) -> None:
    error = error_of(
        console.admin.post(
            "/api/v1/tasks", json={"name": "x", "params": {"targets": "127.0.0.0/8"}}
        ),
        400,
    )
    assert "16,777,216" in error["message"]
    assert "cap" in error["message"]


HUGE_PROBE_SCAN = {"targets": "127.0.0.0/16", "tcp_ports": "1-65535"}


def test_the_probe_cap_refuses_every_port_of_a_full_scope_naming_both_numbers(
    console: ConsoleUnderTest,
) -> None:
    operator = console.as_role("operator")
    error = error_of(
        operator.post("/api/v1/tasks", json={"name": "x", "params": HUGE_PROBE_SCAN}), 400
    )

    assert error["details"]["field"] == "params.tcp_ports"
    assert "4,294,901,760 port probes (65,536 addresses, 65,535 ports each)" in error["message"]
    assert "cap of 65,536,000" in error["message"]
    task = create(operator, start_time=FUTURE)
    edit = operator.patch(f"/api/v1/tasks/{task['id']}", json={"params": HUGE_PROBE_SCAN})
    assert error_of(edit, 400)["details"]["field"] == "params.tcp_ports"
    assert console.admin.get("/api/v1/tasks/counts").json()["counts"]["all"] == 1


def test_an_organization_whose_probe_cap_was_raised_accepts_the_bigger_scan(
    console: ConsoleUnderTest,
) -> None:
    org_id = console.organization_id
    organization = console.admin.get("/api/v1/organizations").json()[0]
    assert organization["probe_cap"] == 65_536_000
    raised = console.admin.patch(
        f"/api/v1/organizations/{org_id}",
        json={"name": organization["name"], "probe_cap": 2**33},
    )
    assert raised.json()["probe_cap"] == 2**33
    site = console.admin.get("/api/v1/sites").json()[0]
    widened = console.admin.patch(
        f"/api/v1/sites/{site['id']}", json={"allowed_scope": "127.0.0.0/8"}
    )
    assert widened.status_code == 200, widened.text

    task = create(console.as_role("operator"), params=HUGE_PROBE_SCAN, start_time=FUTURE)

    assert task["params"]["scope_size"] * task["params"]["ports_count"] == 4_294_901_760
    renamed = console.admin.patch(f"/api/v1/organizations/{org_id}", json={"name": "Renamed"})
    assert renamed.json()["probe_cap"] == 2**33


@pytest.mark.parametrize(
    ("body", "status", "mentions"),
    [
        ({"name": ""}, 422, "name"),
        ({"name": "x", "colour": 1}, 422, "colour"),
        ({"name": "x", "start_time": "2099-01-01T00:00:00"}, 422, "start_time"),
        ({"name": "x", "grace_period": -5}, 422, "grace_period"),
        ({"name": "x", "site_id": 999}, 400, "site 999"),
        ({"name": "x", "explorer_id": 5, "hosted_zone_id": 6}, 400, "not both"),
        ({"name": "x", "explorer_id": 999}, 400, "explorer 999"),
        ({"name": "x", "type": "report"}, 422, "type"),
        (
            {"name": "x", "recur": {"frequency": "daily", "timezone": "Mars/Olympus"}},
            400,
            "Mars/Olympus",
        ),
    ],
)
def test_bad_task_bodies_get_a_clear_error_and_store_nothing(
    console: ConsoleUnderTest, body: dict[str, Any], status: int, mentions: str
) -> None:
    error = error_of(console.admin.post("/api/v1/tasks", json=body), status)
    assert mentions in error["message"] or mentions in str(error["details"])
    assert console.admin.get("/api/v1/tasks/counts").json()["counts"]["all"] == 0


def test_malformed_json_is_a_clear_error(console: ConsoleUnderTest) -> None:
    response = console.admin.post(
        "/api/v1/tasks", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    error_of(response, 422)


def test_an_oversized_body_is_refused_before_it_is_read(console: ConsoleUnderTest) -> None:
    response = console.admin.post(
        "/api/v1/tasks", content=b"x" * (2 << 20), headers={"Content-Type": "application/json"}
    )
    assert error_of(response, 413)["code"] == "too_large"


def test_an_illegal_transition_is_a_409_with_the_current_status(console: ConsoleUnderTest) -> None:
    task = create(console.admin)
    assert console.admin.post(f"/api/v1/tasks/{task['id']}/stop").json()["status"] == "stopped"
    error = error_of(console.admin.post(f"/api/v1/tasks/{task['id']}/stop"), 409)
    assert error["details"]["current_status"] == "stopped"
    error = error_of(console.admin.post(f"/api/v1/tasks/{task['id']}/pause"), 409)
    assert "recurring" in error["message"]


def test_stopping_a_running_scan_waits_for_its_explorer(console: ConsoleUnderTest) -> None:
    task = create(console.admin)
    force_status(console, task["id"], TaskStatus.ACTIVE)
    stopped = console.admin.post(f"/api/v1/tasks/{task['id']}/stop").json()
    assert stopped["status"] == "stopping"
    active_tab = console.admin.get("/api/v1/tasks", params={"tab": "active"}).json()["items"]
    assert [t["id"] for t in active_tab] == [task["id"]]
    error = error_of(console.admin.delete(f"/api/v1/tasks/{task['id']}"), 409)
    assert "stop it before removing" in error["message"]


def test_tabs_and_counts_follow_the_status_and_honour_the_search(
    console: ConsoleUnderTest,
) -> None:
    scheduled = create(console.admin, name="alpha scheduled", start_time=FUTURE)
    running = create(console.admin, name="beta running")
    force_status(console, running["id"], TaskStatus.ACTIVE)
    done = create(console.admin, name="alpha done")
    force_status(
        console,
        done["id"],
        TaskStatus.ACTIVE,
        TaskStatus.SCANNED,
        TaskStatus.PROCESSING_QUEUED,
        TaskStatus.PROCESSING,
        TaskStatus.PROCESSED,
    )
    counts = console.admin.get("/api/v1/tasks/counts").json()["counts"]
    assert counts == {
        "active": 1,
        "processing": 0,
        "scheduled": 1,
        "failed": 0,
        "completed": 1,
        "recurring": 0,
        "all": 3,
    }
    searched = console.admin.get("/api/v1/tasks/counts", params={"search": "alpha"}).json()
    assert searched["counts"]["all"] == 2
    assert searched["counts"]["active"] == 0
    completed = console.admin.get("/api/v1/tasks", params={"tab": "completed"}).json()["items"]
    assert [t["id"] for t in completed] == [done["id"]]
    found = console.admin.get("/api/v1/tasks", params={"search": "status:new"}).json()["items"]
    assert [t["id"] for t in found] == [scheduled["id"]]


def test_a_search_syntax_error_names_its_position(console: ConsoleUnderTest) -> None:
    error = error_of(console.admin.get("/api/v1/tasks", params={"search": "name:(x"}), 400)
    assert error["code"] == "invalid_search"
    assert isinstance(error["details"]["position"], int)
    error = error_of(
        console.admin.get("/api/v1/tasks/counts", params={"search": "stauts:new"}), 400
    )
    assert "status" in error["details"]["valid_keys"]
    assert error["details"]["position"] == 0


def test_hidden_tasks_appear_only_when_the_search_asks(console: ConsoleUnderTest) -> None:
    task = create(console.admin)
    hidden = console.admin.post(f"/api/v1/tasks/{task['id']}/hide").json()
    assert hidden["hidden"] is True
    assert console.admin.get("/api/v1/tasks").json()["items"] == []
    # (Besides the organization's own hidden task: its daily Retention.)
    search = {"search": "hidden:true type:scan"}
    shown = console.admin.get("/api/v1/tasks", params=search).json()["items"]
    assert [t["id"] for t in shown] == [task["id"]]
    console.admin.post(f"/api/v1/tasks/{task['id']}/hide", json={"hidden": False})
    assert len(console.admin.get("/api/v1/tasks").json()["items"]) == 1


def test_pages_of_the_api_chain_by_cursor(console: ConsoleUnderTest) -> None:
    ids = {create(console.admin, name=f"t{i}")["id"] for i in range(7)}
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"tab": "all", "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = console.admin.get("/api/v1/tasks", params=params).json()
        seen.extend(t["id"] for t in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)
    error = error_of(console.admin.get("/api/v1/tasks", params={"cursor": "garbage"}), 400)
    assert error["code"] == "invalid_cursor"


def test_a_recurring_template_pauses_resumes_and_runs_now(console: ConsoleUnderTest) -> None:
    template = create(
        console.admin,
        name="nightly",
        recur={"frequency": "daily", "time": "02:30", "timezone": "Europe/Berlin"},
    )
    assert template["recur"] is True
    assert template["recur_next"] is not None
    recurring = console.admin.get("/api/v1/tasks", params={"tab": "recurring"}).json()["items"]
    assert [t["id"] for t in recurring] == [template["id"]]
    paused = console.admin.post(f"/api/v1/tasks/{template['id']}/pause").json()
    assert paused["status"] == "paused"
    assert paused["recur_next"] is None
    resumed = console.admin.post(f"/api/v1/tasks/{template['id']}/resume").json()
    assert resumed["status"] == "new"
    assert resumed["recur_next"] is not None
    run = console.admin.post(f"/api/v1/tasks/{template['id']}/run-now").json()
    assert run["parent_id"] == template["id"]
    assert run["recur"] is False
    assert run["params"] == template["params"]
    runs = console.admin.get(f"/api/v1/tasks/{template['id']}/runs").json()["items"]
    assert [r["id"] for r in runs] == [run["id"]]
    after = console.admin.get(f"/api/v1/tasks/{template['id']}").json()
    assert after["recur_last_task_id"] == run["id"]
    assert console.admin.delete(f"/api/v1/tasks/{template['id']}").status_code == 204
    assert console.admin.get(f"/api/v1/tasks/{template['id']}").status_code == 404
    assert console.admin.get(f"/api/v1/tasks/{run['id']}").json()["parent_id"] == template["id"]


def test_the_preview_shows_five_occurrences_and_refuses_bad_rules(
    console: ConsoleUnderTest,
) -> None:
    preview = console.admin.post(
        "/api/v1/tasks/preview",
        json={
            "frequency": "weekly",
            "weekdays": ["mo", "th"],
            "time": "22:00",
            "timezone": "America/New_York",
        },
    ).json()
    assert len(preview["occurrences"]) == 5
    assert preview["description"]
    error = error_of(
        console.admin.post(
            "/api/v1/tasks/preview", json={"frequency": "cron", "cron": "61 * * * *"}
        ),
        400,
    )
    assert error["details"]["field"] == "recur.cron"


def test_editing_a_task_before_it_runs_revalidates_it(console: ConsoleUnderTest) -> None:
    task = create(console.admin, start_time=FUTURE)
    edited = console.admin.patch(
        f"/api/v1/tasks/{task['id']}",
        json={"name": "renamed", "params": {"targets": "127.0.0.2", "tcp_ports": "22"}},
    ).json()
    assert edited["name"] == "renamed"
    assert edited["params"]["targets"] == "127.0.0.2"
    error = error_of(
        console.admin.patch(
            f"/api/v1/tasks/{task['id']}", json={"params": {"targets": "300.1.1.1"}}
        ),
        400,
    )
    assert error["details"]["token"] == "300.1.1.1"
    force_status(console, task["id"], TaskStatus.ACTIVE)
    error = error_of(
        console.admin.patch(
            f"/api/v1/tasks/{task['id']}", json={"params": {"targets": "127.0.0.3"}}
        ),
        409,
    )
    assert "before the task runs" in error["message"]
    events = console.admin.get(f"/api/v1/tasks/{task['id']}/events").json()["items"]
    assert [e["kind"] for e in events] == ["created", "edited", "transition"]
    assert events[-1]["from_status"] == "new"
    assert events[-1]["to_status"] == "active"


def test_reprocess_needs_stored_data(console: ConsoleUnderTest) -> None:
    task = create(console.admin)
    force_status(console, task["id"], TaskStatus.CANCELED)
    error = error_of(console.admin.post(f"/api/v1/tasks/{task['id']}/reprocess"), 409)
    assert "no stored data" in error["message"]


def test_data_and_changes_say_why_they_are_missing(console: ConsoleUnderTest) -> None:
    task = create(console.admin)
    assert (
        "not collected"
        in error_of(console.admin.get(f"/api/v1/tasks/{task['id']}/data"), 404)["message"]
    )
    assert (
        "not been processed"
        in error_of(console.admin.get(f"/api/v1/tasks/{task['id']}/changes"), 404)["message"]
    )


def test_unknown_paths_and_ids_answer_in_the_error_format(console: ConsoleUnderTest) -> None:
    assert error_of(console.admin.get("/api/v1/nothing-here"), 404)["code"] == "not_found"
    assert error_of(console.admin.get("/api/v1/tasks/123456"), 404)["code"] == "not_found"
    error_of(console.admin.get("/api/v1/tasks/abc"), 422)


@pytest.mark.parametrize("text", ["nul\x00byte", "lone \ud800 surrogate"])
def test_text_no_database_can_store_is_refused_clearly(
    console: ConsoleUnderTest, text: str
) -> None:
    body = json.dumps({"name": text})
    response = console.admin.post(
        "/api/v1/tasks", content=body.encode(), headers={"Content-Type": "application/json"}
    )
    error = error_of(response, 422)
    assert "NUL" in error["message"] or "surrogate" in error["message"]
