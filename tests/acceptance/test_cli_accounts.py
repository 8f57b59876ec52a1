"""`surveyor user …`, `invitation …`, `account …` and `site …` against a real console process."""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import UTC, datetime, timedelta

import httpx2

from tests.acceptance.test_cli import Cli, cli  # noqa: F401 (the fixture)


def _email(tag: str) -> str:
    return f"{tag}-{os.getpid()}@example.test"


def _log_in(cli: Cli, email: str, password: str, *extra: str) -> subprocess.CompletedProcess[str]:  # noqa: F811
    """`surveyor login` as `email`, saving the session in this test's config file."""
    return cli.run(
        "login", "--console", cli.console.url, "--email", email, "--password-stdin", *extra,
        url=None, token=None, stdin=password + "\n",
    )  # fmt: skip


def _new_account(cli: Cli, tag: str) -> tuple[str, str, int]:  # noqa: F811
    """A new member (viewer) of the first organization with a chosen password."""
    email = _email(tag)
    password = f"the password of {tag}"
    added = cli.json("user", "invite", email, "--password-stdin", stdin=password + "\n")
    assert added["outcome"] == "created"
    return email, password, added["member"]["id"]


def test_a_new_account_with_a_generated_password_signs_in_and_gets_what_the_role_allows(
    cli: Cli,  # noqa: F811
) -> None:
    email = _email("analyst")
    shown = cli.ok("user", "invite", email, "--name", "Ana Lyst")
    assert f"Added {email}" in shown
    assert "as viewer" in shown
    password = re.search(r"│\s*(\S{12,})\s*│", shown)
    assert password is not None, shown
    assert "not shown again" in shown
    listed = {user["email"]: user for user in cli.json("user", "list")}
    assert listed[email]["role"] == "viewer"
    assert listed[email]["name"] == "Ana Lyst"
    assert password.group(1) not in cli.ok("user", "list")

    login = _log_in(cli, email, password.group(1))
    assert login.returncode == 0, login.stderr
    as_viewer = cli.run("task", "create", "not allowed", "--targets", "127.0.0.1", token=None)
    assert as_viewer.returncode == 1
    assert "operator" in as_viewer.stderr

    user_id = str(listed[email]["id"])
    assert "is now operator" in cli.ok("user", "role", user_id, "operator")
    created = cli.json("task", "create", "allowed now", "--targets", "127.0.0.1", token=None)
    assert created["created_by"] == email

    assert cli.json("account", "edit", user_id, "--deactivated")["is_active"] is False
    refused = cli.run("task", "list", token=None)
    assert refused.returncode == 4
    assert "Removed user" in cli.ok("user", "remove", user_id)
    assert email not in {user["email"] for user in cli.json("user", "list")}


def test_a_new_account_created_with_a_password_on_stdin_has_that_password(
    cli: Cli,  # noqa: F811
) -> None:
    email = _email("chosen")
    added = cli.json(
        "user", "invite", email, "--role", "operator", "--password-stdin",
        stdin="a chosen password of length\n",
    )  # fmt: skip
    assert added["generated_password"] is None
    assert added["member"]["role"] == "operator"
    login = _log_in(cli, email, "a chosen password of length")
    assert login.returncode == 0, login.stderr


def test_an_existing_account_is_invited_and_joins_another_organization_when_it_accepts(
    cli: Cli,  # noqa: F811
) -> None:
    email, password, _ = _new_account(cli, "joiner")
    branch = httpx2.post(
        f"{cli.console.url}/api/v1/organizations",
        headers={"Authorization": f"Bearer {cli.console.token}"},
        json={"name": f"Branch {os.getpid()}", "join": True},
    ).json()
    admin_login = _log_in(
        cli, cli.console.admin_email, cli.console.admin_password,
        "--organization", str(branch["id"]),
    )  # fmt: skip
    assert admin_login.returncode == 0, admin_login.stderr
    shown = cli.ok("user", "invite", email, "--role", "operator", token=None)
    assert f"Invited {email} as operator" in shown
    assert "joins only when it accepts" in shown
    sent = cli.json("invitation", "sent", token=None)
    assert [(item["email"], item["role"]) for item in sent] == [(email, "operator")]
    assert email not in {user["email"] for user in cli.json("user", "list", token=None)}

    assert _log_in(cli, email, password).returncode == 0
    mine = cli.json("invitation", "list", token=None)
    assert [item["organization_name"] for item in mine] == [branch["name"]]
    assert branch["name"] in cli.ok("invitation", "list", token=None)
    accepted = cli.ok("invitation", "accept", str(mine[0]["id"]), token=None)
    assert f"You joined {branch['name']} as operator" in accepted
    assert f"--organization {branch['id']}" in accepted
    assert "No invitations" in cli.ok("invitation", "list", token=None)

    there = _log_in(cli, email, password, "--organization", str(branch["id"]))
    assert there.returncode == 0, there.stderr
    assert "(operator)" in there.stderr
    assert cli.json("site", "list", token=None) == []
    assert cli.json("site", "list") != []


