"""The database schema, as SQLAlchemy Core tables. Alembic migrations create exactly this."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy import DateTime as _DateTime
from sqlalchemy.types import TypeDecorator, UserDefinedType

from surveyor.core.scan_params import DEFAULT_PROBE_CAP
from surveyor.core.tasks import DEFAULT_GRACE_PERIOD_SECONDS

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: Integer primary keys: SQLite's rowid alias, PostgreSQL's bigint identity.
Id = BigInteger().with_variant(Integer(), "sqlite")


class _SQLiteTimestamp(UserDefinedType[str]):
    """SQLite's DATETIME column as plain text, without SQLAlchemy's regex-based parsing:
    `UTCDateTime` writes and reads the text itself, which is several times faster on wide
    result pages."""

    cache_ok = True

    def get_col_spec(self, **_kw: Any) -> str:
        return "DATETIME"


def sqlite_time_text(moment: datetime) -> str:
    """The text SQLite stores: fixed width (years padded to four digits, which strftime does
    not do on every platform), so text order is time order."""
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}"
    )


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python; naive UTC text in SQLite, timestamptz in PostgreSQL.

    Naive values are refused so that no local time can slip into the store.
    """

    impl = _DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(_DateTime(timezone=True))
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SQLiteTimestamp())
        return dialect.type_descriptor(_DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware UTC datetime")
        value = value.astimezone(UTC)
        if dialect.name == "postgresql":
            return value
        if dialect.name == "sqlite":
            return sqlite_time_text(value)
        return value.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return _utc_moment(value)

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        # One call per value instead of the decorator's two (wide pages read many times), when
        # the driver's value needs no processing of its own first (SQLite's text, psycopg's
        # datetime).
        if self.impl_instance.result_processor(dialect, coltype) is None:
            return _utc_moment
        return super().result_processor(dialect, coltype)


def _utc_moment(value: Any) -> datetime | None:
    """A stored time (SQLite's text, PostgreSQL's aware datetime) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            # SQLite's text is UTC without an offset: read as such in one step, which is
            # far cheaper than reading it naive and replacing its time zone.
            return datetime.fromisoformat(value + "+00:00")
        except ValueError:
            value = datetime.fromisoformat(value)
    moment: datetime = value
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _belongs_to(name: str, table: str, *, primary_key: bool = False) -> Column[int]:
    """The column `name`: the row of `table` (by its id) this row belongs to; deleting that
    row deletes this one."""
    owner = ForeignKey(f"{table}.id", ondelete="CASCADE")
    if primary_key:
        return Column(name, Id, owner, primary_key=True)
    return Column(name, Id, owner, nullable=False)


def _refers_to(name: str, table: str) -> Column[int]:
    """The column `name`: the row of `table` (by its id) this row refers to, if any; deleting
    that row empties the column."""
    return Column(name, Id, ForeignKey(f"{table}.id", ondelete="SET NULL"), nullable=True)


def _organization_id(*, primary_key: bool = False) -> Column[int]:
    """The organization the row belongs to: deleting the organization deletes the row."""
    return _belongs_to("organization_id", "organizations", primary_key=primary_key)


def _organization_row() -> tuple[Column[int], Column[int]]:
    """`id` and `organization_id`: a row of one organization."""
    return Column("id", Id, primary_key=True), _organization_id()


def _owned_row() -> tuple[Column[int], Column[int], Column[str], UniqueConstraint]:
    """`id`, `organization_id` and `name`: a row an organization owns under a name unique
    within it (store/owned_rows.py reads and writes such rows)."""
    return (
        *_organization_row(),
        Column("name", String(200), nullable=False),
        UniqueConstraint("organization_id", "name"),
    )


def _token_halves() -> tuple[Column[str], Column[str]]:
    """`lookup` and `secret_hash`: the public half of a token, used to find the row, and the
    digest of its secret half (store/accounts.py's `insert_issued` writes both)."""
    return (
        Column("lookup", String(32), nullable=False, unique=True),
        Column("secret_hash", String(128), nullable=False),
    )


def _lease() -> tuple[Column[str], Column[datetime]]:
    """`lease_owner` and `lease_expires_at`: the process working on the row now, and until
    when (another may take it over after)."""
    return (
        Column("lease_owner", String(100), nullable=True),
        Column("lease_expires_at", UTCDateTime, nullable=True),
    )


def _timestamps() -> tuple[Column[datetime], Column[datetime]]:
    """When the row was created and last changed."""
    return (
        Column("created_at", UTCDateTime, nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
    )


organizations = Table(
    "organizations",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("scope_cap", Integer, nullable=False, default=65536),
    # Port probes (addresses times ports) one task may make.
    Column(
        "probe_cap",
        BigInteger,
        nullable=False,
        default=DEFAULT_PROBE_CAP,
        server_default=str(DEFAULT_PROBE_CAP),
    ),
    Column("created_at", UTCDateTime, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(200), nullable=False, default=""),
    Column("password_hash", String(200), nullable=True),
    Column("is_superuser", Boolean, nullable=False, default=False),
    Column("is_active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_login_at", UTCDateTime, nullable=True),
)

memberships = Table(
    "memberships",
    metadata,
    _organization_id(primary_key=True),
    _belongs_to("user_id", "users", primary_key=True),
    Column("role", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "user_id"),
)

#: Invitations of existing accounts to an organization, waiting for the account to accept or
#: decline (a decided or revoked invitation is deleted; the audit trail keeps its story, so
#: ids are never reused, on SQLite too).
invitations = Table(
    "invitations",
    metadata,
    *_organization_row(),
    _belongs_to("user_id", "users"),
    Column("role", String(20), nullable=False),
    Column("invited_by", String(320), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    UniqueConstraint("organization_id", "user_id"),
    Index(None, "user_id"),
    sqlite_autoincrement=True,
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Id, primary_key=True),
    _belongs_to("user_id", "users"),
    _organization_id(),
    Column("name", String(200), nullable=False, default=""),
    Column("kind", String(20), nullable=False, default="api"),
    *_token_halves(),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
    Index(None, "user_id"),
)

sites = Table(
    "sites",
    metadata,
    *_owned_row(),
    Column("description", Text, nullable=False, default=""),
    Column("scope", Text, nullable=False, default=""),
    Column("excludes", Text, nullable=False, default=""),
    # Where operators may scan (admins set it); empty: the site's scope.
    Column("allowed_scope", Text, nullable=False, default="", server_default=""),
    *_timestamps(),
)

hosted_zones = Table(
    "hosted_zones",
    metadata,
    *_owned_row(),
    Column("description", Text, nullable=False, default=""),
    Column("max_concurrent", Integer, nullable=False, default=1),
    *_timestamps(),
)

explorers = Table(
    "explorers",
    metadata,
    *_owned_row(),
    _refers_to("site_id", "sites"),
    _refers_to("hosted_zone_id", "hosted_zones"),
    Column("secret_hash", String(128), nullable=True),
    Column("version", String(50), nullable=False, default=""),
    Column("hostname", String(255), nullable=False, default=""),
    Column("os", String(200), nullable=False, default=""),
    Column("addresses", JSON, nullable=False, default=list),
    Column("last_checkin_at", UTCDateTime, nullable=True),
    # When the explorer's held poll for work was dropped (its connection closed) and it has
    # not checked in since; written by whichever console held that poll.
    Column("poll_dropped_at", UTCDateTime, nullable=True),
    *_timestamps(),
    # The public half of the explorer's secret, used to find the row (the secret is hashed).
    Column("secret_lookup", String(32), nullable=True, unique=True),
    _refers_to("enrollment_token_id", "enrollment_tokens"),
    Index(None, "hosted_zone_id"),
)

tasks = Table(
    "tasks",
    metadata,
    *_organization_row(),
    _refers_to("site_id", "sites"),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("type", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("error", Text, nullable=True),
    Column("wait_reason", String(40), nullable=True),
    Column("params", JSON, nullable=False, default=dict),
    Column("stats", JSON, nullable=False, default=dict),
    Column("progress_collect", Float, nullable=False, default=0.0),
    Column("progress_process", Float, nullable=False, default=0.0),
    Column("change_summary", JSON, nullable=True),
    # Change-summary counts, copied out of `change_summary` so searches can compare them.
    Column("cs_new", Integer, nullable=True),
    Column("cs_changed", Integer, nullable=True),
    Column("cs_offline", Integer, nullable=True),
    Column("cs_online", Integer, nullable=True),
    Column("cs_unchanged", Integer, nullable=True),
    _refers_to("explorer_id", "explorers"),
    _refers_to("hosted_zone_id", "hosted_zones"),
    Column("created_by", String(320), nullable=False, default=""),
    _refers_to("created_by_user_id", "users"),
    *_timestamps(),
    Column("start_time", UTCDateTime, nullable=True),
    Column("recur", Boolean, nullable=False, default=False),
    Column("recur_frequency", String(20), nullable=True),
    Column("recur_rule", Text, nullable=True),
    Column("timezone", String(64), nullable=True),
    Column("recur_next", UTCDateTime, nullable=True),
    Column("recur_last", UTCDateTime, nullable=True),
    Column("recur_last_task_id", Id, nullable=True),
    _refers_to("parent_id", "tasks"),
    Column("grace_period", Integer, nullable=False, default=DEFAULT_GRACE_PERIOD_SECONDS),
    Column("hidden", Boolean, nullable=False, default=False),
    Column("removed_at", UTCDateTime, nullable=True),
    Column("data_acquisition_started_at", UTCDateTime, nullable=True),
    Column("data_acquisition_ended_at", UTCDateTime, nullable=True),
    Column("data_processing_started_at", UTCDateTime, nullable=True),
    Column("data_processing_ended_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("size_data", BigInteger, nullable=False, default=0),
    Column("size_results", BigInteger, nullable=False, default=0),
    # Scan targets as text, copied out of `params` for the `targets:` search key.
    Column("targets", Text, nullable=False, default=""),
    # The tab this task shows in (NULL once removed) and the time that tab orders by.
    Column("tab", String(20), nullable=True),
    Column("tab_sort", UTCDateTime, nullable=True),
    # Optimistic concurrency: every write bumps it and checks the value it read.
    Column("version", Integer, nullable=False, default=1),
    # The occurrence of its template a run was spawned for; unique per template, so that no
    # two schedulers can ever fire one occurrence twice.
    Column("occurrence_at", UTCDateTime, nullable=True),
    # Run attempts on an explorer: reports carrying another attempt's token are refused.
    Column("attempt", Integer, nullable=False, default=0, server_default="0"),
    Column("attempt_token", String(64), nullable=True),
    Column("last_report_at", UTCDateTime, nullable=True),
    Column("stop_requested_at", UTCDateTime, nullable=True),
    # Processing queue: a worker's lease on the task, and how often processing was tried.
    *_lease(),
    Column("processing_attempts", Integer, nullable=False, default=0, server_default="0"),
    # SHA-256 of the stored task data, checked on upload and on download.
    Column("data_sha256", String(64), nullable=True),
    # The stored data covers only part of the scope (the scan was stopped): processing it
    # never marks anything offline.
    Column("data_partial", Boolean, nullable=False, default=False, server_default=false()),
    Index("ix_tasks_tab_page", "organization_id", "tab", "hidden", "tab_sort", "id"),
    Index("ix_tasks_all_page", "organization_id", "hidden", "id"),
    Index("uq_tasks_parent_occurrence", "parent_id", "occurrence_at", unique=True),
    # A template's runs, newest first (migration 0025).
    Index("ix_tasks_parent_runs", "parent_id", "id"),
    # Searched tab counts read this alone (migration 0026): per tab, by age, the keys a search
    # compares most. `updated_at` stays out, so progress reports leave it untouched. This is
    # its SQLite form; on PostgreSQL (migration 0028) the two text keys are held as the
    # search compares them (`search_index.folded`), with the columns themselves included.
    Index(
        "ix_tasks_search",
        "tab",
        "organization_id",
        "hidden",
        "created_at",
        "status",
        "type",
        "site_id",
        "explorer_id",
        "hosted_zone_id",
        "cs_new",
        "cs_changed",
        "cs_offline",
        "created_by",
        "name",
    ).ddl_if(dialect="sqlite"),
    Index(None, "site_id"),
    Index(None, "explorer_id"),
)

# The scheduler's lookups (migration 0005): templates by next occurrence; tasks waiting in `new`
# by start time (one-off tasks becoming due, launches past their grace period).
Index("ix_tasks_recur_next", tasks.c.recur_next, tasks.c.id)
Index("ix_tasks_status_start_time", tasks.c.status, tasks.c.start_time)

task_events = Table(
    "task_events",
    metadata,
    Column("id", Id, primary_key=True),
    _belongs_to("task_id", "tasks"),
    Column("organization_id", Id, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("from_status", String(20), nullable=True),
    Column("to_status", String(20), nullable=True),
    Column("actor", String(320), nullable=False),
    Column("message", Text, nullable=False, default=""),
    Index(None, "task_id", "id"),
)

#: How many tasks each tab holds, per organization and hidden flag: kept in step with `tasks`
#: in the same transaction (see store.tasks), so unsearched tab counts cost a few rows.
task_tab_counts = Table(
    "task_tab_counts",
    metadata,
    _organization_id(primary_key=True),
    Column("tab", String(20), primary_key=True),
    Column("hidden", Boolean, primary_key=True),
    Column("count", BigInteger, nullable=False, default=0),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Id, primary_key=True),
    Column("organization_id", Id, nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(320), nullable=False),
    Column("action", String(40), nullable=False),
    Column("object_type", String(40), nullable=False),
    Column("object_id", Id, nullable=True),
    Column("details", JSON, nullable=False, default=dict),
    # Read newest first within an organization: all of it, one actor's, or one object's.
    Index(None, "organization_id", "at", "id"),
    Index(None, "organization_id", "actor", "at", "id"),
    Index(None, "organization_id", "object_type", "object_id", "at", "id"),
)

enrollment_tokens = Table(
    "enrollment_tokens",
    metadata,
    *_organization_row(),
    Column("name", String(200), nullable=False),
    # Explorers enrolled with this token start in this site and hosted zone.
    _refers_to("site_id", "sites"),
    _refers_to("hosted_zone_id", "hosted_zones"),
    *_token_halves(),
    Column("created_by", String(320), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("uses", Integer, nullable=False, default=0, server_default="0"),
    # How many explorers may enroll with it; NULL: no limit.
    Column("max_uses", Integer, nullable=True),
    Index(None, "organization_id", "id"),
)

#: Credentials of connectors (SPEC §9, docs/credentials.md): plain fields in the clear, each
#: secret field sealed (`security/secretbox.py`) with the time it was set, as
#: {field: {"sealed": ..., "set_at": ...}}.
credentials = Table(
    "credentials",
    metadata,
    *_owned_row(),
    Column("kind", String(20), nullable=False),
    # The sites whose tasks may use it; empty: every site.
    Column("site_ids", JSON, nullable=False, default=list),
    Column("fields", JSON, nullable=False, default=dict),
    Column("secrets", JSON, nullable=False, default=dict),
    *_timestamps(),
    Column("last_used_at", UTCDateTime, nullable=True),
)

#: Notifications (docs/notifications.md): an organization's rules, the outbox of deliveries
#: they gave rise to (one per rule and event, never two), and each delivery's attempts.
notification_rules = Table(
    "notification_rules",
    metadata,
    *_owned_row(),
    Column("trigger", String(30), nullable=False),
    Column("channel", String(20), nullable=False),
    # The webhook's URL or the e-mail address.
    Column("target", Text, nullable=False),
    Column("options", JSON, nullable=False, default=dict),
    # The webhook's signing key or the SMTP password, sealed (`security/secretbox.py`), with
    # the time it was set: {"sealed": ..., "set_at": ...}; NULL when none is set.
    Column("secret", JSON, nullable=True),
    Column("enabled", Boolean, nullable=False, default=True),
    *_timestamps(),
)

notification_deliveries = Table(
    "notification_deliveries",
    metadata,
    Column("id", Id, primary_key=True),
    Column("organization_id", Id, nullable=False),
    _belongs_to("rule_id", "notification_rules"),
    # What gave rise to it ("event:123", "explorer:4:2030-01-01T00:00:00+00:00", ...): a
    # rule notifies of one event once.
    Column("event_key", String(200), nullable=False),
    Column("trigger", String(30), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=False, default=""),
    # The console sending it now, and until when (another console takes over after).
    *_lease(),
    UniqueConstraint("rule_id", "event_key"),
    # The delivery service's lookup: pending deliveries by when they are due.
    Index("ix_notification_deliveries_due", "status", "next_attempt_at", "id"),
    Index(None, "rule_id", "id"),
)

notification_attempts = Table(
    "notification_attempts",
    metadata,
    Column("id", Id, primary_key=True),
    _belongs_to("delivery_id", "notification_deliveries"),
    Column("at", UTCDateTime, nullable=False),
    # The receiver's HTTP status, or the SMTP server's reply code; NULL when none came.
    Column("status_code", Integer, nullable=True),
    Column("error", Text, nullable=False, default=""),
    Column("duration_ms", Integer, nullable=False, default=0),
    Index(None, "delivery_id", "id"),
)

#: How far the notification watcher has read a stream (the task events), by name.
notification_watermarks = Table(
    "notification_watermarks",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

# Inventory (docs/inventory.md): assets of a site, their addresses and services, and what
# each processing run of a task changed.

assets = Table(
    "assets",
    metadata,
    *_organization_row(),
    _belongs_to("site_id", "sites"),
    # The address it is listed by (lowest IPv4, else lowest IPv6) and its sortable key.
    Column("address", String(45), nullable=False),
    Column("address_key", String(33), nullable=False),
    Column("addresses", JSON, nullable=False, default=list),
    Column("mac", String(17), nullable=True),
    # The name it is listed and looked up by (the first in sort order), and all its names.
    Column("hostname", String(253), nullable=True),
    Column("hostnames", JSON, nullable=False, default=list),
    Column("os", String(200), nullable=False, default=""),
    # False once a scan of its scope went unanswered; true again when it answers.
    Column("alive", Boolean, nullable=False, default=True),
    Column("service_count", Integer, nullable=False, default=0),
    # Digest of the properties a scan compares (core.changes.state_digest).
    Column("state_hash", String(32), nullable=False, default=""),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("last_task_id", Id, nullable=True),
    # The processing run that last merged an answer into it (an answer claims its asset).
    Column("last_run_id", Id, nullable=True),
    # What some sources tell besides (SPEC §7's optional host fields, core.fingerprint's
    # HostDetails); uptime and distance are as last reported, never compared.
    Column("mac_vendor", String(200), nullable=False, default="", server_default=""),
    Column("os_accuracy", Integer, nullable=True),
    Column("os_version", String(200), nullable=False, default="", server_default=""),
    Column("device_type", String(100), nullable=False, default="", server_default=""),
    Column("description", Text, nullable=False, default="", server_default=""),
    Column("tags", JSON, nullable=False, default=list, server_default="[]"),
    Column("attributes", JSON, nullable=False, default=dict, server_default="{}"),
    Column("seen_by", String(253), nullable=False, default="", server_default=""),
    Column("uptime_seconds", BigInteger, nullable=True),
    Column("distance", Integer, nullable=True),
    # When a Retention run found it unseen for the organization's period; it is stale while
    # not seen since (core/retention.py), and hidden from default asset views.
    Column("stale_since", UTCDateTime, nullable=True),
    Index(None, "site_id", "mac"),
    Index(None, "site_id", "hostname"),
    Index("ix_assets_page", "organization_id", "address_key", "id"),
    # The reports' grouped counts read this index alone, already in group order.
    Index(
        "ix_assets_report_groups",
        "organization_id",
        "site_id",
        "os",
        "device_type",
        "alive",
        "service_count",
        "first_seen",
    ),
)

# An asset's outlier score within its site (0-100) and its strongest reasons in words
# (core/outliers.py), written by Outlier calculations; an asset without a row is not scored
# yet. Kept beside the assets rather than in them: a calculation rewrites these narrow rows
# alone, and no wide index of the assets (nor, on PostgreSQL, any of their indexes) changes
# with a score. The organization is the asset's (deleting it deletes its assets, and these
# with them), kept here for the Assets list sorted by score.
asset_outliers = Table(
    "asset_outliers",
    metadata,
    _belongs_to("asset_id", "assets", primary_key=True),
    Column("organization_id", Id, nullable=False),
    Column("score", Integer, nullable=False),
    Column("reasons", JSON, nullable=False),
)
# The Assets list sorted by score (most unusual first, then by id: the index's order), and
# the `outlier:` search and the unusual counts of reports (a range of scores). The
# organization is checked in the index: for an install's only organization, every entry is
# its own.
Index(
    "ix_asset_outliers_rank",
    asset_outliers.c.score.desc(),
    asset_outliers.c.asset_id,
    asset_outliers.c.organization_id,
)

asset_addresses = Table(
    "asset_addresses",
    metadata,
    _belongs_to("asset_id", "assets", primary_key=True),
    Column("address_key", String(33), primary_key=True),
    Column("site_id", Id, nullable=False),
    Column("address", String(45), nullable=False),
    # Finds the assets at an address, and those inside a scanned scope, by key range.
    Index("ix_asset_addresses_lookup", "site_id", "address_key", "asset_id"),
)

asset_names = Table(
    "asset_names",
    metadata,
    _belongs_to("asset_id", "assets", primary_key=True),
    Column("name", String(253), primary_key=True),
    # Finds the assets that answer to a name (matching looks up every name of an answer).
    Index(None, "name", "asset_id"),
)

# Which sources saw an asset (`scan`, `ldap`, `import:nmap`, ...), first and last.
asset_sources = Table(
    "asset_sources",
    metadata,
    _belongs_to("asset_id", "assets", primary_key=True),
    Column("source", String(40), primary_key=True),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    # Finds the assets of a source (the `source:` search key).
    Index(None, "source", "asset_id"),
)

services = Table(
    "services",
    metadata,
    Column("id", Id, primary_key=True),
    _belongs_to("asset_id", "assets"),
    Column("proto", String(8), nullable=False),
    Column("port", Integer, nullable=False),
    Column("state", String(20), nullable=False, default="open"),
    Column("name", String(40), nullable=False, default=""),
    Column("banner", Text, nullable=False, default=""),
    Column("product", String(200), nullable=False, default=""),
    Column("http_status", Integer, nullable=True),
    Column("http_server", String(200), nullable=False, default=""),
    Column("http_title", Text, nullable=False, default=""),
    Column("tls_subject", Text, nullable=False, default=""),
    Column("tls_issuer", Text, nullable=False, default=""),
    # Subject alternative names, one per line.
    Column("tls_sans", Text, nullable=False, default=""),
    Column("tls_not_before", String(40), nullable=False, default=""),
    Column("tls_not_after", String(40), nullable=False, default=""),
    Column("tls_sha256", String(64), nullable=False, default=""),
    # What nmap's version detection adds; CPE names one per line.
    Column("version", String(200), nullable=False, default="", server_default=""),
    Column("extrainfo", String(200), nullable=False, default="", server_default=""),
    Column("tunnel", String(20), nullable=False, default="", server_default=""),
    Column("cpe", Text, nullable=False, default="", server_default=""),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    UniqueConstraint("asset_id", "proto", "port"),
    Index(None, "port", "asset_id"),
    # The reports' open services grouped by protocol, port and name, from this index alone.
    # The state comes last: leading with it (one value in most rows) would draw an asset's
    # `state = 'open'` lookups away from the (asset_id, proto, port) index.
    Index("ix_services_report_groups", "proto", "port", "name", "state"),
)

processing_runs = Table(
    "processing_runs",
    metadata,
    Column("id", Id, primary_key=True),
    _belongs_to("task_id", "tasks"),
    Column("organization_id", Id, nullable=False),
    Column("site_id", Id, nullable=True),
    Column("data_sha256", String(64), nullable=True),
    Column("worker", String(100), nullable=False),
    # When the task saw its hosts: assets' first_seen and last_seen, so a run is repeatable.
    Column("observed_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    # Checkpoint: host records merged so far, committed with each batch; a requeued task
    # resumes here.
    Column("records_total", Integer, nullable=False, default=0),
    Column("records_done", Integer, nullable=False, default=0),
    Column("phase", String(20), nullable=False),
    # 1, 2, 3, … per task: every run is kept, with its counts and change report.
    Column("number", Integer, nullable=False, server_default="0"),
    Column("new", Integer, nullable=False, default=0),
    Column("changed", Integer, nullable=False, default=0),
    Column("offline", Integer, nullable=False, default=0),
    Column("online", Integer, nullable=False, default=0),
    Column("unchanged", Integer, nullable=False, default=0),
    Column("ignored", Integer, nullable=False, default=0),
    Index(None, "task_id", "id"),
    Index("uq_processing_runs_task_number", "task_id", "number", unique=True),
    # Assets remember the run that claimed them, so a run id must never be used twice.
    sqlite_autoincrement=True,
)

asset_changes = Table(
    "asset_changes",
    metadata,
    Column("id", Id, primary_key=True),
    _belongs_to("run_id", "processing_runs"),
    Column("task_id", Id, nullable=False),
    Column("organization_id", Id, nullable=False),
    # No foreign key: the report outlives the assets it names.
    Column("asset_id", Id, nullable=True),
    Column("kind", String(20), nullable=False),
    Column("address", String(45), nullable=False, default=""),
    Column("hostname", String(253), nullable=True),
    Column("details", JSON, nullable=False, default=dict),
    Index(None, "run_id", "id"),
    Index(None, "asset_id", "id"),
)

#: Each organization's retention (core/retention.py); no row: the defaults. `template_id` is
#: its daily Retention task, and the row is what creating it locks.
retention_settings = Table(
    "retention_settings",
    metadata,
    _organization_id(primary_key=True),
    Column("task_data_days", Integer, nullable=False),
    Column("stale_after_days", Integer, nullable=False),
    _refers_to("template_id", "tasks"),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(320), nullable=False, default=""),
)

#: The processing queue: queued tasks of a site in queue order, and whether a site is busy.
Index("ix_tasks_queue", tasks.c.status, tasks.c.site_id, tasks.c.tab_sort, tasks.c.id)

# Each organization's stored reports (docs/reports.md): one row per report, with the result of
# its latest refresh and the recurring template that refreshes it daily.
reports = Table(
    "reports",
    metadata,
    *_organization_row(),
    # Which report: `overview`, `comparison` or `external` (core/reports.py).
    Column("report", String(40), nullable=False),
    Column("result", JSON, nullable=True),
    Column("refreshed_at", UTCDateTime, nullable=True),
    # The task whose result is stored, and the template of its daily refresh.
    Column("task_id", Id, nullable=True),
    Column("schedule_id", Id, nullable=True),
    *_timestamps(),
    UniqueConstraint("organization_id", "report"),
)

# Saved queries (docs/dashboard.md): asset, service and task searches saved with a name, and
# those pinned to the Dashboard as insights, with every count a Query task stored.

saved_queries = Table(
    "saved_queries",
    metadata,
    *_owned_row(),
    # What it searches: asset, service or task (store/queries.py).
    Column("kind", String(20), nullable=False),
    Column("search", Text, nullable=False, default=""),
    # A count above it is highlighted on the Dashboard; NULL: no threshold.
    Column("threshold", BigInteger, nullable=True),
    Column("pinned", Boolean, nullable=False, default=False),
    Column("created_by_user_id", Id, nullable=True),
    *_timestamps(),
    # The latest count a Query task stored, kept here so the Dashboard reads one row each.
    Column("last_count", BigInteger, nullable=True),
    Column("last_counted_at", UTCDateTime, nullable=True),
    Index(None, "organization_id", "pinned", "id"),
)

query_counts = Table(
    "query_counts",
    metadata,
    Column("id", Id, primary_key=True),
    _belongs_to("query_id", "saved_queries"),
    Column("counted_at", UTCDateTime, nullable=False),
    Column("count", BigInteger, nullable=False),
    # The task that counted it (no foreign key: the history outlives the task).
    Column("task_id", Id, nullable=True),
    # A query's history in time order: the sparkline and the count a day ago.
    Index(None, "query_id", "counted_at"),
)

# Task data kept in the database, for consoles and workers that share no directory
# (store/task_data_chunks.py, docs/deploy.md): the file in pieces of at most 1 MiB, in order.
task_data_chunks = Table(
    "task_data_chunks",
    metadata,
    _belongs_to("task_id", "tasks", primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
)
