"""Tests of parsing and validating the search-space language (no Ray needed)."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
import yaml

from search_spaces import (
    Branch,
    Choice,
    Grid,
    Group,
    InvalidSpec,
    LogRandInt,
    LogUniform,
    QRandInt,
    QUniform,
    RandInt,
    Uniform,
    parse_space,
)

DESIGN_SPACE = yaml.safe_load(
    """
x1: {type: uniform, low: -5, high: 10}
x2: {type: uniform, low: 0, high: 15}
lr: {type: loguniform, low: 1.0e-5, high: 1.0e-1}
layers: {type: randint, low: 2, high: 8}          # high inclusive
width: {type: choice, values: [128, 256, 512]}
attention:
  type: choice
  values:
    - full
    - {value: window, window_size: {type: randint, low: 8, high: 128}}
    - {value: low_rank, rank: {type: choice, values: [16, 32, 64]}}
"""
)


def errors_of(spec: Any) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(InvalidSpec) as info:
        parse_space(spec)
    return info.value.errors


def locs_of(spec: Any) -> list[tuple[str | int, ...]]:
    return [loc for loc, _ in errors_of(spec)]


def test_design_example_parses_to_typed_domains() -> None:
    space = parse_space(DESIGN_SPACE)
    assert space.params["x1"] == Uniform(-5.0, 10.0)
    assert space.params["lr"] == LogUniform(1e-5, 1e-1)
    assert space.params["layers"] == RandInt(2, 8)
    assert space.params["width"] == Choice((128, 256, 512))
    attention = space.params["attention"]
    assert isinstance(attention, Choice) and attention.is_conditional
    assert attention.values == ("full", "window", "low_rank")
    assert attention.options[1] == Branch("window", {"window_size": RandInt(8, 128)})
    assert attention.options[2] == Branch("low_rank", {"rank": Choice((16, 32, 64))})


def test_every_type_and_groups() -> None:
    space = parse_space(
        {
            "q": {"type": "quniform", "low": 0.1, "high": 1.0, "q": 0.1},
            "li": {"type": "lograndint", "low": 1, "high": 1000},
            "qi": {"type": "qrandint", "low": 0, "high": 100, "q": 10},
            "g": {"type": "grid", "values": ["a", "b"]},
            "model": {"depth": {"type": "randint", "low": 1.0, "high": 4}},
        }
    )
    assert space.params["q"] == QUniform(0.1, 1.0, 0.1)
    assert space.params["li"] == LogRandInt(1, 1000)
    assert space.params["qi"] == QRandInt(0, 100, 10)
    assert space.params["g"] == Grid(("a", "b"))
    assert space.params["model"] == Group({"depth": RandInt(1, 4)})
    assert isinstance(space.params["model"].params["depth"].low, int)  # type: ignore[union-attr]


def test_branch_without_sub_parameters_is_a_plain_value() -> None:
    space = parse_space({"a": {"type": "choice", "values": [{"value": "x"}, "y"]}})
    assert space.params["a"] == Choice(("x", "y"))
    assert not space.params["a"].is_conditional  # type: ignore[union-attr]


def test_str_names_the_path_like_the_service_shows_it() -> None:
    spec = yaml.safe_load(
        """
attention:
  type: choice
  values:
    - full
    - {value: window, window_size: {type: randint, low: 200, high: 128}}
