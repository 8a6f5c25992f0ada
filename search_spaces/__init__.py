"""The search-space language of a study and its conversion to Tune, HyperOpt and ConfigSpace.

A space is a mapping of parameter name to definition (``{type: uniform, low, high}``,
``loguniform``, ``quniform``, ``randint``/``lograndint``/``qrandint`` with ``high``
inclusive, ``choice``, ``grid``), groups (a mapping without ``type``) and conditional
branches (choice options ``{value: v, <sub-parameters>}`` whose sub-parameters stand
beside the choice in a trial's config). See :mod:`search_spaces.parse` for the rules,
:mod:`search_spaces.algorithms` for what each algorithm accepts and
:mod:`search_spaces.layout` for the shape searchers hand to trials.
"""

from __future__ import annotations

from search_spaces.algorithms import ALGORITHMS
from search_spaces.catalog import list_presets, load_preset, load_preset_document
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
from search_spaces.errors import InvalidConfig, InvalidSpec, UnknownPreset
from search_spaces.space import SearchSpace, parse_space

__all__ = [
    "ALGORITHMS",
    "Branch",
    "Choice",
    "Grid",
    "Group",
    "InvalidConfig",
    "InvalidSpec",
    "LogRandInt",
    "LogUniform",
    "Node",
    "QRandInt",
    "QUniform",
    "RandInt",
    "SearchSpace",
    "Uniform",
    "UnknownPreset",
    "list_presets",
    "load_preset",
    "load_preset_document",
    "parse_space",
]
