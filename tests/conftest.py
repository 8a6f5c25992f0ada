"""Shared pytest setup: the session's Ray cluster and PostgreSQL server fixtures."""

from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.ray_cluster",
    "tests.fixtures.postgres",
    "tests.fixtures.service",
]
