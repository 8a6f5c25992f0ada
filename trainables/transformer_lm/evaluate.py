"""Validation metrics (loss, perplexity, next-token accuracy, macro F1) and inference latency."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from trainables.transformer_lm.parallel import Topology, all_reduce_sum

Batch = tuple[torch.Tensor, torch.Tensor]
AutocastFactory = Callable[[], AbstractContextManager[object]]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: Sequence[Batch],
    topology: Topology,
    device: torch.device,
    vocab: int,
    autocast: AutocastFactory = nullcontext,
) -> dict[str, float]:
    """Metrics over the whole validation set, each rank holding its share of the batches.

    Macro F1 averages the per-byte F1 over every byte that occurs as a target or a
    prediction.
    """
    was_training = model.training
    model.eval()
    # [loss sum, correct, tokens] then per-class true positives, predictions, targets.
    totals = torch.zeros(3 + 3 * vocab, dtype=torch.float64, device=device)
    for inputs, targets in batches:
        inputs, targets = inputs.to(device), targets.to(device)
        with autocast():
            logits = model(inputs)
        flat_logits, flat_targets = (
            logits.float().reshape(-1, logits.shape[-1]),
            targets.reshape(-1),
        )
        totals[0] += F.cross_entropy(flat_logits, flat_targets, reduction="sum").double()
        predictions = flat_logits.argmax(dim=-1)
        hits = predictions == flat_targets
        totals[1] += hits.sum()
        totals[2] += flat_targets.numel()
        totals[3 : 3 + vocab] += torch.bincount(flat_targets[hits], minlength=vocab)[:vocab]
        totals[3 + vocab : 3 + 2 * vocab] += torch.bincount(predictions, minlength=vocab)[:vocab]
        totals[3 + 2 * vocab :] += torch.bincount(flat_targets, minlength=vocab)[:vocab]
    all_reduce_sum(totals, topology)
    model.train(was_training)
    return metrics_from_totals(totals.cpu(), vocab)


def metrics_from_totals(totals: torch.Tensor, vocab: int) -> dict[str, float]:
    loss_sum, correct, tokens = (float(v) for v in totals[:3])
    true_pos = totals[3 : 3 + vocab]
    predicted = totals[3 + vocab : 3 + 2 * vocab]
    actual = totals[3 + 2 * vocab :]
    present = (predicted + actual) > 0
    f1 = (2 * true_pos[present] / (predicted[present] + actual[present])).mean()
    val_loss = loss_sum / max(tokens, 1.0)
    return {
        "val_loss": val_loss,
        "val_ppl": math.exp(min(val_loss, 50.0)),
        "val_accuracy": correct / max(tokens, 1.0),
        "val_f1": float(f1) if bool(present.any()) else 0.0,
    }


@torch.no_grad()
def latency_ms(
    model: nn.Module,
    seq_len: int,
    device: torch.device,
    autocast: AutocastFactory = nullcontext,
    repeats: int = 5,
) -> float:
    """Median time of one forward pass over a single sequence (inference latency)."""
    was_training = model.training
    model.eval()
    tokens = torch.zeros(1, seq_len, dtype=torch.long, device=device)
    timings = []
    for attempt in range(repeats + 2):  # two warm-up passes
        _synchronize(device)
        start = time.perf_counter()
        with autocast():
            model(tokens)
        _synchronize(device)
        if attempt >= 2:
            timings.append(time.perf_counter() - start)
    model.train(was_training)
    return 1000.0 * statistics.median(timings)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
