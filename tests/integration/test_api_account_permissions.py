"""Every account, membership, invitation, organization and token route, for every kind of
caller, on objects of their own organization and of another one (SPEC §13).

The callers: viewer, operator and admin members of organization "here"; a superuser who is an
admin of "here" (superuser-member); a superuser whose only membership is a third
organization (superuser-not-member); and no one (anonymous). The objects are a member, a
pending invitation and an invitation addressed to the caller, in "here" and in "there" (an
organization none of the callers belongs to). The API's routes are enumerated from its
OpenAPI document: a route without a row here fails the suite.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from surveyor.store import accounts
from surveyor.store.accounts import Role
from tests.support.console import Api, ConsoleUnderTest

PREFIXES = (
    "/api/v1/users",
    "/api/v1/invitations",
    "/api/v1/accounts",
    "/api/v1/organizations",
    "/api/v1/tokens",
)
CALLERS = ("anonymous", "viewer", "operator", "admin", "superuser_not_member", "superuser_member")
PASSWORD = "the caller's password"
NEW_PASSWORD = "the caller's new password"
_serial = itertools.count()


@dataclass
class World:
    """The two organizations, the callers' sessions, and a third organization."""

    console: ConsoleUnderTest
    organizations: dict[str, int]
    callers: dict[str, Api]
    caller_ids: dict[str, int]


@dataclass
class Objects:
    """Fresh targets for one call: in the target organization, and for the caller."""

    organization_id: int
    member_id: int
    member_email: str
    invitation_id: int
    to_caller_id: int
    someone_elses_token_id: int
    own_token_id: int
    serial: int = field(default_factory=lambda: next(_serial))


def _account(conn: Any, email: str, *, password: str | None = None, superuser: bool = False) -> int:
    user = accounts.create_user(conn, email, password=password, is_superuser=superuser)
    return int(user["id"])


def build_world(console: ConsoleUnderTest, *, with_passwords: bool) -> World:
    """Callers and organizations of their own for one test: the console is shared by the
    module, so every name carries a serial of its own."""
    password = PASSWORD if with_passwords else None
    here = console.organization_id
    serial = next(_serial)
    with console.db.write() as conn:
        there = accounts.create_organization(conn, f"There {serial}")["id"]
        elsewhere = accounts.create_organization(conn, f"Elsewhere {serial}")["id"]
        homes = {
            "viewer": (here, Role.VIEWER, False),
            "operator": (here, Role.OPERATOR, False),
            "admin": (here, Role.ADMIN, False),
            "superuser_member": (here, Role.ADMIN, True),
            "superuser_not_member": (elsewhere, Role.ADMIN, True),
        }
        callers: dict[str, Api] = {"anonymous": console.anonymous()}
        ids: dict[str, int] = {}
        for name, (organization_id, role, superuser) in homes.items():
            email = f"caller-{name}-{serial}@example.test"
            ids[name] = _account(conn, email, password=password, superuser=superuser)
            accounts.set_membership(conn, organization_id, ids[name], role)
            _, token = accounts.create_token(
                conn, user_id=ids[name], organization_id=organization_id, name="session"
            )
            callers[name] = Api(console.client, token, email=email)
    return World(console, {"here": here, "there": there}, callers, ids)


#: Stands in for the caller's own objects when there is no caller (anonymous).
NOBODYS = 999_999


def fresh_objects(world: World, where: str, caller: str) -> Objects:
    """A member, a member's token and a pending invitation in the target organization, and
    an invitation from "there" and a spare token for the caller."""
    serial = next(_serial)
    organization_id = world.organizations[where]
    with world.console.db.write() as conn:
        member_email = f"member-{serial}@example.test"
        member_id = _account(conn, member_email)
        accounts.set_membership(conn, organization_id, member_id, Role.VIEWER)
        member_token, _ = accounts.create_token(
            conn, user_id=member_id, organization_id=organization_id, name="theirs"
        )
        invitee = _account(conn, f"invitee-{serial}@example.test")
        invitation = accounts.create_invitation(
            conn, organization_id, invitee, Role.OPERATOR, invited_by="someone@example.test"
        )
        to_caller = own_token = NOBODYS
        caller_id = world.caller_ids.get(caller)
        if caller_id is not None:
            for earlier in accounts.list_invitations(conn, user_id=caller_id):
                accounts.delete_invitation(conn, earlier.id)
            to_caller = accounts.create_invitation(
                conn,
                world.organizations["there"],
                caller_id,
                Role.VIEWER,
                invited_by="someone@example.test",
            ).id
            home = accounts.first_membership(conn, caller_id)
            assert home is not None
            spare, _ = accounts.create_token(
                conn, user_id=caller_id, organization_id=home, name="spare"
            )
            own_token = spare["id"]
    return Objects(
        organization_id=organization_id,
        member_id=member_id,
        member_email=member_email,
        invitation_id=invitation.id,
        to_caller_id=to_caller,
        someone_elses_token_id=member_token["id"],
        own_token_id=own_token,
        serial=serial,
    )


