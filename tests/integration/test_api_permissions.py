"""Every route of the app, every kind of caller: who may do what.

The app's routes are enumerated (method and path template): a route without a row in a
permission matrix fails `test_every_route_of_the_app_has_a_row`, naming it. The matrices are
this module's (the API: tasks, sites, zones, explorers, enrollment, the explorer protocol,
assets, imports, events, audit, login, documents), `test_api_account_permissions` (accounts,
memberships, invitations, organizations, tokens) and `test_web_permissions` (the pages).

The callers here: no one (anonymous); viewer, operator and admin members of the console's
organization; a superuser who is a viewer there (being a superuser lifts no role in an
organization); an admin of another organization (outsider: this organization's objects are
404 to it, its own collections are its own); the organization's explorer, an explorer of the
other organization (stranger_explorer), and an enrollment token (enroller). Explorers speak
only the explorer protocol, which takes no user's token.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount

from surveyor.store import accounts
from tests.integration import test_api_account_permissions, test_web_permissions
from tests.support.console import ADMIN_EMAIL, ADMIN_PASSWORD, Api, ConsoleUnderTest
from tests.support.explorers import HOST, task_data
from tests.support.inventory_data import Place, encode, host, process_all, queue_hosts, records

FUTURE = "2099-01-01T00:00:00Z"
NIGHTLY = {"frequency": "daily", "time": "02:30", "timezone": "UTC"}
CALLERS = (
    "anonymous",
    "viewer",
    "operator",
    "admin",
    "superuser",
    "outsider",
    "explorer",
    "stranger_explorer",
    "enroller",
)
MEMBERS = ("viewer", "operator", "admin")
RANK = {"viewer": 0, "operator": 1, "admin": 2}
#: The error codes each refusal may carry.
REFUSALS = {
    401: {"unauthenticated", "unknown_explorer", "enrollment_refused"},
    403: {"forbidden"},
    404: {"not_found", "unknown_task"},
}
_serial = itertools.count(1)

Expected = dict[str, int]


def user_route(needs: str, ok: int = 200, *, outsider: int) -> Expected:
    """A route for members with at least `needs`; explorers' credentials are no tokens."""
    expected = {"anonymous": 401, "explorer": 401, "stranger_explorer": 401, "enroller": 401}
    for role in MEMBERS:
        expected[role] = ok if RANK[role] >= RANK[needs] else 403
    expected["superuser"] = expected["viewer"]
    expected["outsider"] = outsider
    return expected


def on_objects(needs: str, ok: int = 200) -> Expected:
    """A route on this organization's objects: another organization's admin gets 404."""
    return user_route(needs, ok, outsider=404)


def collection(needs: str, ok: int = 200) -> Expected:
    """A route on the caller's own organization: another organization's admin gets its own."""
    return user_route(needs, ok, outsider=ok)


def explorer_protocol(ok: int = 200, *, stranger: int = 404) -> Expected:
    """A route of the explorer protocol: the task's own explorer only."""
    expected = dict.fromkeys(CALLERS, 401)
    expected["explorer"] = ok
    expected["stranger_explorer"] = stranger
    return expected


def enrolling() -> Expected:
    expected = dict.fromkeys(CALLERS, 401)
    expected["enroller"] = 201
    return expected


def public(ok: int = 200) -> Expected:
    return dict.fromkeys(CALLERS, ok)


Objects = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # the app's own path template
    expected: Expected
    #: Path parameter -> the kind of object it names (see World.make).
    aim: dict[str, str] = field(default_factory=dict)
    #: The request's body and headers, given the objects.
    send: Callable[[Objects], dict[str, Any]] | None = None
    #: Fresh objects for each call (a call changes them); else shared ones, made once.
    fresh: bool = False

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def json(make: Callable[[Objects], Any]) -> Callable[[Objects], dict[str, Any]]:
    return lambda objects: {"json": make(objects)}


