"""The searcher-side ("raw") shape of a config: where each parameter's value stands.

Every converter (Tune, HyperOpt, ConfigSpace) makes its searcher hand the trial the
same raw shape, and :func:`search_spaces.normalize.normalize` turns it into the
user-facing one:

* a group ``g`` is a nested dict ``raw["g"]``;
* a plain parameter ``p`` holds its value at ``raw["p"]``;
* a conditional choice ``c`` holds ``{"__branch__": i, "__b<i>__": {...}}`` at
  ``raw["c"]``: the index of the chosen option and, if that option is a branch with
  sub-parameters, their raw values under ``"__b<i>__"``.

ConfigSpace is flat, so BOHB's names are these raw paths joined by ``/``;
``TuneBOHB`` un-flattens them on ``/`` into the same nested shape.
"""

from __future__ import annotations

from collections.abc import Sequence

BRANCH_KEY = "__branch__"
SEPARATOR = "/"


def branch_key(index: int) -> str:
    """The raw key under which option ``index``'s sub-parameters stand."""
    return f"__b{index}__"


def flat_name(raw_path: Sequence[str]) -> str:
    """A raw path as one name (ConfigSpace hyperparameter, HyperOpt label)."""
    return SEPARATOR.join(raw_path)