Expected = dict[str, int]


def expect(
    *, viewer: int, operator: int, admin: int, superuser_not_member: int, superuser_member: int
) -> Expected:
    return {
        "anonymous": 401,
        "viewer": viewer,
        "operator": operator,
        "admin": admin,
        "superuser_not_member": superuser_not_member,
        "superuser_member": superuser_member,
    }


def everyone(status: int) -> Expected:
    return expect(
        viewer=status,
        operator=status,
        admin=status,
        superuser_not_member=status,
        superuser_member=status,
    )


def admins(status: int, *, superuser_not_member: int) -> Expected:
    """Organization admins (a superuser is one only by membership)."""
    return expect(
        viewer=403,
        operator=403,
        admin=status,
        superuser_not_member=superuser_not_member,
        superuser_member=status,
    )


def superusers(status: int) -> Expected:
    return expect(
        viewer=403,
        operator=403,
        admin=403,
        superuser_not_member=status,
        superuser_member=status,
    )


#: An organization admin's PATCH of another account's own fields, in the admin's organization.
ACCOUNT_FIELD_OF_A_MEMBER = expect(
    viewer=403, operator=403, admin=403, superuser_not_member=404, superuser_member=200
)
NOT_THEIRS = admins(404, superuser_not_member=404)

Body = Callable[[Objects], Any]


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    path: str  # the app's own path template
    here: Expected
    there: Expected | None = None  # None: the target organization makes no difference
    body: Body | None = None
    reauthenticates: bool = False  # the callers need passwords

    def __str__(self) -> str:
        return self.name


def _arguments(objects: Objects) -> dict[str, int]:
    return {
        "user_id": objects.member_id,
        "invitation_id": objects.invitation_id,
        "org_id": objects.organization_id,
        "token_id": objects.own_token_id,
    }


