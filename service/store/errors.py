"""Errors raised by the study store."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every store error."""


class StudyNotFound(StoreError, KeyError):
    def __init__(self, study_id: int) -> None:
        super().__init__(study_id)
        self.study_id = study_id

    def __str__(self) -> str:
        return f"study {self.study_id} not found"


class TrialNotFound(StoreError, KeyError):
    def __init__(self, study_id: int, trial_id: str) -> None:
        super().__init__((study_id, trial_id))
        self.study_id = study_id
        self.trial_id = trial_id

    def __str__(self) -> str:
        return f"trial {self.trial_id!r} of study {self.study_id} not found"


class TokenNotFound(StoreError, KeyError):
    def __init__(self, token_id: int) -> None:
        super().__init__(token_id)
        self.token_id = token_id

    def __str__(self) -> str:
        return f"API token {self.token_id} not found"


class TokenExists(StoreError):
    """A token with the same hash is already stored."""


class InvalidTransition(StoreError):
    """A study status change that the state machine does not allow (HTTP 409)."""

    def __init__(self, study_id: int, current: str, wanted: str) -> None:
        super().__init__(f"study {study_id} is {current}; it cannot become {wanted}")
        self.study_id = study_id
        self.current = current
        self.wanted = wanted


class StudyExtended(StoreError):
    """A runner tried to end a study whose targets were raised since it last read them:
    it must read them again and go on."""

    def __init__(self, study_id: int, extensions: int) -> None:
        super().__init__(f"study {study_id} was extended (now {extensions} extensions)")
        self.study_id = study_id
        self.extensions = extensions


class StoreUnavailable(StoreError):
    """The database could not be reached or answered with an operational error."""
