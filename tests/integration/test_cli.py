"""The ``hpo`` command line against a live service, run as a user runs it (a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from service.ray_local import free_port
from service.store import open_store
from tests.fixtures.service import LiveService

pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[2]


def hpo(*args: str, url: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HPO_URL": url, "COLUMNS": "200", **env},
    )


def test_trainables_lists_the_registry(live_service: LiveService) -> None:
    done = hpo("trainables", url=live_service.url)
    assert done.returncode == 0, done.stderr
    for name in ("branin", "hartmann6", "mlp_digits", "noop"):
        assert name in done.stdout


def test_submit_follow_show_studies_trials(live_service: LiveService, tmp_path: Path) -> None:
    spec = yaml.safe_load((REPO / "examples" / "branin-hyperopt.yaml").read_text())
    spec.update(name="cli-study", num_samples=6)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))

    done = hpo("submit", str(path), "--follow", url=live_service.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "COMPLETED" in done.stdout
    assert "6/6" in done.stdout  # the progress bar reached the budget
    study_id = int(done.stdout.split("submitted study ")[1].split()[0])

    shown = hpo("show", str(study_id), url=live_service.url)
    assert shown.returncode == 0 and "cli-study" in shown.stdout
    assert f"hpo-study-{study_id}" in shown.stdout  # the Ray dashboard link

    listed = hpo("studies", "--status", "completed", url=live_service.url)
    assert listed.returncode == 0 and "cli-study" in listed.stdout

    trials = hpo("trials", str(study_id), url=live_service.url)
    assert trials.returncode == 0 and "TERMINATED" in trials.stdout

    # Stopping a finished study is refused with the service's reason, not a traceback.
    stopped = hpo("stop", str(study_id), url=live_service.url)
    assert stopped.returncode == 1
    assert "409" in stopped.stderr and "COMPLETED" in stopped.stderr
    assert "Traceback" not in stopped.stderr

    # Its best config as JSON; then two more trials, followed to the end.
    best = hpo("best", str(study_id), url=live_service.url)
    assert best.returncode == 0, best.stderr
    found = yaml.safe_load(best.stdout)
    assert found["study_id"] == study_id and {"x1", "x2"} <= set(found["config"])
    extended = hpo("extend", str(study_id), "--num-samples", "8", "-f", url=live_service.url)
    assert extended.returncode == 0, extended.stdout + extended.stderr
    assert "extended to 8 trials" in extended.stdout and "8/8" in extended.stdout
    not_raised = hpo("extend", str(study_id), "-n", "8", url=live_service.url)
    assert not_raised.returncode == 1 and "num_samples" in not_raised.stderr
    assert hpo("extend", str(study_id), url=live_service.url).returncode == 2
    not_a_comparison = hpo("report", str(study_id), url=live_service.url)
    assert not_a_comparison.returncode == 1 and "404" in not_a_comparison.stderr


def test_bad_spec_file_gets_the_field_path(live_service: LiveService, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\ntrainable: branin\nsearch_space:\n  x1: {type: uniform, low: 3, high: 1}\n"
    )
    done = hpo("submit", str(path), url=live_service.url)
    assert done.returncode == 1
    assert "search_space.x1" in done.stderr
    assert "Traceback" not in done.stderr
    comparison = tmp_path / "compare.yaml"
    comparison.write_text("name: c\ntrainable: transformer_lm\nvariants: {fp8: {precision: fp8}}\n")
    done = hpo("compare", str(comparison), url=live_service.url)
    assert done.returncode == 1
    assert "variants.fp8.precision" in done.stderr and "Traceback" not in done.stderr


def test_unknown_study_and_no_service_are_messages(live_service: LiveService) -> None:
    missing = hpo("show", "987654", url=live_service.url)
    assert missing.returncode == 1 and "404" in missing.stderr
    nobody = hpo("studies", url=f"http://127.0.0.1:{free_port()}")
    assert nobody.returncode == 1
    assert "no hpo service answers" in nobody.stderr
    assert "Traceback" not in nobody.stderr


def test_demo_runs_the_example_study_and_stores_everything(tmp_path: Path) -> None:
    """`hpo demo` as `make demo` runs it: its own local Ray head, exit 0, all stored."""
    home = tmp_path / "demo-home"
    done = subprocess.run(
        [sys.executable, "-m", "service", "demo", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "HPO_HOME": str(home), "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "COMPLETED" in done.stdout
    assert "Ray dashboard:" in done.stdout and "/#/jobs/hpo-study-1" in done.stdout
    store = open_store(f"sqlite:///{home / 'hpo.db'}")
    try:
        study = store.summarize_study(1)
        spec = yaml.safe_load((REPO / "examples" / "hartmann6-bohb.yaml").read_text())
        trials = store.list_trials(1, limit=1000).items
        assert len(trials) == spec["num_samples"]
        assert all(t.state.is_finished for t in trials)
        assert study.num_results == sum(t.num_results for t in trials) > len(trials)
        for trial in trials:
            iterations = [r.iteration for r in store.get_results(1, trial.trial_id)]
            assert iterations == list(range(1, len(iterations) + 1))
    finally:
        store.close()
