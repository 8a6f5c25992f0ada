"""What a trial runs: the trainables registry, with the built-in trainables registered on import."""

from __future__ import annotations

from trainables import branin, hartmann6, mlp_digits, noop, noop_train, transformer_lm
from trainables.registry import (
    Problem,
    TrainableSpec,
    TrialResources,
    UnknownTrainable,
    get_trainable,
    list_trainables,
    register,
)
from trainables.resources import trial_resources, worker_demand
from trainables.tune_trainable import trial_trainable

__all__ = [
    "Problem",
    "TrainableSpec",
    "TrialResources",
    "UnknownTrainable",
    "branin",
    "get_trainable",
    "hartmann6",
    "list_trainables",
    "mlp_digits",
    "noop",
    "noop_train",
    "register",
    "trial_resources",
    "transformer_lm",
    "trial_trainable",
    "worker_demand",
]
