"""Study and trial states, and the one table of allowed study transitions."""

from __future__ import annotations

import enum


class StudyStatus(str, enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STUDY_STATES


class TrialState(str, enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    TERMINATED = "TERMINATED"
    ERROR = "ERROR"
    PRUNED = "PRUNED"  # stopped early by the scheduler

    @property
    def is_finished(self) -> bool:
        return self in FINISHED_TRIAL_STATES


TERMINAL_STUDY_STATES = frozenset({StudyStatus.COMPLETED, StudyStatus.FAILED, StudyStatus.STOPPED})
FINISHED_TRIAL_STATES = frozenset({TrialState.TERMINATED, TrialState.ERROR, TrialState.PRUNED})

# PENDING -> RUNNING -> COMPLETED | FAILED | STOPPED; a pending study may also fail
# (launch error) or be stopped before it starts. Terminal states are final.
ALLOWED_STUDY_TRANSITIONS: dict[StudyStatus, frozenset[StudyStatus]] = {
    StudyStatus.PENDING: frozenset(
        {StudyStatus.RUNNING, StudyStatus.FAILED, StudyStatus.STOPPED, StudyStatus.COMPLETED}
    ),
    StudyStatus.RUNNING: frozenset(
        {StudyStatus.COMPLETED, StudyStatus.FAILED, StudyStatus.STOPPED}
    ),
    StudyStatus.COMPLETED: frozenset(),
    StudyStatus.FAILED: frozenset(),
    StudyStatus.STOPPED: frozenset(),
}
