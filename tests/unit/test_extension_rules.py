"""Continuing a study: the extend request's checks, the plan of each run, job ids, the
searcher warm start from saved state, and the best trial as a reusable config."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from search_spaces import InvalidSpec
from service.best import reusable_config
from service.errors import CannotExtend
from service.extension import ExtendRequest, check_warm_start, extended_spec
from service.launcher import job_id_for
from service.runner.segments import plan_segment
from service.runner.tuner_builder import make_searcher
from service.runner.warm_start import experiment_name, latest_searcher_state
from service.spec import spec_from_mapping
from service.store import StudyRecord, StudyStatus
from service.validation import ValidatedStudy, validate_study

SPACE = {
    "x1": {"type": "uniform", "low": -5, "high": 10},
    "x2": {"type": "uniform", "low": 0, "high": 15},
}


def spec(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": "s",
        "trainable": "branin",
        "search_space": SPACE,
        "algorithm": {"name": "hyperopt", "seed": 3, "n_initial_points": 5},
        "num_samples": 20,
        "config": {"epochs": 1},
    }
    document.update(overrides)
    return document


def record(document: dict[str, Any], **fields: Any) -> StudyRecord:
    values: dict[str, Any] = {
        "id": 7,
        "name": "s",
        "owner": "local",
        "spec": spec_from_mapping(document).model_dump(mode="json"),
        "metric": "loss",
        "mode": "min",
        "status": StudyStatus.COMPLETED,
        "error": None,
        "ray_job_id": "hpo-study-7",
        "ray_dashboard_url": None,
        "created_at": dt.datetime(2026, 11, 29, tzinfo=dt.timezone.utc),
        "started_at": None,
        "finished_at": None,
    }
    values.update(fields)
    return StudyRecord(**values)


def validated(document: dict[str, Any]) -> ValidatedStudy:
    return validate_study(spec_from_mapping(document))


# --- the request ---------------------------------------------------------------------
def test_extend_raises_num_samples_and_keeps_the_rest() -> None:
    new = extended_spec(record(spec()), ExtendRequest(num_samples=30), trials_so_far=20)
    assert new.num_samples == 30
    assert new.search_space == SPACE and new.algorithm.seed == 3


def test_extend_raises_the_time_budget() -> None:
    study = record(spec(stop={"time_budget_s": 60}))
    new = extended_spec(study, ExtendRequest(time_budget_s=120), trials_so_far=5)
    assert new.stop.time_budget_s == 120 and new.num_samples == 20


@pytest.mark.parametrize(
    ("document", "request_", "loc", "words"),
    [
        (spec(), ExtendRequest(num_samples=20), ("num_samples",), "above"),
        (spec(), ExtendRequest(num_samples=10), ("num_samples",), "above"),
        (spec(), ExtendRequest(time_budget_s=10), ("time_budget_s",), "no time budget"),
        (
            spec(stop={"time_budget_s": 60}),
            ExtendRequest(num_samples=30, time_budget_s=30),
            ("time_budget_s",),
            "above",
        ),
    ],
)
def test_a_target_not_raised_is_a_field_error(
    document: dict[str, Any], request_: ExtendRequest, loc: tuple[str, ...], words: str
) -> None:
    with pytest.raises(InvalidSpec) as error:
        extended_spec(record(document), request_, trials_so_far=3)
    assert any(found == loc and words in msg for found, msg in error.value.errors), error.value


def test_an_empty_request_is_refused() -> None:
    with pytest.raises(ValueError, match="num_samples, time_budget_s or both"):
        ExtendRequest()


@pytest.mark.parametrize(
    ("study", "words"),
    [
        (record(spec(), status=StudyStatus.FAILED), "FAILED"),
        (
            record(
                spec(
                    algorithm={"name": "grid"},
                    search_space={"x1": {"type": "grid", "values": [1, 2]}, "x2": 1.0},
                )
            ),
            "grid",
        ),
    ],
)
def test_some_studies_cannot_go_on(study: StudyRecord, words: str) -> None:
    with pytest.raises(CannotExtend, match=words):
        extended_spec(study, ExtendRequest(num_samples=50), trials_so_far=2)


def test_a_time_budget_alone_needs_trials_left_to_run() -> None:
    study = record(spec(stop={"time_budget_s": 60}))
    with pytest.raises(CannotExtend, match="raise num_samples"):
        extended_spec(study, ExtendRequest(time_budget_s=120), trials_so_far=20)


# --- the runs ------------------------------------------------------------------------
def test_the_first_run_is_the_spec_as_it_stands() -> None:
    plan = plan_segment(record(spec(), segments_done=0), trials_so_far=0)
    assert plan is not None and (plan.segment, plan.num_samples, plan.time_budget_s) == (
        0,
        20,
        None,
    )


def test_a_later_run_runs_the_missing_trials_in_the_time_left() -> None:
    study = record(
        spec(num_samples=30, stop={"time_budget_s": 100}), segments_done=1, run_seconds=40.0
    )
    plan = plan_segment(study, trials_so_far=20)
    assert plan is not None and (plan.segment, plan.num_samples, plan.time_budget_s) == (1, 10, 60)


@pytest.mark.parametrize(
    ("document", "trials", "seconds"),
    [(spec(), 20, 0.0), (spec(num_samples=30, stop={"time_budget_s": 100}), 20, 100.0)],
)
def test_no_run_when_the_targets_are_met(
    document: dict[str, Any], trials: int, seconds: float
) -> None:
    assert plan_segment(record(document, segments_done=1, run_seconds=seconds), trials) is None


def test_job_and_experiment_names_never_repeat() -> None:
    names = {job_id_for(7, attempt, extension) for attempt in range(3) for extension in range(3)}
    assert len(names) == 9
    assert job_id_for(7) == "hpo-study-7" and job_id_for(7, 1) == "hpo-study-7-r1"
    assert job_id_for(7, 0, 2) == "hpo-study-7-x2" and job_id_for(7, 1, 2) == "hpo-study-7-x2-r1"
    assert experiment_name(7) == "hpo-study-7" and experiment_name(7, 1) == "hpo-study-7-x1"


# --- the warm start ------------------------------------------------------------------
def run_hyperopt(
    study: ValidatedStudy, trials: int, state_dir: Path | None
) -> tuple[Any, list[dict[str, Any]]]:
    """Suggest and complete ``trials`` with a made-up loss, as Tune would."""
    searcher = make_searcher(study, state_dir=None if state_dir is None else str(state_dir))
    configs = []
    for number in range(trials):
        trial_id = f"t{number}-{state_dir is not None}"
        config = searcher.suggest(trial_id)
        assert config is not None
        configs.append(config)
        searcher.on_trial_complete(trial_id, {"loss": (config["x1"] - 3) ** 2 + config["x2"]})
    return searcher, configs


def test_the_searcher_goes_on_from_the_saved_state(tmp_path: Path) -> None:
    study = validated(spec())
    experiment = tmp_path / experiment_name(7)
    experiment.mkdir()
    first, old = run_hyperopt(study, 8, None)
    first.save_to_dir(str(experiment), session_str="one")
    state = latest_searcher_state(str(tmp_path), 7, last_segment=1)  # run 1 saved nothing
    assert state == str(experiment)
    warm, new = run_hyperopt(study, 4, Path(state))
    told = [t for t in warm._hpopt_trials.trials if t["result"].get("status") == "ok"]
    assert len(told) == 12  # the 8 earlier trials are known, with their losses
    assert not any(config in old for config in new)  # none is handed out again
    # Cold, the same seed replays the first run's configurations.
    _, cold = run_hyperopt(study, 4, None)
    assert cold == old[:4]


def test_no_saved_state_means_a_cold_start(tmp_path: Path) -> None:
    assert latest_searcher_state(str(tmp_path), 7, last_segment=2) is None


def test_warm_start_needs_the_same_search() -> None:
    mine = validated(spec(warm_start_from=3))
    check_warm_start(mine, record(spec(), id=3))  # same everything: fine
    for theirs, words in [
        (
            spec(search_space={**SPACE, "x2": {"type": "uniform", "low": 0, "high": 5}}),
            "search space",
        ),
        (spec(algorithm={"name": "random"}), "algorithm"),
        (spec(mode="max"), "mode"),
    ]:
        with pytest.raises(InvalidSpec, match=words) as error:
            check_warm_start(mine, record(theirs, id=3))
        assert error.value.errors[0][0] == ("warm_start_from",)
    with pytest.raises(InvalidSpec, match="not found"):
        check_warm_start(mine, None)
    with pytest.raises(InvalidSpec, match="has not run yet"):
        check_warm_start(mine, record(spec(), id=3, status=StudyStatus.PENDING))
    random_study = validated(spec(warm_start_from=3, algorithm={"name": "random"}))
    with pytest.raises(InvalidSpec, match="model-based"):
        check_warm_start(random_study, record(spec(algorithm={"name": "random"}), id=3))


# --- the best trial as a config ------------------------------------------------------
def test_the_best_config_posts_back_as_a_config() -> None:
    study_spec = {"config": {"epochs": 3}, "trainable": "branin"}
    assert reusable_config(study_spec, {"x1": 1.0, "x2": 2.0}) == {
        "epochs": 3,
        "x1": 1.0,
        "x2": 2.0,
    }


def test_a_comparison_s_best_is_its_variant_without_the_seed() -> None:
    comparison_spec = {
        "config": {"precision": "fp32", "lr": 0.01},
        "variants": {"baseline": {}, "bf16": {"precision": "bf16"}},
        "comparison": {"baseline": "baseline", "repeats": 3, "seed_key": "seed"},
    }
    config = reusable_config(comparison_spec, {"variant": "bf16", "seed": 2})
    assert config == {"precision": "bf16", "lr": 0.01}


def test_best_trial_export_from_the_store(tmp_path: Path) -> None:
    from service.best import best_trial_export
    from service.errors import NoBestTrial
    from service.store import ResultWrite, TrialState, TrialUpdate, open_store

    store = open_store(f"sqlite:///{tmp_path / 'hpo.db'}")
    try:
        study = store.create_study(name="s", spec=record(spec()).spec, metric="loss", mode="min")
        with pytest.raises(NoBestTrial, match="no trial with a value of 'loss'"):
            best_trial_export(store, study.id)
        store.upsert_trials(
            study.id,
            [
                TrialUpdate("a", TrialState.RUNNING, config={"x1": 1.0, "x2": 2.0}),
                TrialUpdate("b", TrialState.RUNNING, config={"x1": 3.0, "x2": 4.0}),
            ],
        )
        store.add_results(
            study.id,
            [
                ResultWrite("a", 1, {"loss": 5.0}),
                ResultWrite("b", 1, {"loss": 2.0, "other": 1}),
                ResultWrite("b", 2, {"loss": 3.0}),
            ],
        )
        best = best_trial_export(store, study.id)
    finally:
        store.close()
    assert (best.trial_id, best.value, best.iteration) == ("b", 2.0, 1)
    assert best.metrics == {"loss": 2.0, "other": 1}  # the result that reached it
    assert best.config == {"epochs": 1, "x1": 3.0, "x2": 4.0}
