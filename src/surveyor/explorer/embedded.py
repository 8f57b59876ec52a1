"""The explorer `surveyor up` runs beside its console, so the default install scans out of
the box. It speaks the same HTTP protocol as any explorer, over loopback.

At its first start it enrolls with a one-time enrollment token it creates directly in the
store (revoked right after use) and keeps its identity in `<data dir>/embedded-explorer/`.
It has no site, so it runs the scans of every site that name no explorer or zone.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from pathlib import Path

from surveyor.core.clock import SYSTEM_CLOCK
from surveyor.explorer.agent import Agent, Backoff
from surveyor.explorer.client import ExplorerClient, ExplorerRejected, Refused
from surveyor.explorer.host import describe_host
from surveyor.explorer.identity import Identity, load_identity, save_identity

log = logging.getLogger("surveyor.explorer.embedded")

STATE_DIR = "embedded-explorer"
EXPLORER_NAME = "embedded"
TOKEN_LIFETIME = timedelta(minutes=10)


def _one_time_token(database_url: str) -> tuple[int, int, str]:
    """(organization id, token id, plaintext) of a short-lived token for the first
    organization, created in the store."""
    from surveyor.store import accounts
    from surveyor.store import explorers as explorer_store
    from surveyor.store.engine import Database, make_engine

    db = Database(make_engine(database_url))
    try:
        with db.write() as conn:
            organization = accounts.list_organizations(conn)[0]
            now = SYSTEM_CLOCK.now()
            row, plaintext = explorer_store.create_enrollment_token(
                conn,
                organization["id"],
                name="embedded explorer (first start)",
                created_by="system",
                now=now,
                expires_at=now + TOKEN_LIFETIME,
            )
        return organization["id"], row["id"], plaintext
    finally:
        db.dispose()


def _revoke(database_url: str, organization_id: int, token_id: int) -> None:
    from surveyor.store import explorers as explorer_store
    from surveyor.store.engine import Database, make_engine

    db = Database(make_engine(database_url))
    try:
        with db.write() as conn:
            explorer_store.revoke_enrollment_token(
                conn, organization_id, token_id, now=SYSTEM_CLOCK.now()
            )
    finally:
        db.dispose()


def _enroll(client: ExplorerClient, console_url: str, database_url: str) -> Identity:
    organization_id, token_id, token = _one_time_token(database_url)
    host = describe_host(console_url)
    try:
        try:
            enrolled = client.enroll(token, host, name=EXPLORER_NAME)
        except Refused:
            enrolled = client.enroll(token, host, name=None)
    finally:
        _revoke(database_url, organization_id, token_id)
    return Identity(
        console=console_url,
        explorer_id=enrolled.explorer_id,
        organization_id=enrolled.organization_id,
        name=enrolled.name,
        secret=enrolled.secret,
    )


def run_embedded_explorer(
    console_url: str, data_dir: Path, database_url: str, shutdown: threading.Event
) -> None:
    """Wait for the console to be healthy, enroll once, then run scans until shut down."""
    state_dir = data_dir / STATE_DIR
    with ExplorerClient(console_url) as client:
        backoff = Backoff(0.2, 5.0)
        while not client.healthy():
            if shutdown.wait(backoff.next_delay()):
                return
        identity = load_identity(state_dir)
        if identity is None:
            identity = _enroll(client, console_url, database_url)
            save_identity(state_dir, identity)
            log.info("the embedded explorer enrolled as '%s'", identity.name)
        client.secret = identity.secret
        agent = Agent(client, state_dir, host=lambda: describe_host(console_url), shutdown=shutdown)
        try:
            agent.run()
        except ExplorerRejected as exc:
            log.warning(
                "the embedded explorer stopped: %s (delete %s to enroll it again)", exc, state_dir
            )


def start_embedded_explorer(console_url: str, data_dir: Path, database_url: str) -> threading.Event:
    """Run the embedded explorer in a daemon thread; set the returned event to stop it."""
    shutdown = threading.Event()

    def run() -> None:
        try:
            run_embedded_explorer(console_url, data_dir, database_url, shutdown)
        except Exception:
            log.exception("the embedded explorer failed")

    threading.Thread(target=run, name="surveyor-embedded-explorer", daemon=True).start()
    return shutdown
