"""Static checks of a ``transformer_lm`` study: every value a trial may get, before any runs.

Shapes must agree for every combination the search space can produce: ``d_model`` divisible
by ``n_heads``, the tensor-parallel degree dividing the heads and the hidden sizes, ``fp16``
only on GPUs. A value a searcher could sample and a trial could not run is refused here,
with the field's path, not discovered inside a running trial.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import product
from typing import Any

from trainables.checks import int_at_least, number_in
from trainables.registry import Candidates, Problem, TrialResources
from trainables.transformer_lm.hparams import (
    ATTENTIONS,
    BYTE_VOCAB,
    NORM_TYPES,
    NORMS,
    PRECISIONS,
    SCHEDULES,
    LmHyperparams,
)

CATEGORIES = {
    "attention": ATTENTIONS,
    "norm": NORMS,
    "norm_type": NORM_TYPES,
    "schedule": SCHEDULES,
    "precision": PRECISIONS,
}
POSITIVE_INTS = (
    "d_model", "n_layers", "n_heads", "mlp_ratio", "window_size", "rank", "seq_len",
    "batch_size", "evals", "steps_per_eval", "eval_batches", "grad_accum_steps", "T_0",
    "T_mult", "corpus_bytes",
)  # fmt: skip
_MAX_COMBINATIONS = 100_000


def validate_config(config: Mapping[str, Any], resources: TrialResources) -> list[Problem]:
    """Types and ranges of the fixed config (searched values are bounded by their space)."""
    problems: list[Problem] = []
    if resources.num_workers < 1:
        problems.append((("resources", "num_workers"), "must be >= 1"))
    if resources.cpus_per_worker <= 0:
        problems.append((("resources", "cpus_per_worker"), "must be > 0"))
    for key in POSITIVE_INTS:
        problems += int_at_least(config, key, 1)
    problems += int_at_least(config, "warmup_steps", 0)
    problems += int_at_least(config, "seed", 0)
    problems += int_at_least(config, "checkpoint_every", 0)
    problems += int_at_least(config, "vocab_size", BYTE_VOCAB)
    problems += number_in(config, "lr", 0.0, 10.0, low_open=True)
    problems += number_in(config, "weight_decay", 0.0, 10.0)
    problems += number_in(config, "dropout", 0.0, 1.0, high_open=True)
    problems += number_in(config, "token_dropout", 0.0, 1.0, high_open=True)
    problems += number_in(config, "prune_amount", 0.0, 1.0, high_open=True)
    problems += number_in(config, "min_lr_ratio", 0.0, 1.0)
    problems += number_in(config, "beta1", 0.0, 1.0, high_open=True)
    problems += number_in(config, "beta2", 0.0, 1.0, high_open=True)
    problems += number_in(config, "grad_clip", 0.0, 1e6)
    return problems


def validate_candidates(candidates: Candidates, resources: TrialResources) -> list[Problem]:
    """Every value a key may take, fixed or searched, against the others and the resources."""
    problems: list[Problem] = []
    for key, allowed in CATEGORIES.items():
        found = candidates.of(key)
        if found is None:
            continue
        loc, values = found
        if values is None:
            continue
        wrong = [v for v in values if v not in allowed]
        if wrong:
            problems.append((loc, f"{key} must be one of {', '.join(allowed)}; got {wrong[0]!r}"))
    problems += _check_precision(candidates, resources)
    problems += _check_heads(candidates, resources)
    return problems


def _values(candidates: Candidates, key: str) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """Where ``key`` is set and its possible values (the default when unset or continuous)."""
    found = candidates.of(key)
    default = getattr(LmHyperparams, key)
    if found is None:
        return ("config", key), (default,)
    loc, values = found
    return loc, values if values is not None else (default,)


def _check_precision(candidates: Candidates, resources: TrialResources) -> list[Problem]:
    loc, values = _values(candidates, "precision")
    if "fp16" in values and not resources.use_gpu:
        return [
            (
                loc,
                "fp16 needs a GPU (its loss scaling exists for CUDA); use bf16 or fp32 on CPU, "
                "or set resources.use_gpu",
            )
        ]
    return []


def _check_heads(candidates: Candidates, resources: TrialResources) -> list[Problem]:
    """``d_model % n_heads == 0``; TP divides the heads and the MLP's hidden width."""
    d_loc, d_models = _values(candidates, "d_model")
    h_loc, heads = _values(candidates, "n_heads")
    _, ratios = _values(candidates, "mlp_ratio")
    tp = resources.tensor_parallel
    if len(d_models) * len(heads) * len(ratios) > _MAX_COMBINATIONS:
        return [(h_loc, "too many (d_model, n_heads, mlp_ratio) combinations to check")]
    numbers = all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1
        for v in (*d_models, *heads, *ratios)
    )
    if not numbers:
        return []  # validate_config reports the wrong type
    tp_loc = ("resources", "tensor_parallel")
    for d_model, n_heads, ratio in product(d_models, heads, ratios):
        if d_model % n_heads:
            where = h_loc if h_loc[0] == "search_space" or d_loc[0] != "search_space" else d_loc
            reason = "every head needs d_model / n_heads dimensions"
            return [(where, f"n_heads {n_heads} does not divide d_model {d_model}: {reason}")]
        if tp > 1 and n_heads % tp:
            reason = "each tensor-parallel rank holds whole heads"
            return [(tp_loc, f"{tp} does not divide n_heads {n_heads}: {reason}")]
        if tp > 1 and (ratio * d_model) % tp:
            width = ratio * d_model
            return [(tp_loc, f"{tp} does not divide the MLP width {width} (mlp_ratio x d_model)")]
    return []


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
