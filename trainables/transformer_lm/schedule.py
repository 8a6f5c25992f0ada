"""Learning-rate schedules as a pure function of the step: constant, warm-up + cosine, restarts.

A function of the step, not a stateful scheduler object: a resumed or PBT-exploited trial
gets the right rate for its step and its (possibly mutated) hyperparameters at once.
"""

from __future__ import annotations

import math

from trainables.transformer_lm.hparams import LmHyperparams


def learning_rate(hp: LmHyperparams, step: int, total_steps: int) -> float:
    """The rate for optimizer step ``step`` (0-based) of ``total_steps``."""
    floor = hp.lr * hp.min_lr_ratio
    if hp.schedule == "constant":
        return hp.lr
    if hp.schedule == "warmup_cosine":
        if step < hp.warmup_steps:
            return hp.lr * (step + 1) / hp.warmup_steps
        span = max(1, total_steps - hp.warmup_steps)
        progress = min(1.0, (step - hp.warmup_steps) / span)
        return floor + (hp.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if hp.schedule == "cosine_restarts":
        # SGDR (Loshchilov & Hutter): cycles of T_0, T_0 * T_mult, ... steps.
        cycle, position = hp.T_0, step
        while position >= cycle:
            position -= cycle
            cycle *= hp.T_mult
        return floor + (hp.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * position / cycle))
    raise ValueError(f"unknown schedule {hp.schedule!r}")
