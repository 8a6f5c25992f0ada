"""Convert a space to a ConfigSpace ``ConfigurationSpace`` for ``TuneBOHB(space=...)``.

Names are the raw paths joined by ``/``; ``TuneBOHB`` un-flattens them on ``/``. A
conditional choice is a categorical over its option indices named ``<choice>/__branch__``;
each branch's sub-parameters carry an ``EqualsCondition`` on it. ConfigSpace 1.x has no
quantization: ``quniform`` is a float on ``[low, high]`` and ``qrandint`` a float on
``[low - q/2, high + q/2]`` (so every multiple has the same mass), both rounded to a
multiple of ``q`` by ``normalize``. Choices keep their values; ``normalize`` restores
their types (ConfigSpace hands numbers back as numpy scalars).
"""

from __future__ import annotations

from collections.abc import Mapping

import ConfigSpace as CS

from search_spaces.domains import (
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
from search_spaces.layout import BRANCH_KEY, flat_name
from search_spaces.walk import walk

_INSIDE = 1e-6


def configspace(params: Mapping[str, Node], seed: int | None = None) -> CS.ConfigurationSpace:
    """The ConfigSpace of a whole space (``grid`` parameters must be refused before)."""
    space = CS.ConfigurationSpace(seed=seed)
    by_name: dict[str, CS.hyperparameters.Hyperparameter] = {}
    conditions = []
    for site in walk(params):
        if isinstance(site.node, Group):
            continue
        hyperparameter = _hyperparameter(site.node, site.raw_path)
        by_name[hyperparameter.name] = hyperparameter
        space.add(hyperparameter)
        if site.branch is not None:
            parent_path, index = site.branch
            parent = by_name[flat_name(parent_path + (BRANCH_KEY,))]
            conditions.append(CS.EqualsCondition(hyperparameter, parent, index))
    if conditions:
        space.add(conditions)
    return space


def _hyperparameter(node: Node, raw_path: tuple[str, ...]) -> CS.hyperparameters.Hyperparameter:
    name = flat_name(raw_path)
    if isinstance(node, Choice):
        if node.is_conditional:
            return CS.Categorical(
                flat_name(raw_path + (BRANCH_KEY,)), list(range(len(node.options)))
            )
        return CS.Categorical(name, list(node.values))
    if isinstance(node, (Uniform, QUniform)):
        return CS.Float(name, (node.low, node.high))
    if isinstance(node, LogUniform):
        return CS.Float(name, (node.low, node.high), log=True)
    if isinstance(node, RandInt):
        return CS.Integer(name, (node.low, node.high))
    if isinstance(node, LogRandInt):
        return CS.Integer(name, (node.low, node.high), log=True)
    if isinstance(node, QRandInt):
        half = node.q * (0.5 - _INSIDE)
        return CS.Float(name, (node.low - half, node.high + half))
    raise ValueError(f"ConfigSpace cannot express a {type(node).__name__} parameter ({name})")