def report(objects: Objects, **extra: Any) -> dict[str, Any]:
    return {"json": {"attempt_token": objects["launched"]["attempt_token"], **extra}}


def upload(objects: Objects) -> dict[str, Any]:
    data = task_data()
    return {
        "content": data,
        "headers": {
            "X-Surveyor-Attempt-Token": objects["launched"]["attempt_token"],
            "X-Surveyor-Content-SHA256": hashlib.sha256(data).hexdigest(),
            "Content-Type": "application/gzip",
        },
    }


IMPORT_FILE = encode(records([host("127.0.0.9")], targets=None, ports=None))

TASK = {"task_id": "task"}
TEMPLATE = {"task_id": "template"}
PROCESSED = {"task_id": "processed"}
LAUNCHED = {"task_id": "launched"}
CREDENTIAL = {"credential_id": "credential"}
RULE = {"rule_id": "notification_rule"}
REPORT = {"report_id": "report"}
SAVED_QUERY = {"query_id": "saved_query"}

ROWS = [
    # tasks
    Row("GET", "/api/v1/tasks", collection("viewer")),
    Row("GET", "/api/v1/tasks/counts", collection("viewer")),
    Row(
        "POST",
        "/api/v1/tasks/preview",
        collection("viewer"),
        send=json(lambda o: {"frequency": "daily", "time": "03:00"}),
    ),
    Row(
        "POST",
        "/api/v1/tasks",
        collection("operator", 201),
        send=json(lambda o: {"name": "new scan", "params": {"targets": "127.0.0.1"}}),
    ),
    Row("GET", "/api/v1/tasks/{task_id}", on_objects("viewer"), TASK),
    Row(
        "PATCH",
        "/api/v1/tasks/{task_id}",
        on_objects("operator"),
        TASK,
        json(lambda o: {"name": "renamed"}),
        fresh=True,
    ),
    Row("DELETE", "/api/v1/tasks/{task_id}", on_objects("operator", 204), TASK, fresh=True),
    Row("POST", "/api/v1/tasks/{task_id}/stop", on_objects("operator"), TASK, fresh=True),
    Row("POST", "/api/v1/tasks/{task_id}/pause", on_objects("operator"), TEMPLATE, fresh=True),
    Row(
        "POST",
        "/api/v1/tasks/{task_id}/resume",
        on_objects("operator"),
        {"task_id": "paused_template"},
        fresh=True,
    ),
    Row("POST", "/api/v1/tasks/{task_id}/run-now", on_objects("operator"), TEMPLATE, fresh=True),
    Row("POST", "/api/v1/tasks/{task_id}/reprocess", on_objects("operator"), PROCESSED, fresh=True),
    Row(
        "POST",
        "/api/v1/tasks/{task_id}/hide",
        on_objects("operator"),
        TASK,
        json(lambda o: {"hidden": True}),
        fresh=True,
    ),
    Row("GET", "/api/v1/tasks/{task_id}/runs", on_objects("viewer"), TEMPLATE),
    Row("GET", "/api/v1/tasks/{task_id}/events", on_objects("viewer"), TASK),
    Row("GET", "/api/v1/tasks/{task_id}/data", on_objects("viewer"), PROCESSED),
    Row("GET", "/api/v1/tasks/{task_id}/changes", on_objects("viewer"), PROCESSED),
    Row("GET", "/api/v1/tasks/{task_id}/processing-runs", on_objects("viewer"), PROCESSED),
    # sites
    Row("GET", "/api/v1/sites", collection("viewer")),
    Row(
        "POST",
        "/api/v1/sites",
        collection("admin", 201),
        send=json(lambda o: {"name": f"new site {next(_serial)}", "scope": "127.0.0.0/30"}),
    ),
    Row("GET", "/api/v1/sites/{site_id}", on_objects("viewer"), {"site_id": "site"}),
    Row(
        "PATCH",
        "/api/v1/sites/{site_id}",
        on_objects("admin"),
        {"site_id": "site"},
        json(lambda o: {"description": "lab"}),
        fresh=True,
    ),
    Row(
        "DELETE",
        "/api/v1/sites/{site_id}",
        on_objects("admin", 204),
        {"site_id": "site"},
        fresh=True,
    ),
    # hosted zones
    Row("GET", "/api/v1/hosted-zones", collection("viewer")),
    Row(
        "POST",
        "/api/v1/hosted-zones",
        collection("admin", 201),
        send=json(lambda o: {"name": f"new zone {next(_serial)}"}),
    ),
    Row("GET", "/api/v1/hosted-zones/{zone_id}", on_objects("viewer"), {"zone_id": "zone"}),
    Row(
        "PATCH",
        "/api/v1/hosted-zones/{zone_id}",
        on_objects("admin"),
        {"zone_id": "zone"},
        json(lambda o: {"max_concurrent": 3}),
        fresh=True,
    ),
    Row(
        "DELETE",
        "/api/v1/hosted-zones/{zone_id}",
        on_objects("admin", 204),
        {"zone_id": "zone"},
        fresh=True,
    ),
    # explorers, as users see them
    Row("GET", "/api/v1/explorers", collection("viewer")),
    Row(
        "GET", "/api/v1/explorers/{explorer_id}", on_objects("viewer"), {"explorer_id": "explorer"}
    ),
    Row(
        "PATCH",
        "/api/v1/explorers/{explorer_id}",
        on_objects("admin"),
        {"explorer_id": "explorer"},
        json(lambda o: {"name": f"renamed {next(_serial)}"}),
        fresh=True,
    ),
    Row(
        "DELETE",
        "/api/v1/explorers/{explorer_id}",
        on_objects("admin", 204),
        {"explorer_id": "explorer"},
        fresh=True,
    ),
    # enrollment tokens
    Row(
        "POST",
        "/api/v1/enrollment-tokens",
        collection("admin", 201),
        send=json(lambda o: {"name": f"token {next(_serial)}"}),
    ),
    Row("GET", "/api/v1/enrollment-tokens", collection("admin")),
    Row(
        "GET",
        "/api/v1/enrollment-tokens/{token_id}",
        on_objects("admin"),
        {"token_id": "enrollment_token"},
    ),
    Row(
        "DELETE",
        "/api/v1/enrollment-tokens/{token_id}",
        on_objects("admin", 204),
        {"token_id": "enrollment_token"},
        fresh=True,
    ),
    # the explorer protocol
    Row(
        "POST",
        "/api/v1/explorer/enroll",
        enrolling(),
        send=json(lambda o: {**HOST, "name": f"probe {next(_serial)}"}),
    ),
    Row(
        "POST",
        "/api/v1/explorer/poll",
        explorer_protocol(stranger=200),
        send=json(lambda o: {**HOST, "wait": 0}),
    ),
    Row(
        "POST",
        "/api/v1/explorer/tasks/{task_id}/progress",
        explorer_protocol(),
        LAUNCHED,
        lambda o: report(o, collect=0.5, stats={}),
        fresh=True,
    ),
    Row(
        "POST",
        "/api/v1/explorer/tasks/{task_id}/stopped",
        explorer_protocol(),
        {"task_id": "stopping"},
        lambda o: {"json": {"attempt_token": o["stopping"]["attempt_token"]}},
        fresh=True,
    ),
    Row(
        "POST",
        "/api/v1/explorer/tasks/{task_id}/failed",
        explorer_protocol(),
        LAUNCHED,
        lambda o: report(o, error="the network went away"),
        fresh=True,
    ),
    Row(
        "PUT",
        "/api/v1/explorer/task-data/{task_id}",
        explorer_protocol(),
        LAUNCHED,
        upload,
        fresh=True,
    ),
    # inventory, imports, the event stream, the audit trail
    Row("GET", "/api/v1/assets", collection("viewer")),
    Row("GET", "/api/v1/assets/{asset_id}", on_objects("viewer"), {"asset_id": "asset"}),
    Row("GET", "/api/v1/assets/export", collection("viewer")),
    Row("GET", "/api/v1/assets/count", collection("viewer")),
    Row(
        "POST",
        "/api/v1/imports",
        collection("operator", 201),
        send=lambda o: {"content": IMPORT_FILE, "headers": {"Content-Type": "application/gzip"}},
    ),
    Row("GET", "/api/v1/events", collection("viewer")),
    Row("GET", "/api/v1/audit", collection("admin")),
    # Prometheus metrics: an admin's token (unless SURVEYOR_METRICS_PUBLIC=1)
    Row("GET", "/metrics", collection("admin")),
    # retention settings: members read them, admins change them
    Row("GET", "/api/v1/settings/retention", collection("viewer")),
    Row(
        "PATCH",
        "/api/v1/settings/retention",
        collection("admin"),
        send=json(lambda o: {"task_data_days": 90}),
    ),
    # reports: each organization has the same three, so another's admin reads its own
    Row("GET", "/api/v1/reports", collection("viewer")),
    Row("GET", "/api/v1/reports/{report_id}", collection("viewer"), REPORT),
    Row("POST", "/api/v1/reports/{report_id}/refresh", collection("operator", 202), REPORT),
    # credentials: admins only
    Row("GET", "/api/v1/credentials", collection("admin")),
    Row(
        "POST",
        "/api/v1/credentials",
        collection("admin", 201),
        send=json(
            lambda o: {
                "name": f"community {next(_serial)}",
                "kind": "snmp",
                "fields": {"version": "2c", "community": "a matrix secret"},
            }
        ),
    ),
    Row("GET", "/api/v1/credentials/{credential_id}", on_objects("admin"), CREDENTIAL),
    Row(
        "PATCH",
        "/api/v1/credentials/{credential_id}",
        on_objects("admin"),
        CREDENTIAL,
        json(lambda o: {"name": f"renamed {next(_serial)}"}),
        fresh=True,
    ),
    Row(
        "POST",
        "/api/v1/credentials/{credential_id}/verify",
        on_objects("admin"),
        CREDENTIAL,
        json(lambda o: {"server": "127.0.0.1:9", "options": {"base_dn": "dc=lab"}}),
    ),
    Row(
        "DELETE",
        "/api/v1/credentials/{credential_id}",
        on_objects("admin", 204),
        CREDENTIAL,
        fresh=True,
    ),
    # notification rules: admins only
    Row("GET", "/api/v1/notifications", collection("admin")),
    Row(
        "POST",
        "/api/v1/notifications",
        collection("admin", 201),
        send=json(
            lambda o: {
                "name": f"hook {next(_serial)}",
                "trigger": "task_canceled",
                "channel": "webhook",
                "target": "http://127.0.0.1:9/hook",
                "secret": "a matrix secret",
            }
        ),
    ),
    Row("GET", "/api/v1/notifications/{rule_id}", on_objects("admin"), RULE),
    Row(
        "PATCH",
        "/api/v1/notifications/{rule_id}",
        on_objects("admin"),
        RULE,
        json(lambda o: {"name": f"renamed {next(_serial)}"}),
        fresh=True,
    ),
    Row("GET", "/api/v1/notifications/{rule_id}/deliveries", on_objects("admin"), RULE),
    Row("DELETE", "/api/v1/notifications/{rule_id}", on_objects("admin", 204), RULE, fresh=True),
    # saved queries: viewers read, operators save, change, pin and delete
    Row("GET", "/api/v1/queries", collection("viewer")),
    Row(
        "POST",
        "/api/v1/queries",
        collection("operator", 201),
        send=json(lambda o: {"name": f"ssh {next(_serial)}", "kind": "asset", "search": "port:22"}),
    ),
    Row("GET", "/api/v1/queries/{query_id}", on_objects("viewer"), SAVED_QUERY),
    Row("GET", "/api/v1/queries/{query_id}/counts", on_objects("viewer"), SAVED_QUERY),
    Row(
        "PATCH",
        "/api/v1/queries/{query_id}",
        on_objects("operator"),
        SAVED_QUERY,
        json(lambda o: {"threshold": 5}),
    ),
    Row("POST", "/api/v1/queries/{query_id}/pin", on_objects("operator"), SAVED_QUERY),
    Row("POST", "/api/v1/queries/{query_id}/unpin", on_objects("operator"), SAVED_QUERY),
    Row(
        "DELETE",
        "/api/v1/queries/{query_id}",
        on_objects("operator", 204),
        SAVED_QUERY,
        fresh=True,
    ),
    # open to everyone
    Row(
        "POST",
        "/api/v1/auth/login",
        public(),
        send=json(lambda o: {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
    ),
    Row("GET", "/api/v1/openapi.json", public()),
    Row("GET", "/api/v1/docs", public()),
    Row("GET", "/docs/oauth2-redirect", public()),
    Row("GET", "/healthz", public()),
]


@dataclass
class World:
    """The console, a credential for every caller, and makers of objects to aim at."""

    console: ConsoleUnderTest
    callers: dict[str, Api]
    enrollment_token: str
    protocol_site: int
    shared: Objects = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        path: Path = self.console.client.app.state.console.settings.data_dir  # type: ignore[attr-defined]
        return path

    def objects(self, row: Row) -> Objects:
        kinds = set(row.aim.values())
        if row.fresh:
            return {kind: self.make(kind) for kind in kinds}
        for kind in kinds - set(self.shared):
            self.shared[kind] = self.make(kind)
        return {kind: self.shared[kind] for kind in kinds}

    def _created(self, response: httpx2.Response) -> dict[str, Any]:
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def make(self, kind: str) -> dict[str, Any]:
        admin = self.console.admin
        n = next(_serial)
        match kind:
            case "task":
                return self._created(
                    admin.post("/api/v1/tasks", json={"name": f"t{n}", "start_time": FUTURE})
                )
            case "template" | "paused_template":
                template = self._created(
                    admin.post(
                        "/api/v1/tasks",
                        json={"name": f"nightly {n}", "recur": NIGHTLY},
                    )
                )
                if kind == "paused_template":
                    paused = admin.post(f"/api/v1/tasks/{template['id']}/pause")
                    assert paused.status_code == 200, paused.text
                return template
            case "processed":
                with self.console.db.read() as conn:
                    site_id = accounts.default_site_id(conn, self.console.organization_id)
                assert site_id is not None
                place = Place(self.console.organization_id, site_id)
                task_id = queue_hosts(
                    self.console.db, self.data_dir, place, [host(f"127.0.0.{n % 250 + 1}")]
                )
                process_all(self.console.db, self.data_dir)  # other rows queue work too
                task = admin.get(f"/api/v1/tasks/{task_id}").json()
                assert task["status"] == "processed", task
                return task
            case "asset":
                if "processed" not in self.shared:
                    self.shared["processed"] = self.make("processed")
                return {"id": admin.get("/api/v1/assets").json()["items"][0]["id"]}
            case "report":
                return {"id": "overview"}
            case "site":
                return self._created(
                    admin.post("/api/v1/sites", json={"name": f"s{n}", "scope": "127.0.0.1"})
                )
            case "zone":
                return self._created(admin.post("/api/v1/hosted-zones", json={"name": f"z{n}"}))
            case "credential":
                return self._created(
                    admin.post(
                        "/api/v1/credentials",
                        json={
                            "name": f"c{n}",
                            "kind": "ldap",
                            "fields": {"bind_dn": "cn=svc,dc=lab", "password": "s3cret"},
                        },
                    )
                )
            case "notification_rule":
                return self._created(
                    admin.post(
                        "/api/v1/notifications",
                        json={
                            "name": f"n{n}",
                            "trigger": "new_assets",
                            "channel": "webhook",
                            "target": "http://127.0.0.1:9/hook",
                            "secret": "s3cret",
                        },
                    )
                )
            case "saved_query":
                return self._created(
                    admin.post(
                        "/api/v1/queries",
                        json={"name": f"q{n}", "kind": "task", "search": "status:canceled"},
                    )
                )
            case "enrollment_token":
                return self._created(
                    admin.post("/api/v1/enrollment-tokens", json={"name": f"e{n}"})
                )
            case "explorer":
                return self.enroll(self.enrollment_token)
            case "launched" | "stopping":
                explorer = self.enroll(self.enrollment_token)
                task = self._created(
                    admin.post(
                        "/api/v1/tasks",
                        json={
                            "name": f"scan {n}",
                            "site_id": self.protocol_site,
                            "explorer_id": explorer["id"],
                            "params": {"targets": "127.0.0.1"},
                        },
                    )
                )
                polled = Api(self.console.client, explorer["secret"]).post(
                    "/api/v1/explorer/poll", json={**HOST, "wait": 0}
                )
                assignment = polled.json()["task"]
                assert assignment is not None, polled.text
                assert assignment["id"] == task["id"]
                if kind == "stopping":
                    stop = admin.post(f"/api/v1/tasks/{task['id']}/stop")
                    assert stop.json()["status"] == "stopping", stop.text
                return {**assignment, "secret": explorer["secret"]}
        raise AssertionError(f"no maker for {kind!r}")

    def enroll(self, token: str) -> dict[str, Any]:
        enrolled = self._created(
            Api(self.console.client, token).post(
                "/api/v1/explorer/enroll", json={**HOST, "name": f"probe {next(_serial)}"}
            )
        )
        return {"id": enrolled["explorer_id"], "secret": enrolled["secret"]}

    def caller(self, name: str, objects: Objects) -> Api:
        """The caller's credential; the explorer is the one its task was launched on."""
        for launched in ("launched", "stopping"):
            if name == "explorer" and launched in objects:
                return Api(self.console.client, objects[launched]["secret"])
        return self.callers[name]


def build_world(console: ConsoleUnderTest) -> World:
    admin = console.admin
    protocol_site = admin.post(
        "/api/v1/sites", json={"name": "explorer protocol", "scope": "127.0.0.1"}
    ).json()["id"]
    # Explorers enrolled for the protocol rows serve only this site, where every task is
    # pinned to its explorer: they never pick up another row's scans.
    enroller = admin.post(
        "/api/v1/enrollment-tokens", json={"name": "enroller", "site_id": protocol_site}
    ).json()["token"]
    _, outsider = console.other_organization()
    stranger_token = outsider.post("/api/v1/enrollment-tokens", json={"name": "stranger"})
    world = World(console, {}, enroller, protocol_site)
    with console.db.write() as conn:
        superuser = accounts.create_user(
            conn, "superuser@example.test", password=None, is_superuser=True
        )
        accounts.set_membership(
            conn, console.organization_id, superuser["id"], accounts.Role.VIEWER
        )
        _, superuser_token = accounts.create_token(
            conn, user_id=superuser["id"], organization_id=console.organization_id, name="su"
        )
    world.callers = {
        "anonymous": console.anonymous(),
        **{role: console.as_role(role) for role in MEMBERS},
        "superuser": Api(console.client, superuser_token),
        "outsider": outsider,
        "explorer": Api(console.client, world.enroll(enroller)["secret"]),
        "stranger_explorer": Api(
            console.client, world.enroll(stranger_token.json()["token"])["secret"]
        ),
        "enroller": Api(console.client, enroller),
    }
    return world


@pytest.fixture(scope="module")
def world(shared_console: ConsoleUnderTest) -> World:
    return build_world(shared_console)


def call(world: World, row: Row, caller: str) -> httpx2.Response:
    objects = world.objects(row)
    path = row.path.format(**{name: objects[kind]["id"] for name, kind in row.aim.items()})
    kwargs = row.send(objects) if row.send is not None else {}
    return world.caller(caller, objects).request(row.method, path, **kwargs)


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) of every route of the app; a mount of static files is a GET."""
    found = set()
    for route in iter_route_contexts(app.routes):
        path = route.path_format
        assert path is not None
        if isinstance(route.original_route, Mount):
            found.add(("GET", f"{path.rstrip('/')}/{{path}}" if "{" not in path else path))
            continue
        found |= {(method, path) for method in route.methods or () if method != "HEAD"}
    return found


def test_every_route_of_the_app_has_a_row(shared_console: ConsoleUnderTest) -> None:
    routes = app_routes(shared_console.client.app)  # type: ignore[arg-type]
    covered = {(row.method, row.path) for row in ROWS}
    covered |= {(row.method, row.path) for row in test_api_account_permissions.ROWS}
    covered |= {(row.method, row.path) for row in test_web_permissions.ROWS}
    missing = sorted(f"{method} {path}" for method, path in routes - covered)
    assert not missing, f"routes without a row in a permission matrix: {', '.join(missing)}"
    unknown = sorted(f"{method} {path}" for method, path in covered - routes)
    assert not unknown, f"rows for routes the app does not have: {', '.join(unknown)}"
    api = {(method, path) for method, path in routes if path.startswith("/api/v1/")}
    assert len(api) > 70  # the enumeration sees the included routers


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_each_caller_gets_exactly_what_the_row_says(world: World, row: Row) -> None:
    answers = {}
    for caller in CALLERS:
        response = call(world, row, caller)
        answers[caller] = response.status_code
        if response.status_code >= 400:
            error = response.json()["error"]
            assert error["code"] in REFUSALS[response.status_code], (caller, response.text)
            assert error["message"], (caller, response.text)
    assert answers == row.expected


def test_organizations_are_for_superusers_only(world: World) -> None:
    console = world.console
    assert console.admin.get("/api/v1/organizations").status_code == 200
    for role in (*MEMBERS, "superuser"):
        response = world.callers[role].get("/api/v1/organizations")
        assert response.status_code == (200 if role == "superuser" else 403)
    created = console.admin.post(
        "/api/v1/organizations", json={"name": "Branch office", "join": True}
    )
    assert created.status_code == 201
    names = [o["name"] for o in console.admin.get("/api/v1/organizations").json()]
    assert "Branch office" in names


def test_listings_never_show_another_organizations_rows(world: World) -> None:
    console = world.console
    other_org, other_admin = console.other_organization()
    other_admin.post("/api/v1/tasks", json={"name": "theirs", "start_time": FUTURE})
    other_admin.post("/api/v1/hosted-zones", json={"name": "their zone"})
    mine = world.make("task")
    for kind in ("zone", "site"):
        world.make(kind)
    other_admin.post(
        "/api/v1/credentials",
        json={"name": "their directory", "kind": "dns", "fields": {}},
    )
    world.make("credential")
    for path in (
        "/api/v1/tasks",
        "/api/v1/sites",
        "/api/v1/hosted-zones",
        "/api/v1/explorers",
        "/api/v1/credentials",
    ):
        body = console.admin.get(path).json()
        rows = body["items"] if isinstance(body, dict) else body
        assert rows, path
        assert {row["organization_id"] for row in rows} == {console.organization_id}, path
        theirs = other_admin.get(path).json()
        rows = theirs["items"] if isinstance(theirs, dict) else theirs
        assert {row["organization_id"] for row in rows} == {other_org}, path
    assert console.admin.get(f"/api/v1/tasks/{mine['id']}").status_code == 200
    assert other_admin.get(f"/api/v1/tasks/{mine['id']}").status_code == 404
