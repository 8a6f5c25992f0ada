"""Orchestration overhead: a bare, well-configured Tuner vs the same study through the service.

The same no-op trainable (10 results, one every 0.1 s) runs N trials, 2 at a time, on a
2-CPU local Ray cluster: (a) a bare ``Tuner`` with ``reuse_actors=True`` and no logger
callbacks, (b) a study submitted over REST to a live service on the same cluster. Prints
a markdown table and writes JSON to benchmarks/results/overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# The service needs a bearer token: the benchmark gives it one and its clients use it.
BENCH_TOKEN = secrets.token_urlsafe(24)
os.environ["HPO_TOKEN"] = BENCH_TOKEN

from service.client import HpoClient  # noqa: E402
from service.ray_local import LocalRayHead, free_port  # noqa: E402
from service.store import open_store  # noqa: E402

RESULTS_PER_TRIAL = 10
SECONDS_PER_RESULT = 0.1
CONCURRENCY = 2


def study_spec(num_trials: int) -> dict[str, Any]:
    return {
        "name": f"overhead-{num_trials}",
        "trainable": "noop",
        "metric": "loss",
        "mode": "min",
        "search_space": {"x": {"type": "uniform", "low": 0, "high": 1}},
        "algorithm": {"name": "random", "seed": 0},
        "num_samples": num_trials,
        "max_concurrent_trials": CONCURRENCY,
        "config": {"iterations": RESULTS_PER_TRIAL, "sleep_s": SECONDS_PER_RESULT},
    }


def run_bare(address: str, num_trials: int, storage: str) -> dict[str, Any]:
    import logging

    import ray
    from ray import tune

    from trainables import TrialResources, get_trainable

    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"  # as the runner does
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    noop = get_trainable("noop").fn
    fixed = {"iterations": RESULTS_PER_TRIAL, "sleep_s": SECONDS_PER_RESULT}

    def trial(config: dict[str, Any]) -> None:
        noop({**fixed, **config}, TrialResources())

    ray.init(address=address, log_to_driver=False)
    reported = 0

    class Count(tune.Callback):
        def on_trial_result(
            self, iteration: int, trials: Any, trial: Any, result: Any, **info: Any
        ) -> None:
            nonlocal reported
            reported += 1

    started = time.perf_counter()
    tuner = tune.Tuner(
        tune.with_resources(trial, {"cpu": 1}),
        param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(
            metric="loss",
            mode="min",
            num_samples=num_trials,
            max_concurrent_trials=CONCURRENCY,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name="bare", storage_path=storage, verbose=0, callbacks=[Count()]
        ),
    )
    results = tuner.fit()
    wall = time.perf_counter() - started
    ray.shutdown()
    return {"wall_s": wall, "trials": len(results), "results_reported": reported}


def run_service(jobs_address: str, num_trials: int, home: Path) -> dict[str, Any]:
    port = free_port()
    env = {
        **os.environ,
        "HPO_HOME": str(home),
        "HPO_RAY_ADDRESS": jobs_address,
        "HPO_PORT": str(port),
        "HPO_RUNNER_PYTHON": sys.executable,
        "HPO_API_TOKENS": f"{BENCH_TOKEN}=bench:admin",
    }
    log = (home / "service.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "service", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        with HpoClient(f"http://127.0.0.1:{port}", timeout_s=60) as client:
            deadline = time.monotonic() + 120
            while not client.ready():
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"service did not start; see {home / 'service.log'}")
                time.sleep(0.2)
            started = time.perf_counter()
            study = client.submit(study_spec(num_trials))
            while study.status not in ("COMPLETED", "FAILED", "STOPPED"):
                time.sleep(0.2)
                study = client.study(study.id)
            wall = time.perf_counter() - started
            if study.status != "COMPLETED":
                raise RuntimeError(f"study ended {study.status}: {study.error}")
            trials = client.trials(study.id, limit=10_000).items
        store = open_store(f"sqlite:///{home / 'hpo.db'}")
        stored = store.count_results(study.id)
        record = store.get_study(study.id)
        store.close()
        tune_wall = None
        if record.started_at and record.finished_at:
            tune_wall = (record.finished_at - record.started_at).total_seconds()
        return {
            "wall_s": wall,
            "runner_wall_s": tune_wall,
            "trials": len(trials),
            "results_stored": stored,
            "results_reported": sum(t.num_results for t in trials),
        }
    finally:
        server.terminate()
        server.wait(30)
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="40 trials instead of 200")
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "overhead.json"
    )
    args = parser.parse_args()
    num_trials = 40 if args.quick else args.trials
    minimum = num_trials * RESULTS_PER_TRIAL * SECONDS_PER_RESULT / CONCURRENCY

    with tempfile.TemporaryDirectory(prefix="hpo-bench-") as tmp:
        root = Path(tmp)
        head = LocalRayHead(root / "ray", num_cpus=CONCURRENCY)
        head.start()
        try:
            bare = run_bare(head.address, num_trials, str(root / "bare"))
            (root / "svc").mkdir()
            served = run_service(head.dashboard_url, num_trials, root / "svc")
        finally:
            head.stop()

    expected_results = num_trials * RESULTS_PER_TRIAL
    report = {
        "benchmark": "overhead",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.node()} {os.cpu_count()} cores, {platform.python_version()}",
        "trials": num_trials,
        "concurrency": CONCURRENCY,
        "theoretical_minimum_s": minimum,
        "bare": {**bare, "ratio_to_minimum": bare["wall_s"] / minimum},
        "service": {**served, "ratio_to_minimum": served["wall_s"] / minimum},
        "service_over_bare": served["wall_s"] / bare["wall_s"],
        "results_missing": expected_results - served["results_stored"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print()
    print("| run | wall (s) | / minimum | trials | results stored |")
    print("| --- | --- | --- | --- | --- |")
    bare_ratio, served_ratio = bare["wall_s"] / minimum, served["wall_s"] / minimum
    print(
        f"| bare Tuner (reuse_actors) | {bare['wall_s']:.1f} | {bare_ratio:.3f} | "
        f"{bare['trials']} | - |"
    )
    print(
        f"| service (POST → COMPLETED) | {served['wall_s']:.1f} | {served_ratio:.3f} | "
        f"{served['trials']} | {served['results_stored']}/{expected_results} |"
    )
    print(f"\nservice / bare = {report['service_over_bare']:.3f}; minimum = {minimum:.0f} s")
    return 0 if report["results_missing"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
