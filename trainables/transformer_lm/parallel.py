"""Data x tensor parallelism with PyTorch's own APIs, and norms over sharded tensors.

Ranks form a 2-D ``DeviceMesh`` (``dp`` x ``tp``; tensor-parallel peers are consecutive
ranks, so on one node they share the fastest links). With ``tp == 1`` the model is
wrapped in ``DistributedDataParallel``. With ``tp > 1`` every block's attention and MLP
projections are sharded with ``ColwiseParallel`` / ``RowwiseParallel``; data parallelism
across ``dp`` then averages gradients by hand (one all-reduce per parameter shard), as
DDP cannot wrap DTensor parameters and FSDP would shard what the issue asks to replicate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.tensor import DTensor


@dataclass(frozen=True)
class Topology:
    rank: int
    world_size: int
    dp_rank: int
    dp_size: int
    tp_rank: int
    tp_size: int
    mesh: Any  # torch.distributed.device_mesh.DeviceMesh, or None in one process

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def dp_group(self) -> Any:
        return self.mesh["dp"].get_group() if self.mesh is not None else None

    @property
    def tp_group(self) -> Any:
        return self.mesh["tp"].get_group() if self.mesh is not None else None


def make_topology(tp_size: int, device_type: str) -> Topology:
    """The mesh over every rank of the initialised process group (or one lone process)."""
    if not (dist.is_available() and dist.is_initialized()):
        if tp_size != 1:
            raise ValueError("tensor parallelism needs an initialised process group")
        return Topology(0, 1, 0, 1, 0, 1, None)
    from torch.distributed.device_mesh import init_device_mesh

    world_size, rank = dist.get_world_size(), dist.get_rank()
    if world_size % tp_size:
        raise ValueError(f"{world_size} ranks cannot form tensor-parallel groups of {tp_size}")
    dp_size = world_size // tp_size
    mesh = init_device_mesh(device_type, (dp_size, tp_size), mesh_dim_names=("dp", "tp"))
    return Topology(rank, world_size, rank // tp_size, dp_size, rank % tp_size, tp_size, mesh)


def tensor_parallel_plan() -> dict[str, Any]:
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel

    # Megatron's split: q/k/v and fc by output columns (each rank holds whole heads and a
    # slice of the hidden layer), out and proj by input rows, summed across ranks.
    # low_rank's shared latent (kv_down) stays replicated; its gradient arrives complete
    # because ColwiseParallel all-reduces the gradient of its replicated input.
    return {
        "attn.q": ColwiseParallel(),
        "attn.k": ColwiseParallel(),
        "attn.v": ColwiseParallel(),
        "attn.out": RowwiseParallel(),
        "mlp.fc": ColwiseParallel(),
        "mlp.proj": RowwiseParallel(),
    }


def parallelize(model: nn.Module, topology: Topology, device: torch.device) -> nn.Module:
    """The model to train: sharded over ``tp``, replicated over ``dp``."""
    if topology.tp_size > 1:
        from torch.distributed.tensor.parallel import parallelize_module

        blocks = getattr(model, "blocks")  # noqa: B009 - the transformer's block list
        plan = tensor_parallel_plan()
        for block in blocks:
            parallelize_module(block, topology.mesh["tp"], plan)
        return model
    if topology.dp_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)
    return model


def unwrap(model: nn.Module) -> nn.Module:
    module = getattr(model, "module", model)  # DistributedDataParallel wraps the model
    assert isinstance(module, nn.Module)
    return module


def average_gradients_over_dp(model: nn.Module, topology: Topology) -> None:
    """Mean of the gradients over data-parallel ranks (what DDP does), for the TP case."""
    if topology.tp_size == 1 or topology.dp_size == 1:
        return  # DDP already did it, or there is nothing to average
    group = topology.dp_group
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.grad is None:
                continue
            local = _local(parameter.grad)
            dist.all_reduce(local, op=dist.ReduceOp.SUM, group=group)
            local.div_(topology.dp_size)


def _local(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.to_local() if isinstance(tensor, DTensor) else tensor


def global_norm(tensors: Iterable[torch.Tensor], topology: Topology) -> torch.Tensor:
    """The L2 norm of all ``tensors`` together, each counted once however it is sharded.

    A DTensor's local shards are summed over the tensor-parallel group; replicated tensors
    are the same on every peer and counted once. Data-parallel ranks hold equal values.
    A 0-d tensor on the device: reading it is the caller's one host synchronisation.
    """
    sharded: list[torch.Tensor] = []
    replicated: list[torch.Tensor] = []
    for tensor in tensors:
        local = _local(tensor).detach()
        square = torch.linalg.vector_norm(local, dtype=torch.float32).pow(2)
        is_sharded = isinstance(tensor, DTensor) and any(p.is_shard() for p in tensor.placements)
        (sharded if is_sharded else replicated).append(square)
    device = _collective_device(topology) if topology.tp_size > 1 else None
    total_sharded = _sum(sharded, device)
    if topology.tp_size > 1:
        dist.all_reduce(total_sharded, group=topology.tp_group)
    total = total_sharded + _sum(replicated, total_sharded.device)
    return total.sqrt()


def _sum(values: list[torch.Tensor], device: torch.device | None) -> torch.Tensor:
    if not values:
        return torch.zeros((), dtype=torch.float32, device=device)
    return torch.stack([v.to(device or values[0].device) for v in values]).sum()


def _collective_device(topology: Topology) -> torch.device:
    """Where a tensor must live for a collective on the tensor-parallel group."""
    if dist.get_backend(topology.tp_group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def clip_gradients(model: nn.Module, max_norm: float, topology: Topology) -> torch.Tensor:
    """Scale gradients so their global norm is at most ``max_norm``; returns the norm before.

    Without a host synchronisation (as ``torch.nn.utils.clip_grad_norm_`` does it): the
    scale is computed on the device, so the CPU can queue the next step meanwhile.
    """
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    norm = global_norm(grads, topology)
    if max_norm > 0 and grads:
        scale = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
        locals_ = [_local(grad) for grad in grads]
        torch._foreach_mul_(locals_, scale.to(locals_[0].device))
    return norm


def all_reduce_sum(tensor: torch.Tensor, topology: Topology) -> torch.Tensor:
    """Sum ``tensor`` over data-parallel ranks (tensor-parallel peers hold the same values)."""
    if topology.dp_size > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=topology.dp_group)
    return tensor


def full_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The unsharded model weights on the CPU (a collective when the model is sharded)."""
    state: dict[str, torch.Tensor] = {}
    for name, value in unwrap(model).state_dict().items():
        full = value.full_tensor() if isinstance(value, DTensor) else value
        state[name] = full.detach().to("cpu", copy=True)  # a copy, not the live weights
    return state
