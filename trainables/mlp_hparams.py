"""The hyperparameters of ``mlp_digits`` with their defaults (no torch import: cheap)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class MlpHyperparams:
    """Everything a worker needs; keys absent from a trial's config take these defaults."""

    lr: float = 3e-3
    hidden: int = 64
    layers: int = 2  # hidden layers
    weight_decay: float = 0.0
    batch_size: int = 64  # per worker
    dropout: float = 0.1
    optimizer: str = "adam"  # "adam" | "sgd"
    momentum: float = 0.9  # sgd only
    beta1: float = 0.9  # adam only (its first-moment decay)
    epochs: int = 9
    seed: int = 0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MlpHyperparams:
        values: dict[str, Any] = {}
        for field in fields(cls):
            if config.get(field.name) is not None:
                default = getattr(cls, field.name)
                values[field.name] = type(default)(config[field.name])
        hp = cls(**values)
        if hp.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {hp.optimizer!r}")
        return hp

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