def test_declined_and_revoked_invitations_leave_no_membership(cli: Cli) -> None:  # noqa: F811
    email, password, _ = _new_account(cli, "decliner")
    branch = httpx2.post(
        f"{cli.console.url}/api/v1/organizations",
        headers={"Authorization": f"Bearer {cli.console.token}"},
        json={"name": f"Depot {os.getpid()}", "join": True},
    ).json()
    assert _log_in(
        cli, cli.console.admin_email, cli.console.admin_password,
        "--organization", str(branch["id"]),
    ).returncode == 0  # fmt: skip
    first = cli.json("user", "invite", email, token=None)["invitation"]["id"]
    assert "Revoked invitation" in cli.ok("invitation", "revoke", str(first), token=None)
    assert "No pending invitations" in cli.ok("invitation", "sent", token=None)
    second = cli.json("user", "invite", email, token=None)["invitation"]["id"]

    assert _log_in(cli, email, password).returncode == 0
    gone = cli.run("invitation", "accept", str(first), token=None)
    assert gone.returncode == 1
    assert f"invitation {first} does not exist" in gone.stderr
    assert "Declined" in cli.ok("invitation", "decline", str(second), token=None)
    refused = _log_in(cli, email, password, "--organization", str(branch["id"]))
    assert refused.returncode == 1
    assert "not a member" in refused.stderr


def test_you_change_your_own_password_and_your_other_sessions_end(cli: Cli) -> None:  # noqa: F811
    email, password, user_id = _new_account(cli, "rotator")
    assert _log_in(cli, email, password).returncode == 0
    token = cli.json("token", "create", "ci", token=None)["token"]
    assert cli.run("user", "passwd", "--password-stdin", token=None,
                   stdin="not my password\na brand new password\n").returncode == 1  # fmt: skip
    short = cli.run("user", "passwd", "--password-stdin", token=None, stdin=f"{password}\nshort\n")
    assert short.returncode == 1
    assert "at least 12 characters" in short.stderr
    changed = cli.ok(
        "user", "passwd", "--password-stdin", token=None,
        stdin=f"{password}\na brand new password\n",
    )  # fmt: skip
    assert "Changed your password; 1 other session or token was revoked." in changed
    assert cli.run("user", "passwd", "--password-stdin", token=None, stdin="\n").returncode == 2
    assert cli.json("invitation", "list", token=None) == []
    assert cli.run("task", "list", token=token).returncode == 4
    assert _log_in(cli, email, password).returncode == 4
    assert _log_in(cli, email, "a brand new password").returncode == 0
    account = cli.json("account", "show", str(user_id))
    assert account["email"] == email


def test_an_admin_cannot_set_another_accounts_password_from_the_cli(
    cli: Cli,  # noqa: F811
) -> None:
    email, password, user_id = _new_account(cli, "guarded")
    admin_email, admin_password, admin_id = _new_account(cli, "plainadmin")
    cli.ok("user", "role", str(admin_id), "admin")
    assert _log_in(cli, admin_email, admin_password).returncode == 0
    refused = cli.run(
        "account", "edit", str(user_id), "--password-stdin", token=None,
        stdin="chosen by an admin\n",
    )  # fmt: skip
    assert refused.returncode == 1
    assert "superusers" in refused.stderr
    assert _log_in(cli, email, password).returncode == 0


def test_bad_user_commands_are_refused_with_a_message_and_change_nothing(
    cli: Cli,  # noqa: F811
) -> None:
    before = cli.json("user", "list")
    bad_email = cli.run("user", "invite", "not-an-email")
    assert bad_email.returncode == 1
    assert "email" in bad_email.stderr
    nothing = cli.run("account", "edit", str(before[0]["id"]))
    assert nothing.returncode == 2
    assert "nothing to change" in nothing.stderr
    bad_role = cli.run("user", "role", str(before[0]["id"]), "owner")
    assert bad_role.returncode == 2
    short = cli.run("user", "invite", _email("short"), "--password-stdin", stdin="short\n")
    assert short.returncode == 1
    assert "12" in short.stderr
    myself = next(user for user in before if user["email"] == cli.console.admin_email)
    demote = cli.run("user", "role", str(myself["id"]), "viewer")
    assert demote.returncode == 1
    assert "cannot demote" in demote.stderr
    missing = cli.run("user", "show", "999999")
    assert missing.returncode == 1
    assert "999999" in missing.stderr
    assert cli.json("user", "list") == before


