"""Every page and form of the web console, every kind of caller: who may do what.

`test_api_permissions.test_every_route_of_the_app_has_a_row` fails for a page without a row
here. The callers: no one (anonymous); viewer, operator and admin members of the console's
organization; a superuser who is a viewer there; an admin of another organization
(outsider: this organization's objects are not found, its own pages are its own); and a
request that carries an admin's API token but no session (bearer: pages take only the
session cookie). Each call is a fresh browser with a fresh session of the caller's account,
so a row that ends sessions (logging out, switching organization, changing the password)
leaves the next call alone. Forms carry the session's CSRF token.

`login` stands for a redirect to the login page; other redirects are their status (303).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from surveyor.console.web.session import LOGIN_CSRF_COOKIE, SESSION_COOKIE, csrf_token_for
from surveyor.store import accounts
from surveyor.store.accounts import Role
from tests.support.asgi_client import InProcessClient
from tests.support.console import ConsoleUnderTest
from tests.support.inventory_data import Place, encode, host, process_all, queue_hosts, records

LOGIN = "login"
FUTURE = "2099-01-01T00:00:00Z"
NIGHTLY = {"frequency": "daily", "time": "02:30", "timezone": "UTC"}
PASSWORD = "a caller's password"
NEW_PASSWORD = "a caller's new password"
CALLERS = ("anonymous", "viewer", "operator", "admin", "superuser", "outsider", "bearer")
MEMBERS = ("viewer", "operator", "admin")
RANK = {"viewer": 0, "operator": 1, "admin": 2}
#: Stands in for the caller's own objects when there is no caller.
NOBODYS = 999_999
_serial = itertools.count(1)

Outcome = int | str
Expected = dict[str, Outcome]


def page(needs: str, ok: int, *, outsider: Outcome) -> Expected:
    expected: Expected = {"anonymous": LOGIN, "bearer": LOGIN}
    for role in MEMBERS:
        expected[role] = ok if RANK[role] >= RANK[needs] else 403
    expected["superuser"] = expected["viewer"]
    expected["outsider"] = outsider
    return expected


def on_objects(needs: str, ok: int = 200) -> Expected:
    """A page or form on this organization's objects: another organization's admin gets 404."""
    return page(needs, ok, outsider=404)


def own(needs: str, ok: int = 200) -> Expected:
    """A page or form of the caller's own organization (or own objects)."""
    return page(needs, ok, outsider=ok)


def nobody(status: int) -> Expected:
    """Every signed-in caller gets `status` (someone else's objects)."""
    return page("viewer", status, outsider=status)


def public(ok: int) -> Expected:
    return dict.fromkeys(CALLERS, ok)


Objects = dict[str, Any]
Form = Callable[[Objects], dict[str, Any]]


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # the app's own path template
    expected: Expected
    aim: dict[str, str] = field(default_factory=dict)  # path parameter -> kind of object
    form: Form | None = None  # the form's fields (POST; the CSRF token is added)
    fixed: dict[str, str] = field(default_factory=dict)  # path parameters that are no objects
    fresh: bool = False  # fresh objects for each call; else shared ones
    upload: bytes | None = None  # a file sent as the form's `file` (multipart)
    name: str = ""

    def __str__(self) -> str:
        return self.name or f"{self.method} {self.path}"


def fields(**values: Any) -> Form:
    return lambda objects: dict(values)


TASK = {"task_id": "task"}
ACTION = "/tasks/{task_id}/{action}"
ZONE = {"zone_id": "zone"}
CREDENTIAL = {"credential_id": "credential"}
RULE = {"rule_id": "notification_rule"}
MEMBER = {"user_id": "member"}
QUERY = {"query_id": "saved_query"}


def action(name: str, kind: str, expected: Expected | None = None) -> Row:
    return Row(
        "POST",
        ACTION,
        expected or on_objects("operator", 303),
        {"task_id": kind},
        fixed={"action": name},
        fresh=True,
        name=f"POST /tasks/{{{kind}}}/{name}",
    )


