"""Every route, every role: who may do what, and another organization's objects are 404."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from surveyor.store.records import create_record
from surveyor.store.schema import explorers
from tests.support.console import ConsoleUnderTest

_serial = itertools.count()
ROLES = ("viewer", "operator", "admin")
RANK = {"anonymous": -1, "viewer": 0, "operator": 1, "admin": 2}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    needs: str  # the least role that may call it
    body: Callable[[dict[str, int]], Any] | None = None
    ok: int = 200

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def make_objects(console: ConsoleUnderTest, org_id: int | None = None) -> dict[str, int]:
    """A fresh task, template, site, zone and explorer to aim the routes at."""
    api = console.admin if org_id is None else console.as_role("admin", organization_id=org_id)
    org_id = org_id or console.organization_id
    site = api.post(
        "/api/v1/sites", json={"name": f"site-{next(_serial)}", "scope": "127.0.0.1"}
    ).json()
    zone = api.post("/api/v1/hosted-zones", json={"name": f"z{site['id']}"}).json()
    task = api.post(
        "/api/v1/tasks",
        json={"name": "t", "site_id": site["id"], "start_time": "2099-01-01T00:00:00Z"},
    ).json()
    template = api.post(
        "/api/v1/tasks",
        json={
            "name": "nightly",
            "site_id": site["id"],
            "recur": {"frequency": "daily", "time": "02:30", "timezone": "UTC"},
        },
    ).json()
    with console.db.write() as conn:
        explorer = create_record(
            conn, explorers, org_id, {"name": f"e{site['id']}", "addresses": []}
        )
    return {
        "task": task["id"],
        "template": template["id"],
        "site": site["id"],
        "zone": zone["id"],
        "explorer": explorer["id"],
    }


ROUTES = [
    Route("GET", "/api/v1/tasks", "viewer"),
    Route("GET", "/api/v1/tasks/counts", "viewer"),
    Route("GET", "/api/v1/tasks/{task}", "viewer"),
    Route("GET", "/api/v1/tasks/{task}/events", "viewer"),
    Route("GET", "/api/v1/tasks/{template}/runs", "viewer"),
    Route("GET", "/api/v1/tasks/{task}/processing-runs", "viewer"),
    Route(
        "POST", "/api/v1/tasks/preview", "viewer", lambda o: {"frequency": "daily", "time": "03:00"}
    ),
    Route(
        "POST",
        "/api/v1/tasks",
        "operator",
        lambda o: {"name": "new scan", "params": {"targets": "127.0.0.1"}},
        201,
    ),
    Route("PATCH", "/api/v1/tasks/{task}", "operator", lambda o: {"name": "renamed"}),
    Route("POST", "/api/v1/tasks/{task}/hide", "operator", lambda o: {"hidden": True}),
    Route("POST", "/api/v1/tasks/{template}/pause", "operator"),
    Route("POST", "/api/v1/tasks/{template}/run-now", "operator"),
    Route("POST", "/api/v1/tasks/{task}/stop", "operator"),
    Route("DELETE", "/api/v1/tasks/{task}", "operator", ok=204),
    Route("GET", "/api/v1/sites", "viewer"),
    Route("GET", "/api/v1/sites/{site}", "viewer"),
    Route(
        "POST",
        "/api/v1/sites",
        "admin",
        lambda o: {"name": f"new-{o['site']}", "scope": "127.0.0.0/30"},
        201,
    ),
    Route("PATCH", "/api/v1/sites/{site}", "admin", lambda o: {"description": "lab"}),
    Route("GET", "/api/v1/hosted-zones", "viewer"),
    Route("GET", "/api/v1/hosted-zones/{zone}", "viewer"),
    Route("POST", "/api/v1/hosted-zones", "admin", lambda o: {"name": f"zone-{o['zone']}"}, 201),
    Route("PATCH", "/api/v1/hosted-zones/{zone}", "admin", lambda o: {"max_concurrent": 3}),
    Route("DELETE", "/api/v1/hosted-zones/{zone}", "admin", ok=204),
    Route("GET", "/api/v1/explorers", "viewer"),
    Route("GET", "/api/v1/explorers/{explorer}", "viewer"),
    Route("PATCH", "/api/v1/explorers/{explorer}", "admin", lambda o: {"name": f"x{o['zone']}"}),
    Route("DELETE", "/api/v1/explorers/{explorer}", "admin", ok=204),
    Route("GET", "/api/v1/users/me", "viewer"),
    Route("GET", "/api/v1/users", "admin"),
    Route(
        "POST",
        "/api/v1/users",
        "admin",
        lambda o: {"email": f"u{o['site']}@example.test", "role": "viewer"},
        201,
    ),
    Route("GET", "/api/v1/tokens", "viewer"),
    Route("POST", "/api/v1/tokens", "viewer", lambda o: {"name": "ci"}, 201),
    Route("GET", "/api/v1/audit", "admin"),
]


def call(api: Any, route: Route, objects: dict[str, int]) -> Any:
    path = route.path.format(**objects)
    kwargs = {"json": route.body(objects)} if route.body is not None else {}
    return api.request(route.method, path, **kwargs)


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_each_role_gets_exactly_the_access_its_rank_allows(
    console: ConsoleUnderTest, route: Route
) -> None:
    for role in ("anonymous", *ROLES):
        objects = make_objects(console)
        api = console.anonymous() if role == "anonymous" else console.as_role(role)
        response = call(api, route, objects)
        if role == "anonymous":
            expected = 401
        elif RANK[role] < RANK[route.needs]:
            expected = 403
        else:
            expected = route.ok
        assert response.status_code == expected, (role, response.text)
        if expected >= 400:
            error = response.json()["error"]
            assert error["code"] in ("unauthenticated", "forbidden")
            assert error["message"]


ORG_SCOPED = [r for r in ROUTES if "{" in r.path]


@pytest.mark.parametrize("route", ORG_SCOPED, ids=str)
def test_another_organizations_objects_are_not_found(
    console: ConsoleUnderTest, route: Route
) -> None:
    other_org, _ = console.other_organization()
    theirs = make_objects(console, other_org)
    response = call(console.admin, route, theirs)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"


def test_organizations_are_for_superusers_only(console: ConsoleUnderTest) -> None:
    assert console.admin.get("/api/v1/organizations").status_code == 200
    for role in ROLES:
        response = console.as_role(role).get("/api/v1/organizations")
        assert response.status_code == 403
    created = console.admin.post(
        "/api/v1/organizations", json={"name": "Branch office", "join": True}
    )
    assert created.status_code == 201
    names = [o["name"] for o in console.admin.get("/api/v1/organizations").json()]
    assert "Branch office" in names


def test_listings_never_show_another_organizations_rows(console: ConsoleUnderTest) -> None:
    other_org, other_admin = console.other_organization()
    make_objects(console, other_org)
    mine = make_objects(console)
    for path in ("/api/v1/tasks", "/api/v1/sites", "/api/v1/hosted-zones", "/api/v1/explorers"):
        body = console.admin.get(path).json()
        rows = body["items"] if isinstance(body, dict) else body
        assert rows, path
        assert {row["organization_id"] for row in rows} == {console.organization_id}, path
    assert console.admin.get(f"/api/v1/tasks/{mine['task']}").status_code == 200
    assert other_admin.get(f"/api/v1/tasks/{mine['task']}").status_code == 404
