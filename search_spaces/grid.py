"""Enumerate a space for the grid algorithm and count its combinations."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

from search_spaces.domains import Branch, Choice, Grid, Group, Node
from search_spaces.layout import BRANCH_KEY, branch_key
from search_spaces.walk import walk


def expand(node: Node) -> list[Any]:
    """Every raw value a grid/choice node (or group of them) takes, in order."""
    if isinstance(node, Grid):
        return list(node.values)
    if isinstance(node, Choice):
        if not node.is_conditional:
            return list(node.values)
        values: list[Any] = []
        for index, option in enumerate(node.options):
            if isinstance(option, Branch):
                values.extend(
                    {BRANCH_KEY: index, branch_key(index): combo}
                    for combo in expand_params(option.params)
                )
            else:
                values.append({BRANCH_KEY: index})
        return values
    if isinstance(node, Group):
        return expand_params(node.params)
    raise ValueError(f"cannot enumerate {type(node).__name__}")


def expand_params(params: Mapping[str, Node]) -> list[dict[str, Any]]:
    """Every combination of the parameters of one level, as raw dicts."""
    names = list(params)
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(expand(params[name]) for name in names))
    ]


def count(node: Node) -> int:
    """``len(expand(node))`` without building the combinations."""
    if isinstance(node, Grid):
        return len(node.values)
    if isinstance(node, Choice):
        return sum(count_params(o.params) if isinstance(o, Branch) else 1 for o in node.options)
    if isinstance(node, Group):
        return count_params(node.params)
    raise ValueError(f"cannot enumerate {type(node).__name__}")


def count_params(params: Mapping[str, Node]) -> int:
    return math.prod(count(node) for node in params.values())


def grid_params_size(params: Mapping[str, Node]) -> int | None:
    """Combinations of the ``grid`` parameters alone (as random search expands them)."""
    sizes = [len(s.node.values) for s in walk(params) if isinstance(s.node, Grid)]
    return math.prod(sizes) if sizes else None
