"""Run every benchmark in turn (``make bench``), timing each, and print the times.

``--quick`` runs each one's small version and writes its JSON (and plots) under
``benchmarks/results/quick/``, so the recorded full results are never overwritten.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

# (name, script arguments, where its JSON goes: a file, or a directory for train_gpu)
BENCHMARKS = [
    ("overhead", ["benchmarks/overhead.py"], "overhead.json"),
    ("stream", ["benchmarks/stream.py"], "stream.json"),
    ("store_scale", ["benchmarks/store_scale.py"], "store_scale.json"),
    ("api_throughput", ["benchmarks/api_throughput.py"], "api_throughput.json"),
    ("train_cpu", ["benchmarks/train_gpu.py", "cpu"], "."),
    ("first_result", ["benchmarks/first_result.py"], "first_result.json"),
    ("search_quality", ["benchmarks/search_quality.py"], "search_quality.json"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small versions, under quick/")
    parser.add_argument("--only", default="", help="comma-separated names (default: all)")
    args = parser.parse_args()
    wanted = {name for name in args.only.split(",") if name}
    out_dir = RESULTS / "quick" if args.quick else RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    failed: list[str] = []
    started = time.monotonic()
    for name, command, out in BENCHMARKS:
        if wanted and name not in wanted:
            continue
        extra = ["--quick", "--out", str(out_dir / out)] if args.quick else []
        print(f"\n=== {name}: {' '.join(command + extra)}", flush=True)
        began = time.monotonic()
        done = subprocess.run([sys.executable, *command, *extra], cwd=REPO)
        times[name] = round(time.monotonic() - began, 1)
        if done.returncode != 0:
            failed.append(name)
    total = round(time.monotonic() - started, 1)
    print("\n| benchmark | wall (s) |\n| --- | ---: |")
    for name, seconds in times.items():
        print(f"| {name}{' (failed)' if name in failed else ''} | {seconds} |")
    print(f"| **total** | **{total}** |")
    (out_dir / "bench_times.json").write_text(
        json.dumps({"quick": args.quick, "times_s": times, "total_s": total}, indent=2)
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
