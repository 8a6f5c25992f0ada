"""`hpo serve` with a wrong setting: a CLI message naming the variable, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.settings import get_settings


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("HPO_WARM_RUNNERS", "99", "HPO_WARM_RUNNERS: Input should be less than or equal to 16"),
        ("HPO_PORT", "eighty", "HPO_PORT: Input should be a valid integer"),
    ],
)
def test_serve_names_the_setting_that_is_wrong(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv("HPO_HOME", str(tmp_path))
    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["serve"])
    finally:
        get_settings.cache_clear()
    output = " ".join(result.output.split())  # rich wraps long lines
    assert result.exit_code == 2, output
    assert f"error: bad settings: {message}" in output
    assert "Traceback" not in output
    assert not (tmp_path / "ray").exists()  # nothing was started
