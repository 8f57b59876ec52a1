"""audit_events indexes for reading the trail newest first: all, by actor, by object

Revision ID: 0012
Revises: 0007
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The trail is read newest first by time; (organization_id, id) ordered by id and is
    # replaced by (organization_id, at, id). An actor's and an object's history each get
    # their own index, so those filters stay fast on a long trail.
    op.drop_index("ix_audit_events_organization_id_id", table_name="audit_events")
    op.create_index(
        "ix_audit_events_organization_id_at_id", "audit_events", ["organization_id", "at", "id"]
    )
    op.create_index(
        "ix_audit_events_organization_id_actor_at_id",
        "audit_events",
        ["organization_id", "actor", "at", "id"],
    )
    op.create_index(
        "ix_audit_events_organization_id_object_type_object_id_at_id",
        "audit_events",
        ["organization_id", "object_type", "object_id", "at", "id"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_audit_events_organization_id_object_type_object_id_at_id", table_name="audit_events"
    )
    op.drop_index("ix_audit_events_organization_id_actor_at_id", table_name="audit_events")
    op.drop_index("ix_audit_events_organization_id_at_id", table_name="audit_events")
    op.create_index("ix_audit_events_organization_id_id", "audit_events", ["organization_id", "id"])