"""
    )
    with pytest.raises(InvalidSpec) as info:
        parse_space(spec)
    error = info.value
    assert error.errors == [
        (("attention", "values", 1, "window_size", "low"), "must be < high (got 200 >= 128)")
    ]
    assert str(error.with_prefix("search_space")) == (
        "search_space.attention.values[1].window_size.low: must be < high (got 200 >= 128)"
    )
    assert isinstance(error, ValueError)


def test_invalid_spec_survives_pickling() -> None:
    error = InvalidSpec.many([(("a", 1), "x"), (("b",), "y")])
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, InvalidSpec) and copy.errors == error.errors
    assert str(copy) == str(error)


def test_invalid_spec_many_and_single() -> None:
    one = InvalidSpec(("a", 0), "bad")
    assert one.errors == [(("a", 0), "bad")] and str(one) == "a[0]: bad"
    many = InvalidSpec.many([(("a",), "x"), ((), "y")])
    assert many.errors == [(("a",), "x"), ((), "y")]
    assert str(many) == "a: x; y"


@pytest.mark.parametrize(
    ("definition", "loc", "fragment"),
    [
        ({"type": "nope", "low": 0}, ("p", "type"), "unknown type 'nope'"),
        ({"type": 3}, ("p", "type"), "unknown type 3"),
        ({"type": "uniform", "low": 0}, ("p", "high"), "required for type uniform"),
        ({"type": "uniform", "low": 0, "high": 1, "q": 1}, ("p", "q"), "unknown field"),
        ({"type": "uniform", "low": 2, "high": 1}, ("p", "low"), "must be < high (got 2 >= 1)"),
        ({"type": "uniform", "low": 1, "high": 1}, ("p", "low"), "must be < high"),
        ({"type": "uniform", "low": "a", "high": 1}, ("p", "low"), "must be a number"),
        ({"type": "uniform", "low": "1e-5", "high": 1}, ("p", "low"), "write 1.0e-5"),
        ({"type": "uniform", "low": True, "high": 2}, ("p", "low"), "got a boolean"),
        ({"type": "uniform", "low": 0, "high": float("inf")}, ("p", "high"), "finite"),
        ({"type": "uniform", "low": None, "high": 1}, ("p", "low"), "must be a number"),
        ({"type": "loguniform", "low": 0, "high": 1}, ("p", "low"), "must be > 0"),
        ({"type": "loguniform", "low": -1, "high": 1}, ("p", "low"), "must be > 0"),
        ({"type": "quniform", "low": 0, "high": 1, "q": 0}, ("p", "q"), "must be > 0"),
        ({"type": "quniform", "low": 0, "high": 1, "q": -0.5}, ("p", "q"), "must be > 0"),
        ({"type": "quniform", "low": 0.05, "high": 1, "q": 0.1}, ("p", "low"), "multiple of q"),
        ({"type": "quniform", "low": 0, "high": 1.05, "q": 0.1}, ("p", "high"), "multiple"),
        ({"type": "randint", "low": 0.5, "high": 3}, ("p", "low"), "must be an integer"),
        ({"type": "randint", "low": 3, "high": 3}, ("p", "low"), "must be < high"),
        ({"type": "lograndint", "low": 0, "high": 3}, ("p", "low"), "must be >= 1"),
        ({"type": "qrandint", "low": 0, "high": 10, "q": 0}, ("p", "q"), "must be > 0"),
        ({"type": "qrandint", "low": 0, "high": 10, "q": 1.5}, ("p", "q"), "integer"),
        ({"type": "qrandint", "low": 1, "high": 10, "q": 5}, ("p", "low"), "multiple of q=5"),
        ({"type": "choice", "values": []}, ("p", "values"), "must not be empty"),
        ({"type": "choice", "values": "abc"}, ("p", "values"), "must be a list"),
        ({"type": "choice"}, ("p", "values"), "required for type choice"),
        ({"type": "choice", "values": [1, 2, 1]}, ("p", "values", 2), "duplicate value 1"),
        ({"type": "choice", "values": [1, 1.0]}, ("p", "values", 1), "duplicate"),
        ({"type": "choice", "values": [1, True]}, ("p", "values", 1), "duplicate"),
        ({"type": "choice", "values": [[1, 2]]}, ("p", "values", 0), "must be a scalar"),
        ({"type": "choice", "values": [float("nan")]}, ("p", "values", 0), "finite"),
        ({"type": "choice", "values": [{"a": 1}]}, ("p", "values", 0), "'value' key"),
        ({"type": "choice", "values": [{"value": [1]}]}, ("p", "values", 0, "value"), "scalar"),
        ({"type": "grid", "values": []}, ("p", "values"), "must not be empty"),
        ({"type": "grid", "values": ["a", "a"]}, ("p", "values", 1), "duplicate value 'a'"),
        (
            {
                "type": "grid",
                "values": [{"value": 1, "x": {"type": "uniform", "low": 0, "high": 1}}],
            },
            ("p", "values", 0),
            "grid values must be scalars",
        ),
        (5, ("p",), "expected a parameter definition"),
        ("uniform", ("p",), "fixed values belong in the study's config"),
        ([1, 2], ("p",), "got a list"),
        ({}, ("p",), "a group must contain at least one parameter"),
    ],
)
def test_each_bad_definition_names_its_path(definition: Any, loc: tuple, fragment: str) -> None:
    errors = errors_of({"ok": {"type": "uniform", "low": 0, "high": 1}, "p": definition})
    assert [e[0] for e in errors] == [loc], errors
    assert fragment in errors[0][1]


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("a/b", "'/'"),
        ("a.b", "letters, digits"),
        ("a b", "letters, digits"),
        ("", "letters, digits"),
        ("42", "digits only"),
        ("__x", "reserved"),
        ("eval", "Ray Tune reserves"),
        ("grid_search", "Ray Tune reserves"),
    ],
)
def test_bad_names_are_refused(name: str, fragment: str) -> None:
    errors = errors_of({"group": {name: {"type": "uniform", "low": 0, "high": 1}}})
    assert errors[0][0] == ("group", name)
    assert fragment in errors[0][1]


def test_non_string_name() -> None:
    assert locs_of({1: {"type": "uniform", "low": 0, "high": 1}}) == [("1",)]


@pytest.mark.parametrize("good", ["lr", "x_1", "hidden-size", "Layer2", "_private", "2nd"])
def test_good_names(good: str) -> None:
    parse_space({good: {"type": "uniform", "low": 0, "high": 1}})


def test_top_level_must_be_a_non_empty_mapping() -> None:
    assert errors_of({}) == [((), "must define at least one parameter")]
    assert locs_of([1]) == [()]


def test_all_problems_are_collected() -> None:
    spec = yaml.safe_load(
        """
