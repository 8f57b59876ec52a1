"""First start: an organization, a default site scoped to loopback, and the first admin."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from surveyor.security.passwords import generate_password, password_problem
from surveyor.security.tokens import token_from_plaintext
from surveyor.store import accounts
from surveyor.store.engine import Database
from surveyor.store.records import audit, create_record
from surveyor.store.schema import sites

DEFAULT_ORGANIZATION = "Default"
DEFAULT_SITE = "Primary"
DEFAULT_SCOPE = "127.0.0.1"
DEFAULT_ADMIN_EMAIL = "admin@surveyor.local"
CREDENTIALS_FILE = "initial-admin.txt"
#: A bootstrap token is chosen outside Surveyor, not issued with 256 random bits; its length
#: is the one sign of strength that can be checked.
MIN_BOOTSTRAP_TOKEN_LENGTH = 32
MAX_BOOTSTRAP_TOKEN_LENGTH = 512


class BootstrapSettingRefused(ValueError):
    """A first-start setting from the environment that Surveyor will not use."""


@dataclass(frozen=True)
class FirstStartSettings:
    """What the environment asks the first start to create (unset values are None)."""

    email: str
    password: str | None
    token: str | None

    @classmethod
    def from_environment(cls) -> FirstStartSettings:
        """The settings, or `BootstrapSettingRefused` naming the variable and its rule."""
        password = os.environ.get("SURVEYOR_ADMIN_PASSWORD") or None
        token = os.environ.get("SURVEYOR_BOOTSTRAP_TOKEN") or None
        if password is not None and (problem := password_problem(password)) is not None:
            raise BootstrapSettingRefused(f"SURVEYOR_ADMIN_PASSWORD is refused: {problem}")
        if token is not None and len(token) < MIN_BOOTSTRAP_TOKEN_LENGTH:
            raise BootstrapSettingRefused(
                f"SURVEYOR_BOOTSTRAP_TOKEN is refused: it must be at least "
                f"{MIN_BOOTSTRAP_TOKEN_LENGTH} characters long (it has {len(token)}); "
                "choose a long random secret, such as the output of `openssl rand -hex 32`"
            )
        if token is not None and len(token) > MAX_BOOTSTRAP_TOKEN_LENGTH:
            raise BootstrapSettingRefused(
                f"SURVEYOR_BOOTSTRAP_TOKEN is refused: it must be at most "
                f"{MAX_BOOTSTRAP_TOKEN_LENGTH} characters long"
            )
        email = os.environ.get("SURVEYOR_ADMIN_EMAIL") or DEFAULT_ADMIN_EMAIL
        return cls(email=email, password=password, token=token)


@dataclass(frozen=True)
class Bootstrap:
    """What the first start created; the password is known only when it was generated."""

    email: str
    generated_password: str | None
    credentials_file: Path | None


def bootstrap_if_empty(db: Database, data_dir: Path, *, now: datetime) -> Bootstrap | None:
    """Create the first organization, site and admin once (at `now`); later starts do
    nothing. A weak password or token in the environment is refused
    (`BootstrapSettingRefused`) and nothing is created."""
    chosen = FirstStartSettings.from_environment()
    email, chosen_password, bootstrap_token = chosen.email, chosen.password, chosen.token
    with db.write() as conn:
        if accounts.count_users(conn) > 0:
            return None
        password = chosen_password or generate_password()
        org = accounts.create_organization(conn, DEFAULT_ORGANIZATION, now=now)
        create_record(
            conn,
            sites,
            org["id"],
            {
                "name": DEFAULT_SITE,
                "description": "Created on first start; scoped to this machine's loopback address.",
                "scope": DEFAULT_SCOPE,
                "excludes": "",
            },
            now=now,
        )
        user = accounts.create_user(
            conn, email, password=password, name="Administrator", is_superuser=True, now=now
        )
        accounts.set_membership(conn, org["id"], user["id"], accounts.Role.ADMIN, now=now)
        if bootstrap_token:
            accounts.create_token(
                conn,
                user_id=user["id"],
                organization_id=org["id"],
                name="bootstrap",
                issued=token_from_plaintext(bootstrap_token),
                now=now,
            )
        audit(
            conn,
            organization_id=org["id"],
            actor="system",
            action="bootstrap",
            object_type="organization",
            object_id=org["id"],
            details={"admin": email},
            at=now,
        )
    if chosen_password:
        return Bootstrap(email, None, None)
    path = data_dir / CREDENTIALS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(
            f"# Surveyor first admin, created {now.isoformat(timespec='seconds')}\n"
            f"email: {email}\npassword: {password}\n"
            "# Change the password after logging in, then delete this file.\n"
        )
    return Bootstrap(email, password, path)
