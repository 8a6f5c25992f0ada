"""Errors of the service layer that are not about the store or the spec."""

from __future__ import annotations


class RayUnavailable(RuntimeError):
    """The Ray cluster (or its Jobs API) cannot be reached, or refused our token."""


class LaunchError(RuntimeError):
    """A study could not be submitted to Ray."""


class CannotExtend(RuntimeError):
    """A study that cannot go on with raised targets (a grid, a failed study...): 409."""


class NoBestTrial(LookupError):
    """A study without a trial that reported its metric yet: 404."""

    def __init__(self, study_id: int, metric: str) -> None:
        super().__init__(f"study {study_id} has no trial with a value of {metric!r} yet")
        self.study_id = study_id
