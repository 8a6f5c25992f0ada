"""Tests of what each algorithm refuses, grid sizes, PBT mutations and parameter paths."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from ray.tune.search.sample import Categorical, Float, Integer

from search_spaces import InvalidSpec, parse_space

SPACE: dict[str, Any] = yaml.safe_load(
    """
x: {type: uniform, low: 0, high: 1}
g: {type: grid, values: [1, 2, 3]}
grp:
  lr: {type: loguniform, low: 1.0e-5, high: 1.0e-1}
  h: {type: grid, values: [a, b]}
c: {type: choice, values: [1, 2]}
attention:
  type: choice
  values:
    - full
    - value: window
      window_size: {type: randint, low: 8, high: 128}
      k: {type: choice, values: [1, 2]}
    - {value: banded, band: {type: grid, values: [2, 4]}}
"""
)


def refused(algorithm: str) -> list[tuple[str | int, ...]]:
    with pytest.raises(InvalidSpec) as info:
        parse_space(SPACE).check_algorithm(algorithm)
    return [loc for loc, _ in info.value.errors]


def test_random_refuses_only_grid_inside_a_branch() -> None:
    assert refused("random") == [("attention", "values", 2, "band")]


def test_grid_refuses_every_range_with_its_path() -> None:
    assert refused("grid") == [("x",), ("grp", "lr"), ("attention", "values", 1, "window_size")]


@pytest.mark.parametrize("algorithm", ["hyperopt", "bohb"])
def test_hyperopt_and_bohb_refuse_every_grid_with_its_path(algorithm: str) -> None:
    assert refused(algorithm) == [("g",), ("grp", "h"), ("attention", "values", 2, "band")]


def test_refusal_messages_say_why() -> None:
    space = parse_space({"u": {"type": "quniform", "low": 0, "high": 1, "q": 0.5}})
    with pytest.raises(InvalidSpec) as info:
        space.check_algorithm("grid")
    assert str(info.value).startswith("u: grid search cannot enumerate a quniform range")
    grid = parse_space({"g": {"type": "grid", "values": [1]}})
    with pytest.raises(InvalidSpec, match="BOHB cannot enumerate grid values"):
        grid.check_algorithm("bohb")
    with pytest.raises(InvalidSpec, match="HyperOpt cannot enumerate grid values"):
        grid.to_hyperopt()


def test_everything_else_is_accepted() -> None:
    space = parse_space({k: v for k, v in SPACE.items() if k not in ("g", "grp", "attention")})
    for algorithm in ("random", "hyperopt", "bohb"):
        space.check_algorithm(algorithm)
    parse_space({"c": SPACE["c"], "g": SPACE["g"]}).check_algorithm("grid")


def test_unknown_algorithm_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown algorithm 'annealing'"):
        parse_space(SPACE).check_algorithm("annealing")


def test_grid_size_for_random_counts_grid_parameters() -> None:
    space = parse_space({k: v for k, v in SPACE.items() if k != "attention"})
    assert space.grid_size() == 3 * 2
    with pytest.raises(InvalidSpec):
        space.grid_size("grid")


def test_parameter_paths() -> None:
    assert parse_space(SPACE).parameter_paths() == [
        "x",
        "g",
        "grp.lr",
        "grp.h",
        "c",
        "attention",
        "window_size",
        "k",
        "band",
    ]


def test_pbt_mutations() -> None:
    space = parse_space(
        yaml.safe_load(
            """
lr: {type: loguniform, low: 1.0e-5, high: 1.0e-1}
layers: {type: randint, low: 1, high: 3}
q: {type: qrandint, low: 0, high: 10, q: 5}
grp: {width: {type: choice, values: [32, 64]}, g: {type: grid, values: [1, 2]}}
"""
        )
    )
    mutations = space.to_pbt_mutations()
    assert isinstance(mutations["lr"], Float)
    layers = mutations["layers"]
    assert isinstance(layers, Integer) and (layers.lower, layers.upper) == (1, 4)
    assert {mutations["q"].sample() for _ in range(200)} == {0, 5, 10}
    assert mutations["grp"] == {"width": [32, 64], "g": [1, 2]}


def test_pbt_refuses_conditional_choices_with_their_path() -> None:
    space = parse_space(
        {"c": {"type": "choice", "values": [1, 2]}, "attention": SPACE["attention"]}
    )
    with pytest.raises(InvalidSpec) as info:
        space.to_pbt_mutations()
    assert [loc for loc, _ in info.value.errors] == [("attention",)]


def test_to_tune_choice_domains() -> None:
    space = parse_space({"c": {"type": "choice", "values": [1, 2]}})
    assert isinstance(space.to_tune()["c"], Categorical)
    assert space.to_tune("grid") == {"c": {"grid_search": [1, 2]}}
