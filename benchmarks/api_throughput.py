"""API throughput: ``GET /api/v1/studies/{id}`` under load, against a bare FastAPI endpoint.

Two servers on this box, one at a time, each one uvicorn process with one worker and the
settings ``hpo serve`` uses (``uvicorn.run(app, log_level="info")``: uvloop, httptools,
access log on, here to a file):
(a) the service itself (``python -m service serve``) on a SQLite database holding one
finished study of ``--trials`` trials x 10 results, with an API token, a Ray address that
is never contacted, capacity validation off;
(b) a bare FastAPI app whose one route, at the same path, returns the same JSON document
(as a dict, serialised by FastAPI), no auth, no middleware, no database.
The load comes from a separate process: ``wrk`` (Debian's package) when installed, else a
Python load generator (httpx, asyncio, many connections) in a subprocess, labelled as such
in the output. The servers alternate (bare, service, service with ``Cache-Control:
no-cache`` ...) for ``--rounds`` rounds of ``--seconds`` each. The service answers from
its study cache (checked against the store's revision every 0.25 s); the no-cache row
reads the store on every request, to show what a cache miss costs. Reported: requests/s
of each (mean over rounds), the ratio service / bare (target >= 0.8), latency p50/p99,
and the server's CPU time per request. ``--profile`` also samples the service under load
with py-spy and prints where its time goes.

Prints a markdown table and writes JSON to benchmarks/results/api_throughput.json.
``--quick``: 1 round of 8 s each (about a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NEVER_CONTACTED_RAY = "http://127.0.0.1:9"  # discard port: the reads never reach it
RESULTS_PER_TRIAL = 10
TARGET_RATIO = 0.8
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the bare app (run in its own process: ``api_throughput.py --serve-bare PORT DOC``) -------
def serve_bare(port: int, document_path: str) -> None:
    import uvicorn
    from fastapi import FastAPI

    document = json.loads(Path(document_path).read_text())
    app = FastAPI()

    @app.get("/api/v1/studies/{study_id}")
    def get_study(study_id: int) -> dict[str, Any]:
        return document

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="info")


# --- the service's database ---------------------------------------------------------------------
def populate(db_url: str, trials: int) -> int:
    """One finished study of ``trials`` trials x 10 results, written in batches of 500."""
    from service.store import ResultWrite, StudyStatus, TrialState, TrialUpdate, open_store

    store = open_store(db_url)
    rng = random.Random(0)
    spec = {
        "name": "api-throughput",
        "trainable": "branin",
        "metric": "loss",
        "mode": "min",
        "search_space": {
            "x1": {"type": "uniform", "low": -5, "high": 10},
            "x2": {"type": "uniform", "low": 0, "high": 15},
        },
        "algorithm": {"name": "random", "seed": 0},
        "num_samples": trials,
        "max_concurrent_trials": 4,
    }
    record = store.create_study(name="api-throughput", spec=spec, metric="loss", mode="min")
    store.transition_study(record.id, StudyStatus.RUNNING)
    for start in range(0, trials, 50):
        ids = [f"t{k:06d}" for k in range(start, min(trials, start + 50))]
        configs = {t: {"x1": rng.uniform(-5, 10), "x2": rng.uniform(0, 15)} for t in ids}
        store.upsert_trials(
            record.id, [TrialUpdate(t, TrialState.RUNNING, config=configs[t]) for t in ids]
        )
        store.add_results(
            record.id,
            [
                ResultWrite(t, i, {"loss": (configs[t]["x1"] - 2) ** 2 + 10 / i})
                for i in range(1, RESULTS_PER_TRIAL + 1)
                for t in ids
            ],
        )
        store.upsert_trials(record.id, [TrialUpdate(t, TrialState.TERMINATED) for t in ids])
    store.transition_study(record.id, StudyStatus.COMPLETED)
    store.close()
    return record.id


# --- servers ------------------------------------------------------------------------------------
def wait_http(url: str, proc: subprocess.Popen[bytes], headers: dict[str, str]) -> None:
    import httpx

    deadline = time.monotonic() + 180  # a loaded 2-core box took 40 s to import the app
    while True:
        try:
            if httpx.get(url, headers=headers, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"server for {url} did not start")
        time.sleep(0.2)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (and its waited-for children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


# --- load generators -----------------------------------------------------------------------------
def run_wrk(url: str, headers: dict[str, str], seconds: int, connections: int) -> dict[str, Any]:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    for key, value in headers.items():
        argv += ["-H", f"{key}: {value}"]
    done = subprocess.run([*argv, url], capture_output=True, text=True, timeout=seconds + 60)
    out = done.stdout
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr}{out}")

    def latency(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not match:
            return float("nan")
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]
        return float(match.group(1)) * scale

    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)$", out, re.M)
    return {
        "requests": requests,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else None,
    }


async def _python_load(url: str, headers: dict[str, str], seconds: float, conns: int) -> dict:
    import httpx

    latencies: list[float] = []
    failures = 0
    stop_at = time.perf_counter() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal failures
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            response = await client.get(url)
            latencies.append(time.perf_counter() - started)
            failures += response.status_code != 200

    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(conns)))
        wall = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / wall,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "non_2xx": failures,
        "socket_errors": None,
    }


def run_python_load(
    url: str, headers: dict[str, str], seconds: int, connections: int
) -> dict[str, Any]:
    """The fallback load generator, in its own process (``--load URL SECONDS CONNS``)."""
    done = subprocess.run(
        [sys.executable, __file__, "--load", url, str(seconds), str(connections)],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        env={**os.environ, "BENCH_HEADERS": json.dumps(headers)},
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- profile ---------------------------------------------------------------------------------
def profile(pid: int, seconds: int, out: Path, load: Any) -> list[tuple[str, float]]:
    """py-spy samples the service under load (the thread holding the GIL: where its CPU goes):
    each frame's inclusive share of the samples."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    argv = [spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200"]
    argv += ["--format", "raw", "--output", str(out), "--nonblocking", "--gil"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)
    load()
    proc.wait(seconds + 60)
    if not out.exists():
        print(f"py-spy failed: {proc.stderr.read().decode() if proc.stderr else ''}")
        return []
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        seen = set()
        for frame in stack.split(";"):
            match = re.match(r"(.*) \((.*?)(:\d+)?\)$", frame)
            name = f"{match.group(1)} ({Path(match.group(2)).name})" if match else frame
            if name not in seen:
                seen.add(name)
                inclusive[name] += n
    return [(name, n / total) for name, n in inclusive.most_common(60)] if total else []


