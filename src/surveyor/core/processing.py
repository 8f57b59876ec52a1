"""The phases of a processing run (a row of `processing_runs`): declared once."""

from __future__ import annotations

from enum import StrEnum


class ProcessingPhase(StrEnum):
    """Where a run is: merging answers, marking silent assets offline, then done. A run that
    was superseded before it finished (its task's data changed) is abandoned, not deleted."""

    MERGING = "merging"
    OFFLINE = "offline"
    DONE = "done"
    ABANDONED = "abandoned"

    @property
    def label(self) -> str:
        return PHASE_LABELS[self]


PHASE_LABELS: dict[ProcessingPhase, str] = {
    ProcessingPhase.MERGING: "merging",
    ProcessingPhase.OFFLINE: "marking offline",
    ProcessingPhase.DONE: "done",
    ProcessingPhase.ABANDONED: "abandoned",
}

#: Phases of a run that has not finished: a worker that died left it there to resume.
UNFINISHED_PHASES: tuple[ProcessingPhase, ...] = (ProcessingPhase.MERGING, ProcessingPhase.OFFLINE)
