"""Parse and validate a search-space mapping (YAML/JSON) into typed domain objects.

Every problem is collected, with its location, before :class:`InvalidSpec` is raised.
Rules beyond the obvious ones:

* A mapping with ``type`` is a parameter definition; a mapping without ``type`` is a
  group of parameters. Anything else (a number, a string, a list) is refused: fixed
  values belong in the study's ``config``.
* Names are strings of letters, digits, ``_`` and ``-``; not only digits (Tune would
  read them as list indices), not starting with ``__`` (reserved for the raw layout),
  not ``eval`` or ``grid_search`` (Tune gives those keys a meaning). This also keeps
  ``/`` (BOHB's separator) and ``.`` (the separator of parameter paths) out of names.
* Bounds are finite numbers, not booleans and not strings; integer types take
  integers (``8.0`` is read as ``8``). ``low < high`` for every range, ``high``
  inclusive for the integer types; ``q > 0`` and both bounds multiples of ``q``.
* ``choice`` and ``grid`` values are non-empty lists of distinct scalars (string,
  number, boolean, null; ``1``, ``1.0`` and ``true`` count as the same value). A
  choice may also hold conditional branches ``{value: v, <sub-parameters>}``; a
  branch without sub-parameters is the plain value ``v``.
* A branch's sub-parameters stand beside the choice in a trial's config, so they must
  not share a name with the choice or anything else at that level. Two branches of
  the same choice may both define a sub-parameter of the same name (only one branch
  is ever active); each keeps its own domain.
"""

from __future__ import annotations

import math
import re
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
from search_spaces.errors import InvalidSpec, Loc, Problem, format_loc

FIELDS: dict[str, tuple[str, ...]] = {
    "uniform": ("low", "high"),
    "loguniform": ("low", "high"),
    "quniform": ("low", "high", "q"),
    "randint": ("low", "high"),
    "lograndint": ("low", "high"),
    "qrandint": ("low", "high", "q"),
    "choice": ("values",),
    "grid": ("values",),
}
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_RESERVED = ("eval", "grid_search")
_MULTIPLE_TOLERANCE = 1e-9


def parse_params(mapping: Any) -> dict[str, Node]:
    """The parameters of a search-space mapping; raises :class:`InvalidSpec`."""
    if not isinstance(mapping, Mapping):
        raise InvalidSpec(
            (), f"must be a mapping of parameter names to definitions, got {_kind(mapping)}"
        )
    if not mapping:
        raise InvalidSpec((), "must define at least one parameter")
    parser = _Parser()
    params = parser.level(mapping, ())
    if parser.problems:
        raise InvalidSpec.many(parser.problems)
    return params


def is_multiple(value: float, q: float) -> bool:
    """Whether ``value`` is an integer multiple of ``q`` (up to float noise)."""
    ratio = value / q
    return abs(ratio - round(ratio)) <= _MULTIPLE_TOLERANCE * max(1.0, abs(ratio))


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


