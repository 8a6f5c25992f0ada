"""Which parameters each search algorithm can express; refusals name the parameter path.

* ``random``: everything. ``grid`` parameters become ``tune.grid_search`` (every
  combination is sampled ``num_samples`` times), except inside a conditional branch,
  where the number of trials would depend on which branch is drawn: refused.
* ``grid``: only ``grid`` and ``choice`` (a choice is enumerated like a grid, every
  branch with every combination of its sub-parameters, which must be ``grid`` or
  ``choice`` too). Ranges are refused. Tune runs ``grid_size("grid") * num_samples``
  trials.
* ``hyperopt`` and ``bohb``: everything except ``grid`` (neither can enumerate).
"""

from __future__ import annotations

from collections.abc import Mapping

from search_spaces.domains import TYPE_NAMES, Grid, Node, Range
from search_spaces.errors import InvalidSpec, Problem
from search_spaces.walk import walk

ALGORITHMS = ("random", "grid", "hyperopt", "bohb")


def problems_for(params: Mapping[str, Node], algorithm: str) -> list[Problem]:
    """Every parameter ``algorithm`` cannot express, with the reason."""
    if algorithm not in ALGORITHMS:
        raise ValueError(
            f"unknown algorithm {algorithm!r} (expected one of: {', '.join(ALGORITHMS)})"
        )
    problems: list[Problem] = []
    for site in walk(params):
        node = site.node
        if algorithm == "random" and isinstance(node, Grid) and site.branch is not None:
            problems.append(
                (
                    site.loc,
                    "random search cannot enumerate a grid inside a conditional branch "
                    "(the number of trials would depend on the branch drawn); use a choice",
                )
            )
        elif algorithm == "grid" and isinstance(node, Range):
            problems.append(
                (
                    site.loc,
                    f"grid search cannot enumerate a {TYPE_NAMES[type(node)]} range; use "
                    "{type: grid, values: [...]} or a choice, or another algorithm",
                )
            )
        elif algorithm in ("hyperopt", "bohb") and isinstance(node, Grid):
            name = "HyperOpt" if algorithm == "hyperopt" else "BOHB"
            problems.append(
                (
                    site.loc,
                    f"{name} cannot enumerate grid values; use a choice, or the algorithm "
                    "'grid' or 'random'",
                )
            )
    return problems


def check_algorithm(params: Mapping[str, Node], algorithm: str) -> None:
    """Raise :class:`InvalidSpec` naming everything ``algorithm`` cannot express."""
    problems = problems_for(params, algorithm)
    if problems:
        raise InvalidSpec.many(problems)