def test_sites_are_created_edited_listed_and_deleted(cli: Cli) -> None:  # noqa: F811
    name = f"branch-{os.getpid()}"
    site = cli.json(
        "site", "create", name, "--scope", "127.20.0.0/24", "--excludes", "127.20.0.1",
        "--description", "the branch office",
    )  # fmt: skip
    assert site["scope_size"] == 255
    assert site["name"] in cli.ok("site", "list")

    bad = cli.run("site", "edit", str(site["id"]), "--scope", "127.20.0.0/24 127.20.0.0/33")
    assert bad.returncode == 1
    assert "127.20.0.0/33" in bad.stderr
    assert cli.json("site", "show", str(site["id"]))["scope"] == "127.20.0.0/24"

    changed = cli.ok("site", "edit", str(site["id"]), "--scope", "127.20.0.0/23")
    assert "511 addresses in scope" in changed
    task = cli.json("task", "create", "branch scan", "--site", name)
    assert task["site_id"] == site["id"]
    assert task["params"]["targets"] == "127.20.0.0/23"

    assert "Deleted site" in cli.ok("site", "delete", str(site["id"]))
    assert site["id"] not in {item["id"] for item in cli.json("site", "list")}


def test_hosted_zones_and_enrollment_tokens_are_listed(cli: Cli) -> None:  # noqa: F811
    zone_name = f"dmz-{os.getpid()}"
    zone = cli.json("zone", "create", zone_name, "--max-concurrent", "3")
    zones = {item["name"]: item for item in cli.json("zone", "list")}
    assert zones[zone_name]["max_concurrent"] == 3
    assert zone_name in cli.ok("zone", "list")
    assert "Deleted hosted zone" in cli.ok("zone", "delete", str(zone["id"]))
    assert zone_name not in cli.ok("zone", "list")

    created = cli.json("enrollment", "create", f"branch-{os.getpid()}")
    listed = {item["id"]: item for item in cli.json("enrollment", "list")}
    assert created["id"] in listed
    assert created["token"] not in cli.ok("enrollment", "list")
    assert "Revoked" in cli.ok("enrollment", "revoke", str(created["id"]))
    revoked = {item["id"]: item for item in cli.json("enrollment", "list")}[created["id"]]
    assert revoked["revoked_at"] is not None


def test_an_enrollment_token_lasts_seven_days_unless_the_command_says_otherwise(
    cli: Cli,  # noqa: F811
) -> None:
    before = datetime.now(UTC)
    default = cli.json("enrollment", "create", f"week-{os.getpid()}")
    assert datetime.fromisoformat(default["expires_at"]) >= before + timedelta(days=7)
    assert default["max_uses"] is None

    shown = cli.ok(
        "enrollment", "create", f"forever-{os.getpid()}", "--no-expiry", "--max-uses", "3"
    )
    assert "It never expires" in shown
    assert "at most 3 explorer(s)" in shown
    listed = {item["name"]: item for item in cli.json("enrollment", "list")}
    forever = listed[f"forever-{os.getpid()}"]
    assert (forever["expires_at"], forever["max_uses"], forever["state"]) == (None, 3, "usable")
    row = next(line for line in cli.ok("enrollment", "list").splitlines() if "forever-" in line)
    assert "0 of 3" in row
    assert "never" in row

    both = cli.run("enrollment", "create", "confused", "--no-expiry", "--expires-days", "2")
    assert both.returncode == 2
    assert "--no-expiry" in both.stderr


def test_names_with_hidden_characters_are_listed_with_escapes(cli: Cli) -> None:  # noqa: F811
    site = cli.json("site", "create", f"Bra\u200bnch-{os.getpid()}", "--scope", "127.21.0.0/30")
    cli.json("task", "create", f"invoice\u202egpj-{os.getpid()}.exe", "--site", str(site["id"]))

    sites = cli.ok("site", "list")
    tasks = cli.ok("task", "list", "--tab", "all")
    as_json = cli.ok("site", "show", str(site["id"]), "--json")

    for output in (sites, tasks, as_json):
        assert "\u200b" not in output
        assert "\u202e" not in output
    assert f"Bra\\u200bnch-{os.getpid()}" in sites
    assert f"invoice\\u202egpj-{os.getpid()}.exe" in tasks
    assert json.loads(as_json)["name"] == f"Bra\u200bnch-{os.getpid()}"


def test_an_admin_sets_a_sites_allowed_scope_from_the_cli(cli: Cli) -> None:  # noqa: F811
    name = f"fenced-{os.getpid()}"
    site = cli.json("site", "create", name, "--scope", "127.22.0.0/30")
    assert site["allowed_scope"] == ""
    assert "the scope" in cli.ok("site", "show", str(site["id"]))

    edited = cli.json("site", "edit", str(site["id"]), "--allowed-scope", "127.22.0.0/24")
    shown = cli.ok("site", "show", str(site["id"]))
    bad = cli.run("site", "edit", str(site["id"]), "--allowed-scope", "127.22.0.0/33")
    other = cli.json("site", "create", f"wide-{os.getpid()}", "--allowed-scope", "127.23.0.0/16")

    assert edited["allowed_scope"] == "127.22.0.0/24"
    assert "127.22.0.0/24" in shown
    assert bad.returncode == 1
    assert "127.22.0.0/33" in bad.stderr
    assert other["allowed_scope"] == "127.23.0.0/16"
    reset = cli.json("site", "edit", str(site["id"]), "--allowed-scope", "")
    assert reset["allowed_scope"] == ""