a: {type: uniform, low: 3, high: 1, extra: 2}
b: {type: loguniform, low: 0, high: 1}
c: 5
grp:
  d: {type: choice, values: []}
  e: {type: randint, low: 1.5, high: 2}
attention:
  type: choice
  values:
    - {value: window, window_size: {type: randint, low: 200, high: 128}}
    - {value: window}
"""
    )
    assert locs_of(spec) == [
        ("a", "extra"),
        ("a", "low"),
        ("b", "low"),
        ("c",),
        ("grp", "d", "values"),
        ("grp", "e", "low"),
        ("attention", "values", 0, "window_size", "low"),
        ("attention", "values", 1),
    ]


def test_branch_sub_parameter_may_not_collide_with_a_sibling() -> None:
    spec = {
        "window_size": {"type": "uniform", "low": 0, "high": 1},
        "attention": {
            "type": "choice",
            "values": [
                "full",
                {"value": "window", "window_size": {"type": "randint", "low": 8, "high": 128}},
            ],
        },
    }
    errors = errors_of(spec)
    assert [e[0] for e in errors] == [("attention", "values", 1, "window_size")]
    assert "window_size" in errors[0][1] and "same key" in errors[0][1]


def test_branch_sub_parameter_may_not_take_its_choices_name() -> None:
    spec = {
        "a": {
            "type": "choice",
            "values": ["x", {"value": "y", "a": {"type": "uniform", "low": 0, "high": 1}}],
        }
    }
    assert locs_of(spec) == [("a", "values", 1, "a")]


def test_two_conditional_choices_may_not_put_the_same_name_beside_them() -> None:
    branch = {"value": "on", "size": {"type": "randint", "low": 1, "high": 4}}
    spec = {
        "a": {"type": "choice", "values": ["off", branch]},
        "b": {"type": "choice", "values": ["off", dict(branch)]},
    }
    assert locs_of(spec) == [("b", "values", 1, "size")]


def test_nested_branch_names_rise_to_the_choice_level() -> None:
    inner = {
        "type": "choice",
        "values": ["x", {"value": "y", "w": {"type": "uniform", "low": 0, "high": 1}}],
    }
    spec = {
        "w": {"type": "uniform", "low": 0, "high": 1},
        "outer": {"type": "choice", "values": ["p", {"value": "q", "inner": inner}]},
    }
    assert locs_of(spec) == [("outer", "values", 1, "inner", "values", 1, "w")]


def test_branches_of_one_choice_may_share_a_sub_parameter_name() -> None:
    spec = yaml.safe_load(
        """
optimizer:
  type: choice
  values:
    - {value: sgd, lr: {type: loguniform, low: 1.0e-3, high: 1.0}}
    - {value: adam, lr: {type: loguniform, low: 1.0e-5, high: 1.0e-2}}
"""
    )
    space = parse_space(spec)
    assert space.parameter_paths() == ["optimizer", "lr"]


def test_groups_inside_branches_and_groups_may_reuse_names() -> None:
    spec = yaml.safe_load(
        """
width: {type: choice, values: [1, 2]}
encoder: {width: {type: choice, values: [1, 2]}}
decoder:
  kind:
    type: choice
    values:
      - plain
      - {value: fancy, extra: {width: {type: randint, low: 1, high: 3}}}
"""
    )
    assert parse_space(spec).parameter_paths() == [
        "width",
        "encoder.width",
        "decoder.kind",
        "decoder.extra.width",
    ]
