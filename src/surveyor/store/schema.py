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
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy import DateTime as _DateTime
from sqlalchemy.types import TypeDecorator

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


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python; naive UTC in SQLite, timestamptz in PostgreSQL.

    Naive values are refused so that no local time can slip into the store.
    """

    impl = _DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(_DateTime(timezone=True))
        return dialect.type_descriptor(_DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware UTC datetime")
        value = value.astimezone(UTC)
        if dialect.name == "postgresql":
            return value
        return value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


organizations = Table(
    "organizations",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("scope_cap", Integer, nullable=False, default=65536),
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
    Column(
        "organization_id", Id, ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "user_id"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Id, primary_key=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column(
        "organization_id", Id, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("name", String(200), nullable=False, default=""),
    Column("kind", String(20), nullable=False, default="api"),
    # The public half of a token, used to find the row; the secret half is only stored hashed.
    Column("lookup", String(32), nullable=False, unique=True),
    Column("secret_hash", String(128), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
    Index(None, "user_id"),
)

sites = Table(
    "sites",
    metadata,
    Column("id", Id, primary_key=True),
    Column(
        "organization_id", Id, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("scope", Text, nullable=False, default=""),
    Column("excludes", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("organization_id", "name"),
)

hosted_zones = Table(
    "hosted_zones",
    metadata,
    Column("id", Id, primary_key=True),
    Column(
        "organization_id", Id, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("max_concurrent", Integer, nullable=False, default=1),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("organization_id", "name"),
)

explorers = Table(
    "explorers",
    metadata,
    Column("id", Id, primary_key=True),
    Column(
        "organization_id", Id, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("name", String(200), nullable=False),
    Column("site_id", Id, ForeignKey("sites.id", ondelete="SET NULL"), nullable=True),
    Column("hosted_zone_id", Id, ForeignKey("hosted_zones.id", ondelete="SET NULL"), nullable=True),
    Column("secret_hash", String(128), nullable=True),
    Column("version", String(50), nullable=False, default=""),
    Column("hostname", String(255), nullable=False, default=""),
    Column("os", String(200), nullable=False, default=""),
    Column("addresses", JSON, nullable=False, default=list),
    Column("last_checkin_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("organization_id", "name"),
    Index(None, "hosted_zone_id"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Id, primary_key=True),
    Column(
        "organization_id", Id, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("site_id", Id, ForeignKey("sites.id", ondelete="SET NULL"), nullable=True),
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
    Column("explorer_id", Id, ForeignKey("explorers.id", ondelete="SET NULL"), nullable=True),
    Column("hosted_zone_id", Id, ForeignKey("hosted_zones.id", ondelete="SET NULL"), nullable=True),
    Column("created_by", String(320), nullable=False, default=""),
    Column("created_by_user_id", Id, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("start_time", UTCDateTime, nullable=True),
    Column("recur", Boolean, nullable=False, default=False),
    Column("recur_frequency", String(20), nullable=True),
    Column("recur_rule", Text, nullable=True),
    Column("timezone", String(64), nullable=True),
    Column("recur_next", UTCDateTime, nullable=True),
    Column("recur_last", UTCDateTime, nullable=True),
    Column("recur_last_task_id", Id, nullable=True),
    Column("parent_id", Id, ForeignKey("tasks.id", ondelete="SET NULL"), nullable=True),
    Column("grace_period", Integer, nullable=False, default=3600),
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
    Column("lease_owner", String(100), nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    Column("processing_attempts", Integer, nullable=False, default=0, server_default="0"),
    # SHA-256 of the stored task data, checked on upload and on download.
    Column("data_sha256", String(64), nullable=True),
    Index("ix_tasks_tab_page", "organization_id", "tab", "hidden", "tab_sort", "id"),
    Index("ix_tasks_all_page", "organization_id", "hidden", "id"),
    Index(None, "parent_id"),
    Index("uq_tasks_parent_occurrence", "parent_id", "occurrence_at", unique=True),
    Index(None, "site_id"),
    Index(None, "explorer_id"),
)

task_events = Table(
    "task_events",
    metadata,
    Column("id", Id, primary_key=True),
    Column("task_id", Id, ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("organization_id", Id, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("from_status", String(20), nullable=True),
    Column("to_status", String(20), nullable=True),
    Column("actor", String(320), nullable=False),
    Column("message", Text, nullable=False, default=""),
    Index(None, "task_id", "id"),
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
    Index(None, "organization_id", "id"),
)