ROWS = [
    Row("GET", "/", public(303)),
    Row(
        "GET",
        "/login",
        {
            "anonymous": 200,
            "bearer": 200,
            **dict.fromkeys(("outsider", "superuser", *MEMBERS), 303),
        },
    ),
    Row(
        "POST",
        "/login",
        public(303),
        form=fields(email="web-login@example.test", password=PASSWORD, csrf_token="same"),
    ),
    Row("POST", "/logout", own("viewer", 303)),
    Row("GET", "/account", own("viewer")),
    Row(
        "POST",
        "/account/invitations/{invitation_id}/accept",
        own("viewer", 303),
        {"invitation_id": "invitation_to_caller"},
        fresh=True,
        name="accept an invitation to you",
    ),
    Row(
        "POST",
        "/account/invitations/{invitation_id}/accept",
        nobody(404),
        {"invitation_id": "invitation"},
        fresh=True,
        name="accept someone else's invitation",
    ),
    Row(
        "POST",
        "/account/invitations/{invitation_id}/decline",
        own("viewer", 303),
        {"invitation_id": "invitation_to_caller"},
        fresh=True,
        name="decline an invitation to you",
    ),
    Row(
        "POST",
        "/account/invitations/{invitation_id}/decline",
        nobody(404),
        {"invitation_id": "invitation"},
        fresh=True,
        name="decline someone else's invitation",
    ),
    Row(
        "POST",
        "/account/organization",
        page("viewer", 303, outsider=403),
        form=lambda o: {"organization_id": o["elsewhere"]},
    ),
    Row(
        "POST",
        "/account/password",
        own("viewer"),
        form=fields(
            current_password=PASSWORD,
            new_password=NEW_PASSWORD,
            new_password_again=NEW_PASSWORD,
        ),
    ),
    # tasks
    Row("GET", "/tasks", own("viewer")),
    Row("GET", "/tasks/counts", own("viewer")),
    Row("GET", "/tasks/new", own("operator")),
    Row(
        "POST",
        "/tasks/new",
        own("operator", 303),
        form=fields(name="web scan", targets="127.0.0.1", ports="default", when="now"),
    ),
    Row("GET", "/imports", own("operator")),
    Row("GET", "/imports/{task_id}/state", on_objects("viewer"), {"task_id": "processed"}),
    Row(
        "POST",
        "/imports",
        own("operator", 303),
        form=fields(name="web import"),
        upload=encode(records([host("127.0.0.9")])),
    ),
    Row(
        "POST",
        "/tasks/new/preview",
        own("viewer"),
        form=fields(frequency="daily", time="03:00", timezone="UTC"),
    ),
    action("stop", "task"),
    action("pause", "template"),
    action("resume", "paused_template"),
    action("run-now", "template"),
    action("reprocess", "processed"),
    action("hide", "task"),
    action("show", "hidden_task"),
    action("remove", "task"),
    action("no-such-action", "task", nobody(404)),
    Row("GET", "/tasks/{task_id}/data", on_objects("viewer"), {"task_id": "processed"}),
    Row("GET", "/tasks/{task_id}/changes", on_objects("viewer"), {"task_id": "processed"}),
    # explorers, zones, sites, assets
    Row("GET", "/explorers", own("viewer")),
    Row(
        "POST",
        "/explorers/enrollment-tokens",
        own("admin"),
        form=lambda o: {"name": f"lab {next(_serial)}"},
    ),
    Row("GET", "/hosted-zones", own("viewer")),
    Row(
        "POST",
        "/hosted-zones",
        own("admin", 303),
        form=lambda o: {"name": f"zone {next(_serial)}"},
    ),
    Row("GET", "/hosted-zones/{zone_id}", on_objects("viewer"), ZONE),
    Row(
        "POST",
        "/hosted-zones/{zone_id}",
        on_objects("admin", 303),
        ZONE,
        form=lambda o: {"name": f"edited {next(_serial)}", "max_concurrent": "2"},
        fresh=True,
    ),
    Row("GET", "/hosted-zones/{zone_id}/delete", on_objects("admin"), ZONE),
    Row("POST", "/hosted-zones/{zone_id}/delete", on_objects("admin", 303), ZONE, fresh=True),
    Row("GET", "/sites", own("viewer")),
    Row("GET", "/dashboard", own("viewer")),
    # saved searches, pinned to the Dashboard
    Row("GET", "/queries", own("viewer")),
    Row(
        "POST",
        "/queries",
        own("operator", 303),
        form=lambda o: {"name": f"search {next(_serial)}", "kind": "asset", "search": "port:22"},
    ),
    Row("GET", "/queries/{query_id}", on_objects("viewer"), QUERY),
    Row(
        "POST",
        "/queries/{query_id}",
        on_objects("operator", 303),
        QUERY,
        form=lambda o: {"name": f"renamed {next(_serial)}", "threshold": "5"},
        fresh=True,
    ),
    Row("POST", "/queries/{query_id}/pin", on_objects("operator", 303), QUERY, fresh=True),
    Row(
        "POST",
        "/queries/{query_id}/unpin",
        on_objects("operator", 303),
        {"query_id": "pinned_query"},
        fresh=True,
    ),
    Row("GET", "/queries/{query_id}/delete", on_objects("operator"), QUERY),
    Row("POST", "/queries/{query_id}/delete", on_objects("operator", 303), QUERY, fresh=True),
    Row("GET", "/assets", own("viewer")),
    Row("GET", "/assets/export", own("viewer")),
    Row("GET", "/assets/{asset_id}", on_objects("viewer"), {"asset_id": "asset"}),
    # reports: every organization has the same three, so another's admin sees its own
    Row("GET", "/reports", own("viewer")),
    Row("GET", "/reports/{report_id}", own("viewer"), fixed={"report_id": "overview"}),
    Row(
        "POST",
        "/reports/{report_id}/refresh",
        own("operator", 303),
        form=fields(),
        fixed={"report_id": "overview"},
    ),
    # API tokens
    Row("GET", "/tokens", own("viewer")),
    Row("POST", "/tokens", own("viewer"), form=fields(name="ci")),
    Row(
        "GET",
        "/tokens/{token_id}/revoke",
        own("viewer"),
        {"token_id": "token_of_caller"},
        fresh=True,
        name="confirm revoking your token",
    ),
    Row(
        "GET",
        "/tokens/{token_id}/revoke",
        nobody(404),
        {"token_id": "token"},
        fresh=True,
        name="confirm revoking someone else's token",
    ),
    Row(
        "POST",
        "/tokens/{token_id}/revoke",
        own("viewer", 303),
        {"token_id": "token_of_caller"},
        fresh=True,
        name="revoke your token",
    ),
    Row(
        "POST",
        "/tokens/{token_id}/revoke",
        nobody(404),
        {"token_id": "token"},
        fresh=True,
        name="revoke someone else's token",
    ),
    # members and the audit trail
    Row("GET", "/users", own("admin")),
    Row(
        "POST",
        "/users",
        own("admin"),
        form=lambda o: {"email": f"new-{next(_serial)}@example.test", "role": "viewer"},
    ),
    Row(
        "POST",
        "/users/{user_id}/role",
        on_objects("admin", 303),
        MEMBER,
        fields(role="operator"),
        fresh=True,
    ),
    Row("GET", "/users/{user_id}/remove", on_objects("admin"), MEMBER),
    Row("POST", "/users/{user_id}/remove", on_objects("admin", 303), MEMBER, fresh=True),
    Row(
        "POST",
        "/users/invitations/{invitation_id}/revoke",
        on_objects("admin", 303),
        {"invitation_id": "invitation"},
        fresh=True,
    ),
    Row("GET", "/audit", own("admin")),
    # settings
    Row("GET", "/settings/retention", own("admin")),
    Row(
        "POST",
        "/settings/retention",
        own("admin", 303),
        form=lambda o: {"task_data_days": "90", "stale_after_days": "30"},
    ),
    # credentials
    Row("GET", "/credentials", own("admin")),
    Row(
        "POST",
        "/credentials",
        own("admin", 303),
        form=lambda o: {
            "name": f"directory {next(_serial)}",
            "kind": "ldap",
            "ldap-bind_dn": "cn=svc,dc=lab",
            "ldap-password": "a page's secret",
        },
    ),
    Row("GET", "/credentials/{credential_id}", on_objects("admin"), CREDENTIAL),
    Row(
        "POST",
        "/credentials/{credential_id}",
        on_objects("admin", 303),
        CREDENTIAL,
        form=lambda o: {"name": f"renamed {next(_serial)}", "ldap-bind_dn": "cn=other,dc=lab"},
        fresh=True,
    ),
    Row(
        "POST",
        "/credentials/{credential_id}/verify",
        on_objects("admin"),
        CREDENTIAL,
        form=fields(server="127.0.0.1:9", options='{"base_dn": "dc=lab"}'),
    ),
    Row("GET", "/credentials/{credential_id}/delete", on_objects("admin"), CREDENTIAL),
    Row(
        "POST",
        "/credentials/{credential_id}/delete",
        on_objects("admin", 303),
        CREDENTIAL,
        fresh=True,
    ),
    # notifications
    Row("GET", "/notifications", own("admin")),
    Row(
        "POST",
        "/notifications",
        own("admin", 303),
        form=lambda o: {
            "name": f"hook {next(_serial)}",
            "trigger": "task_canceled",
            "channel": "webhook",
            "target": "http://127.0.0.1:9/hook",
            "secret": "a page's secret",
        },
    ),
    Row("GET", "/notifications/{rule_id}", on_objects("admin"), RULE),
    Row(
        "POST",
        "/notifications/{rule_id}",
        on_objects("admin", 303),
        RULE,
        form=lambda o: {"name": f"renamed {next(_serial)}", "target": "http://127.0.0.1:9/b"},
        fresh=True,
    ),
    Row("GET", "/notifications/{rule_id}/delete", on_objects("admin"), RULE),
    Row("POST", "/notifications/{rule_id}/delete", on_objects("admin", 303), RULE, fresh=True),
    Row("GET", "/static/{path}", public(200), fixed={"path": "surveyor.css"}),
]


