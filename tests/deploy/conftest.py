"""Fixtures of the deployment tests: a real helm binary (fetched by scripts/get-helm)."""

from __future__ import annotations

import pytest

from tests.deploy.chart import CASES, Helm, obtain_helm


@pytest.fixture(scope="session")
def helm() -> Helm:
    try:
        binary = obtain_helm()
    except (RuntimeError, OSError) as exc:
        message = str(exc)
    else:
        return Helm(binary)
    pytest.fail(f"no helm binary for the chart tests: {message}", pytrace=False)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`case` runs a test for the default values and for every ci/*.yaml values file."""
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("case", list(CASES.values()), ids=list(CASES))
