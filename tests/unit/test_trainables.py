"""Unit tests of the trainables: objective values, fidelity penalty, registry and static checks."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import yaml

import trainables
from trainables import TrialResources, UnknownTrainable, get_trainable, list_trainables
from trainables.branin import BRANIN, MINIMISERS, branin
from trainables.hartmann6 import HARTMANN6, MINIMISER, hartmann6
from trainables.mlp_hparams import MlpHyperparams
from trainables.noop import noop_loss
from trainables.registry import TrainableSpec, register
from trainables.resources import trial_resources, worker_demand
from trainables.synthetic import fidelity_penalty, loss_at, read_point

BRANIN_OPTIMUM = 0.397887
HARTMANN6_OPTIMUM = -3.32237


@pytest.mark.parametrize("x", MINIMISERS)
def test_branin_minimisers(x: tuple[float, float]) -> None:
    assert branin(x) == pytest.approx(BRANIN_OPTIMUM, abs=1e-6)


@pytest.mark.parametrize(
    ("x", "expected"),
    [((0.0, 0.0), 55.60211264), ((-5.0, 0.0), 308.12909601), ((10.0, 15.0), 145.87219087)],
)
def test_branin_known_points(x: tuple[float, float], expected: float) -> None:
    assert branin(x) == pytest.approx(expected, rel=1e-7)


def test_hartmann6_minimum_and_points() -> None:
    assert hartmann6(MINIMISER) == pytest.approx(HARTMANN6_OPTIMUM, abs=1e-5)
    assert hartmann6([0.0] * 6) == pytest.approx(-0.00508911, abs=1e-6)
    assert hartmann6([0.5] * 6) == pytest.approx(-0.505315, abs=1e-5)


def test_objectives_never_below_optimum_on_a_grid() -> None:
    grid = [i / 4 for i in range(5)]
    for u in itertools.product(grid, repeat=2):
        x = [b.low + ui * (b.high - b.low) for ui, b in zip(u, BRANIN.bounds, strict=True)]
        assert branin(x) >= BRANIN.optimum - 1e-9
    for u in itertools.product([0.0, 0.5, 1.0], repeat=6):
        assert hartmann6(u) >= HARTMANN6.optimum - 1e-9


@pytest.mark.parametrize("function", [BRANIN, HARTMANN6])
def test_penalty_nonnegative_shrinking_and_zero_at_the_end(function) -> None:
    epochs = 9
    corners = [
        [b.low for b in function.bounds],
        [b.high for b in function.bounds],
        [(b.low + b.high) / 2 for b in function.bounds],
    ]
    for x in corners:
        penalties = [fidelity_penalty(function, x, t, epochs) for t in range(1, epochs + 1)]
        assert all(p >= 0 for p in penalties)
        assert penalties == sorted(penalties, reverse=True)
        assert penalties[-1] == 0.0
        assert loss_at(function, x, epochs, epochs) == function.objective(x)
        assert all(loss_at(function, x, t, epochs) >= function.optimum for t in range(1, epochs))


def test_low_fidelity_ranking_correlates_with_the_true_one() -> None:
    points = [(x1, x2) for x1 in (-4.0, -1.0, 2.0, 5.0, 8.0) for x2 in (1.0, 5.0, 9.0, 13.0)]
    true = [branin(x) for x in points]
    early = [loss_at(BRANIN, x, 1, 9) for x in points]
    true_rank = sorted(range(len(points)), key=true.__getitem__)
    early_rank = sorted(range(len(points)), key=early.__getitem__)
    d2 = sum((true_rank.index(i) - early_rank.index(i)) ** 2 for i in range(len(points)))
    n = len(points)
    spearman = 1 - 6 * d2 / (n * (n * n - 1))
    assert spearman > 0.9


def test_read_point_refuses_absent_and_outside_values() -> None:
    assert read_point(BRANIN, {"x1": 1, "x2": 2.5}) == [1.0, 2.5]
    with pytest.raises(ValueError, match="no 'x2'"):
        read_point(BRANIN, {"x1": 1})
    with pytest.raises(ValueError, match="outside"):
        read_point(BRANIN, {"x1": 11, "x2": 0})


def test_noop_loss_is_deterministic() -> None:
    config = {"x": 0.5, "x2": -1, "flag": True, "xname": "text", "lr": 3.0}
    assert noop_loss(config, 10, 10) == pytest.approx(1.25)
    assert noop_loss(config, 5, 10) == pytest.approx(1.75)


def test_registry_lists_and_finds_the_builtins() -> None:
    names = [spec.name for spec in list_trainables()]
    assert {"branin", "hartmann6", "noop", "mlp_digits"} <= set(names)
    assert names == sorted(names)
    spec = get_trainable("mlp_digits")
    assert spec.uses_train_workers and spec.fidelity_key == "epochs"
    assert spec.default_metric in spec.metrics
    for spec in list_trainables():
        if spec.fidelity_key:
            assert spec.fidelity_key in spec.default_config
        assert spec.validate is not None
        assert spec.validate(spec.default_config, TrialResources()) == []


def test_unknown_trainable() -> None:
    with pytest.raises(UnknownTrainable) as caught:
        get_trainable("nope")
    assert isinstance(caught.value, KeyError)
    assert "nope" in str(caught.value) and "branin" in str(caught.value)


def test_register_refuses_a_different_spec_under_a_taken_name() -> None:
    spec = get_trainable("noop")
    assert register(spec) is spec
    clone = TrainableSpec(**{**spec.__dict__, "description": "other"})
    with pytest.raises(ValueError, match="already registered"):
        register(clone)


def test_spec_checks_metric_and_mode() -> None:
    spec = get_trainable("noop")
    with pytest.raises(ValueError, match="default_mode"):
        TrainableSpec(**{**spec.__dict__, "default_mode": "down"})
    with pytest.raises(ValueError, match="default_metric"):
        TrainableSpec(**{**spec.__dict__, "default_metric": "accuracy"})


@pytest.mark.parametrize("name", ["branin", "hartmann6", "mlp_digits"])
def test_default_search_space_matches_the_preset(name: str) -> None:
    preset = Path(__file__).resolve().parents[2] / "search_spaces" / "presets" / f"{name}.yaml"
    if not preset.exists():
        pytest.skip(f"no preset {preset}")
    document = yaml.safe_load(preset.read_text())
    assert get_trainable(name).default_search_space == document["search_space"]


def test_default_search_spaces() -> None:
    assert get_trainable("branin").default_search_space == {
        "x1": {"type": "uniform", "low": -5.0, "high": 10.0},
        "x2": {"type": "uniform", "low": 0.0, "high": 15.0},
    }
    hartmann = get_trainable("hartmann6").default_search_space
    assert list(hartmann) == [f"x{i}" for i in range(1, 7)]
    mlp = get_trainable("mlp_digits").default_search_space
    assert set(mlp) == {
        "lr",
        "hidden",
        "layers",
        "weight_decay",
        "batch_size",
        "dropout",
        "optimizer",
    }


def test_synthetic_validate() -> None:
    validate = get_trainable("branin").validate
    assert validate is not None
    problems = validate(
        {"epochs": 0, "iteration_time_s": -1, "x1": 20},
        TrialResources(num_workers=2),
    )
    locs = {loc for loc, _ in problems}
    assert locs == {
        ("config", "epochs"),
        ("config", "iteration_time_s"),
        ("config", "x1"),
        ("resources", "num_workers"),
    }
    assert (("config", "epochs"), "must be >= 1, got 0") in problems
    assert validate({"epochs": 2.5}, TrialResources()) == [
        (("config", "epochs"), "must be an integer, got 2.5")
    ]


def test_mlp_digits_validate() -> None:
    validate = get_trainable("mlp_digits").validate
    assert validate is not None
    assert validate({"epochs": 3, "optimizer": "sgd", "momentum": 0.9}, TrialResources(2)) == []
    problems = validate(
        {"epochs": 0, "batch_size": 0, "lr": 0, "dropout": 1.0, "optimizer": "lbfgs"},
        TrialResources(num_workers=0, tensor_parallel=2),
    )
    locs = {loc for loc, _ in problems}
    assert locs == {
        ("resources", "num_workers"),
        ("resources", "tensor_parallel"),
        ("config", "epochs"),
        ("config", "batch_size"),
        ("config", "lr"),
        ("config", "dropout"),
        ("config", "optimizer"),
    }


def test_noop_validate() -> None:
    validate = get_trainable("noop").validate
    assert validate is not None
    problems = validate({"iterations": 0, "sleep_s": -0.1, "checkpoint": "yes"}, TrialResources())
    assert {loc for loc, _ in problems} == {
        ("config", "iterations"),
        ("config", "sleep_s"),
        ("config", "checkpoint"),
    }


def test_noop_train_validate_and_resources() -> None:
    spec = get_trainable("noop_train")
    assert spec.uses_train_workers and spec.fidelity_key == "iterations"
    assert spec.validate is not None
    problems = spec.validate(
        {"iterations": 0, "sleep_s": -1}, TrialResources(num_workers=0, tensor_parallel=2)
    )
    assert {loc for loc, _ in problems} == {
        ("config", "iterations"),
        ("config", "sleep_s"),
        ("resources", "num_workers"),
        ("resources", "tensor_parallel"),
    }
    assert trial_resources(spec, TrialResources(num_workers=2))["cpu"] == 0
    assert worker_demand(spec, TrialResources(num_workers=2)) == {"CPU": 2.0, "GPU": 0.0}


def test_mlp_hyperparams_defaults_and_conversion() -> None:
    hp = MlpHyperparams.from_config({"lr": "0.01", "hidden": 32.0, "optimizer": "sgd", "other": 1})
    assert (hp.lr, hp.hidden, hp.optimizer, hp.layers, hp.beta1) == (0.01, 32, "sgd", 2, 0.9)
    with pytest.raises(ValueError, match="optimizer"):
        MlpHyperparams.from_config({"optimizer": "rmsprop"})


def test_trial_resources() -> None:
    mlp, branin_spec = get_trainable("mlp_digits"), get_trainable("branin")
    two = TrialResources(num_workers=2, cpus_per_worker=1.5)
    request = trial_resources(mlp, two)
    assert request["cpu"] == 0 and request["memory"] > 0
    assert trial_resources(branin_spec, TrialResources(use_gpu=True)) == {"cpu": 1.0, "gpu": 1}
    assert worker_demand(mlp, two) == {"CPU": 3.0, "GPU": 0.0}
    assert worker_demand(branin_spec, TrialResources()) == {"CPU": 1.0, "GPU": 0.0}


def test_package_exports() -> None:
    assert trainables.get_trainable is get_trainable
    assert math.isclose(HARTMANN6.optimum, HARTMANN6_OPTIMUM, abs_tol=1e-5)
