"""A site's allowed scope (SPEC §13): operators scan only inside it, admins set it, and an
admin's scan outside it is allowed but audited. Empty allowed scope = the site's scope."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from surveyor.store.schema import audit_events
from tests.integration.test_web_sessions import signed_in
from tests.support.console import Api, ConsoleUnderTest

FUTURE = "2099-01-01T00:00:00Z"
ALL_BUT_THE_OUTSIDE_HALF = {"targets": "127.0.4.0/23", "excludes": "127.0.4.0/24"}


def new_site(console: ConsoleUnderTest, *, name: str = "Branch", **body: Any) -> dict[str, Any]:
    response = console.admin.post("/api/v1/sites", json={"name": name, **body})
    assert response.status_code == 201, response.text
    site: dict[str, Any] = response.json()
    return site


def scan(api: Api, site: dict[str, Any], targets: str, **body: Any) -> Any:
    return api.post(
        "/api/v1/tasks",
        json={
            "name": f"scan of {targets}",
            "site_id": site["id"],
            "params": {"targets": targets},
            "start_time": FUTURE,
            **body,
        },
    )


def refusal(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "invalid_task"
    assert error["details"]["field"] == "params.targets"
    return error


def task_count(console: ConsoleUnderTest) -> int:
    counts: dict[str, int] = console.admin.get("/api/v1/tasks/counts").json()["counts"]
    return counts["all"]


def audited(console: ConsoleUnderTest, action: str) -> list[dict[str, Any]]:
    with console.db.read() as conn:
        rows = conn.execute(
            select(audit_events.c.object_id, audit_events.c.actor, audit_events.c.details)
            .where(audit_events.c.action == action)
            .order_by(audit_events.c.id)
        ).all()
    return [{"object_id": row[0], "actor": row[1], "details": row[2]} for row in rows]


def test_an_operator_is_refused_outside_the_sites_scope_naming_the_target(
    console: ConsoleUnderTest,
) -> None:
    site = new_site(console, scope="127.0.5.0/24")
    operator = console.as_role("operator")

    inside = scan(operator, site, "127.0.5.1, 127.0.5.128/25")
    outside = scan(operator, site, "127.0.5.1, 127.0.4.0/23")

    assert inside.status_code == 201, inside.text
    error = refusal(outside)
    assert error["details"]["token"] == "127.0.4.0/23"
    assert error["message"] == (
        "'127.0.4.0/23' is outside the allowed scope of the site 'Branch' (it reaches "
        "127.0.4.0, which is not); operators scan only inside it: narrow the targets, or ask "
        "an admin to widen the site's allowed scope"
    )
    assert task_count(console) == 1


def test_excludes_that_cut_away_what_is_outside_make_a_scan_allowed(
    console: ConsoleUnderTest,
) -> None:
    site = new_site(console, scope="127.0.5.0/24")
    operator = console.as_role("operator")

    allowed = scan(operator, site, "127.0.4.0/23", params=ALL_BUT_THE_OUTSIDE_HALF)
    site_excluded = new_site(console, name="Fenced", scope="127.0.5.0/24", excludes="127.0.4.0/24")
    by_the_site = scan(operator, site_excluded, "127.0.4.0/23")

    assert allowed.status_code == 201, allowed.text
    assert by_the_site.status_code == 201, by_the_site.text


def test_an_admin_widens_the_allowed_scope_and_operators_may_scan_there(
    console: ConsoleUnderTest,
) -> None:
    site = new_site(console, scope="127.0.5.0/24")
    operator = console.as_role("operator")
    assert refusal(scan(operator, site, "127.0.6.7"))

    edited = console.admin.patch(
        f"/api/v1/sites/{site['id']}", json={"allowed_scope": "127.0.0.0/16, probe.example"}
    )

    assert edited.status_code == 200, edited.text
    assert edited.json()["allowed_scope"] == "127.0.0.0/16, probe.example"
    assert scan(operator, site, "127.0.6.7").status_code == 201
    assert scan(operator, site, "probe.example").status_code == 201
    assert refusal(scan(operator, site, "other.example"))["message"].startswith(
        "'other.example' is outside the allowed scope of the site 'Branch' (it is not in it)"
    )
    assert refusal(scan(operator, site, "127.1.0.0"))["details"]["token"] == "127.1.0.0"
    changes = audited(console, "edit")
    assert changes[-1]["details"]["allowed_scope"] == "127.0.0.0/16, probe.example"


def test_only_admins_set_the_allowed_scope_and_a_bad_one_names_its_token(
    console: ConsoleUnderTest,
) -> None:
    site = new_site(console, scope="127.0.5.0/24")

    as_operator = console.as_role("operator").patch(
        f"/api/v1/sites/{site['id']}", json={"allowed_scope": "0.0.0.0/0"}
    )
    bad = console.admin.patch(
        f"/api/v1/sites/{site['id']}", json={"allowed_scope": "127.0.0.0/8, nope!"}
    )
    wide_ipv6 = console.admin.patch(
        f"/api/v1/sites/{site['id']}", json={"allowed_scope": "2001:db8::/32"}
    )

    assert as_operator.status_code == 403
    assert bad.status_code == 400
    assert bad.json()["error"]["details"] == {"field": "allowed_scope", "token": "nope!"}
    assert wide_ipv6.status_code == 200
    assert console.admin.get(f"/api/v1/sites/{site['id']}").json()["allowed_scope"] == (
        "2001:db8::/32"
    )


def test_an_operator_cannot_move_a_scan_outside_by_editing_its_params(
    console: ConsoleUnderTest,
) -> None:
    site = new_site(console, scope="127.0.5.0/24")
    operator = console.as_role("operator")
    task = scan(operator, site, "127.0.5.1").json()

    edit = operator.patch(f"/api/v1/tasks/{task['id']}", json={"params": {"targets": "127.0.9.9"}})

    assert refusal(edit)["details"]["token"] == "127.0.9.9"
    assert console.admin.get(f"/api/v1/tasks/{task['id']}").json()["params"]["targets"] == (
        "127.0.5.1"
    )


def test_a_recurring_scan_outside_is_refused_and_one_inside_runs_what_it_was_checked_with(
    console: ConsoleUnderTest,
) -> None:
    site = new_site(console, scope="127.0.5.0/24")
    operator = console.as_role("operator")
    recur = {"frequency": "daily", "time": "02:00", "timezone": "UTC"}

    outside = scan(operator, site, "127.0.9.0/24", recur=recur, start_time=None)
    inside = scan(operator, site, "127.0.5.0/28", recur=recur, start_time=None)

    assert refusal(outside)["details"]["token"] == "127.0.9.0/24"
    assert inside.status_code == 201, inside.text
    run = console.admin.post(f"/api/v1/tasks/{inside.json()['id']}/run-now")
    assert run.status_code == 200, run.text
    assert run.json()["params"]["targets"] == "127.0.5.0/28"


def test_an_admin_may_scan_outside_and_it_is_audited(console: ConsoleUnderTest) -> None:
    site = new_site(console, scope="127.0.5.0/24")
    admin = console.as_role("admin")

    created = scan(admin, site, "127.0.5.1, 127.0.8.0/24")

    assert created.status_code == 201, created.text
    entries = audited(console, "scan_outside_allowed_scope")
    assert entries == [
        {
            "object_id": created.json()["id"],
            "actor": admin.email,
            "details": {
                "site": "Branch",
                "target": "127.0.8.0/24",
                "targets": "127.0.5.1,127.0.8.0/24",
            },
        }
    ]
    inside = scan(admin, site, "127.0.5.2")
    assert inside.status_code == 201
    assert len(audited(console, "scan_outside_allowed_scope")) == 1


def test_operators_cannot_scan_in_a_site_without_scope_or_allowed_scope(
    console: ConsoleUnderTest,
) -> None:
    site = new_site(console)

    error = refusal(scan(console.as_role("operator"), site, "127.0.0.1"))

    assert error["message"] == (
        "the site 'Branch' has neither a scope nor an allowed scope, so operators cannot scan "
        "in it; ask an admin to set its allowed scope"
    )


def test_the_new_task_form_refuses_an_operator_outside_at_the_targets_field(
    console: ConsoleUnderTest,
) -> None:
    site = new_site(console, scope="127.0.5.0/24")
    browser, csrf = signed_in(console, "operator")
    form = {
        "csrf_token": csrf,
        "name": "outside",
        "site_id": str(site["id"]),
        "runner": "",
        "targets": "127.0.9.1",
        "excludes": "",
        "ports": "default",
        "rate": "1000",
        "when": "now",
    }

    answer = browser.post("/tasks/new", data=form)

    assert answer.status_code == 400
    assert re.search(r'id="targets-error"[^>]*>.*outside the allowed scope', answer.text)
    assert task_count(console) == 0


def test_the_sites_page_shows_where_operators_may_scan(console: ConsoleUnderTest) -> None:
    new_site(console, scope="127.0.5.0/24", allowed_scope="127.0.0.0/16")
    browser, _ = signed_in(console, "viewer")

    page = browser.get("/sites").text

    assert '<code class="scope">127.0.0.0/16</code>' in page
    assert '<span class="muted">its scope</span>' in page
