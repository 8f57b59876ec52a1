"""Credentials without a database: sealing secrets with the key, finding the key, and what a
complete credential of each kind holds."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from surveyor.core.credentials import CredentialInvalid, CredentialKind, check_fields
from surveyor.security.secretbox import (
    KEY_ENV,
    KEY_FILE,
    KEY_FILE_ENV,
    SecretBox,
    SecretDamaged,
    SecretKeyError,
    WrongSecretKey,
    associated_data,
    encode_key,
    load_secret_box,
    new_key,
)

SECRET = "correct horse battery staple"


def test_a_sealed_secret_opens_with_its_key_and_shows_neither_secret_nor_key() -> None:
    box = SecretBox(new_key())
    sealed = box.seal(SECRET, aad=associated_data(1, "password"))

    assert box.open(sealed, aad=associated_data(1, "password")) == SECRET
    assert SECRET not in sealed
    assert sealed.startswith(f"v1.{box.key_id}.")
    assert encode_key(box.key) not in sealed
    assert encode_key(box.key) not in repr(box)
    # A fresh nonce each time: the same secret never seals to the same text.
    assert box.seal(SECRET, aad=associated_data(1, "password")) != sealed


def test_a_secret_sealed_with_another_key_is_refused_naming_both_keys() -> None:
    theirs, mine = SecretBox(new_key()), SecretBox(new_key())
    sealed = theirs.seal(SECRET, aad=associated_data(1, "password"))

    with pytest.raises(WrongSecretKey) as refused:
        mine.open(sealed, aad=associated_data(1, "password"))

    message = str(refused.value)
    assert theirs.key_id in message
    assert mine.key_id in message
    assert "SURVEYOR_SECRET_KEY" in message
    assert SECRET not in message


@pytest.mark.parametrize(
    ("credential_id", "field"), [(2, "password"), (1, "community")], ids=["row", "field"]
)
def test_a_sealed_secret_moved_to_another_credential_or_field_does_not_open(
    credential_id: int, field: str
) -> None:
    box = SecretBox(new_key())
    sealed = box.seal(SECRET, aad=associated_data(1, "password"))

    with pytest.raises(SecretDamaged):
        box.open(sealed, aad=associated_data(credential_id, field))


def test_the_first_start_creates_a_key_only_its_owner_can_read_and_keeps_it(
    tmp_path: Path,
) -> None:
    first = load_secret_box(tmp_path, {})
    key_file = tmp_path / KEY_FILE

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key_file.chmod(0o644)
    assert load_secret_box(tmp_path, {}).key_id == first.key_id
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_the_key_from_the_environment_or_a_key_file_wins_over_the_data_directory(
    tmp_path: Path,
) -> None:
    key = new_key()
    key_file = tmp_path / "shared.key"
    key_file.write_text(encode_key(key) + "\n")

    from_env = load_secret_box(tmp_path, {KEY_ENV: encode_key(key)})
    from_file = load_secret_box(tmp_path, {KEY_FILE_ENV: str(key_file)})

    assert from_env.key_id == from_file.key_id == SecretBox(key).key_id
    assert not (tmp_path / KEY_FILE).exists()


@pytest.mark.parametrize(
    ("environ", "said"),
    [
        ({KEY_ENV: "not base64!"}, "SURVEYOR_SECRET_KEY is not base64 text"),
        ({KEY_ENV: base64.b64encode(b"short").decode()}, "holds 5 bytes; a key is 32 bytes"),
        ({KEY_FILE_ENV: "/nonexistent/surveyor.key"}, "cannot be read"),
    ],
)
def test_a_bad_key_setting_is_refused_naming_it(
    tmp_path: Path, environ: dict[str, str], said: str
) -> None:
    with pytest.raises(SecretKeyError, match=said):
        load_secret_box(tmp_path, environ)


def _refusal(kind: CredentialKind, plain: dict[str, str], secrets: dict[str, str]) -> str:
    with pytest.raises(CredentialInvalid) as refused:
        check_fields(kind, plain, secrets)
    assert "hunter2hunter2" not in refused.value.message
    return refused.value.field


def test_complete_credentials_of_each_kind_pass() -> None:
    check_fields(CredentialKind.LDAP, {"bind_dn": "cn=svc,dc=lab"}, {"password": "p"})
    check_fields(CredentialKind.SNMP, {"version": "2c"}, {"community": "public"})
    check_fields(
        CredentialKind.SNMP,
        {"version": "3", "user": "ops", "auth_protocol": "SHA", "priv_protocol": "AES"},
        {"auth_key": "authpass1", "priv_key": "privpass1"},
    )
    check_fields(CredentialKind.DNS, {}, {})
    check_fields(
        CredentialKind.DNS,
        {"tsig_name": "xfr", "tsig_algorithm": "hmac-sha256"},
        {"tsig_secret": base64.b64encode(b"k" * 32).decode()},
    )


def test_what_is_missing_or_wrong_is_named_by_field_never_by_value() -> None:
    assert _refusal(CredentialKind.LDAP, {"bind_dn": "cn=svc"}, {}) == "password"
    assert _refusal(CredentialKind.SNMP, {"version": "2c"}, {}) == "community"
    assert _refusal(CredentialKind.SNMP, {"version": "4"}, {"community": "c"}) == "version"
    v3 = {"version": "3", "user": "ops", "auth_protocol": "SHA", "priv_protocol": "AES"}
    assert _refusal(CredentialKind.SNMP, v3, {"auth_key": "hunter2hunter2"}) == "priv_key"
    assert (
        _refusal(CredentialKind.SNMP, v3, {"auth_key": "short", "priv_key": "hunter2hunter2"})
        == "auth_key"
    )
    assert _refusal(CredentialKind.DNS, {"tsig_name": "xfr"}, {}) == "tsig_secret"
    assert _refusal(CredentialKind.DNS, {}, {"tsig_secret": "hunter2hunter2!"}) == "tsig_secret"
    assert _refusal(CredentialKind.LDAP, {"bind_dn": "cn", "port": "1"}, {"password": "p"}) == (
        "port"
    )


def test_a_stored_secret_counts_as_present_on_an_edit() -> None:
    check_fields(CredentialKind.LDAP, {"bind_dn": "cn=svc,dc=lab"}, {}, secrets_kept=("password",))
