"""The Members page and the invitations on the account page, on each backend: adding
someone (a new account's password shown once, an existing account invited until it
accepts), changing a role, removing a member, revoking an invitation, and who may do it."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from surveyor.store import accounts
from surveyor.store.accounts import Role
from tests.integration.test_web_sessions import browser, log_in, signed_in
from tests.support.console import ConsoleUnderTest

WEB_ADMIN = "web-admin@example.test"
THEIR_PASSWORD = "a password of their own"
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
_NEW_PASSWORD = re.compile(r'id="new-password"><code>([^<]+)</code>')


def account_elsewhere(console: ConsoleUnderTest, email: str) -> int:
    """An account that is a member of the other organization only."""
    other_id, _ = console.other_organization()
    with console.db.write() as conn:
        user = accounts.create_user(conn, email, password=THEIR_PASSWORD)
        accounts.set_membership(conn, other_id, user["id"], Role.ADMIN)
    return int(user["id"])


def sign_in_with_password(console: ConsoleUnderTest, email: str) -> tuple[TestClient, str]:
    client = browser(console)
    assert log_in(client, email, THEIR_PASSWORD).status_code == 303
    match = _CSRF_META.search(client.get("/account").text)
    assert match is not None
    return client, match.group(1)


def member_emails(console: ConsoleUnderTest) -> dict[str, str]:
    return {m["email"]: m["role"] for m in console.admin.get("/api/v1/users").json()}


def trail(console: ConsoleUnderTest, object_type: str) -> list[tuple[Any, ...]]:
    entries = console.admin.get("/api/v1/audit", params={"object_type": object_type}).json()
    return [(e["action"], e["actor"], e["object_id"], e["details"]) for e in entries["items"]]


def invitation_ids(page: str, verb: str) -> list[int]:
    return [int(found) for found in re.findall(rf'/invitations/(\d+)/{verb}"', page)]


def test_an_admin_adds_a_new_account_whose_password_is_shown_once_and_works(
    console: ConsoleUnderTest,
) -> None:
    client, csrf = signed_in(console, "admin")
    assert '<a href="/users">Members</a>' in client.get("/tasks").text
    page = client.get("/users")
    assert page.status_code == 200
    assert WEB_ADMIN in page.text
    assert "No invitation is waiting for an answer." in page.text

    added = client.post(
        "/users",
        data={"csrf_token": csrf, "email": "Nia@Example.test", "role": "operator", "name": "Nia"},
    )
    assert added.status_code == 200
    assert "Account created for nia@example.test, a member as operator." in added.text
    assert "Copy password" in added.text
    match = _NEW_PASSWORD.search(added.text)
    assert match is not None, added.text
    password = match.group(1)
    assert password not in client.get("/users").text  # shown once
    assert log_in(browser(console), "nia@example.test", password).status_code == 303

    (nia,) = [m for m in console.admin.get("/api/v1/users").json() if m["name"] == "Nia"]
    assert (nia["email"], nia["role"]) == ("nia@example.test", "operator")
    listed = client.get("/users").text
    row = listed.split(f'data-member="{nia["id"]}"', 1)[1].split("</tr>", 1)[0]
    assert '<option value="operator" selected>' in row
    created = {"email": "nia@example.test", "role": "operator", "new_account": True}
    assert ("create", WEB_ADMIN, nia["id"], created) in trail(console, "member")


def test_an_account_of_another_organization_is_invited_and_joins_once_it_accepts(
    console: ConsoleUnderTest,
) -> None:
    oli_id = account_elsewhere(console, "oli@example.test")
    client, csrf = signed_in(console, "admin")
    invited = client.post(
        "/users", data={"csrf_token": csrf, "email": "oli@example.test", "role": "viewer"}
    )
    assert invited.status_code == 200
    assert "Invited: oli@example.test has an account already and joins as viewer" in invited.text
    assert "new-password" not in invited.text
    assert "oli@example.test" not in member_emails(console)
    pending = client.get("/users").text.split('id="invitations"', 1)[1]
    assert "oli@example.test" in pending
    assert WEB_ADMIN in pending  # invited by

    oli, oli_csrf = sign_in_with_password(console, "oli@example.test")
    account = oli.get("/account").text
    assert "No invitation is waiting for you." not in account
    (invitation_id,) = invitation_ids(account, "accept")
    accepted = oli.post(
        f"/account/invitations/{invitation_id}/accept", data={"csrf_token": oli_csrf}
    )
    assert accepted.status_code == 303
    assert accepted.headers["location"] == f"/account?joined={console.organization_id}"
    after = oli.get(accepted.headers["location"]).text
    assert "You joined Default as viewer." in after
    assert re.search(r"<td[^>]*>Default</td>\s*<td[^>]*>viewer</td>", after)
    assert "No invitation is waiting for you." in after
    assert member_emails(console)["oli@example.test"] == "viewer"
    assert "No invitation is waiting for an answer." in client.get("/users").text
    assert [(a, actor, i) for a, actor, i, _ in trail(console, "invitation")] == [
        ("accept", "oli@example.test", invitation_id),
        ("invite", WEB_ADMIN, invitation_id),
    ]
    assert oli_id in [m["id"] for m in console.admin.get("/api/v1/users").json()]


def test_an_invitation_is_declined_by_its_account_or_revoked_by_an_admin(
    console: ConsoleUnderTest,
) -> None:
    account_elsewhere(console, "dee@example.test")
    account_elsewhere(console, "rex@example.test")
    client, csrf = signed_in(console, "admin")
    for email in ("dee@example.test", "rex@example.test"):
        client.post("/users", data={"csrf_token": csrf, "email": email, "role": "operator"})
    again = client.post(
        "/users", data={"csrf_token": csrf, "email": "dee@example.test", "role": "admin"}
    )
    assert again.status_code == 409
    assert "dee@example.test already has a pending invitation." in again.text

    dee, dee_csrf = sign_in_with_password(console, "dee@example.test")
    (dee_invitation,) = invitation_ids(dee.get("/account").text, "decline")
    declined = dee.post(
        f"/account/invitations/{dee_invitation}/decline", data={"csrf_token": dee_csrf}
    )
    assert declined.headers["location"] == "/account?declined=1"
    assert "You declined the invitation." in dee.get("/account?declined=1").text

    page = client.get("/users").text
    (rex_invitation,) = invitation_ids(page, "revoke")
    revoked = client.post(f"/users/invitations/{rex_invitation}/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 303
    assert "Invitation revoked." in client.get(revoked.headers["location"]).text
    assert console.admin.get("/api/v1/invitations").json() == []

    rex, rex_csrf = sign_in_with_password(console, "rex@example.test")
    assert "No invitation is waiting for you." in rex.get("/account").text
    late = rex.post(f"/account/invitations/{rex_invitation}/accept", data={"csrf_token": rex_csrf})
    assert late.status_code == 404
    assert f"Invitation {rex_invitation} does not exist." in late.text
    assert set(member_emails(console)).isdisjoint({"dee@example.test", "rex@example.test"})
    actions = [(a, actor, i) for a, actor, i, _ in trail(console, "invitation")]
    assert actions[:2] == [
        ("revoke", WEB_ADMIN, rex_invitation),
        ("decline", "dee@example.test", dee_invitation),
    ]


def test_an_admin_changes_roles_and_removes_members_but_not_themself(
    console: ConsoleUnderTest,
) -> None:
    made = console.admin.post(
        "/api/v1/users",
        json={"email": "mo@example.test", "role": "viewer", "password": "mo's own password 1"},
    ).json()
    mo_id = made["member"]["id"]
    mo = console.anonymous().post(
        "/api/v1/auth/login", json={"email": "mo@example.test", "password": "mo's own password 1"}
    )
    mo_token = {"Authorization": f"Bearer {mo.json()['token']}"}
    client, csrf = signed_in(console, "admin")
    me = next(m["id"] for m in console.admin.get("/api/v1/users").json() if m["email"] == WEB_ADMIN)

    changed = client.post(f"/users/{mo_id}/role", data={"csrf_token": csrf, "role": "operator"})
    assert changed.status_code == 303
    assert "Role changed." in client.get(changed.headers["location"]).text
    assert member_emails(console)["mo@example.test"] == "operator"
    unknown = client.post(f"/users/{mo_id}/role", data={"csrf_token": csrf, "role": "owner"})
    assert unknown.status_code == 400
    assert "Choose viewer, operator or admin." in unknown.text
    demote = client.post(f"/users/{me}/role", data={"csrf_token": csrf, "role": "viewer"})
    assert demote.status_code == 409
    assert "You cannot demote yourself; ask another admin." in demote.text
    assert member_emails(console)[WEB_ADMIN] == "admin"

    confirm = client.get(f"/users/{mo_id}/remove")
    assert confirm.status_code == 200
    assert "Remove mo@example.test from this organization?" in confirm.text
    removed = client.post(f"/users/{mo_id}/remove", data={"csrf_token": csrf})
    assert removed.status_code == 303
    assert "Member removed" in client.get(removed.headers["location"]).text
    assert "mo@example.test" not in member_emails(console)
    assert console.client.get("/api/v1/users/me", headers=mo_token).status_code == 401
    assert client.get(f"/users/{mo_id}/remove").status_code == 404

    myself = client.post(f"/users/{me}/remove", data={"csrf_token": csrf})
    assert myself.status_code == 409
    assert "You cannot remove yourself; ask another admin." in myself.text
    assert WEB_ADMIN in member_emails(console)
    entries = [(a, actor, i, d) for a, actor, i, d in trail(console, "member") if i == mo_id]
    assert entries[:2] == [
        ("delete", WEB_ADMIN, mo_id, {"revoked_tokens": 1}),
        ("edit", WEB_ADMIN, mo_id, {"role": {"from": "viewer", "to": "operator"}}),
    ]


def test_the_add_form_names_the_field_at_fault_and_keeps_what_was_typed(
    console: ConsoleUnderTest,
) -> None:
    client, csrf = signed_in(console, "admin")
    bad = client.post(
        "/users", data={"csrf_token": csrf, "email": "not an address", "name": "Someone"}
    )
    assert bad.status_code == 400
    assert 'id="email-error"' in bad.text
    assert 'aria-invalid="true"' in bad.text
    assert 'value="Someone"' in bad.text
    wrong_role = client.post(
        "/users", data={"csrf_token": csrf, "email": "x@example.test", "role": "owner"}
    )
    assert wrong_role.status_code == 400
    assert 'id="role-error"' in wrong_role.text
    member = client.post("/users", data={"csrf_token": csrf, "email": WEB_ADMIN})
    assert member.status_code == 409
    assert f"{WEB_ADMIN} is already a member." in member.text
    assert "x@example.test" not in member_emails(console)


def test_members_are_managed_by_admins_only_and_only_in_their_organization(
    console: ConsoleUnderTest,
) -> None:
    made = console.admin.post("/api/v1/users", json={"email": "kim@example.test"}).json()
    kim = made["member"]["id"]
    _, other_admin = console.other_organization()
    account_elsewhere(console, "pat@example.test")
    theirs = other_admin.post("/api/v1/users", json={"email": "theirs@example.test"}).json()
    their_member = theirs["member"]["id"]
    their_invite = other_admin.post(
        "/api/v1/users", json={"email": "kim@example.test", "role": "viewer"}
    ).json()["invitation"]["id"]

    for role in ("viewer", "operator"):
        client, csrf = signed_in(console, role)
        refused = client.get("/users")
        assert refused.status_code == 403
        assert f"needs the admin role; you are {role}" in refused.text
        assert 'href="/users"' not in client.get("/tasks").text
        add = {"csrf_token": csrf, "email": "sneaky@example.test", "role": "admin"}
        assert client.post("/users", data=add).status_code == 403
        role_change = {"csrf_token": csrf, "role": "admin"}
        assert client.post(f"/users/{kim}/role", data=role_change).status_code == 403
        assert client.get(f"/users/{kim}/remove").status_code == 403
        assert client.post(f"/users/{kim}/remove", data={"csrf_token": csrf}).status_code == 403
    assert browser(console).get("/users").headers["location"].startswith("/login?next=")
    assert "sneaky@example.test" not in member_emails(console)

    admin, csrf = signed_in(console, "admin")
    forged = admin.post(
        "/users", data={"csrf_token": "forged", "email": "forged@example.test", "role": "admin"}
    )
    assert forged.status_code == 403
    assert "Form expired" in forged.text
    assert admin.post(f"/users/{kim}/remove", data={"csrf_token": "forged"}).status_code == 403
    assert "forged@example.test" not in member_emails(console)
    assert "kim@example.test" in member_emails(console)
    pat_invited = admin.post("/users", data={"csrf_token": csrf, "email": "pat@example.test"})
    assert pat_invited.status_code == 200
    pat, pat_csrf = sign_in_with_password(console, "pat@example.test")
    (pat_invitation,) = invitation_ids(pat.get("/account").text, "accept")
    stolen = pat.post(f"/account/invitations/{pat_invitation}/accept", data={"csrf_token": "x"})
    assert stolen.status_code == 403
    assert "pat@example.test" not in member_emails(console)

    page = admin.get("/users").text
    assert "theirs@example.test" not in page
    assert admin.get(f"/users/{their_member}/remove").status_code == 404
    to_admin = {"csrf_token": csrf, "role": "admin"}
    assert admin.post(f"/users/{their_member}/role", data=to_admin).status_code == 404
    assert admin.post(f"/users/{their_member}/remove", data={"csrf_token": csrf}).status_code == 404
    revoke_theirs = admin.post(
        f"/users/invitations/{their_invite}/revoke", data={"csrf_token": csrf}
    )
    assert revoke_theirs.status_code == 404
    assert [i["id"] for i in other_admin.get("/api/v1/invitations").json()] == [their_invite]
    assert {m["email"] for m in other_admin.get("/api/v1/users").json()} >= {"theirs@example.test"}
    # someone else's invitation is not yours to answer
    someone_elses = pat.post(
        f"/account/invitations/{their_invite}/accept", data={"csrf_token": pat_csrf}
    )
    assert someone_elses.status_code == 404


def test_what_users_typed_is_escaped_on_the_members_and_account_pages(
    console: ConsoleUnderTest,
) -> None:
    script = "<script>alert(1)</script>"
    client, csrf = signed_in(console, "admin")
    added = client.post(
        "/users", data={"csrf_token": csrf, "email": "esc@example.test", "name": script}
    )
    assert added.status_code == 200
    for page in (added.text, client.get("/users").text):
        assert script not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    with console.db.write() as conn:
        accounts.update_organization(conn, console.organization_id, name=script, scope_cap=65536)
    account_elsewhere(console, "ivy@example.test")
    client.post("/users", data={"csrf_token": csrf, "email": "ivy@example.test"})
    ivy, _ = sign_in_with_password(console, "ivy@example.test")
    account = ivy.get("/account").text
    assert script not in account
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in account
