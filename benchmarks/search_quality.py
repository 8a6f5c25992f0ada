"""Search quality: BOHB and HyperOpt through the service vs the same searchers in plain Ray Tune.

On branin, hartmann6 (multi-fidelity: every epoch reports) and mlp_digits (Ray Train
trials), for each seed: BOHB (TuneBOHB + HyperBandForBOHB) and HyperOpt (TPE) submitted
over REST to a live service, the same searchers built by hand in Ray Tune over the
registered trainable's function, and Tune's random search at full fidelity; all on one
local Ray cluster, many runs in flight at once. Budget = epochs (fidelity units) used by
all trials, in the order the results reached the Tune driver; regret = best loss reported
so far minus the known optimum (mlp_digits: minus the best val_loss any run reached).
Every method gets the same budget (random/HyperOpt: ``full_trials x max_t``; BOHB gets
more samples than it needs and is stopped, then cut, at that budget).

Writes benchmarks/results/search_quality.json (every result of every run, and the
analysis), one PNG per problem, and prints markdown tables. ``--plot-only`` redoes the
analysis and plots from a saved JSON (the full run can happen on another machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BENCH_TOKEN = os.environ.get("HPO_TOKEN") or secrets.token_urlsafe(24)
os.environ["HPO_TOKEN"] = BENCH_TOKEN

from benchmarks.quality.problems import (  # noqa: E402
    DIRECT_BOHB,
    DIRECT_HYPEROPT,
    FULL,
    METHODS,
    QUICK,
    RANDOM,
    Problem,
)

RESULTS = REPO / "benchmarks" / "results"
DIRECT_METHODS = (DIRECT_BOHB, DIRECT_HYPEROPT, RANDOM)
_T0 = time.monotonic()

# Ray Train settings of the local cluster when a problem's trials run Ray Train (set before
# the head starts, so the service's runners, the direct drivers and every Train controller
# and worker inherit them; an operator's own values win). Both paths get the same.
# - The preemption watcher is one more actor process per Train run, watching for node
#   drains: there are none on one local node.
# - The worker group's start timeout (60 s by default) only bounds the wait for a
#   placement group; with many runs starting Train workers at once that wait may be long,
#   and a timeout would make a trial start over.
TRAIN_ENV = {
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
    "RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S": "600",
}
#: A run starts only if the longest run of its problem and method so far, times this, ends
#: before the hard deadline (a run that cannot finish would only slow the others down).
FIT_MARGIN = 1.1


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} +{time.monotonic() - _T0:6.1f}s] {message}", flush=True)


# --- direct runs: persistent driver processes (one ray.init each, many runs) -----------


def direct_worker(storage: str) -> int:
    """Child process: read task lines on stdin, run each, answer one RESULT line each."""
    import ray

    from benchmarks.quality.direct import run_direct

    ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)
    out = sys.stdout
    sys.stdout = sys.stderr  # Tune's prints must not mix with the answers
    for line in sys.stdin:
        task = json.loads(line)
        problems = QUICK if task["quick"] else FULL
        try:
            record = run_direct(problems[task["problem"]], task["method"], task["seed"], storage)
        except Exception:
            record = {"error": traceback.format_exc()[-4000:]}
        out.write("RESULT " + json.dumps(record) + "\n")
        out.flush()
    ray.shutdown()
    return 0


class DirectDriver:
    """A direct-run driver process, owned by one orchestrator thread."""

    def __init__(self, root: Path, index: int):
        log_path = root / f"direct-{index}.log"
        self._log: IO[bytes] = log_path.open("wb")
        self._process = subprocess.Popen(
            [sys.executable, __file__, "--direct-worker", "--storage", str(root / "direct")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=_child_env(),
        )

    def run(self, task: dict[str, Any]) -> dict[str, Any]:
        assert self._process.stdin and self._process.stdout
        self._process.stdin.write(json.dumps(task) + "\n")
        self._process.stdin.flush()
        while True:
            line = self._process.stdout.readline()
            if not line:
                raise RuntimeError(f"direct driver exited ({self._process.poll()})")
            if line.startswith("RESULT "):
                record: dict[str, Any] = json.loads(line[len("RESULT ") :])
                return record

    def kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()

    def close(self) -> None:
        if self._process.stdin:
            self._process.stdin.close()
        try:
            self._process.wait(60)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._log.close()


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "?"


def _child_env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{REPO}:{path}" if path else str(REPO)}


# --- the service -----------------------------------------------------------------------


class Service:
    def __init__(self, home: Path, jobs_address: str):
        from service.ray_local import free_port

        self.home = home
        self.port = free_port()
        env = {
            **_child_env(),
            "HPO_HOME": str(home),
            "HPO_RAY_ADDRESS": jobs_address,
            "HPO_PORT": str(self.port),
            "HPO_RUNNER_PYTHON": sys.executable,
            "HPO_API_TOKENS": f"{BENCH_TOKEN}=bench:admin",
            # Up to 20 seeds x 2 searchers x 3 problems are submitted in one run.
            "HPO_STUDY_CREATE_PER_MINUTE": "1000",
            "HPO_STUDY_CREATE_BURST": "500",
        }
        self._log = (home / "service.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_url(self) -> str:
        from benchmarks.quality.served import database_url_of

        return database_url_of(self.home)

    def wait_ready(self, timeout_s: float = 180) -> None:
        from service.client import HpoClient

        with HpoClient(self.url, timeout_s=60) as client:
            deadline = time.monotonic() + timeout_s
            while not client.ready():
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"service did not start; see {self.home / 'service.log'}")
                time.sleep(0.3)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()


# --- orchestration ---------------------------------------------------------------------


def done_runs(paths: list[Path], redo: set[str]) -> set[tuple[str, str, int]]:
    """(problem, method, seed) of the successful runs in saved reports, but for ``redo``."""
    have = set()
    for path in paths:
        report = json.loads(path.read_text())
        for name, problem in report["problems"].items():
            for method, runs in problem["runs"].items():
                if method in redo:
                    continue
                have |= {(name, method, int(r["seed"])) for r in runs if r.get("values")}
    return have


def make_tasks(problems: dict[str, Problem], seeds: list[int]) -> list[tuple[str, str, int]]:
    """Seed-major (a run cut short by a deadline has whole seeds), heaviest problem first
    within a seed, service and direct of one searcher next to each other."""
    order = sorted(problems, key=lambda n: -problems[n].budget * (5 if n == "mlp_digits" else 1))
    return [(name, method, seed) for seed in seeds for name in order for method in METHODS]


def train_env(problems: dict[str, Problem]) -> dict[str, str]:
    """The Ray Train settings this run gives its cluster (none without Train trials)."""
    from trainables import get_trainable

    if not any(get_trainable(p.name).uses_train_workers for p in problems.values()):
        return {}
    return {key: os.environ.get(key, value) for key, value in TRAIN_ENV.items()}


def fits(
    now: float, hard_deadline: float | None, longest: float | None, margin: float = FIT_MARGIN
) -> bool:
    """Whether a run expected to take ``longest`` seconds ends before the hard deadline
    (unknown length: it may start)."""
    return hard_deadline is None or longest is None or now + longest * margin <= hard_deadline


def machine_stamp() -> str:
    """Load average and available memory, for the progress log."""
    try:
        load = "/".join(f"{x:.1f}" for x in os.getloadavg())
        meminfo = Path("/proc/meminfo").read_text().split("\n")
        available = next(line for line in meminfo if line.startswith("MemAvailable:"))
        free_gib = int(available.split()[1]) / 1024**2
        return f"load {load}, {free_gib:.0f} GiB available"
    except (OSError, StopIteration, ValueError):
        return "load ?"


def run_all(
    args: argparse.Namespace,
    problems: dict[str, Problem],
    seeds: list[int],
    save: Callable[[dict[str, Any], float], None] | None = None,
) -> dict[str, Any]:
    from benchmarks.quality.served import run_service
    from service.client import HpoClient
    from service.ray_local import LocalRayHead

    tasks = make_tasks(problems, seeds)
    if args.skip_done:
        have = done_runs(args.skip_done, redo=set(args.redo_methods.split(",")))
        tasks = [task for task in tasks if task not in have]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        name: {method: [] for method in METHODS} for name in problems
    }
    todo: queue.Queue[tuple[str, str, int]] = queue.Queue()
    for task in tasks:
        todo.put(task)
    lock = threading.Lock()
    done = [0]
    deadline = time.monotonic() + args.deadline_s if args.deadline_s else None
    hard_deadline = time.monotonic() + args.hard_deadline_s if args.hard_deadline_s else None
    drivers: list[DirectDriver] = []
    stopping = threading.Event()
    started = time.perf_counter()
    longest: dict[tuple[str, str], float] = {}  # wall of the longest finished run so far
    cut_seeds: set[int] = set()  # seeds with a run that could not end before the deadline
    not_started: list[tuple[str, str, int]] = []
    in_flight = [0]
    os.environ.update(train_env(problems))

    with tempfile.TemporaryDirectory(prefix="hpo-quality-") as tmp:
        root = Path(tmp)
        if args.logs:
            root = args.logs
            root.mkdir(parents=True, exist_ok=True)
        head = LocalRayHead(root / "ray", num_cpus=args.cpus)
        head.start()
        os.environ["RAY_API_SERVER_ADDRESS"] = head.dashboard_url  # Ray Train's PG cleaner
        (root / "svc").mkdir()
        service = Service(root / "svc", head.dashboard_url)
        threads: list[threading.Thread] = []
        try:
            service.wait_ready()
            log(
                f"Ray head ({args.cpus} CPUs) and service up; {len(tasks)} runs, "
                f"{args.parallel} at a time"
            )

            def worker(index: int) -> None:
                driver: DirectDriver | None = None
                client = HpoClient(service.url, timeout_s=60)
                try:
                    while True:
                        if stopping.is_set():
                            return
                        if deadline is not None and time.monotonic() > deadline:
                            return
                        try:
                            name, method, seed = todo.get_nowait()
                        except queue.Empty:
                            return
                        with lock:
                            # Only whole seeds count: once one run of a seed cannot end
                            # in time, none of its others starts.
                            if seed not in cut_seeds and not fits(
                                time.monotonic(), hard_deadline, longest.get((name, method))
                            ):
                                if not cut_seeds:
                                    log(f"seed {seed} on cut: {method} would not end in time")
                                cut_seeds.add(seed)
                            if seed in cut_seeds:
                                not_started.append((name, method, seed))
                                continue
                            in_flight[0] += 1
                        problem = problems[name]
                        t0 = time.perf_counter()
                        try:
                            if method in DIRECT_METHODS:
                                if driver is None:
                                    driver = DirectDriver(root, index)
                                    drivers.append(driver)
                                record = driver.run(
                                    {
                                        "problem": name,
                                        "method": method,
                                        "seed": seed,
                                        "quick": args.quick,
                                    }
                                )
                            else:
                                record = run_service(
                                    client, service.database_url, problem, method, seed
                                )
                        except Exception:
                            record = {"error": traceback.format_exc()[-4000:]}
                            if stopping.is_set():
                                record["abandoned"] = True
                            if driver is not None and method in DIRECT_METHODS:
                                driver.close()
                                driver = None
                        record["seed"] = seed
                        wall = time.perf_counter() - t0
                        record["orchestrator_wall_s"] = wall
                        with lock:
                            in_flight[0] -= 1
                            runs[name][method].append(record)
                            done[0] += 1
                            if record.get("values"):
                                key = (name, method)
                                longest[key] = max(longest.get(key, 0.0), wall)
                            n = len(record.get("values") or [])
                            best = min(
                                (v for v in record.get("values") or [] if v is not None),
                                default=None,
                            )
                            status = (
                                "ERROR " + _last_line(str(record["error"]))
                                if "error" in record
                                else f"{n} results, best {best}"
                            )
                            log(
                                f"{done[0]}/{len(tasks)} {name} {method} seed {seed}: "
                                f"{wall:.1f} s, {status}"
                            )
                finally:
                    client.close()
                    if driver is not None:
                        driver.close()

            threads += [
                threading.Thread(target=worker, args=(i,), daemon=True)
                for i in range(args.parallel)
            ]
            for thread in threads:
                thread.start()
                time.sleep(0.5)  # stagger driver starts
            last_save = last_stamp = time.monotonic()

            def save_now() -> None:
                if save is not None:
                    with lock:
                        snapshot = json.loads(json.dumps(runs))
                    save(snapshot, time.perf_counter() - started)

            while any(thread.is_alive() for thread in threads):
                if hard_deadline is not None and time.monotonic() > hard_deadline:
                    log(f"hard deadline: {in_flight[0]} runs still in flight are abandoned")
                    stopping.set()
                    save_now()  # before the teardown, which may take a while
                    break
                time.sleep(1.0)
                if time.monotonic() - last_stamp > 30:
                    last_stamp = time.monotonic()
                    log(f"{done[0]} done, {in_flight[0]} in flight; {machine_stamp()}")
                if time.monotonic() - last_save > args.save_every_s:
                    last_save = time.monotonic()
                    save_now()
        finally:
            for driver in drivers:
                driver.kill()
            service.stop()
            head.stop()
            # Their runs end in errors now: let them record those.
            join_until = time.monotonic() + 30
            for thread in threads:
                thread.join(timeout=max(0.0, join_until - time.monotonic()))
    skipped = todo.qsize() + len(not_started)
    if skipped:
        log(f"deadline reached: {skipped} runs not started (seeds cut: {sorted(cut_seeds)})")
    with lock:
        finished = json.loads(json.dumps(runs))
    return {
        "runs": finished,
        "wall_s": time.perf_counter() - started,
        "runs_not_started": skipped,
        # In flight at the hard deadline: recorded as errors marked abandoned, or not at all.
        "runs_abandoned": len(tasks) - skipped - done[0] + _count_abandoned(finished),
        "seeds_cut": sorted(cut_seeds),
    }


def _count_abandoned(runs: dict[str, dict[str, list[dict[str, Any]]]]) -> int:
    return sum(
        1
        for methods in runs.values()
        for records in methods.values()
        for record in records
        if record.get("abandoned")
    )


def build_report(
    args: argparse.Namespace,
    problems: dict[str, Problem],
    seeds: list[int],
    outcome: dict[str, Any],
) -> dict[str, Any]:
    return {
        "benchmark": "search_quality",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "quick": args.quick,
        "seeds": seeds,
        "cpus": args.cpus,
        "parallel": args.parallel,
        "wall_s": outcome["wall_s"],
        "runs_not_started": outcome["runs_not_started"],
        "runs_abandoned": outcome["runs_abandoned"],
        "seeds_cut": outcome.get("seeds_cut"),
        "ray_env": train_env(problems),
        "definitions": {
            "budget": "epochs (fidelity units) of all trials, counted per result in the "
            "order results reached the Tune driver (service: the store's reported_at)",
            "regret": "best-so-far reported loss (every fidelity counts: a low-fidelity "
            "loss of branin/hartmann6 is an upper bound of the point's value) minus the "
            "reference; mlp_digits: best val_loss of any run within the budget",
            "band": "95% percentile bootstrap of the mean over seeds",
            "test": "two-sided Wilcoxon signed-rank over seeds, service vs direct; "
            "no significant difference = p >= 0.05 on both final regret and AUC",
            "bohb_target": "first budget at which BOHB's mean regret <= random search's "
            "final mean regret, as a fraction of the budget (target <= 0.2 on hartmann6)",
        },
        "problems": {
            name: {
                "settings": asdict(problem),
                "budget": problem.budget,
                "runs": outcome["runs"][name],
            }
            for name, problem in problems.items()
        },
    }


def merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report with the runs of several (a seed's run of a method appears once: the
    first report's wins). A problem run with other settings than in an earlier report
    (e.g. mlp_digits before its budget was cut) is left out and listed under
    ``superseded``."""
    merged = json.loads(json.dumps(reports[0]))
    for other in reports[1:]:
        merged["seeds"] = sorted(set(merged["seeds"]) | set(other["seeds"]))
        merged["wall_s"] = [*_as_list(merged["wall_s"]), *_as_list(other["wall_s"])]
        merged["machine"] = " + ".join(dict.fromkeys([merged["machine"], other["machine"]]))
        for name, problem in other["problems"].items():
            mine = merged["problems"].setdefault(name, problem)
            if mine is problem:
                continue
            if mine["settings"] != problem["settings"]:
                runs_left_out = sum(len(rs) for rs in problem["runs"].values())
                merged.setdefault("superseded", []).append(
                    {
                        "problem": name,
                        "date": other.get("date"),
                        "settings": problem["settings"],
                        "runs": runs_left_out,
                    }
                )
                log(f"{name}: {runs_left_out} runs of another report ran other settings; left out")
                continue
            for method, runs in problem["runs"].items():
                have = {r["seed"] for r in mine["runs"].setdefault(method, [])}
                mine["runs"][method] += [r for r in runs if r["seed"] not in have]
    return merged


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def analyze_and_print(report: dict[str, Any], out: Path, plots: bool) -> dict[str, Any]:
    from benchmarks.quality.report import analyze_problem, markdown

    analysis = {name: analyze_problem(p) for name, p in report["problems"].items()}
    report["analysis"] = analysis
    if plots:
        try:
            from benchmarks.quality.plots import plot_problem

            stem = out.stem
            for name, problem in report["problems"].items():
                path = plot_problem(name, problem, out.parent / f"{stem}-{name}.png")
                log(f"plot: {path}")
        except ImportError as missing:
            log(f"no plots ({missing}); rerun with --plot-only where matplotlib is installed")
    print()
    print(markdown(analysis))
    return analysis


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="small budgets, 2 seeds: a check that everything runs"
    )
    parser.add_argument("--seeds", type=int, default=None, help="N seeds (20; quick 1)")
    parser.add_argument(
        "--seed-start",
        type=int,
        default=0,
        help="first seed (seeds are seed-start .. seed-start+N-1)",
    )
    parser.add_argument(
        "--problems",
        default=None,
        help="comma-separated (default: branin,hartmann6,mlp_digits; --quick: "
        "branin, so that make bench QUICK=1 stays under 5 minutes)",
    )
    parser.add_argument(
        "--cpus",
        type=int,
        default=None,
        help="logical CPUs of the local Ray head (default: the machine's; "
        "--quick: at least 6, the synthetic trials mostly wait)",
    )
    parser.add_argument(
        "--parallel", type=int, default=None, help="runs in flight at once (default: cpus / 2)"
    )
    parser.add_argument(
        "--deadline-s",
        type=float,
        default=None,
        help="start no new run after this many seconds (partial results)",
    )
    parser.add_argument(
        "--hard-deadline-s",
        type=float,
        default=None,
        help="after this many seconds, abandon runs in flight and report",
    )
    parser.add_argument(
        "--save-every-s",
        type=float,
        default=20.0,
        help="write the runs finished so far to --out this often (and at the hard deadline)",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--skip-done",
        type=Path,
        nargs="*",
        default=None,
        metavar="JSON",
        help="skip runs that succeeded in these saved reports (merge later "
        "with --plot-only NEW.json OLD.json: the first report's runs win)",
    )
    parser.add_argument(
        "--redo-methods",
        default="",
        help="with --skip-done: methods to run again anyway (comma-separated)",
    )
    parser.add_argument(
        "--plot-only",
        type=Path,
        nargs="+",
        default=None,
        metavar="JSON",
        help="redo analysis, plots and tables from saved JSON (several: "
        "their runs are merged, e.g. seeds from two machines' runs)",
    )
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument(
        "--logs",
        type=Path,
        default=None,
        help="keep the service's, drivers' and Ray head's logs here",
    )
    parser.add_argument("--direct-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--storage", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.direct_worker:
        return direct_worker(args.storage)
    if args.plot_only:
        report = merge_reports([json.loads(path.read_text()) for path in args.plot_only])
        out = args.out or args.plot_only[0]
        report["analysis"] = analyze_and_print(report, out, plots=not args.no_plots)
        out.write_text(json.dumps(report))
        return 0

    catalog = QUICK if args.quick else FULL
    # Quick: one problem end to end (make bench QUICK=1 must stay under 5 minutes).
    default = "branin" if args.quick else "branin,hartmann6,mlp_digits"
    names = [n.strip() for n in (args.problems or default).split(",") if n.strip()]
    problems = {name: catalog[name] for name in names}
    count = args.seeds if args.seeds is not None else (1 if args.quick else 20)
    seeds = list(range(args.seed_start, args.seed_start + count))
    machine = os.cpu_count() or 2
    args.cpus = args.cpus or (max(machine, 6) if args.quick else machine)
    args.parallel = args.parallel or max(1, args.cpus // 2)
    trials_at_once = args.parallel * max(p.concurrency for p in problems.values())
    if train_env(problems) and trials_at_once > machine:
        # 2026-11-29, run 4: 24 runs (48 Train trials) on 16 cores finished no run in 350 s;
        # a Ray Train start costs an estimated minute of CPU there (benchmarks/README.md).
        log(
            f"warning: up to {trials_at_once} Ray Train trials at once on {machine} cores; "
            "Train starts are CPU-bound, so runs in lockstep may all miss the deadline"
        )
    default_out = "search_quality-quick.json" if args.quick else "search_quality.json"
    out = args.out or RESULTS / default_out

    out.parent.mkdir(parents=True, exist_ok=True)

    def save(runs: dict[str, Any], wall_s: float) -> None:
        partial = {"runs": runs, "wall_s": wall_s, "runs_not_started": None, "runs_abandoned": None}
        out.write_text(json.dumps(build_report(args, problems, seeds, partial)))
        log(f"partial results saved to {out}")

    outcome = run_all(args, problems, seeds, save)
    report = build_report(args, problems, seeds, outcome)
    out.write_text(json.dumps(report))  # the raw runs first, whatever the analysis does
    report["analysis"] = analyze_and_print(report, out, plots=not args.no_plots)
    out.write_text(json.dumps(report))
    log(f"wrote {out}; wall {outcome['wall_s']:.1f} s")
    errors = sum(
        1
        for p in report["problems"].values()
        for rs in p["runs"].values()
        for r in rs
        if "error" in r
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
