"""Drive the real searchers (Tune's variant generator, HyperOpt, BOHB) with converted spaces.

No Ray cluster: each searcher is asked for configs directly, as Tune would, and every
normalized config is checked against the space (bounds, inclusive integer highs, q
multiples, original choice types, branch sub-parameters only for the chosen branch).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import pytest
from ray.tune.registry import register_trainable
from ray.tune.search.basic_variant import BasicVariantGenerator
from ray.tune.search.bohb import TuneBOHB
from ray.tune.search.hyperopt import HyperOptSearch

from search_spaces import (
    Branch,
    Choice,
    Grid,
    Group,
    InvalidSpec,
    LogUniform,
    Node,
    QRandInt,
    QUniform,
    SearchSpace,
    Uniform,
    parse_space,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::UserWarning"
)

CONDITIONAL = {
    "type": "choice",
    "values": [
        "full",
        {
            "value": "window",
            "window_size": {"type": "randint", "low": 8, "high": 128},
            "scale": {"type": "uniform", "low": 0, "high": 1},
        },
        {
            "value": 3,
            "rank": {"type": "choice", "values": [16, 32, 64]},
            "scale": {"type": "loguniform", "low": 1, "high": 2},
            "extra": {
                "kind": {
                    "type": "choice",
                    "values": [
                        "a",
                        {"value": "b", "deep": {"type": "qrandint", "low": 0, "high": 10, "q": 5}},
                    ],
                }
            },
        },
    ],
}

#: Every type except grid; ranges tight enough to see their ends in ~100 draws.
ALL_BUT_GRID: dict[str, Any] = {
    "u": {"type": "uniform", "low": -5, "high": 10},
    "lu": {"type": "loguniform", "low": 1.0e-5, "high": 1.0e-1},
    "qu": {"type": "quniform", "low": 0.5, "high": 2.5, "q": 0.25},
    "qu_tenth": {"type": "quniform", "low": 0.1, "high": 0.5, "q": 0.1},
    "ri": {"type": "randint", "low": 0, "high": 1},
    "ri_neg": {"type": "randint", "low": -2, "high": 2},
    "lri": {"type": "lograndint", "low": 1, "high": 4},
    "qri": {"type": "qrandint", "low": 0, "high": 20, "q": 5},
    "qri_one": {"type": "qrandint", "low": 3, "high": 5, "q": 1},
    "ch": {"type": "choice", "values": [32, "s", None, True, 2.5]},
    "ints": {"type": "choice", "values": [16, 32, 64]},
    "grp": {
        "inner": {
            "x": {"type": "uniform", "low": 0, "high": 1},
            "c": {"type": "choice", "values": ["a", "b"]},
        }
    },
    "attention": CONDITIONAL,
}

WITH_GRID = {**ALL_BUT_GRID, "g": {"type": "grid", "values": ["x", 2, None]}}

GRID_ONLY = {
    "g": {"type": "grid", "values": [1, 2]},
    "c": {"type": "choice", "values": ["a", "b", "c"]},
    "grp": {"h": {"type": "grid", "values": [0.5, 1.5]}},
    "opt": {
        "type": "choice",
        "values": [
            "plain",
            {"value": "sgd", "momentum": {"type": "choice", "values": [0.0, 0.9]}},
            {
                "value": "adam",
                "beta": {"type": "grid", "values": [0.8, 0.9, 0.99]},
                "amsgrad": {"type": "choice", "values": [True, False]},
            },
        ],
    },
}


# -- checking a normalized config against the space ---------------------------------------


def assert_fits(space: SearchSpace, config: Mapping[str, Any]) -> None:
    """Every parameter present, in its domain, typed; no key beyond the active ones."""
    used = _check_level(space.params, config, "")
    assert set(config) == used, f"unexpected keys {set(config) - used} in {config}"


def _check_level(params: Mapping[str, Node], config: Mapping[str, Any], where: str) -> set[str]:
    used: set[str] = set()
    for name, node in params.items():
        path = f"{where}{name}"
        assert name in config, f"{path} missing from {config}"
        used.add(name)
        value = config[name]
        if isinstance(node, Group):
            assert isinstance(value, dict)
            inner = _check_level(node.params, value, path + ".")
            assert set(value) == inner, f"{path}: unexpected keys in {value}"
        elif isinstance(node, (Choice, Grid)):
            matches = [
                i for i, v in enumerate(node.values) if v == value and type(v) is type(value)
            ]
            assert matches, f"{path}={value!r} ({type(value).__name__}) not in {node.values}"
            if isinstance(node, Choice):
                option = node.options[matches[0]]
                if isinstance(option, Branch):
                    used |= _check_level(option.params, config, where)
        else:
            _check_range(node, value, path)
    return used


def _check_range(node: Node, value: Any, path: str) -> None:
    if isinstance(node, (Uniform, LogUniform, QUniform)):
        assert type(value) is float, f"{path}={value!r} is not a float"
    else:
        assert type(value) is int, f"{path}={value!r} is not an int"
    assert node.low <= value <= node.high, f"{path}={value!r} outside [{node.low}, {node.high}]"  # type: ignore[union-attr]
    if isinstance(node, LogUniform):
        assert value > 0
    if isinstance(node, QUniform):
        assert math.isclose(value / node.q, round(value / node.q), abs_tol=1e-9), (
            f"{path}={value!r}"
        )
        assert value == round(value, 10), f"{path}={value!r} carries float noise"
    if isinstance(node, QRandInt):
        assert value % node.q == 0, f"{path}={value!r} not a multiple of {node.q}"


def seen_values(configs: list[dict[str, Any]], *path: str) -> set[Any]:
    found = set()
    for config in configs:
        value: Any = config
        for key in path:
            if not isinstance(value, dict) or key not in value:
                break
            value = value[key]
        else:
            found.add(json.dumps(value))
    return {json.loads(v) for v in found}


def assert_ends_seen(configs: list[dict[str, Any]]) -> None:
    """With enough draws, every integer type shows both ends; choices show every value."""
    assert seen_values(configs, "ri") == {0, 1}
    assert seen_values(configs, "ri_neg") == {-2, -1, 0, 1, 2}
    assert seen_values(configs, "lri") == {1, 2, 3, 4}
    assert seen_values(configs, "qri") == {0, 5, 10, 15, 20}
    assert seen_values(configs, "qri_one") == {3, 4, 5}
    assert seen_values(configs, "qu") >= {0.5, 2.5}
    assert len(seen_values(configs, "ch")) == 5
    assert seen_values(configs, "attention") == {"full", "window", 3}
    assert seen_values(configs, "extra", "kind") == {"a", "b"}
    assert seen_values(configs, "extra", "deep") == {0, 5, 10}


# -- drivers -------------------------------------------------------------------------------


# Registered once, by name: registering a fresh function per call makes Tune flush its
# registry to the cluster's KV store, which races with other threads of a process that
# is also a Ray driver (seen in the full suite as "dictionary changed size").
NOOP_TRAINABLE = "search-spaces-test-noop"
register_trainable(NOOP_TRAINABLE, lambda config: None)


def basic_variant_configs(param_space: dict[str, Any], num_samples: int) -> list[dict[str, Any]]:
    generator = BasicVariantGenerator(random_state=0)
    generator.add_configurations(
        {"exp": {"run": NOOP_TRAINABLE, "config": param_space, "num_samples": num_samples}}
    )
    configs = []
    while (trial := generator.next_trial()) is not None:
        configs.append(trial.config)
    return configs


def hyperopt_configs(space: SearchSpace, n: int, report: bool = False) -> list[dict[str, Any]]:
    searcher = HyperOptSearch(
        space=space.to_hyperopt(),
        metric="loss",
        mode="min",
        random_state_seed=0,
        n_initial_points=5,
    )
    configs = []
    for i in range(n):
        config = searcher.suggest(str(i))
        assert config is not None
        configs.append(config)
        if report:
            loss = float(hash(json.dumps(space.normalize(config), sort_keys=True)) % 97)
            searcher.on_trial_complete(str(i), {"loss": loss})
    return configs


def bohb_configs(space: SearchSpace, n: int) -> list[dict[str, Any]]:
    searcher = TuneBOHB(space=space.to_configspace(seed=0), metric="loss", mode="min", seed=0)
    configs = []
    for i in range(n):
        config = searcher.suggest(str(i))
        assert config is not None
        configs.append(config)
    return configs


# -- random (BasicVariantGenerator) ----------------------------------------------------------


def test_random_every_type_fits_and_reaches_inclusive_highs() -> None:
    space = parse_space(ALL_BUT_GRID)
    raw = basic_variant_configs(space.to_tune("random"), 150)
    assert len(raw) == 150
    configs = [space.normalize(c) for c in raw]
    for config in configs:
        assert_fits(space, config)
    assert_ends_seen(configs)


def test_random_with_grid_runs_grid_size_times_num_samples() -> None:
    space = parse_space(WITH_GRID)
    assert space.grid_size() == 3
    raw = basic_variant_configs(space.to_tune("random"), 4)
    assert len(raw) == 3 * 4
    configs = [space.normalize(c) for c in raw]
    for config in configs:
        assert_fits(space, config)
    assert [c["g"] for c in configs].count(None) == 4


def test_random_raw_conditional_shape() -> None:
    space = parse_space({"attention": CONDITIONAL})
    raw = basic_variant_configs(space.to_tune(), 30)
    shapes = {tuple(sorted(c["attention"])) for c in raw}
    assert shapes == {("__branch__",), ("__b1__", "__branch__"), ("__b2__", "__branch__")}


# -- grid (BasicVariantGenerator) ------------------------------------------------------------


def test_grid_enumerates_every_combination_once_per_sample() -> None:
    space = parse_space(GRID_ONLY)
    # g (2) * c (3) * grp.h (2) * opt (plain 1 + sgd 2 + adam 3*2=6 -> 9)
    size = space.grid_size("grid")
    assert size == 2 * 3 * 2 * 9
    raw = basic_variant_configs(space.to_tune("grid"), 2)
    assert len(raw) == size * 2
    configs = [space.normalize(c) for c in raw]
    for config in configs:
        assert_fits(space, config)
    distinct = {json.dumps(c, sort_keys=True) for c in configs}
    assert len(distinct) == size
    assert {c["opt"] for c in configs} == {"plain", "sgd", "adam"}
    assert all("beta" not in c for c in configs if c["opt"] != "adam")


def test_grid_size_is_none_without_grid_parameters() -> None:
    space = parse_space({"c": {"type": "choice", "values": [1, 2]}})
    assert space.grid_size() is None
    assert space.grid_size("grid") == 2
    assert space.grid_size("hyperopt") is None


# -- hyperopt ---------------------------------------------------------------------------------


def test_hyperopt_every_type_fits_and_reaches_inclusive_highs() -> None:
    space = parse_space(ALL_BUT_GRID)
    configs = [space.normalize(c) for c in hyperopt_configs(space, 80)]
    for config in configs:
        assert_fits(space, config)
    assert_ends_seen(configs)


def test_hyperopt_keeps_suggesting_valid_configs_once_tpe_takes_over() -> None:
    space = parse_space(ALL_BUT_GRID)
    raw = hyperopt_configs(space, 25, report=True)
    for config in raw:
        assert_fits(space, space.normalize(config))


def test_hyperopt_integer_types_arrive_as_ints() -> None:
    space = parse_space(ALL_BUT_GRID)
    raw = hyperopt_configs(space, 10)
    assert all(type(c["ri"]) is int and type(c["lri"]) is int for c in raw)


# -- bohb ---------------------------------------------------------------------------------------


def test_bohb_every_type_fits_and_reaches_inclusive_highs() -> None:
    space = parse_space(ALL_BUT_GRID)
    configs = [space.normalize(c) for c in bohb_configs(space, 150)]
    for config in configs:
        assert_fits(space, config)
    assert_ends_seen(configs)


def test_bohb_configspace_names_and_conditions() -> None:
    space = parse_space(ALL_BUT_GRID)
    cs = space.to_configspace(seed=1)
    names = set(cs.keys())
    assert {"grp/inner/x", "attention/__branch__", "attention/__b1__/scale"} <= names
    assert {"attention/__b2__/scale", "attention/__b2__/extra/kind/__branch__"} <= names
    assert "attention/__b2__/extra/kind/__b1__/deep" in names
    assert len(cs.conditions) == 6
    assert all(part for name in names for part in name.split("/"))


def test_bohb_model_based_suggestions_fit() -> None:
    space = parse_space(
        {
            "lr": {"type": "loguniform", "low": 1.0e-4, "high": 1.0e-1},
            "layers": {"type": "randint", "low": 1, "high": 3},
            "q": {"type": "qrandint", "low": 0, "high": 20, "q": 5},
            "optimizer": {
                "type": "choice",
                "values": [
                    {"value": "sgd", "momentum": {"type": "uniform", "low": 0, "high": 0.99}},
                    "adam",
                ],
            },
        }
    )
    searcher = TuneBOHB(space=space.to_configspace(seed=0), metric="loss", mode="min", seed=0)
    for i in range(24):
        config = space.normalize(searcher.suggest(str(i)) or {})
        searcher.on_trial_result(str(i), {"loss": config["lr"], "hyperband_info": {"budget": 1}})
        searcher.on_trial_complete(str(i), {"loss": config["lr"]})
    assert searcher.bohber.kde_models, "BOHB built no model from the results"
    for i in range(24, 36):
        assert_fits(space, space.normalize(searcher.suggest(str(i)) or {}))


# -- refusals through the converters -------------------------------------------------------------


@pytest.mark.parametrize("convert", ["to_hyperopt", "to_configspace"])
def test_converters_refuse_grid(convert: str) -> None:
    space = parse_space({"grp": {"g": {"type": "grid", "values": [1, 2]}}})
    with pytest.raises(InvalidSpec) as info:
        getattr(space, convert)()
    assert [loc for loc, _ in info.value.errors] == [("grp", "g")]
    assert "cannot enumerate grid values" in str(info.value)


def test_to_tune_grid_refuses_ranges() -> None:
    space = parse_space({"u": {"type": "uniform", "low": 0, "high": 1}})
    with pytest.raises(ValueError, match="grid search cannot enumerate a uniform range"):
        space.to_tune("grid")


def test_to_tune_refuses_other_algorithms() -> None:
    space = parse_space({"u": {"type": "uniform", "low": 0, "high": 1}})
    with pytest.raises(ValueError, match="random"):
        space.to_tune("bohb")
