"""The warm-runner pool against a fake Jobs API: what it gives out, keeps, retires, stops."""

from __future__ import annotations

from typing import Any

from service.errors import LaunchError, RayUnavailable
from service.launcher import JobInfo, JobState
from service.warm_runners import RETRY_AFTER_S, WarmRunnerPool


class FakeJobs:
    def __init__(self) -> None:
        self.states: dict[str, JobState] = {}
        self.stopped: list[str] = []
        self.refuse: BaseException | None = None
        self.away = False

    def submit_warm_runner(self, retry_for_s: float = 60.0) -> str:
        if self.refuse is not None:
            raise self.refuse
        job_id = f"hpo-warm-{len(self.states)}"
        self.states[job_id] = JobState.RUNNING
        return job_id

    def info(self, job_id: str) -> JobInfo:
        if self.away:
            raise RayUnavailable("the cluster is away")
        return JobInfo(job_id, self.states.get(job_id, JobState.MISSING), None)

    def stop(self, job_id: str) -> bool:
        self.stopped.append(job_id)
        self.states[job_id] = JobState.STOPPED
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pool_of(size: int, jobs: FakeJobs, clock: Clock, **kwargs: Any) -> WarmRunnerPool:
    return WarmRunnerPool(jobs, size, clock=clock, **kwargs)  # type: ignore[arg-type]


def test_each_study_gets_its_own_runner_until_none_is_left() -> None:
    jobs, clock = FakeJobs(), Clock()
    pool = pool_of(2, jobs, clock)
    pool.refill()
    assert pool.ready == ["hpo-warm-0", "hpo-warm-1"]
    pool.refill()  # full: nothing more is submitted
    assert len(jobs.states) == 2
    assert pool.take() == "hpo-warm-0"
    assert pool.take() == "hpo-warm-1"
    assert pool.take() is None
    pool.refill()
    assert pool.ready == ["hpo-warm-2", "hpo-warm-3"]
    assert jobs.stopped == []


def test_a_runner_whose_job_ended_is_never_given_out() -> None:
    jobs, clock = FakeJobs(), Clock()
    pool = pool_of(2, jobs, clock)
    pool.refill()
    jobs.states["hpo-warm-0"] = JobState.FAILED
    assert pool.take() == "hpo-warm-1"
    assert pool.take() is None
    pool.refill()
    assert pool.ready == []  # pausing after the failure


def test_refill_forgets_ended_runners_and_replaces_them_after_a_pause() -> None:
    """A runner that ends untaken could not start (a wrong database URL...): submitting
    the next at once, every watcher round, would be a crash loop."""
    jobs, clock = FakeJobs(), Clock()
    pool = pool_of(1, jobs, clock)
    pool.refill()
    jobs.states["hpo-warm-0"] = JobState.FAILED
    pool.refill()
    assert pool.ready == []
    clock.now += RETRY_AFTER_S + 1
    pool.refill()
    assert pool.ready == ["hpo-warm-1"]


def test_old_runners_are_stopped_and_replaced_never_given_out() -> None:
    jobs, clock = FakeJobs(), Clock()
    pool = pool_of(1, jobs, clock, retire_after_s=100.0)
    pool.refill()
    clock.now += 101.0
    assert pool.take() is None
    assert jobs.stopped == ["hpo-warm-0"]
    pool.refill()
    clock.now += 101.0
    pool.refill()  # the watcher retires it before anyone asks
    assert jobs.stopped == ["hpo-warm-0", "hpo-warm-1"] and pool.ready == ["hpo-warm-2"]


def test_a_refused_submission_is_retried_only_after_a_pause() -> None:
    jobs, clock = FakeJobs(), Clock()
    pool = pool_of(1, jobs, clock)
    jobs.refuse = LaunchError("Ray did not accept job hpo-warm-x: no")
    pool.refill()
    assert pool.ready == []
    jobs.refuse = None
    pool.refill()
    assert pool.ready == []  # still pausing
    clock.now += RETRY_AFTER_S + 1
    pool.refill()
    assert pool.ready == ["hpo-warm-0"]


def test_with_ray_away_the_runner_is_kept_and_none_is_given() -> None:
    jobs, clock = FakeJobs(), Clock()
    pool = pool_of(1, jobs, clock)
    pool.refill()
    jobs.away = True
    assert pool.take() is None
    pool.refill()  # cannot tell whether it lives: keep it
    jobs.away = False
    assert pool.take() == "hpo-warm-0"


def test_close_stops_the_runners_no_study_took_and_starts_no_more() -> None:
    jobs, clock = FakeJobs(), Clock()
    pool = pool_of(2, jobs, clock)
    pool.refill()
    taken = pool.take()
    pool.close()
    assert jobs.stopped == ["hpo-warm-1"] and taken == "hpo-warm-0"
    pool.refill()
    assert pool.ready == [] and len(jobs.states) == 2


def test_refill_is_skipped_while_another_thread_refills() -> None:
    jobs, clock = FakeJobs(), Clock()
    pool = pool_of(1, jobs, clock)
    pool._refilling.acquire()  # what a running refill holds
    pool.refill()
    assert pool.ready == []
    pool._refilling.release()
    pool.refill()
    assert pool.ready == ["hpo-warm-0"]
