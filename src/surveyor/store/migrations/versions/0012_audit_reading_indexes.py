"""audit_events indexes for reading the trail newest first: all, by actor, by object"""

from surveyor.store.migrations import ddl

revision: str = "0012"
down_revision: str | None = "0010"


def upgrade() -> None:
    # The trail is read newest first by time; (organization_id, id) ordered by id and is
    # replaced by (organization_id, at, id). An actor's and an object's history each get
    # their own index, so those filters stay fast on a long trail.
    ddl.drop_index("audit_events", "organization_id", "id")
    ddl.create_index("audit_events", "organization_id", "at", "id")
    ddl.create_index("audit_events", "organization_id", "actor", "at", "id")
    ddl.create_index("audit_events", "organization_id", "object_type", "object_id", "at", "id")


def downgrade() -> None:
    ddl.drop_index("audit_events", "organization_id", "object_type", "object_id", "at", "id")
    ddl.drop_index("audit_events", "organization_id", "actor", "at", "id")
    ddl.drop_index("audit_events", "organization_id", "at", "id")
    ddl.create_index("audit_events", "organization_id", "id")
