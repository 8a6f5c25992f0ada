"""Unit tests of the ``mlp_digits`` worker loop in Ray Train's local mode (no Ray cluster)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from trainables import TrialResources
from trainables.digits_data import load_split
from trainables.mlp_hparams import MlpHyperparams

Report = tuple[dict[str, Any], Path | None]


@pytest.fixture
def fit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Run the worker loop once, in-process, returning every (metrics, checkpoint copy)."""
    import ray.train
    from ray.train.v2.api.config import RunConfig, ScalingConfig
    from ray.train.v2.torch.torch_trainer import TorchTrainer

    from trainables.mlp_worker import train_loop_per_worker
    from trainables.train_channel import RESUME_KEY

    reports: list[Report] = []

    def report(metrics: dict[str, Any], checkpoint: Any = None) -> None:
        copy = None
        if checkpoint is not None:  # the worker deletes its directory after reporting
            copy = tmp_path / f"checkpoint-{len(list(tmp_path.iterdir()))}"
            shutil.copytree(checkpoint.path, copy)
        reports.append((dict(metrics), copy))

    monkeypatch.setattr(ray.train, "report", report)

    def run(epochs: int, resume_from: Path | None = None, **hparams: Any) -> list[Report]:
        reports.clear()
        config = {
            "hparams": MlpHyperparams(epochs=epochs, **hparams).as_dict(),
            "data": load_split(),
            RESUME_KEY: ray.train.Checkpoint(str(resume_from)) if resume_from else None,
        }
        TorchTrainer(
            train_loop_per_worker,
            train_loop_config=config,
            scaling_config=ScalingConfig(num_workers=0),  # local mode: this process
            run_config=RunConfig(storage_path=str(tmp_path / "storage")),
        ).fit()
        return list(reports)

    return run


def test_digits_split_is_fixed_and_standardised() -> None:
    split = load_split()
    assert split.x_train.shape == (1437, 64) and split.x_val.shape == (360, 64)
    assert abs(float(split.x_train.mean())) < 1e-5
    assert set(split.y_val.tolist()) == set(range(10))


def test_worker_loop_reports_each_epoch_and_learns(fit) -> None:
    reports = fit(3, lr=0.01)
    assert [m["epoch"] for m, _ in reports] == [1, 2, 3]
    assert all(c is not None for _, c in reports)  # rank 0 checkpoints every epoch
    assert set(reports[0][0]) == {"epoch", "train_loss", "val_loss", "val_accuracy"}
    assert reports[-1][0]["val_accuracy"] > 0.8
    assert reports[-1][0]["val_loss"] < reports[0][0]["val_loss"]


def test_resumed_run_continues_exactly_where_it_stopped(fit) -> None:
    uninterrupted = fit(3, optimizer="sgd", momentum=0.9, lr=0.05)
    first = fit(1, optimizer="sgd", momentum=0.9, lr=0.05)
    resumed = fit(3, resume_from=first[-1][1], optimizer="sgd", momentum=0.9, lr=0.05)
    assert [m["epoch"] for m, _ in resumed] == [2, 3]
    assert [m for m, _ in resumed] == [m for m, _ in uninterrupted[1:]]


def test_scaling_config_asks_per_worker_resources() -> None:
    from trainables.train_in_tune import scaling_config

    cpu = scaling_config(TrialResources(num_workers=2, cpus_per_worker=1.5))
    assert (cpu.num_workers, cpu.use_gpu) == (2, False)
    assert cpu.resources_per_worker == {"CPU": 1.5}
    gpu = scaling_config(TrialResources(num_workers=4, use_gpu=True))
    assert gpu.resources_per_worker == {"CPU": 1.0, "GPU": 1}
