"""Login, tokens, accounts, memberships, invitations, sites and the first start, through
the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from surveyor.core.clock import SYSTEM_CLOCK
from surveyor.store import accounts
from surveyor.store.accounts import Role
from surveyor.store.bootstrap import CREDENTIALS_FILE, bootstrap_if_empty
from surveyor.store.engine import Database
from surveyor.store.schema import api_tokens, audit_events, invitations
from tests.support.console import ADMIN_EMAIL, ADMIN_PASSWORD, Api, ConsoleUnderTest


def test_health_answers_without_a_token(console: ConsoleUnderTest) -> None:
    response = console.anonymous().get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_the_openapi_document_lists_the_task_routes(console: ConsoleUnderTest) -> None:
    spec = console.anonymous().get("/api/v1/openapi.json").json()
    for path in (
        "/api/v1/tasks",
        "/api/v1/tasks/counts",
        "/api/v1/tasks/{task_id}/stop",
        "/api/v1/sites",
        "/api/v1/explorers",
        "/api/v1/hosted-zones",
        "/api/v1/users",
        "/api/v1/tokens",
        "/api/v1/auth/login",
    ):
        assert path in spec["paths"], path


def test_login_gives_a_token_that_works(console: ConsoleUnderTest) -> None:
    response = console.anonymous().post(
        "/api/v1/auth/login", json={"email": ADMIN_EMAIL.upper(), "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["role"] == "admin"
    me = Api(console.client, body["token"]).get("/api/v1/users/me").json()
    assert me["email"] == ADMIN_EMAIL
    assert me["last_login_at"] is not None


def test_a_wrong_password_is_refused_and_repeated_failures_are_slowed(
    console: ConsoleUnderTest,
) -> None:
    anonymous = console.anonymous()
    for _ in range(10):
        response = anonymous.post(
            "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": "guess"}
        )
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "the email or password is wrong"
    limited = anonymous.post(
        "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert limited.status_code == 429
    assert limited.json()["error"]["details"]["retry_after"] > 0


def test_an_api_token_is_shown_once_and_stops_working_when_deleted(
    console: ConsoleUnderTest,
) -> None:
    viewer = console.as_role("viewer")
    created = viewer.post("/api/v1/tokens", json={"name": "grafana"}).json()
    token = Api(console.client, created["token"])
    assert token.get("/api/v1/tasks").status_code == 200
    listed = viewer.get("/api/v1/tokens").json()
    assert any(t["id"] == created["id"] for t in listed)
    assert all("token" not in t and "secret_hash" not in t for t in listed)
    assert token.post("/api/v1/tasks", json={"name": "x"}).status_code == 403
    assert viewer.delete(f"/api/v1/tokens/{created['id']}").status_code == 204
    assert token.get("/api/v1/tasks").status_code == 401


@pytest.mark.parametrize(
    "header", ["Bearer nonsense", "Bearer svr_0123456789abcdef_wrong", "Basic abc", ""]
)
def test_bad_credentials_are_refused(console: ConsoleUnderTest, header: str) -> None:
    response = console.client.get("/api/v1/tasks", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_an_admin_adds_a_new_account_that_can_log_in_with_the_generated_password(
    console: ConsoleUnderTest,
) -> None:
    response = console.admin.post(
        "/api/v1/users", json={"email": "op@example.test", "role": "operator"}
    )
    assert response.status_code == 201, response.text
    added = response.json()
    assert added["outcome"] == "created"
    assert added["invitation"] is None
    assert added["member"]["role"] == "operator"
    assert added["generated_password"]
    login = console.anonymous().post(
        "/api/v1/auth/login",
        json={"email": "op@example.test", "password": added["generated_password"]},
    )
    assert login.json()["role"] == "operator"
    again = console.admin.post("/api/v1/users", json={"email": "op@example.test"})
    assert again.status_code == 409
    assert "already a member" in again.json()["error"]["message"]
    user_id = added["member"]["id"]
    demoted = console.admin.patch(f"/api/v1/users/{user_id}", json={"role": "viewer"})
    assert demoted.json()["role"] == "viewer"
    assert console.admin.delete(f"/api/v1/users/{user_id}").status_code == 204
    assert console.admin.get(f"/api/v1/users/{user_id}").status_code == 404


def test_a_chosen_password_follows_the_password_policy(console: ConsoleUnderTest) -> None:
    short = console.admin.post(
        "/api/v1/users", json={"email": "short@example.test", "password": "eleven char"}
    )
    assert short.status_code == 422
    assert "at least 12 characters" in short.json()["error"]["message"]
    viewer = console.as_role("viewer")
    weak = viewer.post(
        "/api/v1/users/me/password",
        json={"current_password": "whatever it is", "new_password": "too short"},
    )
    assert weak.status_code == 422
    assert "at least 12 characters" in weak.json()["error"]["message"]
    reset = console.admin.patch(f"/api/v1/accounts/{me(viewer)['id']}", json={"password": "short"})
    assert reset.status_code == 422
    assert "at least 12 characters" in reset.json()["error"]["message"]


def test_an_admin_cannot_lock_themselves_out(console: ConsoleUnderTest) -> None:
    own = me(console.admin)
    demote = console.admin.patch(f"/api/v1/users/{own['id']}", json={"role": "viewer"})
    assert demote.status_code == 409
    assert "demote yourself" in demote.json()["error"]["message"]
    deactivate = console.admin.patch(f"/api/v1/users/{own['id']}", json={"is_active": False})
    assert deactivate.status_code == 409
    assert console.admin.delete(f"/api/v1/users/{own['id']}").status_code == 409
    assert me(console.admin)["role"] == "admin"


def me(api: Api) -> dict[str, Any]:
    response = api.get("/api/v1/users/me")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _login(console: ConsoleUnderTest, email: str, password: str, **extra: Any) -> Any:
    return console.anonymous().post(
        "/api/v1/auth/login", json={"email": email, "password": password, **extra}
    )


def session(console: ConsoleUnderTest, email: str, password: str, **extra: Any) -> Api:
    """A fresh login session of `email`."""
    response = _login(console, email, password, **extra)
    assert response.status_code == 200, response.text
    return Api(console.client, response.json()["token"], email=email)


def can_log_in(console: ConsoleUnderTest, email: str, password: str, **extra: Any) -> bool:
    return bool(_login(console, email, password, **extra).status_code == 200)


def account_with_password(
    console: ConsoleUnderTest, email: str, password: str, *, role: str | None = "viewer"
) -> int:
    """An account with a known password, a member of the console's organization with `role`."""
    with console.db.write() as conn:
        user = accounts.create_user(conn, email, password=password)
        if role is not None:
            accounts.set_membership(conn, console.organization_id, user["id"], Role(role))
    return int(user["id"])


