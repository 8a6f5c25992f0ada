"""Trial failures, classified: out-of-memory, invalid-config and other errors end the trial
at once (``ERROR`` with a reason, no retry even with ``max_failures``), and the searcher
sees the failed trial as a bad point."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from ray.tune import ExperimentAnalysis

from tests.faults.ledger import reported
from tests.fixtures.service import LiveService, wait_for_status
from tests.fixtures.watch import TERMINAL
from trainables.failures import BAD_VALUE, FAILURE_REASON_KEY

pytestmark = pytest.mark.ray


def test_oom_invalid_config_and_errors_are_not_retried(
    live_service: LiveService, tmp_path: Path
) -> None:
    report_log = tmp_path / "reports.log"
    spec = {
        "name": "classified-failures",
        "trainable": "noop",
        "search_space": {
            "x": {"type": "grid", "values": [0.0, 2.0]},
            "fail_with": {"type": "grid", "values": ["error", "oom", "invalid_config"]},
        },
        "algorithm": "grid",
        "max_concurrent_trials": 2,
        "config": {
            "iterations": 3,
            "sleep_s": 0.05,
            "fail_above": 1.0,
            "report_log": str(report_log),
        },
        "stop": {"max_failures": 2},  # would retry each failure twice if it were retried
    }
    with live_service.client() as client:
        study = client.submit(spec)
        done = wait_for_status(client, study.id, TERMINAL, timeout_s=300)
        trials = client.trials(study.id).items
    assert done.status == "COMPLETED", done.error  # half of the trials succeeded
    outcome = {
        (t.config["x"], t.config["fail_with"]): (t.state, t.reason, t.num_results) for t in trials
    }
    assert outcome == {
        (0.0, "error"): ("TERMINATED", None, 3),
        (0.0, "oom"): ("TERMINATED", None, 3),
        (0.0, "invalid_config"): ("TERMINATED", None, 3),
        # One result each (iteration 1); the failure itself is not stored as a result.
        (2.0, "error"): ("ERROR", "error", 1),
        (2.0, "oom"): ("ERROR", "oom", 1),
        (2.0, "invalid_config"): ("ERROR", "invalid_config", 1),
    }
    failed = [t for t in trials if t.state == "ERROR"]
    assert all("Traceback" in (t.error or "") for t in failed)
    # Not retried: a retry (no checkpoint) would have reported iteration 1 again.
    reports = reported(report_log)
    per_trial = Counter(trial_id for trial_id, _ in reports.elements())
    assert all(per_trial[t.trial_id] == 1 for t in failed), per_trial

    # What the searcher and scheduler saw as the failed trials' last results: the study's
    # metric at a value worse than any real one, with the reason.
    analysis = ExperimentAnalysis(str(live_service.home / "ray_results" / f"hpo-study-{study.id}"))
    last = {trial.trial_id: trial.last_result for trial in analysis.trials}
    for trial in failed:
        assert last[trial.trial_id]["loss"] == BAD_VALUE
        assert last[trial.trial_id][FAILURE_REASON_KEY] == trial.reason
