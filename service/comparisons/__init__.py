"""Comparisons of a baseline config with named variants over seeds."""

from __future__ import annotations

from service.comparisons.report import (
    DEFAULT_METRICS,
    Cell,
    ComparisonReport,
    InvalidComparison,
    ReportMetric,
    Row,
    RunOutcome,
    build_report,
)

__all__ = [
    "DEFAULT_METRICS",
    "Cell",
    "ComparisonReport",
    "InvalidComparison",
    "ReportMetric",
    "Row",
    "RunOutcome",
    "build_report",
]
