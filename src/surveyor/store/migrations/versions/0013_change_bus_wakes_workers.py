"""processing workers wake on the change bus: drop the trigger that notified them

The change bus (store/change_bus.py) sends every committed task change on
`surveyor_changes`, queued tasks included; the trigger of 0004 that notified
`surveyor_processing` has no listener left.
"""

from surveyor.store.migrations import processing_wakeup

revision: str = "0013"
down_revision: str | None = "0012"


def upgrade() -> None:
    processing_wakeup.drop()


def downgrade() -> None:
    processing_wakeup.create()
