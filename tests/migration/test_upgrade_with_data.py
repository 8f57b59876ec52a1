"""Every earlier revision upgrades to the newest with its data intact and usable, on both
backends.

For each revision R before head: an empty database is migrated to R and filled with the rows
a console at R holds (organizations, accounts, memberships, tokens, sites, hosted zones,
enrollment tokens, explorers, tasks with their events and stored data, processing runs,
assets and their change reports, invitations, audit entries; whatever tables R has). Then it
is upgraded to head: every row must still be there with the values it was written with, and
today's console must work on it (log in, list and count tasks, stop a task, run a template,
process stored data again, poll as an explorer, enroll one, create new rows).

The seed is written once, with today's column names. At R it writes the columns R has; a
migration that adds a required column without a default fails here, naming the column, and
so does a table that has no rows in the seed.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import Column, Connection, Engine, MetaData, Table, func, inspect, select

from surveyor.console.app import create_app
from surveyor.console.state import ConsoleSettings
from surveyor.security.passwords import hash_password
from surveyor.security.tokens import issue_token
from surveyor.store.engine import Database
from surveyor.store.explorers import ENROLLMENT_TOKEN_PREFIX, EXPLORER_SECRET_PREFIX
from surveyor.store.inventory import get_asset
from surveyor.store.migrate import alembic_config, current_revision, upgrade
from surveyor.store.schema import metadata
from surveyor.store.search_index import is_search_index_table
from surveyor.store.taskdata import task_data_path
from tests.conftest import assert_tab_counts_in_step
from tests.support.asgi_client import InProcessClient
from tests.support.inventory_data import encode, host, process_all, records, service

SCRIPTS = ScriptDirectory.from_config(alembic_config())
HEAD = SCRIPTS.get_current_head()
#: Every revision before head, oldest first.
EARLIER = [script.revision for script in reversed(list(SCRIPTS.walk_revisions()))][:-1]

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
BEFORE = NOW - timedelta(days=1)
FAR = datetime(2099, 1, 1, tzinfo=UTC)
PASSWORD = "alice's password, long enough"
SCAN_PARAMS = {
    "targets": "127.0.0.0/24",
    "excludes": "",
    "tcp_ports": "22,80,443",
    "rate": 1000,
    "max_host_rate": 100,
    "max_sockets": 512,
    "probes": ["banner", "http", "tls", "rdns"],
    "host_ping": True,
    "scope_size": 256,
    "ports_count": 3,
}
#: The stored data of the processed run: one host with two services.
DATA = encode(
    records(
        [
            host(
                "127.0.0.7",
                mac="00:11:22:33:44:55",
                hostnames=["mail.example"],
                services=[service(25, banner="220 ready"), service(443, http={"status": 200})],
            )
        ],
        targets="127.0.0.0/24",
        ports="22,25,443",
    )
)
DATA_SHA256 = hashlib.sha256(DATA).hexdigest()
OUTLIER_REASON = "the only one of 40 Linux hosts with telnet (23) open"


@cache
def password_hash() -> str:
    return hash_password(PASSWORD)


def test_every_revision_but_head_is_upgraded_from() -> None:
    assert EARLIER[0] == "0001"
    assert HEAD not in EARLIER
    assert len(EARLIER) == len(set(EARLIER)) == len(list(SCRIPTS.walk_revisions())) - 1


@dataclass
class Written:
    """One seeded row: its table, its primary key, and the values written at R."""

    table: str
    key: dict[str, Any]
    values: dict[str, Any]


@dataclass
class Seeder:
    """Writes rows as the schema at one revision has them, with today's column types."""

    conn: Connection
    revision: str
    written: list[Written] = field(default_factory=list)

    def __post_init__(self) -> None:
        # The trigram search's FTS tables index other tables' rows and hold none of their own.
        names = {
            name
            for name in inspect(self.conn).get_table_names()
            if name != "alembic_version" and not is_search_index_table(name)
        }
        # One reflection of every table at once: a Table loaded on its own reflects again each
        # table its foreign keys refer to.
        schema = MetaData()
        schema.reflect(self.conn, only=sorted(names))
        self.reflected = {name: schema.tables[name] for name in names}

    def has(self, table: str, column: str | None = None) -> bool:
        return table in self.reflected and (column is None or column in self.reflected[table].c)

    def add(self, name: str, /, **values: Any) -> int | None:
        """Insert a row if the table exists at this revision; its id (for tables with one)."""
        if name not in self.reflected:
            return None
        reflected = self.reflected[name]
        head = metadata.tables.get(name)
        known = set(reflected.c.keys()) | (set(head.c.keys()) if head is not None else set())
        assert set(values) <= known, f"the seed names no such columns: {set(values) - known}"
        row = {key: value for key, value in values.items() if key in reflected.c}
        missing = [
            column.name
            for column in reflected.columns
            if not column.nullable
            and column.server_default is None
            and column.name not in row
            and not (column.primary_key and column.name == "id")
        ]
        assert not missing, (
            f"at revision {self.revision}, {name} requires {missing}: give the seed values"
        )
        table = Table(
            name,
            MetaData(),
            *(
                Column(
                    column.name,
                    head.c[column.name].type
                    if head is not None and column.name in head.c
                    else column.type,
                    primary_key=column.primary_key,
                )
                for column in reflected.columns
            ),
        )
        keys = [column.name for column in table.primary_key]
        if keys == ["id"]:
            row_id = int(
                self.conn.execute(table.insert().values(row).returning(table.c.id)).one()[0]
            )
            self.written.append(Written(name, {"id": row_id}, row))
            return row_id
        self.conn.execute(table.insert().values(row))
        self.written.append(Written(name, {key: row[key] for key in keys}, row))
        return None

    def count(self, table: str) -> int:
        return sum(1 for row in self.written if row.table == table)