PASSWORD = "the old password of ana"
NEW_PASSWORD = "a new password for ana"


def test_an_existing_account_is_invited_and_joins_only_when_it_accepts(
    console: ConsoleUnderTest,
) -> None:
    other_org, other_admin = console.other_organization()
    ana_id = account_with_password(console, "ana@example.test", PASSWORD)
    answer = other_admin.post(
        "/api/v1/users", json={"email": "ANA@example.test", "role": "operator"}
    )
    assert answer.status_code == 201, answer.text
    added = answer.json()
    assert added["outcome"] == "invited"
    assert added["member"] is None
    assert added["generated_password"] is None
    invitation = added["invitation"]
    assert (invitation["email"], invitation["role"]) == ("ana@example.test", "operator")
    assert invitation["organization_id"] == other_org
    assert invitation["invited_by"] == other_admin.email
    assert [i["id"] for i in other_admin.get("/api/v1/invitations").json()] == [invitation["id"]]
    assert other_admin.get(f"/api/v1/users/{ana_id}").status_code == 404
    assert not can_log_in(console, "ana@example.test", PASSWORD, organization_id=other_org)

    ana = session(console, "ana@example.test", PASSWORD)
    mine = ana.get("/api/v1/users/me/invitations").json()
    assert [(i["id"], i["organization_name"], i["expired"]) for i in mine] == [
        (invitation["id"], "Other", False)
    ]
    accepted = ana.post(f"/api/v1/users/me/invitations/{invitation['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["organization_id"] == other_org
    assert accepted.json()["role"] == "operator"
    assert ana.get("/api/v1/users/me/invitations").json() == []
    assert other_admin.get("/api/v1/invitations").json() == []
    assert other_admin.get(f"/api/v1/users/{ana_id}").json()["role"] == "operator"
    organizations = [m["organization_id"] for m in ana.get("/api/v1/users/me/organizations").json()]
    assert organizations == [console.organization_id, other_org]
    there = session(console, "ana@example.test", PASSWORD, organization_id=other_org)
    assert me(there)["role"] == "operator"


def test_a_declined_or_revoked_invitation_leaves_no_membership(
    console: ConsoleUnderTest,
) -> None:
    _, other_admin = console.other_organization()
    ana_id = account_with_password(console, "ana@example.test", PASSWORD)
    ana = session(console, "ana@example.test", PASSWORD)
    first = other_admin.post("/api/v1/users", json={"email": "ana@example.test"}).json()
    declined = ana.post(f"/api/v1/users/me/invitations/{first['invitation']['id']}/decline")
    assert declined.status_code == 204
    assert other_admin.get(f"/api/v1/users/{ana_id}").status_code == 404
    assert other_admin.get("/api/v1/invitations").json() == []

    second = other_admin.post("/api/v1/users", json={"email": "ana@example.test"}).json()
    invitation_id = second["invitation"]["id"]
    assert invitation_id != first["invitation"]["id"]
    twice = other_admin.post("/api/v1/users", json={"email": "ana@example.test"})
    assert twice.status_code == 409
    assert "pending invitation" in twice.json()["error"]["message"]
    assert other_admin.delete(f"/api/v1/invitations/{invitation_id}").status_code == 204
    assert ana.get("/api/v1/users/me/invitations").json() == []
    late = ana.post(f"/api/v1/users/me/invitations/{invitation_id}/accept")
    assert late.status_code == 404
    assert other_admin.get(f"/api/v1/users/{ana_id}").status_code == 404
    with console.db.read() as conn:
        trail = [
            (row.action, row.object_type)
            for row in conn.execute(select(audit_events).order_by(audit_events.c.id))
            if row.object_type == "invitation"
        ]
    assert trail == [
        ("invite", "invitation"),
        ("decline", "invitation"),
        ("invite", "invitation"),
        ("revoke", "invitation"),
    ]


def test_only_the_invited_account_may_answer_an_invitation(console: ConsoleUnderTest) -> None:
    _, other_admin = console.other_organization()
    account_with_password(console, "ana@example.test", PASSWORD)
    invitation = other_admin.post("/api/v1/users", json={"email": "ana@example.test"}).json()
    invitation_id = invitation["invitation"]["id"]
    for api in (console.admin, console.as_role("viewer"), other_admin):
        for answer in ("accept", "decline"):
            response = api.post(f"/api/v1/users/me/invitations/{invitation_id}/{answer}")
            assert response.status_code == 404, (api.email, answer)
    assert console.admin.delete(f"/api/v1/invitations/{invitation_id}").status_code == 404
    assert [i["id"] for i in other_admin.get("/api/v1/invitations").json()] == [invitation_id]


def test_an_expired_invitation_cannot_be_accepted_and_may_be_sent_again(
    console: ConsoleUnderTest,
) -> None:
    _, other_admin = console.other_organization()
    account_with_password(console, "ana@example.test", PASSWORD)
    ana = session(console, "ana@example.test", PASSWORD)
    sent = other_admin.post("/api/v1/users", json={"email": "ana@example.test"}).json()
    with console.db.write() as conn:
        conn.execute(
            update(invitations)
            .where(invitations.c.id == sent["invitation"]["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    assert ana.get("/api/v1/users/me/invitations").json() == []
    listed = other_admin.get("/api/v1/invitations").json()
    assert [i["expired"] for i in listed] == [True]
    refused = ana.post(f"/api/v1/users/me/invitations/{sent['invitation']['id']}/accept")
    assert refused.status_code == 409
    assert "expired" in refused.json()["error"]["message"]
    again = other_admin.post("/api/v1/users", json={"email": "ana@example.test"})
    assert again.status_code == 201, again.text
    fresh = again.json()["invitation"]["id"]
    assert ana.post(f"/api/v1/users/me/invitations/{fresh}/accept").status_code == 200


def test_inviting_an_existing_account_with_a_password_is_refused_and_changes_nothing(
    console: ConsoleUnderTest,
) -> None:
    _, other_admin = console.other_organization()
    account_with_password(console, "ana@example.test", PASSWORD)
    refused = other_admin.post(
        "/api/v1/users", json={"email": "ana@example.test", "password": "chosen by the admin"}
    )
    assert refused.status_code == 409
    assert "keeps its own password" in refused.json()["error"]["message"]
    assert can_log_in(console, "ana@example.test", PASSWORD)
    assert not can_log_in(console, "ana@example.test", "chosen by the admin")
    assert other_admin.get("/api/v1/invitations").json() == []


def test_changing_your_password_revokes_your_other_sessions_and_tokens_only(
    console: ConsoleUnderTest,
) -> None:
    account_with_password(console, "ana@example.test", PASSWORD)
    bob_id = account_with_password(console, "bob@example.test", PASSWORD)
    calling = session(console, "ana@example.test", PASSWORD)
    other_session = session(console, "ana@example.test", PASSWORD)
    bob = session(console, "bob@example.test", PASSWORD)
    api_token = Api(
        console.client, calling.post("/api/v1/tokens", json={"name": "ci"}).json()["token"]
    )
    for api in (calling, other_session, api_token, bob):
        assert api.get("/api/v1/users/me").status_code == 200

    changed = calling.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"revoked_tokens": 2}
    assert calling.get("/api/v1/users/me").status_code == 200
    for revoked in (other_session, api_token):
        response = revoked.get("/api/v1/users/me")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthenticated"
    assert me(bob)["id"] == bob_id
    assert not can_log_in(console, "ana@example.test", PASSWORD)
    assert can_log_in(console, "ana@example.test", NEW_PASSWORD)


def test_a_password_change_needs_the_right_current_password(console: ConsoleUnderTest) -> None:
    account_with_password(console, "ana@example.test", PASSWORD)
    ana = session(console, "ana@example.test", PASSWORD)
    wrong = ana.post(
        "/api/v1/users/me/password",
        json={"current_password": "not my password", "new_password": NEW_PASSWORD},
    )
    assert wrong.status_code == 403
    assert wrong.json()["error"] == {
        "code": "reauthentication_required",
        "message": "the current password is wrong",
        "details": {},
    }
    same = ana.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": PASSWORD},
    )
    assert same.status_code == 400
    assert "same as the current" in same.json()["error"]["message"]
    missing = ana.post("/api/v1/users/me/password", json={"new_password": NEW_PASSWORD})
    assert missing.status_code == 422
    assert can_log_in(console, "ana@example.test", PASSWORD)


def test_guessing_the_current_password_is_rate_limited(console: ConsoleUnderTest) -> None:
    account_with_password(console, "ana@example.test", PASSWORD)
    ana = session(console, "ana@example.test", PASSWORD)
    for attempt in range(10):
        guess = ana.post(
            "/api/v1/users/me/password",
            json={"current_password": f"guess number {attempt}", "new_password": NEW_PASSWORD},
        )
        assert guess.status_code == 403
    limited = ana.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert limited.status_code == 429
    assert limited.json()["error"]["details"]["retry_after"] > 0
    assert not can_log_in(console, "ana@example.test", NEW_PASSWORD)


def test_you_change_your_own_name_and_email_and_the_email_asks_for_your_password(
    console: ConsoleUnderTest,
) -> None:
    account_with_password(console, "ana@example.test", PASSWORD)
    account_with_password(console, "bob@example.test", PASSWORD)
    ana = session(console, "ana@example.test", PASSWORD)
    renamed = ana.patch("/api/v1/users/me", json={"name": "Ana Lyst"})
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Ana Lyst"
    unconfirmed = ana.patch("/api/v1/users/me", json={"email": "ana.lyst@example.test"})
    assert unconfirmed.status_code == 403
    assert unconfirmed.json()["error"]["code"] == "reauthentication_required"
    taken = ana.patch(
        "/api/v1/users/me", json={"email": "bob@example.test", "current_password": PASSWORD}
    )
    assert taken.status_code == 409
    moved = ana.patch(
        "/api/v1/users/me",
        json={"email": "Ana.Lyst@example.test", "current_password": PASSWORD},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["email"] == "ana.lyst@example.test"
    assert can_log_in(console, "ana.lyst@example.test", PASSWORD)
    assert not can_log_in(console, "ana@example.test", PASSWORD)


def test_a_superuser_reset_revokes_every_session_and_is_audited_in_each_organization(
    console: ConsoleUnderTest,
) -> None:
    other_org, _ = console.other_organization()
    ana_id = account_with_password(console, "ana@example.test", PASSWORD)
    with console.db.write() as conn:
        accounts.set_membership(conn, other_org, ana_id, Role.VIEWER)
    ana_here = session(console, "ana@example.test", PASSWORD)
    ana_there = session(console, "ana@example.test", PASSWORD, organization_id=other_org)
    reset = console.admin.patch(f"/api/v1/accounts/{ana_id}", json={"password": NEW_PASSWORD})
    assert reset.status_code == 200, reset.text
    assert [m["organization_id"] for m in reset.json()["memberships"]] == [
        console.organization_id,
        other_org,
    ]
    assert ana_here.get("/api/v1/users/me").status_code == 401
    assert ana_there.get("/api/v1/users/me").status_code == 401
    assert can_log_in(console, "ana@example.test", NEW_PASSWORD)
    with console.db.read() as conn:
        entries = conn.execute(
            select(audit_events).where(
                audit_events.c.object_type == "account", audit_events.c.object_id == ana_id
            )
        ).all()
    assert sorted((e.organization_id or 0) for e in entries) == sorted(
        [0, console.organization_id, other_org]
    )
    for entry in entries:
        assert entry.actor == ADMIN_EMAIL
        assert entry.details["fields"] == ["password"]
        assert entry.details["by"] == "superuser"
        assert entry.details["revoked_tokens"] == 2


def test_a_deactivated_account_is_locked_out_and_its_tokens_are_revoked(
    console: ConsoleUnderTest,
) -> None:
    ana_id = account_with_password(console, "ana@example.test", PASSWORD)
    ana = session(console, "ana@example.test", PASSWORD)
    off = console.admin.patch(f"/api/v1/accounts/{ana_id}", json={"is_active": False})
    assert off.json()["is_active"] is False
    assert ana.get("/api/v1/users/me").status_code == 401
    assert not can_log_in(console, "ana@example.test", PASSWORD)
    on = console.admin.patch(f"/api/v1/accounts/{ana_id}", json={"is_active": True})
    assert on.json()["is_active"] is True
    assert ana.get("/api/v1/users/me").status_code == 401
    assert can_log_in(console, "ana@example.test", PASSWORD)


def test_removing_a_member_revokes_their_tokens_in_that_organization_only(
    console: ConsoleUnderTest,
) -> None:
    other_org, other_admin = console.other_organization()
    ana_id = account_with_password(console, "ana@example.test", PASSWORD)
    with console.db.write() as conn:
        accounts.set_membership(conn, other_org, ana_id, Role.VIEWER)
    ana_here = session(console, "ana@example.test", PASSWORD)
    ana_there = session(console, "ana@example.test", PASSWORD, organization_id=other_org)
    assert other_admin.delete(f"/api/v1/users/{ana_id}").status_code == 204
    assert ana_there.get("/api/v1/users/me").status_code == 401
    assert ana_here.get("/api/v1/users/me").status_code == 200
    with console.db.write() as conn:
        accounts.set_membership(conn, other_org, ana_id, Role.VIEWER)
    assert ana_there.get("/api/v1/users/me").status_code == 401


def tokens_of(console: ConsoleUnderTest, user_id: int) -> list[tuple[int, int, str, str]]:
    """The account's tokens: (id, organization, kind, name), oldest first."""
    with console.db.read() as conn:
        rows = conn.execute(
            select(api_tokens).where(api_tokens.c.user_id == user_id).order_by(api_tokens.c.id)
        ).all()
    return [(row.id, row.organization_id, row.kind, row.name) for row in rows]


def test_deleting_a_token_reaches_only_your_api_tokens_in_this_organization(
    console: ConsoleUnderTest,
) -> None:
    """Issue 12.4: DELETE /tokens/{id} ended the caller's login sessions and deleted their
    tokens of another organization."""
    other_org, _ = console.other_organization()
    ana_id = account_with_password(console, "ana@example.test", PASSWORD)
    with console.db.write() as conn:
        accounts.set_membership(conn, other_org, ana_id, Role.VIEWER)
    ana = session(console, "ana@example.test", PASSWORD)
    other_session = session(console, "ana@example.test", PASSWORD)
    ana_there = session(console, "ana@example.test", PASSWORD, organization_id=other_org)
    assert ana_there.post("/api/v1/tokens", json={"name": "there"}).status_code == 201
    created = ana.post("/api/v1/tokens", json={"name": "grafana"}).json()
    before = tokens_of(console, ana_id)
    out_of_reach = [row for row in before if row[0] != created["id"]]
    assert sorted((org, kind) for _, org, kind, _ in out_of_reach) == sorted(
        [
            (console.organization_id, "session"),
            (console.organization_id, "session"),
            (other_org, "session"),
            (other_org, "api"),
        ]
    )

    for token_id, *_ in out_of_reach:
        refused = ana.delete(f"/api/v1/tokens/{token_id}")
        assert refused.status_code == 404, token_id
        assert refused.json()["error"]["code"] == "not_found"
    assert tokens_of(console, ana_id) == before
    assert other_session.get("/api/v1/users/me").status_code == 200
    assert ana_there.get("/api/v1/users/me").status_code == 200

    assert ana.delete(f"/api/v1/tokens/{created['id']}").status_code == 204
    assert tokens_of(console, ana_id) == out_of_reach
    with console.db.read() as conn:
        [entry] = conn.execute(
            select(audit_events).where(
                audit_events.c.object_type == "token", audit_events.c.action == "delete"
            )
        ).all()
    assert (entry.organization_id, entry.object_id) == (console.organization_id, created["id"])
    assert entry.actor == "ana@example.test"
    assert entry.details == {"name": "grafana"}


def test_a_new_organization_says_who_runs_it(console: ConsoleUnderTest) -> None:
    unstaffed = console.admin.post("/api/v1/organizations", json={"name": "Nobody's"})
    assert unstaffed.status_code == 400
    assert "join it yourself" in unstaffed.json()["error"]["message"]
    assert "Nobody's" not in [o["name"] for o in console.admin.get("/api/v1/organizations").json()]

    joined = console.admin.post("/api/v1/organizations", json={"name": "Branch", "join": True})
    assert joined.status_code == 201, joined.text
    body = joined.json()
    assert [(m["outcome"], m["member"]["role"]) for m in body["members"]] == [("joined", "admin")]
    branch = session(console, ADMIN_EMAIL, ADMIN_PASSWORD, organization_id=body["id"])
    assert me(branch)["role"] == "admin"

    account_with_password(console, "ana@example.test", PASSWORD, role=None)
    staffed = console.admin.post(
        "/api/v1/organizations",
        json={"name": "Lab", "admin_email": "ana@example.test"},
    ).json()
    assert [m["outcome"] for m in staffed["members"]] == ["invited"]
    assert not can_log_in(console, ADMIN_EMAIL, ADMIN_PASSWORD, organization_id=staffed["id"])
    fresh = console.admin.post(
        "/api/v1/organizations", json={"name": "Depot", "admin_email": "new@example.test"}
    ).json()
    assert [m["outcome"] for m in fresh["members"]] == ["created"]
    password = fresh["members"][0]["generated_password"]
    depot = session(console, "new@example.test", password)
    assert me(depot)["role"] == "admin"
    superuser = me(console.admin)["id"]
    organizations = console.admin.get(f"/api/v1/accounts/{superuser}").json()["memberships"]
    assert [m["organization_name"] for m in organizations] == ["Default", "Branch"]
    with console.db.read() as conn:
        created = conn.execute(
            select(audit_events)
            .where(audit_events.c.object_type == "organization", audit_events.c.action == "create")
            .order_by(audit_events.c.id)
        ).all()
    assert [(e.organization_id, e.details["join"]) for e in created] == [
        (body["id"], True),
        (staffed["id"], False),
        (fresh["id"], False),
    ]


def test_a_superuser_staffs_any_organization_without_joining_it(
    console: ConsoleUnderTest,
) -> None:
    other_org, _ = console.other_organization()
    account_with_password(console, "ana@example.test", PASSWORD, role=None)
    invited = console.admin.post(
        f"/api/v1/organizations/{other_org}/members",
        json={"email": "ana@example.test", "role": "admin"},
    )
    assert invited.status_code == 201, invited.text
    assert invited.json()["outcome"] == "invited"
    assert not can_log_in(console, ADMIN_EMAIL, ADMIN_PASSWORD, organization_id=other_org)
    joined = console.admin.post(
        f"/api/v1/organizations/{other_org}/members",
        json={"email": ADMIN_EMAIL, "role": "viewer"},
    )
    assert joined.json()["outcome"] == "joined"
    there = session(console, ADMIN_EMAIL, ADMIN_PASSWORD, organization_id=other_org)
    assert me(there)["role"] == "viewer"
    assert there.get("/api/v1/users").status_code == 403
    missing = console.admin.post(
        "/api/v1/organizations/999999/members", json={"email": "x@example.test"}
    )
    assert missing.status_code == 404


def test_a_site_scope_is_validated_and_sized(console: ConsoleUnderTest) -> None:
    site = console.admin.post(
        "/api/v1/sites", json={"name": "lab", "scope": "127.0.1.0/24", "excludes": "127.0.1.1"}
    ).json()
    assert site["scope_size"] == 255
    bad = console.admin.post("/api/v1/sites", json={"name": "bad", "scope": "127.0.0.1/33"})
    assert bad.status_code == 400
    assert bad.json()["error"]["details"]["token"] == "127.0.0.1/33"
    dup = console.admin.post("/api/v1/sites", json={"name": "lab"})
    assert dup.status_code == 409


def test_the_last_site_cannot_be_deleted(console: ConsoleUnderTest) -> None:
    sites = console.admin.get("/api/v1/sites").json()
    assert len(sites) == 1
    assert sites[0]["scope"] == "127.0.0.1"
    response = console.admin.delete(f"/api/v1/sites/{sites[0]['id']}")
    assert response.status_code == 409


def test_every_admin_action_leaves_an_audit_entry(console: ConsoleUnderTest) -> None:
    console.admin.post("/api/v1/sites", json={"name": "audited"})
    task = console.admin.post("/api/v1/tasks", json={"name": "x"}).json()
    console.admin.post(f"/api/v1/tasks/{task['id']}/stop")
    with console.db.read() as conn:
        actions = [(r.action, r.object_type) for r in conn.execute(select(audit_events))]
    assert ("create", "site") in actions
    assert ("create", "task") in actions
    assert ("stop", "task") in actions


def test_first_start_creates_an_admin_with_a_private_password_file(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SURVEYOR_ADMIN_EMAIL", "SURVEYOR_ADMIN_PASSWORD", "SURVEYOR_BOOTSTRAP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    created = bootstrap_if_empty(db, tmp_path, now=SYSTEM_CLOCK.now())
    assert created is not None
    assert created.generated_password
    path = tmp_path / CREDENTIALS_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert created.generated_password in path.read_text()
    assert bootstrap_if_empty(db, tmp_path, now=SYSTEM_CLOCK.now()) is None
