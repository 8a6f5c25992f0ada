"""Convert a space to a HyperOpt space for ``HyperOptSearch(space=...)``.

Labels are the raw paths joined by ``/`` (unique by construction). Conditional
choices become nested ``hp.choice`` of dicts in the raw layout. Integer types draw a
float from a range widened by just under half a step on each side and round it, so
every allowed integer (inclusive ``high``) has the same mass, as in Tune, and TPE
still sees an ordered dimension (``hp.randint`` would be modelled as a categorical).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hyperopt import hp
from hyperopt.pyll import scope

from search_spaces.domains import (
    Branch,
    Choice,
    Group,
    LogRandInt,
    LogUniform,
    Node,
    QRandInt,
    QUniform,
    RandInt,
    Uniform,
)
from search_spaces.layout import BRANCH_KEY, branch_key, flat_name

#: How far inside half a step the widened integer ranges stop, so rounding stays in bounds.
_INSIDE = 1e-6


def hyperopt_space(params: Mapping[str, Node], prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    """The HyperOpt space of one level (call with the whole space's parameters)."""
    return {name: _convert(node, prefix + (name,)) for name, node in params.items()}


def _convert(node: Node, raw_path: tuple[str, ...]) -> Any:
    label = flat_name(raw_path)
    if isinstance(node, Group):
        return hyperopt_space(node.params, raw_path)
    if isinstance(node, Choice):
        if not node.is_conditional:
            return hp.choice(label, list(node.values))
        return hp.choice(
            label,
            [
                {
                    BRANCH_KEY: i,
                    branch_key(i): hyperopt_space(o.params, raw_path + (branch_key(i),)),
                }
                if isinstance(o, Branch)
                else {BRANCH_KEY: i}
                for i, o in enumerate(node.options)
            ],
        )
    if isinstance(node, Uniform):
        return hp.uniform(label, node.low, node.high)
    if isinstance(node, LogUniform):
        return hp.loguniform(label, math.log(node.low), math.log(node.high))
    if isinstance(node, QUniform):
        return hp.quniform(label, node.low, node.high, node.q)
    if isinstance(node, RandInt):
        half = 0.5 - _INSIDE
        return scope.int(hp.quniform(label, node.low - half, node.high + half, 1))
    if isinstance(node, LogRandInt):
        half = 0.5 - _INSIDE
        return scope.int(
            hp.qloguniform(label, math.log(node.low - half), math.log(node.high + half), 1)
        )
    if isinstance(node, QRandInt):
        half = node.q * (0.5 - _INSIDE)
        return scope.int(hp.quniform(label, node.low - half, node.high + half, node.q))
    raise ValueError(f"HyperOpt cannot express a {type(node).__name__} parameter ({label})")
