"""Tune checkpoints that point at a Ray Train checkpoint instead of copying it.

A trial that runs Ray Train reports to Tune, with every Train checkpoint, a tiny Tune
checkpoint holding the Train checkpoint's path. Tune then restores a paused or failed
trial from it like from any checkpoint, and the trial resumes Train from that path.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow.fs
import ray.train
from ray import tune

POINTER_FILE = "train_checkpoint.json"


@dataclass(frozen=True)
class ResumePoint:
    checkpoint: ray.train.Checkpoint  # the Ray Train checkpoint to continue from
    iteration: int  # Tune reports made up to and including that checkpoint


def report(
    metrics: Mapping[str, Any], train_checkpoint: ray.train.Checkpoint | None, iteration: int
) -> None:
    """``ray.tune.report`` the metrics, with a pointer to ``train_checkpoint`` if there is one."""
    if train_checkpoint is None:
        tune.report(dict(metrics))
        return
    with tempfile.TemporaryDirectory(prefix="hpo-pointer-") as directory:
        with open(os.path.join(directory, POINTER_FILE), "w") as handle:
            json.dump({"path": train_checkpoint.path, "iteration": iteration}, handle)
        # Tune copies the directory into the trial's storage before report returns.
        tune.report(dict(metrics), checkpoint=tune.Checkpoint.from_directory(directory))


def resume_point(filesystem: pyarrow.fs.FileSystem | None) -> ResumePoint | None:
    """Where to resume: from the trial's latest Tune checkpoint, if it holds a pointer."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as directory:
        path = os.path.join(directory, POINTER_FILE)
        if not os.path.exists(path):
            return None
        with open(path) as handle:
            pointer = json.load(handle)
    train_checkpoint = ray.train.Checkpoint(path=pointer["path"], filesystem=filesystem)
    return ResumePoint(checkpoint=train_checkpoint, iteration=int(pointer["iteration"]))