# --- main ---------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=1000, help="trials of the served study")
    parser.add_argument("--seconds", type=int, default=20, help="per round and server")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--python-load", action="store_true", help="not wrk, even if installed")
    parser.add_argument("--profile", action="store_true", help="py-spy the service under load")
    parser.add_argument("--quick", action="store_true", help="1 round of 8 s")
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "api_throughput.json"
    )
    parser.add_argument("--serve-bare", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--load", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(int(args.serve_bare[0]), args.serve_bare[1])
        return 0
    if args.load:
        headers = json.loads(os.environ.get("BENCH_HEADERS", "{}"))
        url, seconds, conns = args.load[0], float(args.load[1]), int(args.load[2])
        print(json.dumps(asyncio.run(_python_load(url, headers, seconds, conns))))
        return 0
    if args.quick:
        args.seconds, args.rounds = 8, 1

    from service.ray_local import free_port

    use_wrk = shutil.which("wrk") is not None and not args.python_load
    generator = "wrk 1 thread" if use_wrk else "Python load generator (httpx, asyncio)"
    load = run_wrk if use_wrk else run_python_load
    token = secrets.token_urlsafe(32)
    auth = {"Authorization": f"Bearer {token}"}
    report: dict[str, Any] = {
        "benchmark": "api_throughput",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.node()} {os.cpu_count()} cores, {platform.python_version()}",
        "load_avg_before": [round(x, 2) for x in os.getloadavg()],
        "load_generator": f"{generator}, separate process, {args.connections} connections",
        "study_trials": args.trials,
        "seconds_per_round": args.seconds,
        "rounds": args.rounds,
    }
    with tempfile.TemporaryDirectory(prefix="hpo-api-throughput-") as tmp:
        root = Path(tmp)
        db_url = f"sqlite:///{root / 'hpo.db'}"
        study_id = populate(db_url, args.trials)
        path = f"/api/v1/studies/{study_id}"
        service_port, bare_port = free_port(), free_port()
        env = {
            **os.environ,
            "HPO_HOME": str(root / "home"),
            "HPO_DATABASE_URL": db_url,
            "HPO_RAY_ADDRESS": NEVER_CONTACTED_RAY,
            "HPO_VALIDATE_CAPACITY": "false",
            "HPO_API_TOKENS": f"{token}=bench:admin",
            "HPO_PORT": str(service_port),
            "HPO_HOST": "127.0.0.1",
        }
        logs = {name: (root / f"{name}.log").open("wb") for name in ("service", "bare")}
        procs: dict[str, subprocess.Popen[bytes]] = {}
        try:
            procs["service"] = subprocess.Popen(
                [sys.executable, "-m", "service", "serve"],
                env=env,
                stdout=logs["service"],
                stderr=subprocess.STDOUT,
            )
            service_url = f"http://127.0.0.1:{service_port}{path}"
            wait_http(service_url, procs["service"], auth)
            import httpx

            document = httpx.get(service_url, headers=auth).json()
            (root / "doc.json").write_text(json.dumps(document))
            procs["bare"] = subprocess.Popen(
                [sys.executable, __file__, "--serve-bare", str(bare_port), str(root / "doc.json")],
                stdout=logs["bare"],
                stderr=subprocess.STDOUT,
            )
            bare_url = f"http://127.0.0.1:{bare_port}{path}"
            wait_http(bare_url, procs["bare"], {})
            report["document_bytes"] = len(json.dumps(document))
            no_cache = {**auth, "Cache-Control": "no-cache"}
            targets = {
                "bare": (bare_url, {}),
                "service": (service_url, auth),
                "service_no_cache": (service_url, no_cache),
            }
            servers = {"bare": "bare", "service": "service", "service_no_cache": "service"}
            for url, headers in targets.values():  # warm up
                load(url, headers, 2, args.connections)
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
            for round_no in range(args.rounds):
                for name, (url, headers) in targets.items():
                    pid = procs[servers[name]].pid
                    cpu_before = cpu_seconds(pid)
                    result = load(url, headers, args.seconds, args.connections)
                    cpu = cpu_seconds(pid) - cpu_before
                    result["server_cpu_ms_per_request"] = round(
                        1000 * cpu / max(1, result["requests"]), 3
                    )
                    result["load_avg_1m"] = round(os.getloadavg()[0], 2)
                    runs[name].append(result)
                    print(f"round {round_no + 1} {name}: {json.dumps(result)}", flush=True)
            summary = {}
            for name, results in runs.items():
                summary[name] = {
                    "rps": round(statistics.mean(r["rps"] for r in results), 1),
                    "p50_ms": round(statistics.median(r["p50_ms"] for r in results), 2),
                    "p99_ms": round(statistics.median(r["p99_ms"] for r in results), 2),
                    "server_cpu_ms_per_request": round(
                        statistics.mean(r["server_cpu_ms_per_request"] for r in results), 3
                    ),
                    "non_2xx": sum(r["non_2xx"] for r in results),
                }
            report["runs"] = runs
            report["summary"] = summary
            report["ratio"] = round(summary["service"]["rps"] / summary["bare"]["rps"], 3)
            report["meets_target"] = report["ratio"] >= TARGET_RATIO
            if args.profile:
                url, headers = targets["service"]
                top = profile(
                    procs["service"].pid,
                    args.seconds,
                    root / "profile.txt",
                    lambda: load(url, headers, args.seconds - 2, args.connections),
                )
                report["profile_inclusive"] = [[name, round(share, 4)] for name, share in top]
        finally:
            for proc in procs.values():
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            for handle in logs.values():
                handle.close()
    report["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nload: {report['load_generator']}; study of {args.trials} trials\n")
    print("| server | requests/s | p50 (ms) | p99 (ms) | server CPU ms/request | non-2xx |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, label in (
        ("bare", "bare FastAPI JSON"),
        ("service", "hpo GET /studies/{id}"),
        ("service_no_cache", "hpo GET /studies/{id}, no-cache (store read)"),
    ):
        s = report["summary"][name]
        print(
            f"| {label} | {s['rps']} | {s['p50_ms']} | {s['p99_ms']} "
            f"| {s['server_cpu_ms_per_request']} | {s['non_2xx']} |"
        )
    print(f"\nratio service / bare: {report['ratio']} (target >= {TARGET_RATIO})")
    for name, share in report.get("profile_inclusive", [])[:40]:
        print(f"  {100 * share:5.1f} %  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
