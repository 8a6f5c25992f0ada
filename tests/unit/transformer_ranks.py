"""Run the transformer's training loop on N local gloo ranks (no Ray): for parity tests."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from service.ray_local import free_port
from trainables.transformer_lm.corpus import load_corpus
from trainables.transformer_lm.hparams import LmHyperparams
from trainables.transformer_lm.loop import train
from trainables.transformer_lm.parallel import make_topology

Reports = list[tuple[dict[str, Any], dict[str, Any] | None]]


def _rank_main(
    rank: int,
    world: int,
    tp: int,
    hp: LmHyperparams,
    resume: dict[str, Any] | None,
    port: int,
    out: str,
) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        reports: Reports = []
        train(
            hp,
            load_corpus(hp.corpus_bytes),
            make_topology(tp, "cpu"),
            torch.device("cpu"),
            lambda metrics, state: reports.append((metrics, state)),
            resume=resume,
            trial_tag="tests",
        )
        if rank == 0:
            Path(out).write_bytes(pickle.dumps(reports))
    finally:
        dist.destroy_process_group()


def _forkserver() -> str:
    """Ranks forked from one server that has imported torch and the training loop: a
    spawned rank pays those imports again (about 3 s of CPU each, 18 ranks in these
    tests). The server runs no torch op, so no thread pool is forked."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "torch.distributed", __name__])
    return "forkserver"


def run_ranks(
    hp: LmHyperparams, *, world: int, tp: int, resume: dict[str, Any] | None = None
) -> Reports:
    """Rank 0's reports (metrics, checkpoint state) of a run on ``world`` gloo ranks."""
    with tempfile.TemporaryDirectory() as directory:
        out = os.path.join(directory, "reports.pkl")
        mp.start_processes(
            _rank_main,
            args=(world, tp, hp, resume, free_port(), out),
            nprocs=world,
            join=True,
            start_method=_forkserver(),
        )
        reports: Reports = pickle.loads(Path(out).read_bytes())
        return reports


def parity_hyperparams(**overrides: Any) -> LmHyperparams:
    """A deterministic tiny model: no dropout, no token dropout, a short run."""
    base = LmHyperparams(
        d_model=32,
        n_layers=2,
        n_heads=4,
        dropout=0.0,
        token_dropout=0.0,
        evals=2,
        steps_per_eval=4,
        eval_batches=2,
        batch_size=4,
        seq_len=32,
        corpus_bytes=400_000,
        compress_eval=False,
    )
    return replace(base, **overrides)
