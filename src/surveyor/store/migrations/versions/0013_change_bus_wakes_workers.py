"""processing workers wake on the change bus: drop the trigger that notified them

The change bus (store/change_bus.py) sends every committed task change on
`surveyor_changes`, queued tasks included; the trigger of 0004 that notified
`surveyor_processing` has no listener left.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION surveyor_processing_wakeup() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('surveyor_processing', COALESCE(NEW.site_id::text, ''));
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""
_NOTIFY_TRIGGER = """
CREATE TRIGGER tasks_processing_wakeup
AFTER INSERT OR UPDATE OF status ON tasks
FOR EACH ROW
WHEN (NEW.status = 'processing_queued')
EXECUTE FUNCTION surveyor_processing_wakeup()
"""
_NOTIFY_RELEASE_TRIGGER = """
CREATE TRIGGER tasks_processing_release
AFTER UPDATE OF status ON tasks
FOR EACH ROW
WHEN (OLD.status = 'processing' AND NEW.status <> 'processing')
EXECUTE FUNCTION surveyor_processing_wakeup()
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS tasks_processing_release ON tasks")
        op.execute("DROP TRIGGER IF EXISTS tasks_processing_wakeup ON tasks")
        op.execute("DROP FUNCTION IF EXISTS surveyor_processing_wakeup()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_NOTIFY_FUNCTION)
        op.execute(_NOTIFY_TRIGGER)
        op.execute(_NOTIFY_RELEASE_TRIGGER)
