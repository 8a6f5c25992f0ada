"""The per-worker training loop of ``mlp_digits``: DDP over a rank's shard, one report per epoch."""

from __future__ import annotations

from typing import Any

import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from trainables import torch_state
from trainables.digits_data import NUM_CLASSES, DigitsSplit
from trainables.mlp_hparams import MlpHyperparams
from trainables.mlp_model import build_mlp, build_optimizer
from trainables.train_channel import RESUME_KEY

STATE_FILE = "state.pt"


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    hp = MlpHyperparams.from_config(loop_config["hparams"])
    torch.set_num_threads(1)  # a worker is given one CPU, not the whole machine
    context = ray.train.get_context()
    rank, world_size = context.get_world_rank(), context.get_world_size()
    device = ray.train.torch.get_device()
    data: DigitsSplit = loop_config["data"]

    torch.manual_seed(hp.seed)
    model = build_mlp(hp, data.num_features, NUM_CLASSES)
    # A restart of this Train run (worker failure) has its own checkpoint; otherwise a
    # trial resumed by Tune passes the checkpoint it last saw.
    checkpoint = ray.train.get_checkpoint() or loop_config.get(RESUME_KEY)
    state = _load_state(checkpoint) if checkpoint is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
    model = ray.train.torch.prepare_model(model)  # to the device; DDP when world_size > 1
    optimizer = build_optimizer(hp, model.parameters())
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
    start_epoch = int(state["epoch"]) if state is not None else 0

    train_set = TensorDataset(torch.tensor(data.x_train), torch.tensor(data.y_train))
    sampler: DistributedSampler[tuple[torch.Tensor, ...]] = DistributedSampler(
        train_set, num_replicas=world_size, rank=rank, seed=hp.seed
    )
    loader = DataLoader(train_set, batch_size=hp.batch_size, sampler=sampler)
    x_val = torch.tensor(data.x_val).to(device)
    y_val = torch.tensor(data.y_val).to(device)
    loss_fn = nn.CrossEntropyLoss()

    for epoch in range(start_epoch + 1, hp.epochs + 1):
        sampler.set_epoch(epoch)
        # Dropout noise depends on (seed, epoch, rank) only, so a resumed run matches.
        torch.manual_seed(hp.seed * 1_000_003 + epoch * 1_009 + rank)
        model.train()
        totals = torch.zeros(2, dtype=torch.float64, device=device)
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            totals[0] += loss.item() * len(y)
            totals[1] += len(y)
        if world_size > 1 and dist.is_initialized():
            dist.all_reduce(totals)
        val_loss, val_accuracy = _evaluate(_unwrap(model), x_val, y_val, loss_fn)
        metrics = {
            "epoch": epoch,
            "train_loss": float(totals[0] / totals[1]),
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
        }
        _report(metrics, epoch, model, optimizer, rank)


def _unwrap(model: nn.Module) -> nn.Module:
    module = getattr(model, "module", model)  # DistributedDataParallel wraps the model
    assert isinstance(module, nn.Module)
    return module


@torch.no_grad()
def _evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module
) -> tuple[float, float]:
    """Loss and accuracy on the whole validation set (small: every worker computes the same)."""
    model.eval()
    logits = model(x)
    return float(loss_fn(logits, y)), float((logits.argmax(dim=1) == y).double().mean())


def _report(
    metrics: dict[str, Any],
    epoch: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    rank: int,
) -> None:
    state = None
    if rank == 0:
        state = {
            "model": _unwrap(model).state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
        }
    torch_state.report(metrics, state, STATE_FILE)


def _load_state(checkpoint: ray.train.Checkpoint) -> dict[str, Any]:
    return torch_state.load(checkpoint, STATE_FILE)
