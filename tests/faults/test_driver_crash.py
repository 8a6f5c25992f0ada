"""Fault 2: the study's Ray job driver (the runner) is killed mid-study.

The service sees the job fail, resubmits it (``hpo-study-<id>-r1``), and the new runner
restores Tune's saved experiment: finished trials stay finished, the searcher keeps its
state (no trial budget is spent twice), unfinished trials continue from their
checkpoints. The study completes with every reported result stored.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from service.store import open_store
from tests.faults.ledger import kill9, ledger, pids_matching, wait_for
from tests.fixtures.service import LiveService, wait_for_status
from tests.fixtures.watch import noop_spec

pytestmark = pytest.mark.ray

TRIALS, ITERATIONS, SLEEP_S = 6, 10, 0.3


def runner_pids(study_id: int, home: Path) -> list[int]:
    """The study's driver: ``python -m service.runner <id>`` (not the shell Ray wraps
    it in) of the service on ``home`` (other test sessions may run on this machine)."""
    return pids_matching(
        lambda argv: (
            argv[-3:] == ["-m", "service.runner", str(study_id)] and "python" in Path(argv[0]).name
        ),
        env={"HPO_HOME": str(home)},
    )


def test_a_killed_driver_is_resubmitted_and_resumes(
    live_service: LiveService, tmp_path: Path
) -> None:
    report_log = tmp_path / "reports.log"
    spec = noop_spec(
        "driver-crash",
        trials=TRIALS,
        iterations=ITERATIONS,
        sleep_s=SLEEP_S,
        algorithm={"name": "hyperopt", "seed": 7, "n_initial_points": 3},
        config={
            "iterations": ITERATIONS,
            "sleep_s": SLEEP_S,
            "checkpoint": True,
            "report_log": str(report_log),
        },
    )
    with live_service.client() as client:
        study = client.submit(spec)

        def halfway() -> bool:
            now = client.study(study.id)
            return now.trial_counts.get("TERMINATED", 0) >= 2 and now.num_results >= 25

        wait_for("two finished trials", halfway, timeout_s=180)
        (driver,) = wait_for("the driver's pid", lambda: runner_pids(study.id, live_service.home))  # type: ignore[misc]
        before = client.study(study.id)
        kill9(driver)
        done = wait_for_status(client, study.id, {"COMPLETED", "FAILED", "STOPPED"}, 300)
        trials = client.trials(study.id, limit=100).items
    assert done.status == "COMPLETED", done.error
    assert done.restarts == 1
    assert done.ray_job_id == f"hpo-study-{study.id}-r1"
    store = open_store(live_service.database_url)
    try:
        restart_events = [
            event.data["error"]
            for event in store.events_after(study.id, limit=10_000)
            if event.kind == "study" and (event.data.get("error") or "").startswith("restart 1")
        ]
    finally:
        store.close()
    assert len(restart_events) == 1, restart_events

    # The searcher's budget: trials the restored run did not know (created by the dead
    # driver after Tune last saved its state) were deleted when empty; those that had
    # stored results were kept as PRUNED. Every other trial counts against num_samples.
    lost_with_driver = [t for t in trials if t.error and "driver died" in t.error]
    assert len(trials) - len(lost_with_driver) <= TRIALS
    finished = [t for t in trials if t not in lost_with_driver]
    assert all(t.state == "TERMINATED" for t in finished), [t.state for t in finished]
    assert all(t.num_results == ITERATIONS for t in finished)

    books = ledger(live_service.database_url, study.id, report_log)
    trial_ids = {t.trial_id for t in trials}
    # Results of trials the store no longer has: empty ghosts, whose reports died in
    # the driver's memory before they were written; their configs ran again.
    vanished = {pair for pair in books.reported if pair[0] not in trial_ids}
    # Trials kept from the dead driver: their last reports may have died with it too
    # (sent by the trial, not yet received or written), and the resumed run does not
    # continue them. Only a tail may be missing, never a hole: the store holds each
    # such trial's reports up to its last stored one.
    ghost_tails: set[tuple[str, int]] = set()
    for ghost in lost_with_driver:
        last_stored = max((i for (t, i) in books.stored if t == ghost.trial_id), default=0)
        ghost_tails |= {
            (t, i) for (t, i) in books.reported if t == ghost.trial_id and i > last_stored
        }
    print(
        f"killed driver {driver} at {before.num_results} results "
        f"({before.trial_counts}); {books.summary()}; trials lost with the driver: "
        f"{len(lost_with_driver)} kept ({len(ghost_tails)} trailing reports lost), "
        f"{len({p[0] for p in vanished})} deleted ({len(vanished)} reports)"
    )
    assert books.lost - vanished - ghost_tails == set()
    assert books.invented == set() and books.duplicated == set()
