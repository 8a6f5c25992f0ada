"""The training loop of one rank, free of Ray: Ray Train and ``torchrun`` both drive it.

Each evaluation (one Tune iteration) trains ``steps_per_eval`` optimizer steps, then
measures the model on the validation set and reports the playbook's metrics through
``reporter``; every ``checkpoint_every`` evaluations the report carries the full training
state (gathered on every rank, kept by rank 0). The final report adds the quantised and
pruned evaluations.
"""

from __future__ import annotations

import resource
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol, cast

import torch
from torch import nn
from torch.distributed.tensor import DTensor

from trainables.transformer_lm.batches import TrainBatches, eval_batches
from trainables.transformer_lm.compress import compressed_metrics
from trainables.transformer_lm.corpus import Corpus
from trainables.transformer_lm.evaluate import evaluate, latency_ms
from trainables.transformer_lm.hparams import LmHyperparams
from trainables.transformer_lm.model import TransformerLM, count_parameters, flops_per_token
from trainables.transformer_lm.parallel import (
    Topology,
    all_reduce_sum,
    average_gradients_over_dp,
    clip_gradients,
    full_state_dict,
    global_norm,
    parallelize,
    unwrap,
)
from trainables.transformer_lm.schedule import learning_rate

# Dense bf16 peak of the GPUs we know (FLOP/s), for MFU; HPO_GPU_PEAK_FLOPS overrides.
DENSE_BF16_PEAK = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12}


class Reporter(Protocol):
    def __call__(self, metrics: dict[str, Any], state: dict[str, Any] | None) -> None:
        """Report ``metrics``; ``state`` (rank 0 only, else None) is a checkpoint to keep."""


@dataclass
class TrainingState:
    """What a checkpoint holds besides the weights: where training stands."""

    evals_done: int = 0
    lineage: str | None = None  # the trial whose run wrote the checkpoint
    exploits: int = 0  # times this run continued another trial's checkpoint (PBT)
    train_seconds: float = 0.0  # wall time of the optimizer steps so far (no evaluation)


