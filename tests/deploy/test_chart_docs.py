"""The chart's README documents every value that values.yaml documents (`# --` comments),
with its default, and nothing that is gone."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from tests.deploy.chart import CHART_DIR

KEY_LINE = re.compile(r"^(\s*)([A-Za-z0-9_.-]+):")


def documented_keys() -> dict[str, str]:
    """Dotted key -> description, for every key of values.yaml under a `# --` comment."""
    keys: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    comment: list[str] = []
    list_parent_indent: int | None = None
    for line in (CHART_DIR / "values.yaml").read_text().splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if list_parent_indent is not None and (not stripped or indent > list_parent_indent):
            continue  # inside a list's items: not keys of their own
        list_parent_indent = None
        if stripped.startswith("#"):
            comment.append(stripped.lstrip("#").strip())
            continue
        if stripped.startswith("- "):
            list_parent_indent = stack[-1][0] if stack else 0
            comment = []
            continue
        match = KEY_LINE.match(line)
        if not match:
            comment = []
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match.group(2)))
        if comment and comment[0].startswith("--"):
            text = " ".join([comment[0].removeprefix("--").strip(), *comment[1:]])
            keys[".".join(name for _, name in stack)] = text
        comment = []
    return keys


def default_of(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        node = node[part]
    return node


def table() -> str:
    """The values table as the README carries it (regenerate with `python -c` on this)."""
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    rows = ["| Key | Default | Description |", "| --- | --- | --- |"]
    for key, text in documented_keys().items():
        default = json.dumps(default_of(values, key), separators=(", ", ": "))
        rows.append(f"| `{key}` | `{default}` | {text} |")
    return "\n".join(rows)


def test_every_leaf_value_is_documented() -> None:
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    keys = documented_keys()

    def leaves(node: Any, prefix: str) -> list[str]:
        if prefix in keys:
            return []
        if isinstance(node, dict) and node:
            return [p for k, v in node.items() for p in leaves(v, f"{prefix}.{k}".lstrip("."))]
        return [prefix]

    assert leaves(values, "") == []


def test_readme_values_table_is_current() -> None:
    readme = (CHART_DIR / "README.md").read_text()
    assert table() in readme, (
        "the README's values table is stale; regenerate it with\n"
        "python -c 'from tests.deploy.test_chart_docs import table; print(table())'"
    )
