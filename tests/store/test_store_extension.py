"""Extending a study in the store: its targets change atomically, a finished study is
reopened without a Ray job, a runner cannot end a study extended under it."""

from __future__ import annotations

import pytest

from service.store import (
    InvalidTransition,
    StudyExtended,
    StudyRecord,
    StudyStatus,
    StudyStore,
)

SPEC = {"trainable": "branin", "num_samples": 20}


def new_study(store: StudyStore) -> StudyRecord:
    return store.create_study(name="s", spec=SPEC, metric="loss", mode="min")


def test_extending_a_running_study_keeps_it_running(store: StudyStore) -> None:
    study = new_study(store)
    store.transition_study(study.id, StudyStatus.RUNNING)
    store.set_ray_job(study.id, job_id="hpo-study-1", dashboard_url=None)
    revision = store.summarize_study(study.id).revision
    extended = store.extend_study(study.id, spec={**SPEC, "num_samples": 30}, note="more")
    assert extended.status == StudyStatus.RUNNING
    assert extended.extensions == 1
    assert extended.spec["num_samples"] == 30
    assert extended.ray_job_id == "hpo-study-1"  # its runner goes on
    assert store.summarize_study(study.id).revision > revision
    event = store.events_after(study.id)[-1]
    assert event.kind == "study" and event.data["error"] == "more"


@pytest.mark.parametrize("finished", [StudyStatus.COMPLETED, StudyStatus.STOPPED])
def test_extending_a_finished_study_reopens_it(store: StudyStore, finished: StudyStatus) -> None:
    study = new_study(store)
    store.set_ray_job(study.id, job_id="hpo-study-1", dashboard_url="http://ray/jobs/1")
    store.transition_study(study.id, StudyStatus.RUNNING)
    store.transition_study(study.id, finished, error="stopped by someone")
    reopened = store.extend_study(study.id, spec={**SPEC, "num_samples": 30}, note="more")
    assert reopened.status == StudyStatus.PENDING
    assert reopened.finished_at is None and reopened.error is None
    # The old job's end must not read as this run's death: the caller launches anew.
    assert reopened.ray_job_id is None and reopened.ray_dashboard_url is None
    assert reopened.started_at is not None  # when it first ran
    store.transition_study(study.id, StudyStatus.RUNNING)  # and it runs again


def test_a_failed_study_is_not_extended(store: StudyStore) -> None:
    study = new_study(store)
    store.transition_study(study.id, StudyStatus.FAILED, error="boom")
    with pytest.raises(InvalidTransition):
        store.extend_study(study.id, spec={**SPEC, "num_samples": 30}, note="more")
    assert store.get_study(study.id).spec["num_samples"] == 20  # nothing changed


def test_a_runner_cannot_end_a_study_extended_under_it(store: StudyStore) -> None:
    study = new_study(store)
    store.transition_study(study.id, StudyStatus.RUNNING)
    seen = store.get_study(study.id).extensions
    store.extend_study(study.id, spec={**SPEC, "num_samples": 30}, note="more")
    with pytest.raises(StudyExtended):
        store.transition_study(study.id, StudyStatus.COMPLETED, if_extensions=seen)
    assert store.get_study(study.id).status == StudyStatus.RUNNING
    done = store.transition_study(study.id, StudyStatus.COMPLETED, if_extensions=seen + 1)
    assert done.status == StudyStatus.COMPLETED


def test_end_segment_counts_each_run_once(store: StudyStore) -> None:
    study = new_study(store)
    first = store.end_segment(study.id, segment=0, seconds=12.5)
    assert (first.segments_done, first.run_seconds) == (1, 12.5)
    again = store.end_segment(study.id, segment=0, seconds=99.0)  # a retried call
    assert (again.segments_done, again.run_seconds) == (1, 12.5)
    second = store.end_segment(study.id, segment=1, seconds=7.5)
    assert (second.segments_done, second.run_seconds) == (2, 20.0)
