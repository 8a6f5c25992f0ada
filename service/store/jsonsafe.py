"""How the store turns Python values into JSON: non-finite floats and odd types made safe.

Strict JSON (and PostgreSQL's ``json`` type) has no NaN or Infinity, so before writing,
every float that is not finite becomes a string: ``"NaN"``, ``"Infinity"`` or
``"-Infinity"`` (``float()`` reads each back). Tuples and sets become lists, mapping keys
become strings, numpy-like scalars become plain numbers (via ``.item()``), and anything
else that JSON cannot hold becomes ``str(value)``. Reading never converts back: a metric
stored as ``"NaN"`` is returned as that string, and it never counts as a trial's last or
best value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

NAN, POS_INF, NEG_INF = "NaN", "Infinity", "-Infinity"


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON-compatible Python (dict, list, str, int, float, bool, None)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        if math.isnan(value):
            return NAN
        return POS_INF if value > 0 else NEG_INF
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    item = getattr(value, "item", None)  # numpy / torch scalars
    if callable(item):
        try:
            return json_safe(item())
        except (TypeError, ValueError):
            pass
    return str(value)


def dumps(value: Any) -> str:
    """The engine's JSON serializer: strict JSON, never NaN/Infinity tokens."""
    return json.dumps(json_safe(value), allow_nan=False, separators=(",", ":"))


def finite_number(value: Any) -> float | None:
    """``value`` as a float when it is a finite real number (not a bool), else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        raw: Any = value
    else:
        item = getattr(value, "item", None)
        if not callable(item):
            return None
        try:
            raw = item()
        except (TypeError, ValueError):
            return None
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            return None
    try:
        number = float(raw)
    except OverflowError:  # an int too large for a float
        return None
    return number if math.isfinite(number) else None
