"""Numbers the console and its explorers share (SPEC §6)."""

from __future__ import annotations

#: How long a poll for work is held open when nothing is launched, in seconds: the explorer
#: asks for this long and the console holds it at most this long (`SURVEYOR_LONG_POLL`).
LONG_POLL_SECONDS = 25
