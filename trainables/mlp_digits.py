"""``mlp_digits``: a PyTorch MLP on sklearn's digits, trained by Ray Train DDP workers per trial."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainables.checks import int_at_least, number_in, one_of
from trainables.mlp_hparams import OPTIMIZERS, MlpHyperparams
from trainables.registry import Problem, TrainableSpec, TrialResources, register

# Same content as search_spaces/presets/mlp_digits.yaml.
SEARCH_SPACE: dict[str, Any] = {
    "lr": {"type": "loguniform", "low": 1.0e-4, "high": 1.0e-1},
    "hidden": {"type": "choice", "values": [32, 64, 128]},
    "layers": {"type": "randint", "low": 1, "high": 3},
    "weight_decay": {"type": "loguniform", "low": 1.0e-6, "high": 1.0e-2},
    "batch_size": {"type": "choice", "values": [32, 64, 128]},
    "dropout": {"type": "uniform", "low": 0.0, "high": 0.5},
    "optimizer": {
        "type": "choice",
        "values": [
            {"value": "sgd", "momentum": {"type": "uniform", "low": 0.0, "high": 0.99}},
            {"value": "adam", "beta1": {"type": "uniform", "low": 0.8, "high": 0.99}},
        ],
    },
}


def run(config: dict[str, Any], resources: TrialResources) -> None:
    # torch and Ray Train load only in trial processes, not wherever the registry is read.
    from trainables.digits_data import load_split
    from trainables.mlp_worker import train_loop_per_worker
    from trainables.train_in_tune import fit_in_tune

    hp = MlpHyperparams.from_config(config)
    loop_config = {"hparams": hp.as_dict(), "data": load_split()}
    fit_in_tune(train_loop_per_worker, loop_config, resources)


def validate(config: Mapping[str, Any], resources: TrialResources) -> list[Problem]:
    problems: list[Problem] = []
    if resources.num_workers < 1:
        problems.append(
            (("resources", "num_workers"), f"must be >= 1, got {resources.num_workers}")
        )
    if resources.cpus_per_worker <= 0:
        problems.append((("resources", "cpus_per_worker"), "must be > 0"))
    if resources.tensor_parallel != 1:
        problems.append(
            (("resources", "tensor_parallel"), "mlp_digits is data parallel only; must be 1")
        )
    problems += int_at_least(config, "epochs", 1)
    problems += int_at_least(config, "seed", 0)
    problems += int_at_least(config, "batch_size", 1)
    problems += int_at_least(config, "hidden", 1)
    problems += int_at_least(config, "layers", 1)
    problems += number_in(config, "lr", 0.0, 10.0, low_open=True)
    problems += number_in(config, "weight_decay", 0.0, 1.0)
    problems += number_in(config, "dropout", 0.0, 1.0, high_open=True)
    problems += number_in(config, "momentum", 0.0, 1.0, high_open=True)
    problems += number_in(config, "beta1", 0.0, 1.0, high_open=True)
    problems += one_of(config, "optimizer", OPTIMIZERS)
    return problems


SPEC = register(
    TrainableSpec(
        name="mlp_digits",
        description=(
            "PyTorch MLP on scikit-learn's 8x8 digits (1,797 images, fixed 80/20 split), "
            "trained with Ray Train DDP on resources.num_workers workers; reports "
            "val_loss, val_accuracy, train_loss and epoch each of `epochs` epochs and "
            "resumes from its last epoch when paused."
        ),
        metrics=("val_loss", "val_accuracy", "train_loss", "epoch"),
        default_metric="val_loss",
        default_mode="min",
        default_search_space=SEARCH_SPACE,
        default_config={"epochs": 9, "seed": 0},
        fidelity_key="epochs",
        uses_train_workers=True,
        fn=run,
        validate=validate,
    )
)
