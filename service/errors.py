"""Errors of the service layer that are not about the store or the spec."""

from __future__ import annotations


class RayUnavailable(RuntimeError):
    """The Ray cluster (or its Jobs API) cannot be reached, or refused our token."""


class LaunchError(RuntimeError):
    """A study could not be submitted to Ray."""