def gpu_peak_flops(device: torch.device) -> float | None:
    import os

    if device.type != "cuda":
        return None
    if os.environ.get("HPO_GPU_PEAK_FLOPS"):
        return float(os.environ["HPO_GPU_PEAK_FLOPS"])
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in DENSE_BF16_PEAK.items() if key in name), None)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def autocast_factory(hp: LmHyperparams, device: torch.device) -> Callable[[], Any]:
    if hp.precision == "fp32":
        return nullcontext
    dtype = torch.bfloat16 if hp.precision == "bf16" else torch.float16
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def make_optimizer(
    hp: LmHyperparams, model: nn.Module, device: torch.device, topology: Topology
) -> torch.optim.AdamW:
    """AdamW with decoupled decay on matrices and embeddings, none on norms."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": hp.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    # The fused kernel serves plain CUDA tensors; DTensor shards take the foreach path.
    fused = hp.fused_adamw and device.type == "cuda" and topology.tp_size == 1
    return torch.optim.AdamW(groups, lr=hp.lr, betas=(hp.beta1, hp.beta2), fused=fused)


def _set_hyperparams(optimizer: torch.optim.Optimizer, hp: LmHyperparams, lr: float) -> None:
    # Every step, from the (possibly PBT-mutated) hyperparameters: a restored optimizer
    # state must not bring back the donor trial's rate or decay.
    for index, group in enumerate(optimizer.param_groups):
        group["lr"] = lr
        group["weight_decay"] = hp.weight_decay if index == 0 else 0.0


def _optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """AdamW's state keyed by parameter name, unsharded, on the CPU (a collective).

    By hand rather than with ``torch.distributed.checkpoint.state_dict``: its
    ``set_optimizer_state_dict`` did not re-shard a full state onto tensor-parallel
    (non-FSDP) parameters correctly in torch 2.13 (the resumed run diverged).
    """
    names = {id(p): name for name, p in unwrap(model).named_parameters()}
    state: dict[str, dict[str, Any]] = {}
    for parameter, values in optimizer.state.items():
        state[names[id(parameter)]] = {
            key: _full_copy(value) if isinstance(value, torch.Tensor) else value
            for key, value in values.items()
        }
    return {"state": state}


def _full_copy(tensor: torch.Tensor) -> torch.Tensor:
    full = tensor.full_tensor() if isinstance(tensor, DTensor) else tensor
    return full.detach().to("cpu", copy=True)


def _load_optimizer_state(
    model: nn.Module, optimizer: torch.optim.Optimizer, saved: Mapping[str, Any]
) -> None:
    """Put a state from ``_optimizer_state`` back, sharded like each parameter."""
    named = dict(unwrap(model).named_parameters())
    loadable = optimizer.state_dict()
    index = 0
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            name = next(n for n, p in named.items() if p is parameter)
            values = saved["state"].get(name)
            if values is not None:
                loadable["state"][index] = {
                    key: _placed_like(value, parameter) for key, value in values.items()
                }
            index += 1
    optimizer.load_state_dict(loadable)


def _placed_like(value: Any, parameter: torch.Tensor) -> Any:
    if not isinstance(value, torch.Tensor):
        return value
    # The optimizer updates its state in place: always a copy of our own, never a tensor
    # another rank might share (torch.multiprocessing hands tensors over in shared memory).
    value = value.detach().clone()
    if value.dim() == 0:
        return value  # AdamW's step count stays where the optimizer keeps it
    if isinstance(parameter, DTensor):
        from torch.distributed.tensor import distribute_tensor

        local = value.to(parameter.device_mesh.device_type)
        return distribute_tensor(local, parameter.device_mesh, parameter.placements)
    return value.to(parameter.device)


def train(
    hp: LmHyperparams,
    corpus: Corpus,
    topology: Topology,
    device: torch.device,
    reporter: Reporter,
    *,
    resume: Mapping[str, Any] | None = None,
    trial_tag: str | None = None,
) -> None:
    """Train ``hp.evals`` evaluations' worth of steps, reporting after each."""
    warnings.filterwarnings("ignore", message=".*quantiz.*", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="torch.ao")
    torch.manual_seed(hp.seed)  # every rank builds the same initial weights
    model: nn.Module = TransformerLM(hp)
    params = count_parameters(model)
    progress = TrainingState(lineage=trial_tag)
    if resume is not None:
        model.load_state_dict(resume["model"])
        progress = TrainingState(
            evals_done=int(resume["evals_done"]),
            train_seconds=float(resume.get("train_seconds", 0.0)),
            lineage=trial_tag,
            exploits=int(resume.get("exploits", 0))
            + int(resume.get("lineage") not in (None, trial_tag)),
        )
    model = parallelize(model.to(device), topology, device)
    optimizer = make_optimizer(hp, model, device, topology)
    scaler = torch.amp.GradScaler(device.type, enabled=hp.precision == "fp16")
    if resume is not None:
        _load_optimizer_state(model, optimizer, resume["optimizer"])
        if resume.get("scaler"):
            scaler.load_state_dict(resume["scaler"])
    runnable = cast(nn.Module, torch.compile(model)) if hp.compile else model
    autocast = autocast_factory(hp, device)

    train_data = TrainBatches(
        corpus.train,
        seq_len=hp.seq_len,
        batch_size=hp.batch_size,
        dp_rank=topology.dp_rank,
        dp_size=topology.dp_size,
        seed=hp.seed,
        token_dropout=hp.token_dropout,
    )
    val_data = eval_batches(
        corpus.val,
        seq_len=hp.seq_len,
        batch_size=hp.batch_size,
        num_batches=hp.val_batches,
        dp_rank=topology.dp_rank,
        dp_size=topology.dp_size,
    )
    total_steps = hp.evals * hp.steps_per_eval
    peak = gpu_peak_flops(device)
    flops = flops_per_token(hp, params)

    for evaluation in range(progress.evals_done, hp.evals):
        interval = _train_interval(
            hp, runnable, optimizer, scaler, train_data, topology, device, autocast,
            first_step=evaluation * hp.steps_per_eval, total_steps=total_steps,
        )  # fmt: skip
        progress.train_seconds += interval["step_time_s"] * hp.steps_per_eval
        metrics: dict[str, Any] = {
            "evaluation": evaluation + 1,
            "train_time_s": progress.train_seconds,
            "step": (evaluation + 1) * hp.steps_per_eval,
            **interval,
            # Measured on the uncompiled model: other shapes and no_grad would each make
            # torch.compile build another graph, for a few batches.
            **evaluate(unwrap(model), val_data, topology, device, hp.vocab_size, autocast),
            "latency_ms": latency_ms(unwrap(model), hp.seq_len, device, autocast),
            "peak_mem_mb": peak_memory_mb(device),
            "params": params,
            "pbt_exploits": progress.exploits,
        }
        per_device_flops = interval["tokens_per_s"] * flops / topology.world_size
        metrics["mfu"] = per_device_flops / peak if peak else None
        last = evaluation + 1 == hp.evals
        if last and hp.compress_eval:
            metrics.update(_compress(hp, model, corpus, topology, device))
        progress.evals_done = evaluation + 1
        due = hp.checkpoint_every > 0 and progress.evals_done % hp.checkpoint_every == 0
        state = _checkpoint(model, optimizer, scaler, progress) if due or last else None
        reporter(metrics, state if topology.rank == 0 else None)


