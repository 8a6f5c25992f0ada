"""Turn the config a searcher handed a trial into the user-facing form.

Accepts the raw layout (see :mod:`search_spaces.layout`) that every converter makes
its searcher produce, and also a config already in the user-facing form, so calling
it twice changes nothing. Keys that are not parameters of the space (the study's
fixed ``config``) pass through unchanged. Values become plain Python types: ints for
the integer types, floats for the float types, quantized types rounded to a multiple
of ``q`` (BOHB has no quantization), choice values restored to the spec's own value
and type. Bounds are not checked: PBT, for one, may perturb a value past them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

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
    Scalar,
    Uniform,
)
from search_spaces.errors import InvalidConfig
from search_spaces.layout import BRANCH_KEY, branch_key


def normalize(params: Mapping[str, Node], config: Mapping[str, Any]) -> dict[str, Any]:
    """The user-facing form of ``config``; raises :class:`InvalidConfig` if it does not fit."""
    return {**config, **_level(params, config, ())}


def _level(
    params: Mapping[str, Node], raw: Mapping[str, Any], path: tuple[str, ...]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, node in params.items():
        where = path + (name,)
        if name not in raw:
            raise InvalidConfig(f"{_dotted(where)}: missing from the config")
        value = raw[name]
        if isinstance(node, Group):
            if not isinstance(value, Mapping):
                raise InvalidConfig(f"{_dotted(where)}: expected a mapping, got {value!r}")
            out[name] = {**value, **_level(node.params, value, where)}
        elif isinstance(node, Choice) and node.is_conditional:
            out.update(_conditional(name, node, raw, path))
        else:
            out[name] = _leaf(node, value, where)
    return out


def _conditional(
    name: str, node: Choice, raw: Mapping[str, Any], path: tuple[str, ...]
) -> dict[str, Any]:
    value = raw[name]
    where = path + (name,)
    if isinstance(value, Mapping) and BRANCH_KEY in value:
        index = _index(value[BRANCH_KEY], len(node.options), where)
        sub = value.get(branch_key(index), {})
    else:
        index = _option_index(node.values, value, where)
        sub = raw  # user-facing form: the branch's sub-parameters stand beside the choice
    option = node.options[index]
    if not isinstance(option, Branch):
        return {name: option}
    if not isinstance(sub, Mapping):
        raise InvalidConfig(f"{_dotted(where)}: expected a mapping of sub-parameters, got {sub!r}")
    return {name: option.value, **_level(option.params, sub, path)}


def _index(value: Any, size: int, where: tuple[str, ...]) -> int:
    number = _plain(value)
    if isinstance(number, bool) or not isinstance(number, (int, float)) or number != int(number):
        raise InvalidConfig(f"{_dotted(where)}: branch index must be an int, got {value!r}")
    index = int(number)
    if not 0 <= index < size:
        raise InvalidConfig(f"{_dotted(where)}: branch index {index} out of range")
    return index


def _leaf(node: Node, value: Any, where: tuple[str, ...]) -> Any:
    if isinstance(node, (Choice, Grid)):
        return node.values[_option_index(node.values, value, where)]
    number = _plain(value)
    if (
        isinstance(number, bool)
        or not isinstance(number, (int, float))
        or not math.isfinite(number)
    ):
        raise InvalidConfig(f"{_dotted(where)}: expected a finite number, got {value!r}")
    if isinstance(node, (Uniform, LogUniform)):
        return float(number)
    if isinstance(node, QUniform):
        return quantize(float(number), node.q)
    if isinstance(node, (RandInt, LogRandInt)):
        return int(round(number))
    if isinstance(node, QRandInt):
        return int(round(number / node.q)) * node.q
    raise InvalidConfig(f"{_dotted(where)}: unexpected parameter type {type(node).__name__}")


def quantize(value: float, q: float) -> float:
    """The multiple of ``q`` nearest ``value``, without float noise (``0.1 * 3 == 0.3``)."""
    digits = max(0, -math.floor(math.log10(q))) + 10
    return round(round(value / q) * q, digits)


def _option_index(values: tuple[Scalar, ...], value: Any, where: tuple[str, ...]) -> int:
    plain = _plain(value)
    for index, candidate in enumerate(values):
        if _kind(candidate) == _kind(plain) and candidate == plain:
            return index
    raise InvalidConfig(f"{_dotted(where)}: {value!r} is not one of {list(values)!r}")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return "str"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def _plain(value: Any) -> Any:
    """numpy scalars (as ConfigSpace and HyperOpt hand them) as Python scalars."""
    item = getattr(value, "item", None)
    if item is not None and type(value).__module__ == "numpy":
        return item()
    return value


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(path)
