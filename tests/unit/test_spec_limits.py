"""Bounds on a study spec: parameters, strings, keys, lists, nesting, values; each refused
with InvalidSpec naming the field path, before anything else walks the document."""

from __future__ import annotations

import json
from typing import Any

import pytest

from search_spaces import InvalidSpec
from service.spec import (
    MAX_DEPTH,
    MAX_KEY_LENGTH,
    MAX_LIST_LENGTH,
    MAX_NAME_LENGTH,
    MAX_NUM_SAMPLES,
    MAX_SEARCH_SPACE_PARAMS,
    MAX_STRING_LENGTH,
    MAX_VALUES,
    count_parameters,
    parse_spec_document,
    spec_from_mapping,
)


def spec(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": "limits",
        "trainable": "branin",
        "search_space": {"x1": {"type": "uniform", "low": -5, "high": 10}},
        "num_samples": 2,
    }
    document.update(overrides)
    return document


def problems(document: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidSpec) as caught:
        spec_from_mapping(document)
    return {".".join(str(part) for part in loc): msg for loc, msg in caught.value.errors}


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def uniform() -> dict[str, Any]:
    return {"type": "uniform", "low": 0, "high": 1}


def test_a_spec_within_the_bounds_passes() -> None:
    spec_from_mapping(spec(config={"epochs": 3, "notes": "x" * MAX_STRING_LENGTH}))


def test_search_space_parameters_are_counted_with_groups_and_branches() -> None:
    space = {
        "a": uniform(),
        "group": {"b": uniform(), "c": uniform()},
        "attention": {
            "type": "choice",
            "values": [
                "full",
                {"value": "window", "size": {"type": "randint", "low": 8, "high": 128}},
                {"value": "low_rank", "rank": {"type": "choice", "values": [16, 32]}},
            ],
        },
    }
    assert count_parameters(space) == 6


def test_too_many_search_space_parameters_are_refused() -> None:
    flat = {f"p{i}": uniform() for i in range(MAX_SEARCH_SPACE_PARAMS)}
    spec_from_mapping(spec(search_space=flat))
    flat["one_more"] = uniform()
    found = problems(spec(search_space=flat))
    assert "search_space" in found and str(MAX_SEARCH_SPACE_PARAMS) in found["search_space"]


def test_parameters_hidden_in_branches_count_too() -> None:
    branches = [{"value": i, **{f"p{i}_{j}": uniform() for j in range(10)}} for i in range(30)]
    found = problems(spec(search_space={"arch": {"type": "choice", "values": branches}}))
    assert "301 parameters" in found["search_space"]


@pytest.mark.parametrize(
    ("overrides", "path", "words"),
    [
        ({"name": "n" * (MAX_NAME_LENGTH + 1)}, "name", "at most"),
        ({"trainable": "t" * 101}, "trainable", "at most"),
        ({"metric": "m" * 101}, "metric", "at most"),
        ({"num_samples": MAX_NUM_SAMPLES + 1}, "num_samples", "less than or equal"),
        ({"config": {"k" * (MAX_KEY_LENGTH + 1): 1}}, "config." + "k" * 50 + "…", "key of"),
        ({"config": {"notes": "x" * (MAX_STRING_LENGTH + 1)}}, "config.notes", "string of"),
        (
            {"search_space": {"w": {"type": "choice", "values": list(range(MAX_LIST_LENGTH + 1))}}},
            "search_space.w.values",
            "at most",
        ),
        (
            {"search_space": {"w": {"type": "grid", "values": list(range(MAX_LIST_LENGTH + 1))}}},
            "search_space.w.values",
            "at most",
        ),
        ({"config": {"deep": nested(MAX_DEPTH)}}, "config.deep" + ".a" * (MAX_DEPTH - 2), "deep"),
        ({"config": {"x": float("nan")}}, "config.x", "finite"),
        ({"config": {"x": float("inf")}}, "config.x", "finite"),
        ({"config": {"when": {1, 2}}}, "config.when", "JSON data"),
        ({"config": {"nested": {3: "x"}}}, "config.nested.3", "strings"),
        ({"name": "a\x00b"}, "name", "NUL"),
    ],
)
def test_each_bound_is_refused_with_the_field_path(
    overrides: dict[str, Any], path: str, words: str
) -> None:
    found = problems(spec(**overrides))
    assert path in found, found
    assert words in found[path]


def test_a_nesting_just_within_the_limit_passes() -> None:
    spec_from_mapping(spec(config={"deep": nested(MAX_DEPTH - 2)}))


def test_alias_bombs_and_cycles_are_refused_quickly() -> None:
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for i in range(1, 9):  # 10**9 values once the aliases are expanded
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    bomb = "name: bomb\ntrainable: branin\nconfig:\n" + "\n".join("  " + x for x in lines)
    document = parse_spec_document(bomb.encode(), "application/yaml")
    found = problems(document)
    assert any(str(MAX_VALUES) in msg for msg in found.values()), found

    cycle = parse_spec_document(b"name: c\ntrainable: branin\nconfig: &c {self: *c}\n", "")
    assert any("deep" in msg for msg in problems(cycle).values())


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        (b"[" * 200_000 + b"]" * 200_000, "application/json", "nested too deeply"),
        (b'{"config": {"x": ' + b"9" * 5000 + b"}}", "application/json", "not valid JSON"),
        (b"config:\n  x: " + b"9" * 5000 + b"\n", "application/yaml", "not valid YAML"),
        (b"[" * 200_000 + b"]" * 200_000, "application/yaml", "not valid YAML"),
    ],
)
def test_bodies_that_break_parsers_are_invalid_specs(
    body: bytes, content_type: str, words: str
) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_spec_document(body, content_type)
    assert words in str(caught.value)
    assert len(str(caught.value)) < 1000  # the message does not echo the body


def test_problems_are_capped() -> None:
    config = {f"k{i}": "x" * (MAX_STRING_LENGTH + 1) for i in range(200)}
    found = problems(spec(config=config))
    assert 1 <= len(found) <= 50
    assert len(json.dumps(found)) < 10_000