ROWS = [
    Row("list members", "GET", "/api/v1/users", admins(200, superuser_not_member=200)),
    Row(
        "add a new account",
        "POST",
        "/api/v1/users",
        admins(201, superuser_not_member=201),
        body=lambda o: {"email": f"new-{o.serial}@example.test", "role": "operator"},
    ),
    Row(
        "invite an account",
        "POST",
        "/api/v1/users",
        admins(409, superuser_not_member=201),
        admins(201, superuser_not_member=201),
        body=lambda o: {"email": o.member_email, "role": "admin"},
    ),
    Row(
        "show a member",
        "GET",
        "/api/v1/users/{user_id}",
        admins(200, superuser_not_member=404),
        NOT_THEIRS,
    ),
    Row(
        "change a member's role",
        "PATCH",
        "/api/v1/users/{user_id}",
        admins(200, superuser_not_member=404),
        NOT_THEIRS,
        body=lambda o: {"role": "operator"},
    ),
    Row(
        "set a member's password",
        "PATCH",
        "/api/v1/users/{user_id}",
        ACCOUNT_FIELD_OF_A_MEMBER,
        NOT_THEIRS,
        body=lambda o: {"password": "set by someone else"},
    ),
    Row(
        "deactivate a member",
        "PATCH",
        "/api/v1/users/{user_id}",
        ACCOUNT_FIELD_OF_A_MEMBER,
        NOT_THEIRS,
        body=lambda o: {"is_active": False},
    ),
    Row(
        "change a member's email",
        "PATCH",
        "/api/v1/users/{user_id}",
        ACCOUNT_FIELD_OF_A_MEMBER,
        NOT_THEIRS,
        body=lambda o: {"email": f"taken-over-{o.serial}@example.test"},
    ),
    Row(
        "rename a member",
        "PATCH",
        "/api/v1/users/{user_id}",
        ACCOUNT_FIELD_OF_A_MEMBER,
        NOT_THEIRS,
        body=lambda o: {"name": "Renamed"},
    ),
    Row(
        "remove a member",
        "DELETE",
        "/api/v1/users/{user_id}",
        admins(204, superuser_not_member=404),
        NOT_THEIRS,
    ),
    Row("show yourself", "GET", "/api/v1/users/me", everyone(200)),
    Row(
        "rename yourself",
        "PATCH",
        "/api/v1/users/me",
        everyone(200),
        body=lambda o: {"name": f"Me {o.serial}"},
    ),
    Row(
        "change your email",
        "PATCH",
        "/api/v1/users/me",
        everyone(200),
        body=lambda o: {"email": f"moved-{o.serial}@example.test", "current_password": PASSWORD},
        reauthenticates=True,
    ),
    Row(
        "change your password",
        "POST",
        "/api/v1/users/me/password",
        everyone(200),
        body=lambda o: {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        reauthenticates=True,
    ),
    Row("your organizations", "GET", "/api/v1/users/me/organizations", everyone(200)),
    Row("your invitations", "GET", "/api/v1/users/me/invitations", everyone(200)),
    Row(
        "accept an invitation to you",
        "POST",
        "/api/v1/users/me/invitations/{invitation_id}/accept",
        everyone(200),
    ),
    Row(
        "decline an invitation to you",
        "POST",
        "/api/v1/users/me/invitations/{invitation_id}/decline",
        everyone(204),
    ),
    Row(
        "accept someone else's invitation",
        "POST",
        "/api/v1/users/me/invitations/{invitation_id}/accept",
        everyone(404),
        everyone(404),
    ),
    Row(
        "decline someone else's invitation",
        "POST",
        "/api/v1/users/me/invitations/{invitation_id}/decline",
        everyone(404),
        everyone(404),
    ),
    Row("list invitations", "GET", "/api/v1/invitations", admins(200, superuser_not_member=200)),
    Row(
        "revoke an invitation",
        "DELETE",
        "/api/v1/invitations/{invitation_id}",
        admins(204, superuser_not_member=404),
        NOT_THEIRS,
    ),
    Row("list accounts", "GET", "/api/v1/accounts", superusers(200)),
    Row("show an account", "GET", "/api/v1/accounts/{user_id}", superusers(200), superusers(200)),
    Row(
        "reset an account's password",
        "PATCH",
        "/api/v1/accounts/{user_id}",
        superusers(200),
        superusers(200),
        body=lambda o: {"password": "reset by a superuser"},
    ),
    Row(
        "deactivate an account",
        "PATCH",
        "/api/v1/accounts/{user_id}",
        superusers(200),
        superusers(200),
        body=lambda o: {"is_active": False},
    ),
    Row(
        "change an account's email",
        "PATCH",
        "/api/v1/accounts/{user_id}",
        superusers(200),
        superusers(200),
        body=lambda o: {"email": f"changed-{o.serial}@example.test"},
    ),
    Row("list organizations", "GET", "/api/v1/organizations", superusers(200)),
    Row(
        "create an organization",
        "POST",
        "/api/v1/organizations",
        superusers(201),
        body=lambda o: {"name": f"Branch {o.serial}", "join": True},
    ),
    Row(
        "rename an organization",
        "PATCH",
        "/api/v1/organizations/{org_id}",
        superusers(200),
        superusers(200),
        body=lambda o: {"name": f"Renamed {o.serial}"},
    ),
    Row(
        "add someone to an organization",
        "POST",
        "/api/v1/organizations/{org_id}/members",
        superusers(201),
        superusers(201),
        body=lambda o: {"email": f"staff-{o.serial}@example.test", "role": "admin"},
    ),
    Row("list your tokens", "GET", "/api/v1/tokens", everyone(200)),
    Row("create a token", "POST", "/api/v1/tokens", everyone(201), body=lambda o: {"name": "ci"}),
    Row("delete your token", "DELETE", "/api/v1/tokens/{token_id}", everyone(204)),
    Row(
        "delete someone else's token",
        "DELETE",
        "/api/v1/tokens/{token_id}",
        everyone(404),
        everyone(404),
    ),
]
#: Rows aimed at the caller's own invitation, and at someone else's token.
OWN_INVITATION = {"accept an invitation to you", "decline an invitation to you"}
SOMEONE_ELSES_TOKEN = "delete someone else's token"


def _path(row: Row, objects: Objects) -> str:
    arguments = _arguments(objects)
    if row.name in OWN_INVITATION:
        arguments["invitation_id"] = objects.to_caller_id
    if row.name == SOMEONE_ELSES_TOKEN:
        arguments["token_id"] = objects.someone_elses_token_id
    return row.path.format(**arguments)


def _call(world: World, row: Row, caller: str, where: str) -> Any:
    objects = fresh_objects(world, where, caller)
    kwargs = {"json": row.body(objects)} if row.body is not None else {}
    return world.callers[caller].request(row.method, _path(row, objects), **kwargs)


def test_every_account_route_has_a_row(shared_console: ConsoleUnderTest) -> None:
    paths = shared_console.anonymous().get("/api/v1/openapi.json").json()["paths"]
    routes = {
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith(PREFIXES)
        for method in operations
    }
    covered = {(row.method, row.path) for row in ROWS}
    assert routes - covered == set(), "routes without a row in the permission matrix"
    assert covered - routes == set(), "rows for routes the app does not have"
    assert len({row.name for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_each_caller_gets_exactly_what_the_row_says(
    shared_console: ConsoleUnderTest, row: Row
) -> None:
    world = build_world(shared_console, with_passwords=row.reauthenticates)
    targets = {"here": row.here} if row.there is None else {"here": row.here, "there": row.there}
    answers = {}
    for where in targets:
        for caller in CALLERS:
            response = _call(world, row, caller, where)
            answers[(where, caller)] = response.status_code
            if response.status_code >= 400:
                error = response.json()["error"]
                assert error["code"], (where, caller, response.text)
                assert error["message"], (where, caller, response.text)
    wanted = {
        (where, caller): status
        for where, expected in targets.items()
        for caller, status in expected.items()
    }
    assert answers == wanted
