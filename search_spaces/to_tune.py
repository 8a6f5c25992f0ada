"""Convert a space to Tune domains: ``param_space`` for random/grid search, PBT mutations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ray import tune

from search_spaces.domains import (
    Branch,
    Choice,
    Grid,
    Group,
    LogRandInt,
    LogUniform,
    Node,
    QRandInt,
    QUniform,
    RandInt,
    Uniform,
)
from search_spaces.errors import InvalidSpec
from search_spaces.grid import expand
from search_spaces.layout import BRANCH_KEY, branch_key
from search_spaces.walk import walk


def range_domain(node: Node) -> Any:
    """The Tune domain of a range; integer bounds are inclusive in our language."""
    if isinstance(node, Uniform):
        return tune.uniform(node.low, node.high)
    if isinstance(node, LogUniform):
        return tune.loguniform(node.low, node.high)
    if isinstance(node, QUniform):
        return tune.quniform(node.low, node.high, node.q)
    if isinstance(node, RandInt):
        return tune.randint(node.low, node.high + 1)
    if isinstance(node, LogRandInt):
        return tune.lograndint(node.low, node.high + 1)
    if isinstance(node, QRandInt):
        # Tune's qrandint is upper-inclusive, except for q == 1, where it is exclusive.
        if node.q == 1:
            return tune.randint(node.low, node.high + 1)
        return tune.qrandint(node.low, node.high, node.q)
    raise ValueError(f"not a range: {type(node).__name__}")


def random_space(params: Mapping[str, Node]) -> dict[str, Any]:
    """``param_space`` for random search (``grid`` parameters become grid searches)."""
    return {name: _random(node) for name, node in params.items()}


def _random(node: Node) -> Any:
    if isinstance(node, Group):
        return random_space(node.params)
    if isinstance(node, Grid):
        return tune.grid_search(list(node.values))
    if isinstance(node, Choice):
        if not node.is_conditional:
            return tune.choice(list(node.values))
        return tune.choice(
            [
                {BRANCH_KEY: i, branch_key(i): random_space(o.params)}
                if isinstance(o, Branch)
                else {BRANCH_KEY: i}
                for i, o in enumerate(node.options)
            ]
        )
    return range_domain(node)


def grid_space(params: Mapping[str, Node]) -> dict[str, Any]:
    """``param_space`` for grid search: every grid and choice becomes a grid search."""
    space: dict[str, Any] = {}
    for name, node in params.items():
        if isinstance(node, Group):
            space[name] = grid_space(node.params)
        else:
            # A conditional choice is enumerated here, whole, so that Tune counts it right.
            space[name] = tune.grid_search(expand(node))
    return space


def pbt_mutations(params: Mapping[str, Node]) -> dict[str, Any]:
    """``hyperparam_mutations`` for PopulationBasedTraining; refuses conditional choices.

    Ranges become Tune domains (PBT resamples or perturbs them); choices and grids
    become lists of their values (PBT moves to a neighbouring value or resamples).
    """
    problems = [
        (
            site.loc,
            "PBT cannot mutate a conditional choice (its sub-parameters would appear "
            "and vanish mid-trial)",
        )
        for site in walk(params)
        if isinstance(site.node, Choice) and site.node.is_conditional
    ]
    if problems:
        raise InvalidSpec.many(problems)
    return _mutations(params)


def _mutations(params: Mapping[str, Node]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, node in params.items():
        if isinstance(node, Group):
            out[name] = _mutations(node.params)
        elif isinstance(node, (Choice, Grid)):
            out[name] = list(node.values)
        else:
            out[name] = range_domain(node)
    return out
