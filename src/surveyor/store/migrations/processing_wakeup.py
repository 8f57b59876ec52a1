"""The PostgreSQL trigger that woke processing workers (LISTEN surveyor_processing) when a
task was queued or left processing: migration 0004 created it, 0013 dropped it for the
change bus, and their downgrades undo that. History: never change what these statements do.
"""

from __future__ import annotations

from alembic import op

_FUNCTION = """
CREATE OR REPLACE FUNCTION surveyor_processing_wakeup() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('surveyor_processing', COALESCE(NEW.site_id::text, ''));
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""
_QUEUED_TRIGGER = """
CREATE TRIGGER tasks_processing_wakeup
AFTER INSERT OR UPDATE OF status ON tasks
FOR EACH ROW
WHEN (NEW.status = 'processing_queued')
EXECUTE FUNCTION surveyor_processing_wakeup()
"""
_RELEASE_TRIGGER = """
CREATE TRIGGER tasks_processing_release
AFTER UPDATE OF status ON tasks
FOR EACH ROW
WHEN (OLD.status = 'processing' AND NEW.status <> 'processing')
EXECUTE FUNCTION surveyor_processing_wakeup()
"""


def create() -> None:
    """Create the function and its two triggers on tasks (PostgreSQL only; none on SQLite)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_FUNCTION)
        op.execute(_QUEUED_TRIGGER)
        op.execute(_RELEASE_TRIGGER)


def drop() -> None:
    """Drop the triggers and the function, where they exist."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS tasks_processing_release ON tasks")
        op.execute("DROP TRIGGER IF EXISTS tasks_processing_wakeup ON tasks")
        op.execute("DROP FUNCTION IF EXISTS surveyor_processing_wakeup()")
