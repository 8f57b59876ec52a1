"""Credentials on each backend: the API and the pages, verify through a connector, a console
on another key, and rotating the key.

The connector here is a stand-in registered for the test (the real ones are tested against
real servers elsewhere): it records what it was given and answers as a directory would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from surveyor.connectors import base
from surveyor.connectors.base import ConnectorConfig, ConnectorError, Progress, no_progress
from surveyor.security.secretbox import KEY_ENV, SecretBox, encode_key, new_key
from surveyor.service.credentials import CredentialRefused, open_fields, rotate_secrets
from surveyor.store import credentials as credential_store
from surveyor.store.engine import Database
from tests.integration.test_web_sessions import signed_in
from tests.support.console import ConsoleUnderTest, running_console

PASSWORD = "the directory's password"
DIRECTORY = {"bind_dn": "cn=svc,dc=lab", "password": PASSWORD}


@dataclass
class StandInDirectory:
    """A connector of kind `ldap` that accepts PASSWORD, and whose failure message carries
    the password it was given (as a careless connector might)."""

    name: str = "ldap"
    credential_kind: str = "ldap"
    seen: list[Mapping[str, str]] = field(default_factory=list)

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        if set(options) - {"base_dn", "tls"}:
            raise ValueError(f"unknown option {sorted(set(options) - {'base_dn', 'tls'})[0]!r}")
        return {"tls": "none", **options}

    def verify(self, config: ConnectorConfig) -> str:
        self.seen.append(dict(config.credential))
        bind_dn = config.credential["bind_dn"]
        if config.credential.get("password") != PASSWORD:
            raise ConnectorError(
                f"bind as {bind_dn} to {config.server} failed: invalid credentials "
                f"(password {config.credential.get('password')})"
            )
        return f"bound as {bind_dn} to {config.server}"

    def fetch(
        self, config: ConnectorConfig, progress: Progress = no_progress
    ) -> Iterator[dict[str, Any]]:
        return iter(())


@pytest.fixture
def directory(monkeypatch: pytest.MonkeyPatch) -> StandInDirectory:
    connector = StandInDirectory()
    monkeypatch.setitem(base._REGISTRY, "ldap", connector)
    return connector


def create(console: ConsoleUnderTest, **body: Any) -> dict[str, Any]:
    values = {"name": "directory", "kind": "ldap", "fields": DIRECTORY, **body}
    response = console.admin.post("/api/v1/credentials", json=values)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def audit_of(console: ConsoleUnderTest, credential_id: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = console.admin.get(
        "/api/v1/audit",
        params={"object_type": "credential", "object_id": credential_id, "limit": 100},
    ).json()["items"]
    return items[::-1]


def test_a_credential_reads_back_with_its_secrets_only_as_set(console: ConsoleUnderTest) -> None:
    created = create(console)

    assert created["kind"] == "ldap"
    assert created["site_ids"] == []
    assert created["fields"]["bind_dn"] == "cn=svc,dc=lab"
    password = created["fields"]["password"]
    assert password["set"] is True
    assert password["set_at"] == created["created_at"]
    assert created["last_used_at"] is None
    assert console.admin.get(f"/api/v1/credentials/{created['id']}").json() == created
    assert console.admin.get("/api/v1/credentials").json() == [created]


def test_an_edit_replaces_the_secrets_it_gives_and_keeps_the_others(
    console: ConsoleUnderTest, directory: StandInDirectory
) -> None:
    created = create(console, name="zone transfer", kind="dns", fields={})
    assert created["fields"]["tsig_secret"] == {"set": False, "set_at": None}
    credential_id = created["id"]

    tsig = {"tsig_name": "xfr", "tsig_algorithm": "hmac-sha256", "tsig_secret": "c2VjcmV0"}
    with_key = console.admin.patch(f"/api/v1/credentials/{credential_id}", json={"fields": tsig})
    assert with_key.status_code == 200, with_key.text
    assert with_key.json()["fields"]["tsig_secret"]["set"] is True

    renamed = console.admin.patch(
        f"/api/v1/credentials/{credential_id}", json={"name": "transfers"}
    ).json()
    assert renamed["name"] == "transfers"
    assert renamed["fields"]["tsig_secret"] == with_key.json()["fields"]["tsig_secret"]

    half = console.admin.patch(
        f"/api/v1/credentials/{credential_id}", json={"fields": {"tsig_secret": None}}
    )
    assert half.status_code == 400
    assert half.json()["error"]["details"] == {"field": "tsig_secret"}
    cleared = console.admin.patch(
        f"/api/v1/credentials/{credential_id}",
        json={"fields": {"tsig_name": None, "tsig_algorithm": None, "tsig_secret": None}},
    ).json()
    assert cleared["fields"] == {"tsig_secret": {"set": False, "set_at": None}}

    ldap = create(console)
    changed = console.admin.patch(
        f"/api/v1/credentials/{ldap['id']}", json={"fields": {"password": "a new one"}}
    ).json()
    assert changed["fields"]["password"]["set"] is True
    answer = console.admin.post(
        f"/api/v1/credentials/{ldap['id']}/verify", json={"server": "127.0.0.1:3890"}
    ).json()
    assert answer["ok"] is False  # the directory wants the old password
    assert directory.seen[-1]["password"] == "a new one"


def test_a_credential_that_is_incomplete_or_badly_aimed_is_refused_in_words(
    console: ConsoleUnderTest,
) -> None:
    def refused(body: dict[str, Any]) -> dict[str, Any]:
        response = console.admin.post("/api/v1/credentials", json=body)
        assert response.status_code in (400, 409, 422), response.text
        error: dict[str, Any] = response.json()["error"]
        return error

    no_password = refused({"name": "d", "kind": "ldap", "fields": {"bind_dn": "cn=svc"}})
    assert no_password["code"] == "invalid_credential"
    assert no_password["message"] == "LDAP credentials need password"
    v3 = refused(
        {"name": "s", "kind": "snmp", "fields": {"version": "3", "user": "ops", "community": "c"}}
    )
    assert v3["details"] == {"field": "auth_protocol"}
    elsewhere = refused({"name": "d", "kind": "ldap", "fields": DIRECTORY, "site_ids": [99999]})
    assert elsewhere["message"] == "site 99999 does not exist"
    assert refused({"name": "d", "kind": "ftp", "fields": {}})["code"] == "invalid_request"
    create(console)
    taken = refused({"name": "directory", "kind": "ldap", "fields": DIRECTORY})
    assert taken["code"] == "conflict"
    kind_change = console.admin.patch("/api/v1/credentials/1", json={"kind": "dns"})
    assert kind_change.status_code == 422


def test_verify_answers_in_plain_words_and_marks_the_credential_used(
    console: ConsoleUnderTest, directory: StandInDirectory
) -> None:
    credential = create(console)
    path = f"/api/v1/credentials/{credential['id']}/verify"

    worked = console.admin.post(path, json={"server": "127.0.0.1:3890"})
    assert worked.status_code == 200, worked.text
    assert worked.json() == {
        "credential_id": credential["id"],
        "server": "127.0.0.1:3890",
        "ok": True,
        "message": "bound as cn=svc,dc=lab to 127.0.0.1:3890",
    }
    assert directory.seen == [DIRECTORY]
    used = console.admin.get(f"/api/v1/credentials/{credential['id']}").json()
    assert used["last_used_at"] is not None
    assert used["updated_at"] == credential["updated_at"]

    bad_option = console.admin.post(path, json={"server": "127.0.0.1", "options": {"bogus": 1}})
    assert bad_option.status_code == 400
    assert bad_option.json()["error"] == {
        "code": "invalid_options",
        "message": "unknown option 'bogus'",
        "details": {},
    }
    bad_server = console.admin.post(path, json={"server": "two words"})
    assert bad_server.status_code == 400
    assert bad_server.json()["error"]["code"] == "invalid_server"


def test_verify_never_repeats_a_secret_a_connector_says(
    console: ConsoleUnderTest, directory: StandInDirectory
) -> None:
    credential = create(console, fields={"bind_dn": "cn=svc,dc=lab", "password": "wrong-pass"})

    answer = console.admin.post(
        f"/api/v1/credentials/{credential['id']}/verify", json={"server": "127.0.0.1:3890"}
    ).json()

    assert answer["ok"] is False
    assert answer["message"] == (
        "bind as cn=svc,dc=lab to 127.0.0.1:3890 failed: invalid credentials (password [secret])"
    )


def test_verify_without_a_connector_of_the_kind_says_so(console: ConsoleUnderTest) -> None:
    credential = create(
        console, name="switches", kind="snmp", fields={"version": "2c", "community": "c"}
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.delitem(base._REGISTRY, "snmp", raising=False)
        answer = console.admin.post(
            f"/api/v1/credentials/{credential['id']}/verify", json={"server": "127.0.0.1:161"}
        )
    assert answer.status_code == 200
    assert answer.json()["ok"] is False
    assert answer.json()["message"].startswith("there is no connector named 'snmp'")


def test_every_change_is_audited_by_field_name(
    console: ConsoleUnderTest, directory: StandInDirectory
) -> None:
    credential = create(console)
    credential_id = credential["id"]
    console.admin.patch(
        f"/api/v1/credentials/{credential_id}",
        json={"name": "renamed", "fields": {"password": "another"}},
    )
    console.admin.post(
        f"/api/v1/credentials/{credential_id}/verify", json={"server": "127.0.0.1:3890"}
    )
    console.admin.delete(f"/api/v1/credentials/{credential_id}")

    trail = audit_of(console, credential_id)
    assert [(entry["action"], entry["actor"]) for entry in trail] == [
        ("create", "admin@example.test"),
        ("edit", "admin@example.test"),
        ("verify", "admin@example.test"),
        ("delete", "admin@example.test"),
    ]
    assert trail[0]["details"]["secrets_set"] == ["password"]
    assert trail[0]["details"]["fields"] == ["bind_dn"]
    assert trail[1]["details"]["changed"] == ["name"]
    assert trail[1]["details"]["secrets_set"] == ["password"]
    assert trail[2]["details"] == {"server": "127.0.0.1:3890", "ok": False}
    assert console.admin.get(f"/api/v1/credentials/{credential_id}").status_code == 404


def test_a_console_on_another_key_refuses_the_secrets_naming_both_keys(
    console: ConsoleUnderTest,
    directory: StandInDirectory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    credential = create(console)
    ours = console.client.app.state.console.secret_box  # type: ignore[attr-defined]
    other_key = new_key()
    monkeypatch.setenv(KEY_ENV, encode_key(other_key))
    with running_console(console.db, tmp_path / "second", monkeypatch) as second:
        listed = second.admin.get("/api/v1/credentials")
        answer = second.admin.post(
            f"/api/v1/credentials/{credential['id']}/verify", json={"server": "127.0.0.1:3890"}
        )

    assert listed.status_code == 200  # reading needs no key
    assert answer.status_code == 409
    error = answer.json()["error"]
    assert error["code"] == "wrong_secret_key"
    assert error["message"] == (
        f"credential 'directory' was encrypted with key {ours.key_id}; this console has key "
        f"{SecretBox(other_key).key_id}: set SURVEYOR_SECRET_KEY (or SURVEYOR_SECRET_KEY_FILE) "
        "to the key the other consoles use, or run `surveyor secrets rotate` where that key is"
    )
    assert directory.seen == []


def test_rotation_reseals_every_secret_and_the_old_key_then_refuses(
    db: Database, console: ConsoleUnderTest
) -> None:
    old: SecretBox = console.client.app.state.console.secret_box  # type: ignore[attr-defined]
    first = create(console)
    create(console, name="switches", kind="snmp", fields={"version": "2c", "community": "pub"})
    _, outsider = console.other_organization()
    outsider.post(
        "/api/v1/credentials", json={"name": "theirs", "kind": "ldap", "fields": DIRECTORY}
    )
    new = SecretBox(new_key())

    with db.write() as conn:
        done = rotate_secrets(conn, old, new)
    with db.write() as conn:
        again = rotate_secrets(conn, old, new)

    assert (done.credentials, done.secrets, done.already) == (3, 3, 0)
    assert (again.credentials, again.secrets, again.already) == (0, 0, 3)
    with db.read() as conn:
        stored = credential_store.get_credential(conn, console.organization_id, first["id"])
    assert stored is not None
    assert open_fields(stored, new) == DIRECTORY
    with pytest.raises(CredentialRefused, match=f"encrypted with key {new.key_id}"):
        open_fields(stored, old)
    after = console.admin.get(f"/api/v1/credentials/{first['id']}").json()
    assert after["fields"]["password"]["set_at"] == first["fields"]["password"]["set_at"]
    assert after["updated_at"] == first["updated_at"]


# The pages


def credential_id_of(location: str) -> int:
    match = re.fullmatch(r"/credentials/(\d+)", location)
    assert match is not None, location
    return int(match.group(1))


def test_an_admin_creates_edits_verifies_and_deletes_a_credential_through_the_pages(
    console: ConsoleUnderTest, directory: StandInDirectory
) -> None:
    client, csrf = signed_in(console, "admin")
    assert 'href="/credentials"' in client.get("/tasks").text  # in the admin's navigation
    assert "No credentials yet." in client.get("/credentials").text

    made = client.post(
        "/credentials",
        data={
            "csrf_token": csrf,
            "name": "directory",
            "kind": "ldap",
            "ldap-bind_dn": "cn=svc,dc=lab",
            "ldap-password": PASSWORD,
            "snmp-user": "ignored: another kind's field",
        },
    )
    assert made.status_code == 303, made.text
    credential_id = credential_id_of(made.headers["location"])
    shown = console.admin.get(f"/api/v1/credentials/{credential_id}").json()
    assert shown["fields"]["bind_dn"] == "cn=svc,dc=lab"
    assert shown["fields"]["password"]["set"] is True

    page = client.get(f"/credentials/{credential_id}").text
    assert "<h1>directory</h1>" in page
    assert "set <time" in page
    assert PASSWORD not in page

    kept = client.post(
        f"/credentials/{credential_id}",
        data={"csrf_token": csrf, "name": "directory", "ldap-bind_dn": "cn=svc2,dc=lab"},
    )
    assert kept.status_code == 303
    verified = client.post(
        f"/credentials/{credential_id}/verify",
        data={"csrf_token": csrf, "server": "127.0.0.1:3890", "options": '{"base_dn": "dc=lab"}'},
    )
    assert verified.status_code == 200
    assert "bound as cn=svc2,dc=lab to 127.0.0.1:3890" in verified.text
    assert directory.seen[-1]["password"] == PASSWORD  # the blank secret was kept

    bad = client.post(
        f"/credentials/{credential_id}/verify",
        data={"csrf_token": csrf, "server": "127.0.0.1:3890", "options": "[1]"},
    )
    assert bad.status_code == 400
    assert "Options are a JSON object" in bad.text

    trail = client.get("/audit", params={"object_type": "credential"}).text
    assert f'href="/credentials/{credential_id}"' in trail  # entries link to the credential
    assert "Delete credential" in client.get(f"/credentials/{credential_id}/delete").text
    gone = client.post(f"/credentials/{credential_id}/delete", data={"csrf_token": csrf})
    assert gone.status_code == 303
    assert console.admin.get(f"/api/v1/credentials/{credential_id}").status_code == 404


def test_a_refused_form_comes_back_without_the_secret_it_was_given(
    console: ConsoleUnderTest,
) -> None:
    client, csrf = signed_in(console, "admin")
    secret = "a-community-nobody-may-see-again"

    refused = client.post(
        "/credentials",
        data={
            "csrf_token": csrf,
            "name": "switches",
            "kind": "snmp",
            "snmp-version": "3",
            "snmp-user": "ops",
            "snmp-auth_key": secret,
        },
    )

    assert refused.status_code == 400
    assert "SNMP credentials need auth_protocol." in refused.text
    assert 'value="ops"' in refused.text  # plain fields are kept for the next try
    assert secret not in refused.text


def test_members_below_admin_do_not_see_the_credentials_page(console: ConsoleUnderTest) -> None:
    client, _ = signed_in(console, "operator")
    assert 'href="/credentials"' not in client.get("/tasks").text
    assert client.get("/credentials").status_code == 403


# Rotating from the command line


def test_secrets_rotate_replaces_the_data_directorys_key_and_consoles_started_on_it_open_them(
    console: ConsoleUnderTest,
    db: Database,
    directory: StandInDirectory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from surveyor.cli.main import app

    credential = create(console)
    verify = f"/api/v1/credentials/{credential['id']}/verify"
    key_file = tmp_path / "secret.key"
    before = key_file.read_text()
    env = {
        "SURVEYOR_DATA": str(tmp_path),
        "SURVEYOR_DATABASE_URL": db.engine.url.render_as_string(hide_password=False),
    }

    rotated = CliRunner().invoke(app, ["secrets", "rotate"], env=env)

    assert rotated.exit_code == 0, rotated.output
    assert "Re-encrypted 1 secret(s) of 1 credential(s)" in rotated.output
    assert f"The new key is in {key_file}" in rotated.output
    assert key_file.read_text() != before
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert not (tmp_path / "secret.key.new").exists()
    stale = console.admin.post(verify, json={"server": "127.0.0.1:3890"})
    assert stale.status_code == 409
    with running_console(db, tmp_path, monkeypatch) as restarted:
        answer = restarted.admin.post(verify, json={"server": "127.0.0.1:3890"})
    assert answer.json()["ok"] is True, answer.text
    assert directory.seen == [DIRECTORY]


def test_secrets_rotate_will_not_guess_where_a_key_from_the_environment_goes(
    console: ConsoleUnderTest, db: Database, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from surveyor.cli.main import app

    env = {
        "SURVEYOR_DATA": str(tmp_path),
        "SURVEYOR_DATABASE_URL": db.engine.url.render_as_string(hide_password=False),
        KEY_ENV: encode_key(new_key()),
    }

    refused = CliRunner().invoke(app, ["secrets", "rotate"], env=env)

    assert refused.exit_code == 2
    assert "--new-key-file" in refused.output
