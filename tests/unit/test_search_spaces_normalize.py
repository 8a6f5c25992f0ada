"""Tests of ``SearchSpace.normalize``: raw searcher configs to the user-facing form."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import yaml
from ray.tune.search.bohb import TuneBOHB
from ray.tune.search.hyperopt import HyperOptSearch
from ray.tune.search.variant_generator import generate_variants

from search_spaces import InvalidConfig, parse_space

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

NESTED = yaml.safe_load(
    """
model:
  encoder:
    width: {type: choice, values: [64, 128]}
    depth: {type: randint, low: 1, high: 4}
  dropout: {type: uniform, low: 0.0, high: 0.5}
optim:
  name:
    type: choice
    values:
      - value: sgd
        lr: {type: loguniform, low: 1.0e-3, high: 1.0}
        sched: {warmup: {type: randint, low: 0, high: 5}}
      - {value: adam, lr: {type: loguniform, low: 1.0e-6, high: 1.0e-3}}
"""
)


def _random_raw(space: Any, n: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    return [
        spec
        for _, spec in (
            next(generate_variants(space.to_tune(), random_state=rng)) for _ in range(n)
        )
    ]


def _hyperopt_raw(space: Any, n: int) -> list[dict[str, Any]]:
    searcher = HyperOptSearch(
        space=space.to_hyperopt(), metric="loss", mode="min", random_state_seed=0
    )
    return [searcher.suggest(str(i)) or {} for i in range(n)]


def _bohb_raw(space: Any, n: int) -> list[dict[str, Any]]:
    searcher = TuneBOHB(space=space.to_configspace(seed=0), metric="loss", mode="min")
    return [searcher.suggest(str(i)) or {} for i in range(n)]


@pytest.mark.parametrize("producer", [_random_raw, _hyperopt_raw, _bohb_raw])
def test_nested_groups_and_branches_round_trip(producer: Any) -> None:
    space = parse_space(NESTED)
    for raw in producer(space, 20):
        config = space.normalize(raw)
        assert set(config) == {"model", "optim"}
        assert set(config["model"]) == {"encoder", "dropout"}
        assert set(config["model"]["encoder"]) == {"width", "depth"}
        assert config["model"]["encoder"]["width"] in (64, 128)
        optim = config["optim"]
        if optim["name"] == "sgd":
            assert set(optim) == {"name", "lr", "sched"}
            assert 1e-3 <= optim["lr"] <= 1.0 and 0 <= optim["sched"]["warmup"] <= 5
        else:
            assert set(optim) == {"name", "lr"}
            assert 1e-6 <= optim["lr"] <= 1e-3  # the adam branch's own domain for 'lr'
        assert space.normalize(config) == config  # idempotent


def test_user_facing_config_passes_unchanged() -> None:
    space = parse_space(NESTED)
    config = {
        "model": {"encoder": {"width": 64, "depth": 2}, "dropout": 0.1},
        "optim": {"name": "sgd", "lr": 0.01, "sched": {"warmup": 3}},
    }
    assert space.normalize(config) == config


def test_fixed_config_keys_pass_through() -> None:
    space = parse_space(NESTED)
    raw = _random_raw(space, 1)[0]
    raw = {**raw, "epochs": 27, "model": {**raw["model"], "activation": "gelu"}}
    config = space.normalize(raw)
    assert config["epochs"] == 27 and config["model"]["activation"] == "gelu"


def test_raw_conditional_becomes_value_with_sub_parameters_beside_it() -> None:
    space = parse_space(
        yaml.safe_load(
            """
attention:
  type: choice
  values:
    - full
    - {value: window, window_size: {type: randint, low: 8, high: 128}}
    - {value: low_rank, rank: {type: choice, values: [16, 32, 64]}}
"""
        )
    )
    raw = {"attention": {"__branch__": np.int64(1), "__b1__": {"window_size": np.int64(37)}}}
    assert space.normalize(raw) == {"attention": "window", "window_size": 37}
    assert type(space.normalize(raw)["window_size"]) is int
    assert space.normalize({"attention": {"__branch__": 0}}) == {"attention": "full"}
    assert space.normalize({"attention": {"__branch__": 2, "__b2__": {"rank": np.int64(64)}}}) == {
        "attention": "low_rank",
        "rank": 64,
    }


def test_numpy_and_numeric_types_are_restored() -> None:
    space = parse_space(
        {
            "c": {"type": "choice", "values": [32, 64]},
            "b": {"type": "choice", "values": [True, False]},
            "f": {"type": "choice", "values": [0.5, 1]},
            "s": {"type": "grid", "values": ["x", None]},
            "i": {"type": "randint", "low": 0, "high": 9},
            "u": {"type": "uniform", "low": 0, "high": 1},
        }
    )
    config = space.normalize(
        {
            "c": np.int64(64),
            "b": np.bool_(False),
            "f": 1.0,
            "s": np.str_("x"),
            "i": 3.0,
            "u": np.float64(0.25),
        }
    )
    assert config == {"c": 64, "b": False, "f": 1, "s": "x", "i": 3, "u": 0.25}
    assert [type(config[k]) for k in "cbfsiu"] == [int, bool, int, str, int, float]


def test_quantized_values_are_rounded_to_clean_multiples() -> None:
    space = parse_space(
        {
            "q": {"type": "quniform", "low": 0.1, "high": 1.0, "q": 0.1},
            "qi": {"type": "qrandint", "low": 0, "high": 100, "q": 5},
        }
    )
    assert space.normalize({"q": 0.30000000000000004, "qi": 97.3}) == {"q": 0.3, "qi": 95}
    assert space.normalize({"q": 0.96, "qi": 102.4}) == {"q": 1.0, "qi": 100}


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"grp": {}}, "grp.x: missing"),
        ({}, "grp: missing"),
        ({"grp": 3}, "grp: expected a mapping"),
        ({"grp": {"x": "a"}}, "grp.x: expected a finite number"),
        ({"grp": {"x": 0.5}, "c": "nope"}, "c: 'nope' is not one of"),
        ({"grp": {"x": 0.5}, "c": {"__branch__": 5}}, "branch index 5 out of range"),
        ({"grp": {"x": 0.5}, "c": {"__branch__": 1, "__b1__": {}}}, "k: missing"),
    ],
)
def test_configs_that_do_not_fit_are_refused(config: dict[str, Any], fragment: str) -> None:
    space = parse_space(
        {
            "grp": {"x": {"type": "uniform", "low": 0, "high": 1}},
            "c": {
                "type": "choice",
                "values": ["a", {"value": "b", "k": {"type": "randint", "low": 0, "high": 2}}],
            },
        }
    )
    if "c" not in config and config:
        config = {**config, "c": "a"}
    with pytest.raises(InvalidConfig, match=fragment):
        space.normalize(config)
