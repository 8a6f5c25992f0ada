"""The study's concurrency limit reaches Tune for every algorithm, and the runner's job
runs without a runtime_env (which would cost every actor it starts a fresh process)."""

from __future__ import annotations

import shlex

import pytest

from service.launcher import RayJobLauncher
from service.runner.tuner_builder import make_searcher, max_concurrency
from service.spec import spec_from_mapping
from service.validation import ClusterCapacity, validate_study

CLUSTER = ClusterCapacity(cpus=8, gpus=0)


def train_study(algorithm: str, max_concurrent_trials: int | None) -> object:
    document = {
        "name": "cap",
        "trainable": "noop_train",
        "metric": "loss",
        "mode": "min",
        "search_space": {"x": {"type": "uniform", "low": 0, "high": 1}},
        "algorithm": {"name": algorithm, "seed": 0},
        "num_samples": 10,
        "resources": {"num_workers": 2, "cpus_per_worker": 1},
        "config": {"iterations": 1, "sleep_s": 0},
    }
    if max_concurrent_trials is not None:
        document["max_concurrent_trials"] = max_concurrent_trials
    return validate_study(spec_from_mapping(document), CLUSTER)


@pytest.mark.parametrize(("requested", "expected"), [(None, 4), (1, 1), (3, 3), (9, 4)])
def test_random_search_is_capped_like_every_other_searcher(
    requested: int | None, expected: int
) -> None:
    # Train trials ask Tune for no CPU: only this cap keeps them from all starting at once.
    study = train_study("random", requested)
    limit = max_concurrency(study, CLUSTER)  # type: ignore[arg-type]
    assert limit == expected
    searcher = make_searcher(study, limit)  # type: ignore[arg-type]
    assert searcher.max_concurrent == expected  # type: ignore[union-attr]


def test_the_runner_gets_its_settings_in_its_command_not_a_runtime_env() -> None:
    launcher = RayJobLauncher(
        "http://127.0.0.1:8265",
        runner_python="/opt/venv/bin/python",
        env_vars={"HPO_DATABASE_URL": "postgresql+psycopg://u:p w'd@db/hpo", "HPO_HOME": "/h"},
    )
    command = launcher.entrypoint("42")
    words = shlex.split(command)
    assert words == [
        "HPO_DATABASE_URL=postgresql+psycopg://u:p w'd@db/hpo",
        "HPO_HOME=/h",
        "/opt/venv/bin/python",
        "-m",
        "service.runner",
        "42",
    ]


def recording_launcher(monkeypatch: pytest.MonkeyPatch) -> tuple[RayJobLauncher, list[dict]]:
    """A launcher whose Jobs API records what each submission sent."""
    sent: list[dict[str, object]] = []

    class Jobs:
        def submit_job(self, **kwargs: object) -> str:
            sent.append(kwargs)
            return str(kwargs["submission_id"])

    monkeypatch.setattr("service.launcher._job_client", lambda *args: Jobs())
    return RayJobLauncher("http://127.0.0.1:8265", env_vars={"HPO_HOME": "/h"}), sent


def test_submit_sends_no_runtime_env(monkeypatch: pytest.MonkeyPatch) -> None:
    launcher, sent = recording_launcher(monkeypatch)
    assert launcher.submit(7, "study") == "hpo-study-7"
    assert "runtime_env" not in sent[0]
    assert sent[0]["entrypoint"] == "HPO_HOME=/h python -m service.runner 7"


def test_a_warm_runner_is_a_job_of_its_own_named_in_its_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    launcher, sent = recording_launcher(monkeypatch)
    first, second = launcher.submit_warm_runner(), launcher.submit_warm_runner()
    assert first != second and first.startswith("hpo-warm-") and second.startswith("hpo-warm-")
    assert sent[0]["entrypoint"] == f"HPO_HOME=/h python -m service.runner --warm {first}"
    assert sent[0]["metadata"] == {"hpo_warm_runner": "1"} and "runtime_env" not in sent[0]
