"""Tests of the named presets shipped with the search-space package."""

from __future__ import annotations

import pytest

from search_spaces import (
    Choice,
    UnknownPreset,
    list_presets,
    load_preset,
    load_preset_document,
    parse_space,
)


def test_the_presets_are_listed() -> None:
    assert {"branin", "hartmann6", "mlp_digits"} <= set(list_presets())


@pytest.mark.parametrize("name", list_presets())
def test_each_preset_loads_parses_and_suits_every_searching_algorithm(name: str) -> None:
    document = load_preset_document(name)
    assert isinstance(document["description"], str) and document["description"]
    assert load_preset(name) == document["search_space"]
    space = parse_space(load_preset(name))
    for algorithm in ("random", "hyperopt", "bohb"):
        space.check_algorithm(algorithm)


def test_preset_contents() -> None:
    branin = parse_space(load_preset("branin"))
    assert branin.parameter_paths() == ["x1", "x2"]
    assert (branin.params["x1"].low, branin.params["x1"].high) == (-5, 10)  # type: ignore[union-attr]
    assert parse_space(load_preset("hartmann6")).parameter_paths() == [f"x{i}" for i in range(1, 7)]
    mlp = parse_space(load_preset("mlp_digits"))
    optimizer = mlp.params["optimizer"]
    assert isinstance(optimizer, Choice) and optimizer.is_conditional
    assert "momentum" in mlp.parameter_paths()


def test_unknown_preset_is_a_key_error() -> None:
    with pytest.raises(KeyError) as info:
        load_preset("nope")
    assert isinstance(info.value, UnknownPreset)
    assert "branin" in str(info.value)
