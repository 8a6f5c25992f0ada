"""Tiny JSON state checkpoints for trainables that run in the Tune trial process."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from typing import Any

STATE_FILE = "state.json"


def load_state() -> dict[str, Any] | None:
    """The state saved with the trial's latest checkpoint, or None on a fresh start.

    After HyperBand pauses a trial and Tune resumes it (or after a failure), Tune hands
    the trial its latest checkpoint through ``ray.tune.get_checkpoint()``.
    """
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as directory:
        path = os.path.join(directory, STATE_FILE)
        if not os.path.exists(path):
            return None
        with open(path) as handle:
            state = json.load(handle)
    return state if isinstance(state, dict) else None


def report_with_state(metrics: Mapping[str, Any], state: Mapping[str, Any] | None) -> None:
    """``ray.tune.report`` the metrics; with ``state`` as a checkpoint when given."""
    from ray import tune

    if state is None:
        tune.report(dict(metrics))
        return
    with tempfile.TemporaryDirectory(prefix="hpo-state-") as directory:
        with open(os.path.join(directory, STATE_FILE), "w") as handle:
            json.dump(dict(state), handle)
        # Tune copies the directory into the trial's storage before report returns.
        tune.report(dict(metrics), checkpoint=tune.Checkpoint.from_directory(directory))