@dataclass
class World:
    """The console, the callers' accounts, and makers of objects to aim at."""

    console: ConsoleUnderTest
    accounts: dict[str, tuple[int, int]]  # caller -> (user id, organization id)
    bearer_token: str
    elsewhere: int
    shared: Objects = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        path: Path = self.console.client.app.state.console.settings.data_dir  # type: ignore[attr-defined]
        return path

    def objects(self, row: Row, caller: str) -> Objects:
        objects: Objects = {"elsewhere": self.elsewhere}
        for kind in set(row.aim.values()):
            if row.fresh or kind.endswith("_of_caller") or kind.endswith("_to_caller"):
                objects[kind] = self.make(kind, caller)
            else:
                if kind not in self.shared:
                    self.shared[kind] = self.make(kind, caller)
                objects[kind] = self.shared[kind]
        return objects

    def _created(self, response: httpx2.Response) -> int:
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def make(self, kind: str, caller: str) -> int:
        admin = self.console.admin
        n = next(_serial)
        here = self.console.organization_id
        match kind:
            case "task" | "hidden_task":
                task = self._created(
                    admin.post("/api/v1/tasks", json={"name": f"t{n}", "start_time": FUTURE})
                )
                if kind == "hidden_task":
                    assert admin.post(f"/api/v1/tasks/{task}/hide").status_code == 200
                return task
            case "template" | "paused_template":
                template = self._created(
                    admin.post("/api/v1/tasks", json={"name": f"nightly {n}", "recur": NIGHTLY})
                )
                if kind == "paused_template":
                    assert admin.post(f"/api/v1/tasks/{template}/pause").status_code == 200
                return template
            case "processed":
                with self.console.db.read() as conn:
                    site_id = accounts.default_site_id(conn, here)
                assert site_id is not None
                task_id = queue_hosts(
                    self.console.db,
                    self.data_dir,
                    Place(here, site_id),
                    [host(f"127.0.0.{n % 250 + 1}")],
                )
                process_all(self.console.db, self.data_dir)
                assert admin.get(f"/api/v1/tasks/{task_id}").json()["status"] == "processed"
                return task_id
            case "asset":
                if "processed" not in self.shared:
                    self.shared["processed"] = self.make("processed", caller)
                return int(admin.get("/api/v1/assets").json()["items"][0]["id"])
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
            case "saved_query" | "pinned_query":
                return self._created(
                    admin.post(
                        "/api/v1/queries",
                        json={
                            "name": f"q{n}",
                            "kind": "asset",
                            "search": "alive:true",
                            "pinned": kind == "pinned_query",
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
        with self.console.db.write() as conn:
            match kind:
                case "member":
                    user = accounts.create_user(conn, f"member-{n}@example.test", password=None)
                    accounts.set_membership(conn, here, user["id"], Role.VIEWER)
                    return int(user["id"])
                case "invitation":
                    invitee = accounts.create_user(conn, f"invitee-{n}@example.test", password=None)
                    return accounts.create_invitation(
                        conn, here, invitee["id"], Role.OPERATOR, invited_by="someone@example.test"
                    ).id
                case "invitation_to_caller":
                    if caller not in self.accounts:
                        return NOBODYS
                    inviting = accounts.create_organization(conn, f"Inviting {n}")
                    return accounts.create_invitation(
                        conn,
                        inviting["id"],
                        self.accounts[caller][0],
                        Role.VIEWER,
                        invited_by="someone@example.test",
                    ).id
                case "token" | "token_of_caller":
                    if kind == "token_of_caller" and caller not in self.accounts:
                        return NOBODYS
                    user_id, organization_id = (
                        self.accounts[caller]
                        if kind == "token_of_caller"
                        else self.accounts["bearer"]
                    )
                    token, _ = accounts.create_token(
                        conn, user_id=user_id, organization_id=organization_id, name=f"token {n}"
                    )
                    return int(token["id"])
        raise AssertionError(f"no maker for {kind!r}")

    def browser(self, caller: str) -> tuple[TestClient, str]:
        """A fresh browser for the caller, with a fresh session, and that session's CSRF
        token (a made-up one when there is no session)."""
        client = InProcessClient.beside(self.console.client, follow_redirects=False)
        if caller == "bearer":
            client.headers["Authorization"] = f"Bearer {self.bearer_token}"
        if caller not in self.accounts or caller == "bearer":
            return client, "no session, no token"
        user_id, organization_id = self.accounts[caller]
        with self.console.db.write() as conn:
            _, session = accounts.create_token(
                conn,
                user_id=user_id,
                organization_id=organization_id,
                name="web session",
                kind="session",
                expires_at=datetime.now(UTC) + accounts.SESSION_LIFETIME,
            )
        client.cookies.set(SESSION_COOKIE, session)
        return client, csrf_token_for(session)


def build_world(console: ConsoleUnderTest) -> World:
    other_org, _ = console.other_organization()
    here = console.organization_id
    homes = {
        "viewer": (here, Role.VIEWER, False),
        "operator": (here, Role.OPERATOR, False),
        "admin": (here, Role.ADMIN, False),
        "superuser": (here, Role.VIEWER, True),
        "outsider": (other_org, Role.ADMIN, False),
        "bearer": (here, Role.ADMIN, False),
    }
    found: dict[str, tuple[int, int]] = {}
    with console.db.write() as conn:
        elsewhere = accounts.create_organization(conn, "Elsewhere")["id"]
        for caller, (organization_id, role, superuser) in homes.items():
            user = accounts.create_user(
                conn, f"web-{caller}@example.test", password=PASSWORD, is_superuser=superuser
            )
            accounts.set_membership(conn, organization_id, user["id"], role)
            if caller != "outsider":
                accounts.set_membership(conn, elsewhere, user["id"], Role.VIEWER)
            found[caller] = (int(user["id"]), organization_id)
        login = accounts.create_user(conn, "web-login@example.test", password=PASSWORD)
        accounts.set_membership(conn, here, login["id"], Role.VIEWER)
        _, bearer = accounts.create_token(
            conn, user_id=found["bearer"][0], organization_id=here, name="api"
        )
    return World(console, found, bearer, elsewhere)


@pytest.fixture(scope="module")
def world(shared_console: ConsoleUnderTest) -> World:
    return build_world(shared_console)


def outcome(response: httpx2.Response) -> Outcome:
    location = response.headers.get("location", "")
    if response.status_code == 303 and location.startswith("/login?next="):
        return LOGIN
    return response.status_code


def call(world: World, row: Row, caller: str) -> httpx2.Response:
    objects = world.objects(row, caller)
    path = row.path.format(**{name: objects[kind] for name, kind in row.aim.items()}, **row.fixed)
    client, csrf = world.browser(caller)
    if row.method == "GET":
        return client.get(path)
    form = {"csrf_token": csrf, **(row.form(objects) if row.form is not None else {})}
    if path == "/login":
        client.cookies.set(LOGIN_CSRF_COOKIE, form["csrf_token"])
    if row.upload is not None:
        return client.post(path, data=form, files={"file": ("hosts.jsonl.gz", row.upload)})
    return client.post(path, data=form)


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_each_caller_gets_exactly_what_the_row_says(world: World, row: Row) -> None:
    answers = {caller: outcome(call(world, row, caller)) for caller in CALLERS}
    assert answers == row.expected


def test_a_form_without_the_sessions_csrf_token_is_refused(world: World) -> None:
    client, _ = world.browser("admin")
    refused = client.post("/hosted-zones", data={"csrf_token": "forged", "name": "forged"})
    assert refused.status_code == 403
    assert "Form expired" in refused.text
    names = {zone["name"] for zone in world.console.admin.get("/api/v1/hosted-zones").json()}
    assert "forged" not in names
