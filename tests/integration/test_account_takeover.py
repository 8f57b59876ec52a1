"""An admin of one organization cannot take over an account of another, nor the superuser's.

The attack these tests reproduce: accounts are global, so an admin of organization B added an
existing account of organization A (or the superuser) to B by e-mail, then changed its
password or its active flag through B's user routes, logged into A as that account, or
locked the superuser out everywhere; the only trace was in B's audit trail.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from surveyor.store import accounts
from surveyor.store.accounts import Role
from surveyor.store.schema import audit_events
from tests.support.console import ADMIN_EMAIL, ADMIN_PASSWORD, Api, ConsoleUnderTest

VICTIM_EMAIL = "victim@example.test"
VICTIM_PASSWORD = "the victim's own password"
CHOSEN_BY_ATTACKER = "chosen by the attacker"


def login(console: ConsoleUnderTest, email: str, password: str, **extra: Any) -> Any:
    return console.anonymous().post(
        "/api/v1/auth/login", json={"email": email, "password": password, **extra}
    )


def session(console: ConsoleUnderTest, email: str, password: str) -> Api:
    response = login(console, email, password)
    assert response.status_code == 200, response.text
    return Api(console.client, response.json()["token"], email=email)


def victim_in_home_organization(console: ConsoleUnderTest) -> int:
    with console.db.write() as conn:
        victim = accounts.create_user(conn, VICTIM_EMAIL, password=VICTIM_PASSWORD)
        accounts.set_membership(conn, console.organization_id, victim["id"], Role.OPERATOR)
    return int(victim["id"])


def superuser_id(console: ConsoleUnderTest) -> int:
    with console.db.read() as conn:
        superuser = accounts.find_user_by_email(conn, ADMIN_EMAIL)
    assert superuser is not None
    return int(superuser["id"])


def attempt_takeover(attacker: Api, account_id: int) -> dict[str, int]:
    """Every account field the attack used, through the attacker's organization's routes."""
    attempts = {
        "password": {"password": CHOSEN_BY_ATTACKER},
        "is_active": {"is_active": False},
        "email": {"email": "attacker@example.test"},
    }
    return {
        name: attacker.patch(f"/api/v1/users/{account_id}", json=body).status_code
        for name, body in attempts.items()
    }


def assert_untouched(console: ConsoleUnderTest, email: str, password: str) -> None:
    assert login(console, email, password).status_code == 200
    assert login(console, email, CHOSEN_BY_ATTACKER).status_code == 401
    assert login(console, "attacker@example.test", CHOSEN_BY_ATTACKER).status_code == 401


def test_adding_another_organizations_account_only_invites_it(
    console: ConsoleUnderTest,
) -> None:
    victim_id = victim_in_home_organization(console)
    _, attacker = console.other_organization()
    added = attacker.post("/api/v1/users", json={"email": VICTIM_EMAIL, "role": "viewer"})
    assert added.status_code == 201, added.text
    assert added.json()["outcome"] == "invited"
    assert added.json()["member"] is None
    assert attacker.get(f"/api/v1/users/{victim_id}").status_code == 404
    assert attempt_takeover(attacker, victim_id) == {
        "password": 404,
        "is_active": 404,
        "email": 404,
    }
    assert_untouched(console, VICTIM_EMAIL, VICTIM_PASSWORD)


def test_even_after_the_account_joins_another_organization_its_admin_cannot_take_it_over(
    console: ConsoleUnderTest,
) -> None:
    victim_id = victim_in_home_organization(console)
    other_org, attacker = console.other_organization()
    invitation = attacker.post("/api/v1/users", json={"email": VICTIM_EMAIL}).json()["invitation"]
    victim = session(console, VICTIM_EMAIL, VICTIM_PASSWORD)
    accepted = victim.post(f"/api/v1/users/me/invitations/{invitation['id']}/accept")
    assert accepted.status_code == 200
    assert attacker.get(f"/api/v1/users/{victim_id}").json()["role"] == "viewer"

    assert attempt_takeover(attacker, victim_id) == {
        "password": 403,
        "is_active": 403,
        "email": 403,
    }
    refusal = attacker.patch(f"/api/v1/users/{victim_id}", json={"password": CHOSEN_BY_ATTACKER})
    assert refusal.json()["error"]["message"] == (
        "an organization admin manages memberships and roles, not accounts: only the account "
        "itself or a superuser changes its name, e-mail, password or active flag"
    )
    assert_untouched(console, VICTIM_EMAIL, VICTIM_PASSWORD)
    assert victim.get("/api/v1/users/me").status_code == 200
    home = login(console, VICTIM_EMAIL, VICTIM_PASSWORD, organization_id=console.organization_id)
    assert home.json()["role"] == "operator"
    assert attacker.delete(f"/api/v1/users/{victim_id}").status_code == 204
    there = login(console, VICTIM_EMAIL, VICTIM_PASSWORD, organization_id=other_org)
    assert there.status_code == 403
    assert victim.get("/api/v1/users/me").status_code == 200


def test_an_organization_admin_cannot_take_over_or_lock_out_the_superuser(
    console: ConsoleUnderTest,
) -> None:
    target = superuser_id(console)
    _, attacker = console.other_organization()
    invited = attacker.post("/api/v1/users", json={"email": ADMIN_EMAIL, "role": "viewer"})
    assert invited.json()["outcome"] == "invited"
    assert attempt_takeover(attacker, target) == {"password": 404, "is_active": 404, "email": 404}
    assert_untouched(console, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert console.admin.get("/api/v1/users/me").status_code == 200

    mine = console.admin.get("/api/v1/users/me/invitations").json()
    accepted = console.admin.post(f"/api/v1/users/me/invitations/{mine[0]['id']}/accept")
    assert accepted.status_code == 200
    assert attempt_takeover(attacker, target) == {"password": 403, "is_active": 403, "email": 403}
    assert_untouched(console, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert console.admin.get("/api/v1/users/me").status_code == 200
    assert console.admin.get("/api/v1/organizations").status_code == 200


def test_an_admin_of_the_accounts_own_organization_cannot_change_its_password_either(
    console: ConsoleUnderTest,
) -> None:
    victim_id = victim_in_home_organization(console)
    admin = console.as_role("admin")
    assert attempt_takeover(admin, victim_id) == {"password": 403, "is_active": 403, "email": 403}
    assert_untouched(console, VICTIM_EMAIL, VICTIM_PASSWORD)
    demoted = admin.patch(f"/api/v1/users/{victim_id}", json={"role": "viewer"})
    assert demoted.json()["role"] == "viewer"


def test_a_superuser_who_is_only_a_viewer_of_an_organization_cannot_manage_its_members(
    console: ConsoleUnderTest,
) -> None:
    victim_id = victim_in_home_organization(console)
    with console.db.write() as conn:
        superuser = accounts.create_user(
            conn, "root@example.test", password=None, is_superuser=True
        )
        accounts.set_membership(conn, console.organization_id, superuser["id"], Role.VIEWER)
        _, token = accounts.create_token(
            conn, user_id=superuser["id"], organization_id=console.organization_id, name="t"
        )
    viewer_superuser = Api(console.client, token)
    assert viewer_superuser.get("/api/v1/users").status_code == 403
    promote = viewer_superuser.patch(f"/api/v1/users/{victim_id}", json={"role": "admin"})
    assert promote.status_code == 403
    reset = viewer_superuser.patch(f"/api/v1/accounts/{victim_id}", json={"is_active": False})
    assert reset.status_code == 200
    assert login(console, VICTIM_EMAIL, VICTIM_PASSWORD).status_code == 401


def test_the_refused_attempts_leave_the_victims_audit_trail_and_account_as_they_were(
    console: ConsoleUnderTest,
) -> None:
    victim_id = victim_in_home_organization(console)
    _, attacker = console.other_organization()
    with console.db.read() as conn:
        before = accounts.get_user(conn, victim_id)
    attacker.post("/api/v1/users", json={"email": VICTIM_EMAIL})
    attempt_takeover(attacker, victim_id)
    with console.db.read() as conn:
        after = accounts.get_user(conn, victim_id)
        account_entries = conn.execute(
            select(audit_events).where(audit_events.c.object_type == "account")
        ).all()
    assert after == before
    assert account_entries == []