class _Parser:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, loc: Loc, msg: str) -> None:
        self.problems.append((loc, msg))

    # -- levels and names -------------------------------------------------------------

    def level(
        self, mapping: Mapping[Any, Any], loc: Loc, skip: str | None = None
    ) -> dict[str, Node]:
        """The parameters of one level (the space, a group or a branch)."""
        params: dict[str, Node] = {}
        for key, value in mapping.items():
            if key == skip:
                continue
            name_ok = self.name(key, loc)
            node = self.node(value, loc + (str(key),))
            if name_ok and node is not None:
                params[key] = node
        self.check_collisions(params, loc)
        return params

    def name(self, key: Any, loc: Loc) -> bool:
        if not isinstance(key, str):
            self.fail(loc + (str(key),), f"parameter names must be strings, got {_kind(key)}")
            return False
        where = loc + (key,)
        if "/" in key:
            self.fail(where, f"invalid name {key!r}: '/' separates nested names for BOHB")
        elif not _NAME.match(key):
            self.fail(where, f"invalid name {key!r}: use letters, digits, '_' and '-'")
        elif key.isdigit():
            self.fail(where, f"invalid name {key!r}: a name of digits only reads as a list index")
        elif key.startswith("__"):
            self.fail(where, f"invalid name {key!r}: names starting with '__' are reserved")
        elif key in _RESERVED:
            self.fail(where, f"invalid name {key!r}: Ray Tune reserves this key")
        else:
            return True
        return False

    def check_collisions(self, params: Mapping[str, Node], loc: Loc) -> None:
        """Refuse two parameters that would stand at the same key of a trial's config."""
        seen: dict[str, Loc] = {}
        for name, node in params.items():
            for key, key_loc in _branch_keys(node, loc + (name,)):
                if key == name:
                    self.fail(key_loc, f"'{key}' would replace the value of its own choice")
            for key, key_loc in _occupied(name, node, loc + (name,)).items():
                if key in seen:
                    self.fail(key_loc, _collision(key, seen[key]))
                else:
                    seen[key] = key_loc

    # -- definitions ------------------------------------------------------------------

    def node(self, value: Any, loc: Loc) -> Node | None:
        if not isinstance(value, Mapping):
            self.fail(
                loc,
                "expected a parameter definition (a mapping with 'type') or a group of "
                f"parameters, got {_kind(value)}; fixed values belong in the study's config",
            )
            return None
        if "type" not in value:
            if not value:
                self.fail(loc, "a group must contain at least one parameter")
                return None
            before = len(self.problems)
            params = self.level(value, loc)
            return Group(params) if len(self.problems) == before else None
        type_ = value["type"]
        if not isinstance(type_, str) or type_ not in FIELDS:
            self.fail(
                loc + ("type",), f"unknown type {type_!r} (expected one of: {', '.join(FIELDS)})"
            )
            return None
        fields = FIELDS[type_]
        missing = [field for field in fields if field not in value]
        for field in missing:
            self.fail(loc + (field,), f"required for type {type_}")
        extra = [str(key) for key in value if key != "type" and key not in fields]
        for key in extra:
            allowed = ", ".join(("type",) + fields)
            self.fail(loc + (key,), f"unknown field for type {type_} (allowed: {allowed})")
        if missing:
            return None
        node = self._typed(type_, value, loc)
        return None if extra else node

    def _typed(self, type_: str, value: Mapping[str, Any], loc: Loc) -> Node | None:
        if type_ in ("choice", "grid"):
            return self.options(type_, value["values"], loc)
        return self.range(type_, value, loc)

    def range(self, type_: str, spec: Mapping[str, Any], loc: Loc) -> Node | None:
        integer = type_ in ("randint", "lograndint", "qrandint")
        read = self.integer if integer else self.number
        bounds = {f: read(spec[f], loc + (f,)) for f in FIELDS[type_]}
        if any(v is None for v in bounds.values()):
            return None
        low, high = bounds["low"], bounds["high"]
        assert low is not None and high is not None
        before = len(self.problems)
        if low >= high:
            self.fail(loc + ("low",), f"must be < high (got {low!r} >= {high!r})")
        if type_ == "loguniform" and low <= 0:
            self.fail(loc + ("low",), f"must be > 0 for loguniform (got {low!r})")
        if type_ == "lograndint" and low < 1:
            self.fail(loc + ("low",), f"must be >= 1 for lograndint (got {low!r})")
        q = bounds.get("q")
        if q is not None:
            if q <= 0:
                self.fail(loc + ("q",), f"must be > 0 (got {q!r})")
            else:
                for field, bound in (("low", low), ("high", high)):
                    if not is_multiple(bound, q):
                        self.fail(loc + (field,), f"must be a multiple of q={q!r} (got {bound!r})")
        if len(self.problems) != before:
            return None
        if type_ == "uniform":
            return Uniform(float(low), float(high))
        if type_ == "loguniform":
            return LogUniform(float(low), float(high))
        if type_ == "quniform":
            assert q is not None
            return QUniform(float(low), float(high), float(q))
        if type_ == "randint":
            return RandInt(int(low), int(high))
        if type_ == "lograndint":
            return LogRandInt(int(low), int(high))
        assert q is not None
        return QRandInt(int(low), int(high), int(q))

    def number(self, value: Any, loc: Loc) -> float | int | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            hint = ""
            if isinstance(value, str):
                try:
                    float(value)
                    hint = " (YAML reads 1e-5 as a string; write 1.0e-5)"
                except ValueError:
                    pass
            self.fail(loc, f"must be a number, got {_kind(value)}{hint}")
            return None
        if not math.isfinite(value):
            self.fail(loc, f"must be finite (got {value!r})")
            return None
        return value

    def integer(self, value: Any, loc: Loc) -> int | None:
        number = self.number(value, loc)
        if number is None:
            return None
        if isinstance(number, float):
            if not number.is_integer():
                self.fail(loc, f"must be an integer (got {number!r})")
                return None
            return int(number)
        return number

    def options(self, type_: str, values: Any, loc: Loc) -> Node | None:
        where = loc + ("values",)
        if not isinstance(values, (list, tuple)):
            self.fail(where, f"must be a list, got {_kind(values)}")
            return None
        if not values:
            self.fail(where, "must not be empty")
            return None
        before = len(self.problems)
        options: list[Scalar | Branch] = []
        seen: list[tuple[Scalar, int]] = []
        for index, option in enumerate(values):
            at = where + (index,)
            parsed = self.option(type_, option, at)
            has_value = "value" in option if isinstance(option, Mapping) else True
            value = option.get("value") if isinstance(option, Mapping) else option
            if has_value and _is_scalar(value):
                for other, other_index in seen:
                    if _same(value, other):
                        self.fail(at, f"duplicate value {value!r} (same as values[{other_index}])")
                        break
                else:
                    seen.append((value, index))
            if parsed is not None or option is None:
                options.append(parsed)
        if len(self.problems) != before:
            return None
        if type_ == "grid":
            return Grid(tuple(o for o in options if not isinstance(o, Branch)))
        return Choice(tuple(options))

    def option(self, type_: str, option: Any, at: Loc) -> Scalar | Branch | None:
        if _is_scalar(option):
            if isinstance(option, float) and not math.isfinite(option):
                self.fail(at, f"must be finite (got {option!r})")
                return None
            return option  # type: ignore[no-any-return]
        if isinstance(option, Mapping) and type_ == "choice":
            if "value" not in option:
                self.fail(
                    at,
                    "a conditional branch is a mapping with a 'value' key and its sub-parameters",
                )
                return None
            value = option["value"]
            value_ok = _is_scalar(value) and not (
                isinstance(value, float) and not math.isfinite(value)
            )
            if not value_ok:
                self.fail(
                    at + ("value",),
                    "must be a finite scalar (string, number, boolean or null), "
                    f"got {_kind(value)}",
                )
            before = len(self.problems)
            params = self.level(option, at, skip="value")
            if not value_ok or len(self.problems) != before:
                return None
            return Branch(value, params) if params else value
        if type_ == "grid":
            self.fail(
                at,
                "grid values must be scalars (string, number, boolean or null), "
                f"got {_kind(option)}",
            )
        else:
            self.fail(
                at,
                "must be a scalar (string, number, boolean or null) or a conditional branch "
                f"mapping with a 'value' key, got {_kind(option)}",
            )
        return None


def _same(a: Scalar, b: Scalar) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return bool(a == b)


def _occupied(name: str, node: Node, loc: Loc) -> dict[str, Loc]:
    """The keys a node may take at its level of a trial's config, with their definitions."""
    keys: dict[str, Loc] = {name: loc}
    for key, key_loc in _branch_keys(node, loc):
        keys.setdefault(key, key_loc)
    return keys


def _branch_keys(node: Node, loc: Loc) -> list[tuple[str, Loc]]:
    """The keys a conditional choice's branches put beside it (any branch, nested too)."""
    keys: list[tuple[str, Loc]] = []
    if isinstance(node, Choice):
        for index, option in enumerate(node.options):
            if isinstance(option, Branch):
                for child, child_node in option.params.items():
                    child_loc = loc + ("values", index, child)
                    keys.extend(_occupied(child, child_node, child_loc).items())
    return keys


def _collision(key: str, other: Loc) -> str:
    return (
        f"'{key}' would stand at the same key of a trial's config as the parameter "
        f"defined at {format_loc(other)}; rename one"
    )
