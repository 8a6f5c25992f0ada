"""The Ray Train side of ``transformer_lm``: one worker's entry point, checkpoints as files.

Ray Train has set up ``torch.distributed`` (gloo on CPU, NCCL on GPU) before this runs.
Rank 0 writes the full training state into the checkpoint it reports; a restarted or
resumed run (a worker failure, HyperBand resuming a paused trial, PBT exploiting another
trial) loads it on every rank and re-shards it for its own layout.
"""

from __future__ import annotations

from typing import Any

import ray.train
import ray.train.torch
import torch

from trainables import torch_state
from trainables.train_channel import RESUME_KEY
from trainables.transformer_lm.corpus import load_corpus
from trainables.transformer_lm.hparams import LmHyperparams
from trainables.transformer_lm.loop import train
from trainables.transformer_lm.parallel import make_topology

STATE_FILE = "transformer_state.pt"


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    hp = LmHyperparams.from_config(loop_config["hparams"])
    device = ray.train.torch.get_device()
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        # A worker is given cpus_per_worker CPUs, not the whole machine.
        torch.set_num_threads(max(1, int(loop_config.get("cpus_per_worker", 1))))
    topology = make_topology(int(loop_config.get("tensor_parallel", 1)), device.type)
    # A restart of this Train run (worker failure) has its own checkpoint; otherwise a
    # trial resumed by Tune passes the checkpoint it last saw.
    checkpoint = ray.train.get_checkpoint() or loop_config.get(RESUME_KEY)
    resume = load_state(checkpoint) if checkpoint is not None else None
    train(
        hp,
        load_corpus(hp.corpus_bytes),
        topology,
        device,
        report,
        resume=resume,
        trial_tag=loop_config.get("trial_id"),
    )


def report(metrics: dict[str, Any], state: dict[str, Any] | None) -> None:
    torch_state.report(metrics, state, STATE_FILE)


def load_state(checkpoint: ray.train.Checkpoint) -> dict[str, Any]:
    return torch_state.load(checkpoint, STATE_FILE)
