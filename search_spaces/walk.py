"""Visit every node of a parsed search space with its spec location and config paths."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from search_spaces.domains import Branch, Choice, Group, Node
from search_spaces.errors import Loc
from search_spaces.layout import branch_key


@dataclass(frozen=True)
class Site:
    """Where a node is: in the spec, in a normalized config and in a raw config."""

    node: Node
    loc: Loc
    """Location of its definition in the spec, e.g. ``("attention", "values", 1, "size")``."""
    path: tuple[str, ...]
    """Where its value stands in a normalized config (branch sub-parameters beside the choice)."""
    raw_path: tuple[str, ...]
    """Where its value stands in a raw config (see :mod:`search_spaces.layout`)."""
    branch: tuple[tuple[str, ...], int] | None = None
    """The innermost enclosing branch: the raw path of its choice and the option's index."""


def walk(params: Mapping[str, Node]) -> Iterator[Site]:
    """Every node, parents before children, groups and conditional choices included."""
    yield from _walk(params, (), (), (), None)


def _walk(
    params: Mapping[str, Node],
    loc: Loc,
    path: tuple[str, ...],
    raw_path: tuple[str, ...],
    branch: tuple[tuple[str, ...], int] | None,
) -> Iterator[Site]:
    for name, node in params.items():
        site = Site(node, loc + (name,), path + (name,), raw_path + (name,), branch)
        yield site
        if isinstance(node, Group):
            yield from _walk(node.params, site.loc, site.path, site.raw_path, branch)
        elif isinstance(node, Choice):
            for index, option in enumerate(node.options):
                if isinstance(option, Branch):
                    yield from _walk(
                        option.params,
                        site.loc + ("values", index),
                        path,
                        site.raw_path + (branch_key(index),),
                        (site.raw_path, index),
                    )