@dataclass
class Seed:
    """What the checks need to know about the seeded rows."""

    revision: str
    acme: int
    other: int
    api_token: str
    bob_token: str
    explorer_secret: str
    enrollment_token: str
    later: int
    template: int
    processed: int
    hidden_failed: int
    asset: int | None
    tasks_by_tab: Counter[str]
    event_count: dict[int, int]
    written: list[Written]
    has: dict[str, bool]


def _task(seeder: Seeder, organization_id: int, site_id: int, **values: Any) -> int:
    row = {
        "organization_id": organization_id,
        "site_id": site_id,
        "description": "",
        "type": "scan",
        "params": SCAN_PARAMS,
        "stats": {},
        "progress_collect": 0.0,
        "progress_process": 0.0,
        "created_by": "alice@example.test",
        "created_at": BEFORE,
        "updated_at": BEFORE,
        "recur": False,
        "grace_period": 3600,
        "hidden": False,
        "size_data": 0,
        "size_results": 0,
        "targets": SCAN_PARAMS["targets"],
        "version": 1,
        "attempt": 0,
        "processing_attempts": 0,
        "data_partial": False,
        **values,
    }
    task_id = seeder.add("tasks", **row)
    assert task_id is not None
    return task_id


def _event(seeder: Seeder, task_id: int, organization_id: int, **values: Any) -> None:
    seeder.add(
        "task_events",
        task_id=task_id,
        organization_id=organization_id,
        at=BEFORE,
        actor="alice@example.test",
        message="",
        **values,
    )


