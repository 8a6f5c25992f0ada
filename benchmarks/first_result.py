"""Time to first result: from ``POST /studies`` to the first result in the store.

On one local Ray cluster (2 CPUs, dashboard and token auth on) and one live ``hpo
serve`` (SQLite), each case is submitted ``--repeats`` times, one study at a time, and
the store is polled every 10 ms until the study's first result row is there. Cases: a
plain function trial (``noop``), a 1-worker and a 2-worker Ray Train trial
(``noop_train``); each trial reports at once (no sleep). The first repeat of a case is
the cold one (fresh Ray worker processes); later ones may reuse them.

The peer is the same trial in a bare Tune script started as a new Python process
(``python script.py``, what a user runs by hand), timed from the process start to its
``on_trial_result``. The "warm runner" cases go through a second service with
``HPO_WARM_RUNNERS=1``; each is submitted once a warm runner is ready (its log says it is
waiting for a study). The stages of the service path come from the store's own
timestamps: created (POST), the runner started (study RUNNING), the trial reported, and
stored. Prints a markdown table and writes JSON to benchmarks/results/first_result.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.overhead import Service  # noqa: E402
from service.launcher import RayJobLauncher  # noqa: E402
from service.ray_local import LocalRayHead  # noqa: E402

CLUSTER_CPUS = 2
POLL_S = 0.01


@dataclass(frozen=True)
class Case:
    name: str
    trainable: str
    workers: int  # Ray Train workers; 0 = a plain function trial
    target_s: float
    warm: bool = False  # through a service with a warm runner waiting (HPO_WARM_RUNNERS=1)

    def spec(self, repeat: int) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "name": f"first-result-{self.name}-{repeat}",
            "trainable": self.trainable,
            "metric": "loss",
            "mode": "min",
            "search_space": {"x": {"type": "uniform", "low": 0, "high": 1}},
            "algorithm": {"name": "random", "seed": repeat},
            "num_samples": 1,
            "config": {"iterations": 1, "sleep_s": 0},
        }
        if self.workers:
            spec["resources"] = {"num_workers": self.workers, "cpus_per_worker": 1}
        return spec


CASES = (
    Case("function trial", "noop", 0, 5.0),
    Case("function trial, warm runner", "noop", 0, 5.0, warm=True),
    Case("1-worker Train trial", "noop_train", 1, 5.0),
    Case("2-worker Train trial", "noop_train", 2, 15.0),
    Case("2-worker Train trial, warm runner", "noop_train", 2, 15.0, warm=True),
)
WARM_READY_LINE = "waiting for a study"


def wait_for_a_ready_warm_runner(jobs: RayJobLauncher, timeout_s: float = 120) -> str:
    """A warm runner that has imported and connected everything (its log says so)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for job in jobs._jobs().list_jobs():
            if (job.metadata or {}).get("hpo_warm_runner") != "1" or job.status != "RUNNING":
                continue
            if WARM_READY_LINE in jobs.logs_tail(str(job.submission_id)):
                return str(job.submission_id)
        time.sleep(0.2)
    raise RuntimeError(f"no warm runner was ready after {timeout_s} s")


def utc_seconds(value: str | None) -> float | None:
    """Epoch seconds of a timestamp the store wrote (naive values are UTC)."""
    if value is None:
        return None
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def service_once(service: Service, case: Case, repeat: int) -> dict[str, Any]:
    database = sqlite3.connect(f"file:{service.home / 'hpo.db'}?mode=ro", uri=True)
    try:
        posted = time.time()
        study = service.client.submit(case.spec(repeat))
        answered = time.time()
        row = None
        deadline = time.monotonic() + 300
        while row is None or row[0] is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no result for study {study.id} after 300 s")
            time.sleep(POLL_S)
            row = database.execute(
                "SELECT min(stored_at), min(reported_at) FROM results WHERE study_id = ?",
                (study.id,),
            ).fetchone()
        seen = time.time()
        created, started = database.execute(
            "SELECT created_at, started_at FROM studies WHERE id = ?", (study.id,)
        ).fetchone()
    finally:
        database.close()
    finished = service.client.study(study.id)
    while finished.status not in ("COMPLETED", "FAILED", "STOPPED"):
        time.sleep(0.2)
        finished = service.client.study(study.id)
    stamps = {
        "created": utc_seconds(created),
        "runner_started": utc_seconds(started),
        "reported": utc_seconds(row[1]),
        "stored": utc_seconds(row[0]),
    }
    return {
        "seconds": seen - posted,
        "post_s": answered - posted,
        # Each stage from the one before it (store clock; same machine).
        "stages_s": {
            "POST → runner RUNNING": _minus(stamps["runner_started"], posted),
            "runner → trial reported": _minus(stamps["reported"], stamps["runner_started"]),
            "reported → stored": _minus(stamps["stored"], stamps["reported"]),
        },
        "status": finished.status,
    }


def _minus(later: float | None, earlier: float | None) -> float | None:
    return None if later is None or earlier is None else later - earlier


