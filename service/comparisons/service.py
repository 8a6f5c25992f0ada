"""Comparison use cases: create one (a study underneath) and report on it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from search_spaces import InvalidSpec
from service.comparisons.outcomes import load_outcomes
from service.comparisons.report import ComparisonReport, build_report
from service.comparisons.spec import comparison_loc, parse_comparison, study_document
from service.store import StudyNotFound, StudyRecord
from service.studies import StudyService
from trainables import UnknownTrainable, get_trainable


class NotAComparison(StudyNotFound):
    """A study that exists but was not made by ``POST /comparisons`` (404 there)."""

    def __str__(self) -> str:
        return f"comparison {self.study_id} not found (study {self.study_id} is not one)"


@dataclass(frozen=True)
class Comparison:
    study: StudyRecord
    baseline: str
    variants: tuple[str, ...]  # in the order given, baseline excluded
    repeats: int
    seed_key: str
    report: ComparisonReport


class ComparisonService:
    def __init__(self, studies: StudyService) -> None:
        self.studies = studies

    def create(self, document: Mapping[str, Any], owner: str = "local") -> StudyRecord:
        """Validate a comparison and launch the study that runs it. Raises InvalidSpec
        (at the comparison's own fields), RayUnavailable, LaunchError."""
        comparison = parse_comparison(document)
        try:
            trainable = get_trainable(comparison.trainable)
        except UnknownTrainable:
            trainable = None  # the study's validation names the known ones
        if trainable is not None and comparison.seed_key not in trainable.default_config:
            raise InvalidSpec(
                ("seed_key",),
                f"trainable {trainable.name!r} has no config key {comparison.seed_key!r}: "
                "its repeats would not differ; name the key that seeds it",
            )
        try:
            return self.studies.create(study_document(comparison), owner)
        except InvalidSpec as error:
            raise InvalidSpec.many(
                (comparison_loc(loc), msg) for loc, msg in error.errors
            ) from None

    def get(self, study_id: int) -> Comparison:
        """The comparison with its report so far. Raises StudyNotFound, NotAComparison."""
        store = self.studies.store
        record = store.get_study(study_id)
        meta = record.spec.get("comparison")
        variants = record.spec.get("variants")
        if not meta or not variants:
            raise NotAComparison(study_id)
        baseline = str(meta.get("baseline", "baseline"))
        names = tuple(name for name in variants if name != baseline)
        repeats, seed_key = int(meta["repeats"]), str(meta.get("seed_key", "seed"))
        report = build_report(
            load_outcomes(store, study_id, seed_key),
            baseline=baseline,
            variants=names,
            repeats=repeats,
        )
        return Comparison(record, baseline, names, repeats, seed_key, report)