def _train_interval(
    hp: LmHyperparams,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    data: TrainBatches,
    topology: Topology,
    device: torch.device,
    autocast: Callable[[], AbstractContextManager[object]],
    *,
    first_step: int,
    total_steps: int,
) -> dict[str, float]:
    """``steps_per_eval`` optimizer steps; the interval's training metrics."""
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    grad_norm = torch.zeros(())
    update_ratio = 0.0
    lr = hp.lr
    _synchronize(device)
    started = time.perf_counter()
    for step in range(first_step, first_step + hp.steps_per_eval):
        # Dropout noise depends on (seed, step, data rank) only: a resumed run matches, and
        # tensor-parallel peers draw the same masks for their replicated activations.
        torch.manual_seed(hp.seed * 1_000_003 + step * 1_009 + topology.dp_rank)
        lr = learning_rate(hp, step, total_steps)
        _set_hyperparams(optimizer, hp, lr)
        for micro in range(hp.grad_accum_steps):
            inputs, targets = (_to_device(t, device) for t in data.get(step, micro))
            sync = micro == hp.grad_accum_steps - 1
            no_sync = getattr(model, "no_sync", None)  # DDP: all-reduce on the last micro-step
            context = nullcontext() if sync or no_sync is None else no_sync()
            with context:
                with autocast():
                    loss = model(inputs, targets)
                scaler.scale(loss / hp.grad_accum_steps).backward()
            loss_sum += loss.detach().double()
        average_gradients_over_dp(model, topology)
        scaler.unscale_(optimizer)
        grad_norm = clip_gradients(model, hp.grad_clip, topology)
        last_step = step == first_step + hp.steps_per_eval - 1
        before = [p.detach().clone() for p in model.parameters()] if last_step else None
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        if before is not None:
            with torch.no_grad():
                after = list(model.parameters())
                delta = global_norm([a - b for a, b in zip(after, before, strict=True)], topology)
                update_ratio = float(delta) / max(float(global_norm(after, topology)), 1e-12)
    _synchronize(device)
    elapsed = time.perf_counter() - started
    all_reduce_sum(loss_sum, topology)
    micro_batches = hp.steps_per_eval * hp.grad_accum_steps * topology.dp_size
    tokens = hp.steps_per_eval * hp.tokens_per_step * topology.dp_size
    return {
        "train_loss": float(loss_sum) / micro_batches,
        "grad_norm": float(grad_norm),
        "update_ratio": update_ratio,
        "lr": lr,
        "tokens_per_s": tokens / elapsed,
        "step_time_s": elapsed / hp.steps_per_eval,
    }


def _checkpoint(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    progress: TrainingState,
) -> dict[str, Any]:
    """The whole training state, unsharded, on the CPU (a collective on every rank)."""
    return {
        "model": full_state_dict(model),
        "optimizer": _optimizer_state(model, optimizer),
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "evals_done": progress.evals_done,
        "lineage": progress.lineage,
        "exploits": progress.exploits,
        "train_seconds": progress.train_seconds,
    }


def _compress(
    hp: LmHyperparams, model: nn.Module, corpus: Corpus, topology: Topology, device: torch.device
) -> dict[str, float]:
    state = full_state_dict(model)  # a collective: every rank takes part
    if topology.rank != 0:
        return {}
    batches = eval_batches(
        corpus.val,
        seq_len=hp.seq_len,
        batch_size=hp.batch_size,
        num_batches=hp.val_batches,
        dp_rank=0,
        dp_size=1,
    )
    return compressed_metrics(hp, state, batches, device)


def _to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type != "cuda":
        return tensor
    # From pinned memory the copy is asynchronous: the CPU goes on queueing the step.
    return tensor.pin_memory().to(device, non_blocking=True)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