BARE_SCRIPT = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {repo!r})
    import ray
    from ray import tune

    workers = {workers}
    if workers:
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer
        from ray.tune.integration.ray_train import TuneReportCallback
        from trainables.noop_train import train_loop_per_worker

        def trial(config):
            TorchTrainer(
                train_loop_per_worker,
                train_loop_config={{"iterations": 1, "sleep_s": 0, **config}},
                scaling_config=ScalingConfig(num_workers=workers),
                run_config=RunConfig(storage_path={storage!r} + "/train",
                                     callbacks=[TuneReportCallback()]),
            ).fit()
        resources = {{"cpu": 0, "memory": 256 * 1024**2}}
    else:
        from trainables import TrialResources, get_trainable
        noop = get_trainable("noop").fn

        def trial(config):
            noop({{"iterations": 1, "sleep_s": 0, **config}}, TrialResources())
        resources = {{"cpu": 1}}

    class First(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            print("FIRST_RESULT", time.time(), flush=True)

    ray.init(address={address!r}, log_to_driver=False)
    tune.Tuner(
        tune.with_resources(trial, resources),
        param_space={{"x": tune.uniform(0, 1)}},
        tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=1),
        run_config=tune.RunConfig(storage_path={storage!r}, verbose=0, callbacks=[First()]),
    ).fit()
    """
)


def bare_once(address: str, case: Case, root: Path, repeat: int) -> dict[str, Any]:
    script = root / f"bare-{case.workers}-{repeat}.py"
    script.write_text(
        BARE_SCRIPT.format(
            repo=str(REPO), workers=case.workers, address=address, storage=str(root / "bare")
        )
    )
    env = {**os.environ, "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}
    started = time.time()
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("FIRST_RESULT")]
    if not lines:
        raise RuntimeError(f"bare run gave no result:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    return {"seconds": float(lines[0].split()[1]) - started}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = [run["seconds"] for run in runs]
    return {
        "cold_s": seconds[0],
        "warm_median_s": statistics.median(seconds[1:]) if len(seconds) > 1 else None,
        "median_s": statistics.median(seconds),
        "runs": runs,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 repeat of the function trial (train_gpu.py cpu --quick times a Train start)",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "first_result.json"
    )
    parser.add_argument(
        "--case", action="append", choices=[c.name for c in CASES], help="run only these cases"
    )
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    cases = [c for c in CASES if not (args.quick and (c.workers or c.warm))]
    if args.case:
        cases = [c for c in cases if c.name in args.case]

    report: dict[str, Any] = {
        "benchmark": "first_result",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "cluster_cpus": CLUSTER_CPUS,
        "load_average_start": os.getloadavg(),
        "cases": {},
    }
    with tempfile.TemporaryDirectory(prefix="hpo-bench-") as tmp:
        root = Path(tmp)
        head = LocalRayHead(root / "ray", num_cpus=CLUSTER_CPUS)
        head.start()
        try:
            service = Service(head.dashboard_url, root / "svc")
            # Its own home and database; its studies run in hpo-warm-<hex> jobs, so their
            # ids cannot collide with the other service's hpo-study-<id> jobs.
            warm_service = (
                Service(head.dashboard_url, root / "svc-warm", {"HPO_WARM_RUNNERS": "1"})
                if any(case.warm for case in cases)
                else None
            )
            jobs = RayJobLauncher(head.dashboard_url)
            try:
                for case in cases:
                    served, bare = [], []
                    for repeat in range(repeats):
                        print(f"[{time.strftime('%H:%M:%S')}] {case.name} #{repeat}", flush=True)
                        if case.warm:
                            wait_for_a_ready_warm_runner(jobs)
                        through = warm_service if case.warm else service
                        assert through is not None
                        served.append(service_once(through, case, repeat))
                        bare.append(bare_once(head.address, case, root, repeat))
                    report["cases"][case.name] = {
                        "target_s": case.target_s,
                        "service": summarise(served),
                        "bare": summarise(bare),
                    }
            finally:
                service.close()
                if warm_service is not None:
                    warm_service.close()
        finally:
            head.stop()
    report["load_average_end"] = os.getloadavg()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print()
    print_table(report)
    return 0


def print_table(report: dict[str, Any]) -> None:
    print(
        "| case | service cold (s) | service warm median (s) | bare script cold / warm (s) "
        "| service / bare (median) | target | met | stages of the median service run |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, row in report["cases"].items():
        served, bare = row["service"], row["bare"]
        median_run = sorted(served["runs"], key=lambda run: run["seconds"])[
            len(served["runs"]) // 2
        ]
        stages = ", ".join(
            f"{stage} {value:.2f}"
            for stage, value in median_run["stages_s"].items()
            if value is not None
        )
        warm = served["warm_median_s"]
        bare_warm = bare["warm_median_s"]
        print(
            f"| {name} | {served['cold_s']:.2f} | {_fmt(warm)} | "
            f"{bare['cold_s']:.2f} / {_fmt(bare_warm)} | "
            f"{served['median_s'] / bare['median_s']:.2f} | ≤ {row['target_s']:.0f} s | "
            f"{'yes' if served['median_s'] <= row['target_s'] else 'no'} | {stages} |"
        )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    sys.exit(main())
