"""Orchestration overhead: a bare, well-configured Tuner vs the same study through the service.

Two variants, each run bare and through the service on one local Ray cluster (2 CPUs,
dashboard and token auth on), one after the other in the same run:

- ``function``: N trials of the ``noop`` trainable (1 s, one result), 2 at a time. Bare:
  ``Tuner`` with ``reuse_actors=True``, Tune's logger callbacks off, verbose 0.
- ``train``: M trials, each a 2-worker Ray Train run (``noop_train``: each worker sleeps
  1 s and reports once), one at a time, so each trial pays the worker group's start.
  Bare: Ray's documented pattern, a trial function fitting a ``TorchTrainer`` with
  ``TuneReportCallback``.

The service side is a study submitted over REST to a live ``hpo serve``, timed from
``POST /studies`` to ``COMPLETED`` (job submission, driver start and store writes
included). Theoretical minimum: trials x 1 s / concurrency. Prints a markdown table and
writes JSON to benchmarks/results/overhead.json.
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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

CLUSTER_CPUS = 2
TRIAL_SECONDS = 1.0  # one result per trial, after this long
TRAIN_WORKERS = 2


@dataclass(frozen=True)
class Variant:
    name: str
    trainable: str
    trials: int
    concurrency: int
    workers: int  # Ray Train workers per trial; 0 = a plain function trial

    @property
    def minimum_s(self) -> float:
        return self.trials * TRIAL_SECONDS / self.concurrency

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "name": f"overhead-{self.name}-{self.trials}",
            "trainable": self.trainable,
            "metric": "loss",
            "mode": "min",
            "search_space": {"x": {"type": "uniform", "low": 0, "high": 1}},
            "algorithm": {"name": "random", "seed": 0},
            "num_samples": self.trials,
            "max_concurrent_trials": self.concurrency,
            "config": {"iterations": 1, "sleep_s": TRIAL_SECONDS},
        }
        if self.workers:
            spec["resources"] = {"num_workers": self.workers, "cpus_per_worker": 1}
        return spec


def function_trial() -> tuple[Callable[[dict[str, Any]], None], dict[str, float]]:
    from trainables import TrialResources, get_trainable

    noop = get_trainable("noop").fn

    def trial(config: dict[str, Any]) -> None:
        noop({"iterations": 1, "sleep_s": TRIAL_SECONDS, **config}, TrialResources())

    return trial, {"cpu": 1}


def train_trial(storage: str) -> tuple[Callable[[dict[str, Any]], None], dict[str, float]]:
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    from trainables.noop_train import train_loop_per_worker

    def trial(config: dict[str, Any]) -> None:
        trainer = TorchTrainer(
            train_loop_per_worker,
            train_loop_config={"iterations": 1, "sleep_s": TRIAL_SECONDS, **config},
            scaling_config=ScalingConfig(num_workers=TRAIN_WORKERS),
            run_config=RunConfig(storage_path=storage, callbacks=[TuneReportCallback()]),
        )
        trainer.fit()

    # Tune refuses an all-zero request; the driver of a Train run needs no CPU.
    return trial, {"cpu": 0, "memory": 256 * 1024**2}


def run_bare(address: str, variant: Variant, storage: str) -> dict[str, Any]:
    import logging

    import ray
    from ray import tune

    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"  # as the runner does
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    trial, resources = train_trial(f"{storage}/train") if variant.workers else function_trial()
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
        tune.with_resources(trial, resources),
        param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(
            metric="loss",
            mode="min",
            num_samples=variant.trials,
            max_concurrent_trials=variant.concurrency,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=f"bare-{variant.name}", storage_path=storage, verbose=0, callbacks=[Count()]
        ),
    )
    results = tuner.fit()
    wall = time.perf_counter() - started
    ray.shutdown()
    errors = sum(1 for result in results if result.error is not None)
    return {"wall_s": wall, "trials": len(results), "errors": errors, "results": reported}


class Service:
    """``hpo serve`` as a subprocess on an existing cluster, with its own home and SQLite."""

    def __init__(
        self, jobs_address: str, home: Path, extra_env: Mapping[str, str] | None = None
    ) -> None:
        self.home = home
        self.port = free_port()
        env = {
            **os.environ,
            "HPO_HOME": str(home),
            "HPO_RAY_ADDRESS": jobs_address,
            "HPO_PORT": str(self.port),
            "HPO_RUNNER_PYTHON": sys.executable,
            "HPO_API_TOKENS": f"{BENCH_TOKEN}=bench:admin",
            **(extra_env or {}),
        }
        home.mkdir(parents=True, exist_ok=True)
        self._log = (home / "service.log").open("wb")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.client = HpoClient(f"http://127.0.0.1:{self.port}", timeout_s=60)
        deadline = time.monotonic() + 120
        while not self.client.ready():
            if time.monotonic() > deadline or self._process.poll() is not None:
                self.close()
                raise RuntimeError(f"service did not start; see {home / 'service.log'}")
            time.sleep(0.2)

    def close(self) -> None:
        self.client.close()
        self._process.terminate()
        self._process.wait(30)
        self._log.close()


def run_service(service: Service, variant: Variant) -> dict[str, Any]:
    client = service.client
    started = time.perf_counter()
    study = client.submit(variant.spec())
    while study.status not in ("COMPLETED", "FAILED", "STOPPED"):
        time.sleep(0.2)
        study = client.study(study.id)
    wall = time.perf_counter() - started
    if study.status != "COMPLETED":
        raise RuntimeError(f"study ended {study.status}: {study.error}")
    trials = client.trials(study.id, limit=10_000).items
    store = open_store(f"sqlite:///{service.home / 'hpo.db'}")
    stored = store.count_results(study.id)
    record = store.get_study(study.id)
    store.close()
    runner_wall = None
    if record.started_at and record.finished_at:
        runner_wall = (record.finished_at - record.started_at).total_seconds()
    return {
        "wall_s": wall,
        "runner_wall_s": runner_wall,
        "trials": len(trials),
        "errors": sum(1 for trial in trials if trial.state == "ERROR"),
        "results": stored,
    }


def measure(variant: Variant, head: LocalRayHead, service: Service, root: Path) -> dict[str, Any]:
    print(
        f"[{time.strftime('%H:%M:%S')}] {variant.name}: bare, {variant.trials} trials", flush=True
    )
    bare = run_bare(head.address, variant, str(root / "bare"))
    print(f"[{time.strftime('%H:%M:%S')}] {variant.name}: service", flush=True)
    served = run_service(service, variant)
    minimum = variant.minimum_s
    return {
        "trials": variant.trials,
        "concurrency": variant.concurrency,
        "train_workers": variant.workers,
        "theoretical_minimum_s": minimum,
        "bare": {**bare, "ratio_to_minimum": bare["wall_s"] / minimum},
        "service": {**served, "ratio_to_minimum": served["wall_s"] / minimum},
        "service_over_bare": served["wall_s"] / bare["wall_s"],
        "results_missing": variant.trials - served["results"],
    }


def print_table(report: dict[str, Any]) -> None:
    print("| variant | run | wall (s) | / minimum | trials | results |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, row in report["variants"].items():
        for run, label in (("bare", "bare Tuner"), ("service", "service, POST → COMPLETED")):
            r = row[run]
            print(
                f"| {name} | {label} | {r['wall_s']:.1f} | {r['ratio_to_minimum']:.3f} | "
                f"{r['trials']} | {r['results']} |"
            )
        print(
            f"| {name} | **service / bare** | **{row['service_over_bare']:.3f}** | "
            f"minimum {row['theoretical_minimum_s']:.0f} s | | "
            f"missing {row['results_missing']} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=2000, help="function-trial variant")
    parser.add_argument("--train-trials", type=int, default=40, help="2-worker Train variant")
    parser.add_argument("--only", choices=("function", "train"), help="run one variant")
    parser.add_argument("--quick", action="store_true", help="10 function trials; no train variant")
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "overhead.json"
    )
    args = parser.parse_args()
    variants = [
        Variant("function", "noop", 10 if args.quick else args.trials, CLUSTER_CPUS, 0),
        Variant(
            "train",
            "noop_train",
            1 if args.quick else args.train_trials,
            CLUSTER_CPUS // TRAIN_WORKERS,
            TRAIN_WORKERS,
        ),
    ]
    if args.quick:  # the quick suite times a Train run's start in train_gpu.py cpu
        variants = variants[:1]
    variants = [v for v in variants if args.only in (None, v.name)]

    report: dict[str, Any] = {
        "benchmark": "overhead",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "cluster_cpus": CLUSTER_CPUS,
        "load_average_start": os.getloadavg(),
        "variants": {},
    }
    with tempfile.TemporaryDirectory(prefix="hpo-bench-") as tmp:
        root = Path(tmp)
        head = LocalRayHead(root / "ray", num_cpus=CLUSTER_CPUS)
        head.start()
        try:
            service = Service(head.dashboard_url, root / "svc")
            try:
                for variant in variants:
                    report["variants"][variant.name] = measure(variant, head, service, root)
            finally:
                service.close()
        finally:
            head.stop()
    report["load_average_end"] = os.getloadavg()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print()
    print_table(report)
    missing = sum(row["results_missing"] for row in report["variants"].values())
    return 0 if missing == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
