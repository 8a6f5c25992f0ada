"""Shared pytest setup: Ray token auth, and the Ray, PostgreSQL and service fixtures."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from service.ray_local import ensure_ray_token, use_ray_token

# Ray reads its auth settings when first imported (test modules import it at collection
# time): the session cluster's token must be in place before that.
_TOKEN_PATH = Path(tempfile.gettempdir()) / f"hpo-test-ray-token-{os.getpid()}"
ensure_ray_token(_TOKEN_PATH)
use_ray_token(_TOKEN_PATH)

pytest_plugins = [
    "tests.fixtures.ray_cluster",
    "tests.fixtures.postgres",
    "tests.fixtures.service",
    "tests.fixtures.watch",
]
