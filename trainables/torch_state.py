"""Training state as a Ray Train checkpoint: one ``torch.save`` file, written by rank 0."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from typing import Any

import ray.train
import torch


def report(metrics: Mapping[str, Any], state: Mapping[str, Any] | None, filename: str) -> None:
    """Every worker reports the metrics; the one holding ``state`` (rank 0: the Train V2
    rule) attaches it as the checkpoint."""
    with tempfile.TemporaryDirectory(prefix="hpo-state-") as directory:
        checkpoint = None
        if state is not None:
            torch.save(dict(state), os.path.join(directory, filename))
            checkpoint = ray.train.Checkpoint.from_directory(directory)
        ray.train.report(dict(metrics), checkpoint=checkpoint)


def load(checkpoint: ray.train.Checkpoint, filename: str) -> dict[str, Any]:
    """The state saved by :func:`report`, on the CPU (tensors and plain values only)."""
    with checkpoint.as_directory() as directory:
        state = torch.load(os.path.join(directory, filename), map_location="cpu", weights_only=True)
    assert isinstance(state, dict)
    return state