def seed(seeder: Seeder, data_dir: Path) -> Seed:
    """The rows of a console in use at the seeder's revision."""
    add = seeder.add
    acme = add("organizations", name="Acme", scope_cap=65536, probe_cap=65536000, created_at=NOW)
    other = add("organizations", name="Other", scope_cap=1024, probe_cap=1000, created_at=NOW)
    assert acme is not None
    assert other is not None
    people = {}
    for name, password, superuser in (
        ("alice", True, True),
        ("bob", False, False),
        ("carol", False, False),
    ):
        people[name] = add(
            "users",
            email=f"{name}@example.test",
            name=name.title(),
            password_hash=password_hash() if password else None,
            is_superuser=superuser,
            is_active=True,
            created_at=BEFORE,
            last_login_at=None,
        )
    for organization_id, person, role in (
        (acme, "alice", "admin"),
        (acme, "bob", "viewer"),
        (other, "bob", "operator"),
    ):
        add(
            "memberships",
            organization_id=organization_id,
            user_id=people[person],
            role=role,
            created_at=BEFORE,
        )
    tokens = {}
    for person in ("alice", "bob"):
        issued = issue_token()
        tokens[person] = issued.plaintext
        add(
            "api_tokens",
            user_id=people[person],
            organization_id=acme,
            name="automation",
            kind="api",
            lookup=issued.lookup,
            secret_hash=issued.secret_hash,
            created_at=BEFORE,
            last_used_at=None,
            expires_at=FAR,
        )
    site = add(
        "sites",
        organization_id=acme,
        name="HQ",
        description="head office",
        scope="127.0.0.0/24",
        excludes="127.0.0.254",
        allowed_scope="",
        created_at=BEFORE,
        updated_at=BEFORE,
    )
    add(
        "credentials",
        organization_id=acme,
        name="directory reader",
        kind="ldap",
        site_ids=[site],
        fields={"bind_dn": "cn=reader,dc=example,dc=test"},
        secrets={},
        created_at=BEFORE,
        updated_at=BEFORE,
        last_used_at=None,
    )
    their_site = add(
        "sites",
        organization_id=other,
        name="Branch",
        description="",
        scope="127.0.1.0/24",
        excludes="",
        allowed_scope="",
        created_at=BEFORE,
        updated_at=BEFORE,
    )
    assert site is not None
    assert their_site is not None
    # Secrets stay empty: the seed writes no key, and reading the row needs none.
    add(
        "credentials",
        organization_id=acme,
        name="directory",
        kind="ldap",
        site_ids=[],
        fields={"bind_dn": "cn=svc,dc=lab"},
        secrets={},
        created_at=BEFORE,
        updated_at=BEFORE,
        last_used_at=None,
    )
    zone = add(
        "hosted_zones",
        organization_id=acme,
        name="Lab",
        description="the lab's probes",
        max_concurrent=2,
        created_at=BEFORE,
        updated_at=BEFORE,
    )
    enrollment = issue_token(ENROLLMENT_TOKEN_PREFIX)
    enrollment_id = add(
        "enrollment_tokens",
        organization_id=acme,
        name="lab probes",
        site_id=site,
        hosted_zone_id=zone,
        lookup=enrollment.lookup,
        secret_hash=enrollment.secret_hash,
        created_by="alice@example.test",
        created_at=BEFORE,
        expires_at=FAR,
        revoked_at=None,
        last_used_at=None,
        uses=0,
        max_uses=5,
    )
    secret = issue_token(EXPLORER_SECRET_PREFIX)
    explorer = add(
        "explorers",
        organization_id=acme,
        name="probe-1",
        site_id=site,
        hosted_zone_id=zone,
        secret_hash=secret.secret_hash,
        secret_lookup=secret.lookup,
        enrollment_token_id=enrollment_id,
        version="0.1.0",
        hostname="probe-host",
        os="Linux",
        addresses=["127.0.0.5"],
        last_checkin_at=BEFORE,
        poll_dropped_at=None,
        created_at=BEFORE,
        updated_at=BEFORE,
    )

    later = _task(
        seeder,
        acme,
        site,
        name="later",
        status="new",
        wait_reason="not_due",
        explorer_id=explorer,
        start_time=FAR,
        tab="scheduled",
        tab_sort=FAR,
    )
    template = _task(
        seeder,
        acme,
        site,
        name="nightly",
        status="new",
        recur=True,
        recur_frequency="daily",
        recur_rule="DTSTART;TZID=UTC:20260201T000000\nRRULE:FREQ=DAILY;BYHOUR=2;BYMINUTE=30",
        timezone="UTC",
        recur_next=FAR,
        recur_last=NOW - timedelta(hours=10),
        tab="recurring",
        tab_sort=FAR,
    )
    processed = _task(
        seeder,
        acme,
        site,
        name="nightly run",
        status="processed",
        parent_id=template,
        occurrence_at=NOW - timedelta(hours=10),
        explorer_id=explorer,
        hosted_zone_id=zone,
        progress_collect=1.0,
        progress_process=1.0,
        stats={"processing": {"records_done": 1, "records_total": 1}},
        change_summary={
            "new": 1,
            "changed": 0,
            "offline": 0,
            "online": 0,
            "unchanged": 0,
            "ignored": 0,
            "total": 1,
        },
        cs_new=1,
        cs_changed=0,
        cs_offline=0,
        cs_online=0,
        cs_unchanged=0,
        data_acquisition_started_at=NOW - timedelta(hours=10),
        data_acquisition_ended_at=NOW - timedelta(hours=9),
        data_processing_started_at=NOW - timedelta(hours=9),
        data_processing_ended_at=NOW - timedelta(hours=8),
        finished_at=NOW - timedelta(hours=8),
        size_data=len(DATA),
        data_sha256=DATA_SHA256,
        attempt=1,
        attempt_token="a" * 32,
        last_report_at=NOW - timedelta(hours=9),
        processing_attempts=1,
        tab="completed",
        tab_sort=NOW - timedelta(hours=8),
        version=9,
    )
    hidden_failed = _task(
        seeder,
        acme,
        site,
        name="gave up",
        status="canceled",
        error="explorer offline",
        finished_at=NOW - timedelta(hours=2),
        hidden=True,
        tab="failed",
        tab_sort=NOW - timedelta(hours=2),
        version=3,
    )
    theirs = _task(
        seeder,
        other,
        their_site,
        name="theirs",
        status="new",
        start_time=FAR,
        tab="scheduled",
        tab_sort=FAR,
    )
    path = task_data_path(data_dir, processed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(DATA)
    seeder.add("task_data_chunks", task_id=processed, seq=0, data=DATA)

    for task_id, organization_id in (
        (later, acme),
        (template, acme),
        (processed, acme),
        (hidden_failed, acme),
        (theirs, other),
    ):
        _event(seeder, task_id, organization_id, kind="created", to_status="new")
    steps = ("new", "active", "scanned", "processing_queued", "processing", "processed")
    for before, after in itertools.pairwise(steps):
        _event(seeder, processed, acme, kind="transition", from_status=before, to_status=after)
    _event(seeder, hidden_failed, acme, kind="transition", from_status="new", to_status="canceled")

    if seeder.has("task_tab_counts"):
        tabs = Counter(
            (row.values["organization_id"], row.values["tab"], row.values["hidden"])
            for row in seeder.written
            if row.table == "tasks"
        )
        for (organization_id, tab, hidden), count in sorted(tabs.items()):
            add(
                "task_tab_counts",
                organization_id=organization_id,
                tab=tab,
                hidden=hidden,
                count=count,
            )

    run = add(
        "processing_runs",
        task_id=processed,
        organization_id=acme,
        site_id=site,
        data_sha256=DATA_SHA256,
        worker="worker-1",
        observed_at=NOW - timedelta(hours=9),
        started_at=NOW - timedelta(hours=9),
        ended_at=NOW - timedelta(hours=8),
        records_total=1,
        records_done=1,
        phase="done",
        number=1,
        new=1,
        changed=0,
        offline=0,
        online=0,
        unchanged=0,
        ignored=0,
    )
    asset = add(
        "assets",
        organization_id=acme,
        site_id=site,
        address="127.0.0.7",
        address_key="47f000007",
        addresses=["127.0.0.7"],
        mac="00:11:22:33:44:55",
        hostname="mail.example",
        hostnames=["mail.example"],
        os="",
        alive=True,
        service_count=2,
        state_hash="fd0de5b6834bb9a2a2b95ae1d19a5381",
        # An asset's score and reasons before 0024 moved them to `asset_outliers`.
        **{
            name: value
            for name, value in (("outlier", 57), ("outlier_reasons", [OUTLIER_REASON]))
            if seeder.has("assets", name)
        },
        first_seen=NOW - timedelta(hours=9),
        last_seen=NOW - timedelta(hours=9),
        changed_at=NOW - timedelta(hours=9),
        last_task_id=processed,
        last_run_id=run,
    )
    if asset is not None:
        # From 0024 on, the score and reasons are a row of their own.
        add(
            "asset_outliers",
            asset_id=asset,
            organization_id=acme,
            score=57,
            reasons=[OUTLIER_REASON],
        )
        add(
            "asset_addresses",
            asset_id=asset,
            address_key="47f000007",
            site_id=site,
            address="127.0.0.7",
        )
        add("asset_names", asset_id=asset, name="mail.example")
        add(
            "asset_sources",
            asset_id=asset,
            source="scan",
            first_seen=NOW - timedelta(hours=9),
            last_seen=NOW - timedelta(hours=9),
        )
        for port, name, banner, http_status in (
            (25, "smtp", "220 ready", None),
            (443, "https", "", 200),
        ):
            add(
                "services",
                asset_id=asset,
                proto="tcp",
                port=port,
                state="open",
                name=name,
                banner=banner,
                product="",
                http_status=http_status,
                http_server="",
                http_title="",
                tls_subject="",
                tls_issuer="",
                tls_sans="",
                tls_not_before="",
                tls_not_after="",
                tls_sha256="",
                first_seen=NOW - timedelta(hours=9),
                changed_at=NOW - timedelta(hours=9),
            )
        add(
            "asset_changes",
            run_id=run,
            task_id=processed,
            organization_id=acme,
            asset_id=asset,
            kind="new",
            address="127.0.0.7",
            hostname="mail.example",
            details={"addresses": ["127.0.0.7"], "services": ["tcp/25 smtp", "tcp/443 https"]},
        )
    add(
        "invitations",
        organization_id=acme,
        user_id=people["carol"],
        role="operator",
        invited_by="alice@example.test",
        created_at=BEFORE,
        expires_at=FAR,
    )
    for action, object_type, object_id in (
        ("create", "site", site),
        ("create", "task", later),
        ("stop", "task", hidden_failed),
    ):
        add(
            "audit_events",
            organization_id=acme,
            at=BEFORE,
            actor="alice@example.test",
            action=action,
            object_type=object_type,
            object_id=object_id,
            details={"name": "seeded"},
        )

    add(
        "retention_settings",
        organization_id=acme,
        task_data_days=30,
        stale_after_days=14,
        template_id=None,
        updated_at=BEFORE,
        updated_by="alice@example.test",
    )
    rule = add(
        "notification_rules",
        organization_id=acme,
        name="failed runs",
        trigger="task_canceled",
        channel="webhook",
        target="http://127.0.0.1:9/hook",
        options={"scheduled_only": True},
        secret=None,
        enabled=True,
        created_at=BEFORE,
        updated_at=BEFORE,
    )
    delivery = add(
        "notification_deliveries",
        organization_id=acme,
        rule_id=rule,
        event_key="event:1",
        trigger="task_canceled",
        payload={"event": "task_canceled"},
        status="delivered",
        attempts=1,
        next_attempt_at=BEFORE,
        created_at=BEFORE,
        delivered_at=BEFORE,
        last_status_code=204,
        last_error="",
        lease_owner=None,
        lease_expires_at=None,
    )
    add(
        "notification_attempts",
        delivery_id=delivery,
        at=BEFORE,
        status_code=204,
        error="",
        duration_ms=12,
    )
    add("notification_watermarks", name="task_events", position=1)
    add(
        "reports",
        organization_id=acme,
        report="overview",
        result={"summary": {"assets": 1}},
        refreshed_at=BEFORE,
        task_id=None,
        schedule_id=None,
        created_at=BEFORE,
        updated_at=BEFORE,
    )
    saved = add(
        "saved_queries",
        organization_id=acme,
        name="telnet still open",
        kind="asset",
        search="port:23",
        threshold=10,
        pinned=True,
        created_by_user_id=None,
        created_at=BEFORE,
        updated_at=BEFORE,
        last_count=3,
        last_counted_at=BEFORE,
    )
    add("query_counts", query_id=saved, counted_at=BEFORE, count=3, task_id=None)

    unseeded = sorted(set(seeder.reflected) - {row.table for row in seeder.written})
    assert not unseeded, f"tables at revision {seeder.revision} without rows in seed(): {unseeded}"
    visible = [
        row.values
        for row in seeder.written
        if row.table == "tasks" and row.values["organization_id"] == acme
    ]
    events = Counter(row.values["task_id"] for row in seeder.written if row.table == "task_events")
    return Seed(
        revision=seeder.revision,
        acme=acme,
        other=other,
        api_token=tokens["alice"],
        bob_token=tokens["bob"],
        explorer_secret=secret.plaintext,
        enrollment_token=enrollment.plaintext,
        later=later,
        template=template,
        processed=processed,
        hidden_failed=hidden_failed,
        asset=asset,
        tasks_by_tab=Counter(task["tab"] for task in visible if not task["hidden"]),
        event_count=dict(events),
        written=seeder.written,
        has={
            "inventory": seeder.has("assets"),
            "explorer_secrets": seeder.has("explorers", "secret_lookup"),
            "enrollment": seeder.has("enrollment_tokens"),
            "invitations": seeder.has("invitations"),
            "checksums": seeder.has("tasks", "data_sha256"),
            "saved_queries": seeder.has("saved_queries"),
            "outlier_reasons": seeder.has("assets", "outlier_reasons")
            or seeder.has("asset_outliers"),
        },
    )


def assert_rows_survived(engine: Engine, written: list[Written]) -> None:
    """Every seeded row is still there, with every value it was written with."""
    with engine.connect() as conn:
        for table_name in {row.table for row in written}:
            table = metadata.tables[table_name]
            total = conn.execute(select(func.count()).select_from(table)).scalar_one()
            assert total == sum(1 for row in written if row.table == table_name), table_name
        for row in written:
            table = metadata.tables[row.table]
            found = (
                conn.execute(
                    select(table).where(*(table.c[key] == value for key, value in row.key.items()))
                )
                .mappings()
                .one_or_none()
            )
            assert found is not None, f"{row.table} {row.key} was lost"
            kept = {key: found[key] for key in row.values if key in table.c}
            wanted = {key: value for key, value in row.values.items() if key in table.c}
            assert kept == wanted, f"{row.table} {row.key} changed"


def assert_assets_have_sources(engine: Engine, seed: Seed) -> None:
    """Assets seeded before sources were kept got one: their last task's kind, seen from
    their first to their last time seen."""
    if seed.asset is None:
        return
    table = metadata.tables["asset_sources"]
    with engine.connect() as conn:
        rows = conn.execute(select(table).where(table.c.asset_id == seed.asset)).mappings().all()
    assert [(row["source"], row["first_seen"], row["last_seen"]) for row in rows] == [
        ("scan", NOW - timedelta(hours=9), NOW - timedelta(hours=9))
    ]


def assert_scores_moved(engine: Engine, seed: Seed) -> None:
    """The seeded asset's outlier score (and its reasons, from 0016 on) moved from the asset
    to its row of `asset_outliers` (0024), as the asset is read back."""
    if seed.asset is None:
        return
    wanted = [OUTLIER_REASON] if seed.has["outlier_reasons"] else []
    table = metadata.tables["asset_outliers"]
    with engine.connect() as conn:
        rows = conn.execute(select(table)).mappings().all()
        asset = get_asset(conn, seed.acme, seed.asset)
    assert [dict(row) for row in rows] == [
        {"asset_id": seed.asset, "organization_id": seed.acme, "score": 57, "reasons": wanted}
    ]
    assert asset is not None
    assert (asset.outlier, asset.outlier_reasons) == (57, tuple(wanted))


@pytest.fixture
def console_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Opens today's console on a database; closed when the test ends."""
    clients: list[TestClient] = []

    def open_console(engine: Engine) -> TestClient:
        settings = ConsoleSettings(data_dir=tmp_path, database_url=str(engine.url))
        client = InProcessClient(create_app(settings, database=Database(engine)))
        client.__enter__()
        clients.append(client)
        return client

    monkeypatch.delenv("SURVEYOR_BOOTSTRAP_TOKEN", raising=False)
    yield open_console
    for client in clients:
        client.__exit__(None, None, None)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_console_works(client: TestClient, seed: Seed, data_dir: Path, db: Database) -> None:
    """Today's console on the upgraded database: the seeded accounts, tasks, data, explorer
    and inventory are all usable."""
    login = client.post(
        "/api/v1/auth/login", json={"email": "alice@example.test", "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    assert login.json()["organization_id"] == seed.acme
    me = client.get("/api/v1/users/me", headers=bearer(login.json()["token"]))
    assert (me.status_code, me.json()["role"]) == (200, "admin")
    alice = bearer(seed.api_token)
    organizations = client.get("/api/v1/users/me/organizations", headers=bearer(seed.bob_token))
    assert {item["organization_id"]: item["role"] for item in organizations.json()} == {
        seed.acme: "viewer",
        seed.other: "operator",
    }

    counts = client.get("/api/v1/tasks/counts", headers=alice).json()["counts"]
    for tab in ("scheduled", "recurring", "completed", "failed", "active", "processing"):
        assert counts[tab] == seed.tasks_by_tab[tab], (tab, counts)
    listed = client.get("/api/v1/tasks", params={"tab": "all"}, headers=alice).json()["items"]
    assert {task["name"] for task in listed} == {"later", "nightly", "nightly run"}
    events = client.get(f"/api/v1/tasks/{seed.processed}/events", headers=alice).json()["items"]
    assert len(events) == seed.event_count[seed.processed]

    stopped = client.post(f"/api/v1/tasks/{seed.later}/stop", headers=alice)
    assert (stopped.status_code, stopped.json()["status"]) == (200, "stopped"), stopped.text
    events = client.get(f"/api/v1/tasks/{seed.later}/events", headers=alice).json()["items"]
    assert [event["to_status"] for event in events] == ["new", "stopped"]
    ran = client.post(f"/api/v1/tasks/{seed.template}/run-now", headers=alice)
    assert ran.status_code == 200, ran.text
    runs = client.get(f"/api/v1/tasks/{seed.template}/runs", headers=alice).json()["items"]
    assert len(runs) == 2
    assert seed.processed in {run["id"] for run in runs}
    shown = client.post(
        f"/api/v1/tasks/{seed.hidden_failed}/hide", json={"hidden": False}, headers=alice
    )
    assert shown.status_code == 200, shown.text
    failed = client.get("/api/v1/tasks/counts", headers=alice).json()["counts"]["failed"]
    assert failed == 2  # the one stopped above, and the one shown again

    if seed.has["checksums"]:
        data = client.get(f"/api/v1/tasks/{seed.processed}/data", headers=alice)
        assert (data.status_code, data.content) == (200, DATA)
    again = client.post(f"/api/v1/tasks/{seed.processed}/reprocess", headers=alice)
    assert again.status_code == 200, again.text
    # The task, an Outlier calculation of its site when the run changed the inventory, and a
    # Query task refreshing the pinned query when the revision had saved queries.
    assert process_all(db, data_dir) in ((1, 2, 3) if seed.has["saved_queries"] else (1, 2))
    task = client.get(f"/api/v1/tasks/{seed.processed}", headers=alice).json()
    assert task["status"] == "processed", task
    numbers = [
        run["run"]
        for run in client.get(
            f"/api/v1/tasks/{seed.processed}/processing-runs", headers=alice
        ).json()["items"]
    ]
    assert numbers == ([2, 1] if seed.has["inventory"] else [1])
    assets = client.get("/api/v1/assets", headers=alice).json()["items"]
    assert [asset["address"] for asset in assets] == ["127.0.0.7"]
    if seed.asset is not None:
        asset = client.get(f"/api/v1/assets/{seed.asset}", headers=alice)
        assert asset.status_code == 200, asset.text
        assert sorted(s["port"] for s in asset.json()["services"]) == [25, 443]

    if seed.has["explorer_secrets"]:
        poll = client.post(
            "/api/v1/explorer/poll",
            json={"version": "0.1.0", "hostname": "probe-host", "os": "Linux", "wait": 0},
            headers=bearer(seed.explorer_secret),
        )
        assert poll.status_code == 200, poll.text
    if seed.has["enrollment"]:
        enrolled = client.post(
            "/api/v1/explorer/enroll",
            json={"name": "probe-2", "version": "0.1.0", "hostname": "h", "os": "Linux"},
            headers=bearer(seed.enrollment_token),
        )
        assert enrolled.status_code == 201, enrolled.text
    explorers = client.get("/api/v1/explorers", headers=alice).json()
    assert "probe-1" in {explorer["name"] for explorer in explorers}
    if seed.has["invitations"]:
        invited = client.get("/api/v1/invitations", headers=alice).json()
        assert [invitation["email"] for invitation in invited] == ["carol@example.test"]

    audit = client.get("/api/v1/audit", params={"limit": 100}, headers=alice).json()["items"]
    actions = [(entry["action"], entry["object_type"]) for entry in audit]
    assert {("create", "site"), ("create", "task"), ("stop", "task")} <= set(actions)
    assert actions.count(("stop", "task")) == 2  # the seeded one and today's

    site = client.post(
        "/api/v1/sites", json={"name": "New site", "scope": "127.0.2.0/24"}, headers=alice
    )
    assert site.status_code == 201, site.text
    created = client.post(
        "/api/v1/tasks",
        json={"name": "new scan", "site_id": site.json()["id"], "start_time": FAR.isoformat()},
        headers=alice,
    )
    assert created.status_code == 201, created.text


@pytest.mark.parametrize("revision", EARLIER)
def test_a_database_with_data_upgrades_from_each_earlier_revision(
    fresh_engine: Engine, tmp_path: Path, console_on: Any, revision: str
) -> None:
    upgrade(fresh_engine, revision)
    with fresh_engine.begin() as conn:
        seeded = seed(Seeder(conn, revision), tmp_path)

    upgrade(fresh_engine)

    assert current_revision(fresh_engine) == HEAD
    assert_rows_survived(fresh_engine, seeded.written)
    assert_assets_have_sources(fresh_engine, seeded)
    assert_scores_moved(fresh_engine, seeded)
    assert_tab_counts_in_step(fresh_engine)
    assert_console_works(console_on(fresh_engine), seeded, tmp_path, Database(fresh_engine))
    assert_tab_counts_in_step(fresh_engine)
