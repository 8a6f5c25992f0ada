"""Named example search spaces, stored as YAML files under ``presets/``."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from search_spaces.errors import UnknownPreset

_PACKAGE = "search_spaces"
_FOLDER = "presets"


def list_presets() -> list[str]:
    """Names of the presets, sorted."""
    files = resources.files(_PACKAGE).joinpath(_FOLDER).iterdir()
    return sorted(f.name[: -len(".yaml")] for f in files if f.name.endswith(".yaml"))


def load_preset_document(name: str) -> dict[str, Any]:
    """The whole preset file: ``description`` and ``search_space``."""
    if name not in list_presets():
        raise UnknownPreset(f"unknown preset {name!r} (known: {', '.join(list_presets())})")
    path = resources.files(_PACKAGE).joinpath(_FOLDER).joinpath(f"{name}.yaml")
    text = path.read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    if not isinstance(document, dict) or not isinstance(document.get("search_space"), dict):
        raise ValueError(f"preset {name!r} is not a mapping with a 'search_space' mapping")
    return document


def load_preset(name: str) -> dict[str, Any]:
    """The preset's search-space mapping (parse it with :func:`search_spaces.parse_space`)."""
    space: dict[str, Any] = load_preset_document(name)["search_space"]
    return space
