"""Errors of the search-space language: a spec that is invalid, an unknown preset, a bad config."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

LocPart = str | int
Loc = tuple[LocPart, ...]
Problem = tuple[Loc, str]


def format_loc(loc: Sequence[LocPart]) -> str:
    """Render a location like ``attention.values[1].window_size.low``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


class InvalidSpec(ValueError):
    """A search space that cannot be parsed, or that an algorithm cannot express.

    ``errors`` lists every problem found as ``(loc, msg)``; ``loc`` is relative to the
    search-space mapping (the service prefixes it with ``("search_space",)``).
    """

    def __init__(self, loc: Sequence[LocPart], msg: str) -> None:
        self.errors: list[Problem] = [(tuple(loc), msg)]
        super().__init__(str(self))

    @classmethod
    def many(cls, problems: Iterable[tuple[Sequence[LocPart], str]]) -> InvalidSpec:
        """One error carrying several problems (at least one)."""
        listed = [(tuple(loc), msg) for loc, msg in problems]
        if not listed:
            raise ValueError("InvalidSpec.many needs at least one problem")
        error = cls(*listed[0])
        error.errors = listed
        error.args = (str(error),)
        return error

    def with_prefix(self, *prefix: LocPart) -> InvalidSpec:
        """The same problems with ``prefix`` put in front of every location."""
        return InvalidSpec.many((tuple(prefix) + loc, msg) for loc, msg in self.errors)

    def __reduce__(self) -> tuple[Any, tuple[list[Problem]]]:
        # Rebuild from the problems, so the error survives pickling (Ray ships errors so).
        return (InvalidSpec.many, (self.errors,))

    def __str__(self) -> str:
        return "; ".join(f"{format_loc(loc)}: {msg}" if loc else msg for loc, msg in self.errors)


class InvalidConfig(ValueError):
    """A trial config that does not fit the search space it is normalized against."""


class UnknownPreset(KeyError):
    """No preset of that name exists."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown preset"
