"""``SearchSpace``: a parsed space and its conversions for each search algorithm."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from search_spaces import algorithms, grid
from search_spaces.domains import Choice, Grid, Group, IntRange, Node, QRandInt
from search_spaces.errors import Loc
from search_spaces.normalize import normalize
from search_spaces.parse import parse_params
from search_spaces.walk import Site, walk

if TYPE_CHECKING:
    import ConfigSpace


class SearchSpace:
    """A validated search space; build it with :func:`parse_space`.

    Every converter checks the algorithm first and raises :class:`InvalidSpec` naming
    each parameter it cannot express. Whatever a converter's searcher hands a trial,
    :meth:`normalize` turns it into the user-facing config.
    """

    def __init__(self, params: Mapping[str, Node]) -> None:
        self.params: dict[str, Node] = dict(params)

    def __repr__(self) -> str:
        return f"SearchSpace({self.params!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self.params == other.params

    def check_algorithm(self, algorithm: str) -> None:
        """Raise :class:`InvalidSpec` naming every parameter ``algorithm`` cannot express.

        ``algorithm`` is one of ``random``, ``grid``, ``hyperopt``, ``bohb``; any other
        name is a ``ValueError``.
        """
        algorithms.check_algorithm(self.params, algorithm)

    def to_tune(self, algorithm: str = "random") -> dict[str, Any]:
        """``param_space`` for Tune's ``BasicVariantGenerator`` (``random`` or ``grid``)."""
        from search_spaces import to_tune

        if algorithm not in ("random", "grid"):
            raise ValueError(f"to_tune serves 'random' and 'grid', not {algorithm!r}")
        self.check_algorithm(algorithm)
        if algorithm == "grid":
            return to_tune.grid_space(self.params)
        return to_tune.random_space(self.params)

    def to_hyperopt(self) -> dict[str, Any]:
        """``space`` for ``HyperOptSearch(space=...)``."""
        from search_spaces.to_hyperopt import hyperopt_space

        self.check_algorithm("hyperopt")
        return hyperopt_space(self.params)

    def to_configspace(self, seed: int | None = None) -> ConfigSpace.ConfigurationSpace:
        """``space`` for ``TuneBOHB(space=...)``."""
        from search_spaces.to_configspace import configspace

        self.check_algorithm("bohb")
        return configspace(self.params, seed=seed)

    def to_pbt_mutations(self) -> dict[str, Any]:
        """``hyperparam_mutations`` for ``PopulationBasedTraining``; refuses conditional choices."""
        from search_spaces.to_tune import pbt_mutations

        return pbt_mutations(self.params)

    def normalize(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The user-facing form of a trial's config (see :mod:`search_spaces.normalize`)."""
        return normalize(self.params, config)

    def parameter_paths(self) -> list[str]:
        """Dotted paths where parameter values stand in a normalized config, in spec order.

        A conditional choice is a parameter; its branches' sub-parameters stand beside
        it, and a name two branches share is listed once.
        """
        paths: dict[str, None] = {}
        for site in walk(self.params):
            if not isinstance(site.node, Group):
                paths[".".join(site.path)] = None
        return list(paths)

    def possible_values(
        self, name: str, limit: int = 4096
    ) -> tuple[Loc, tuple[Any, ...] | None] | None:
        """What the parameter at top-level config key ``name`` may take, for static checks.

        ``None`` when no parameter stands at ``name``; else its spec location and its
        values: a choice's or grid's values, an integer range enumerated (when it holds at
        most ``limit`` values), or ``None`` for a continuous range. A name several
        branches share merges their values.
        """
        found: list[Site] = [
            site
            for site in walk(self.params)
            if site.path == (name,) and not isinstance(site.node, Group)
        ]
        if not found:
            return None
        values: list[Any] = []
        for site in found:
            enumerated = _enumerate(site.node, limit)
            if enumerated is None:
                return found[0].loc, None
            values.extend(v for v in enumerated if v not in values)
        return found[0].loc, tuple(values)

    def grid_size(self, algorithm: str = "random") -> int | None:
        """Combinations Tune's variant generator expands, or ``None`` if there is no grid.

        For ``random``: the product of the ``grid`` parameters' sizes. For ``grid``:
        every combination of grids and choices (branches expanded). Tune runs this
        times ``num_samples`` trials.
        """
        if algorithm == "grid":
            self.check_algorithm("grid")
            return grid.count_params(self.params)
        self.check_algorithm(algorithm)
        return grid.grid_params_size(self.params)


def parse_space(mapping: Mapping[str, Any]) -> SearchSpace:
    """Parse and validate a search-space mapping; raises :class:`InvalidSpec` with every problem."""
    return SearchSpace(parse_params(mapping))


def _enumerate(node: Node, limit: int) -> tuple[Any, ...] | None:
    if isinstance(node, Choice | Grid):
        return tuple(node.values)
    if isinstance(node, IntRange):
        step = node.q if isinstance(node, QRandInt) else 1
        if (node.high - node.low) // step + 1 > limit:
            return None
        return tuple(range(node.low, node.high + 1, step))
    return None
