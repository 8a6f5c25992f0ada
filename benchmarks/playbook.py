"""The tuning playbook's claims measured on our transformer trainable, as a comparison.

Starts ``hpo serve`` (a local Ray head with its dashboard, SQLite), submits a comparison
spec (default: ``examples/compare-playbook-gpt2-small.yaml``: fp32 baseline vs bf16, vs
window attention, vs gradient accumulation at equal effective batch, 3 seeds), follows it,
and writes the report: a markdown page with the table, the playbook's claims beside what
was measured, the command and the machine; the CSV, JSON and bar chart beside it.

    python benchmarks/playbook.py --out benchmarks/results/playbook_h200.md   # on GPUs
    python benchmarks/playbook.py --spec examples/compare-playbook-cpu.yaml --out /tmp/p.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.client import HpoClient  # noqa: E402
from service.ray_local import free_port  # noqa: E402

TOKEN = "hpo_bench_playbook_token_0123456789abcdef"
TERMINAL = {"COMPLETED", "FAILED", "STOPPED"}
# The playbook's table (what it claims a strategy buys), per variant of our spec.
CLAIMS = {
    "bf16": {"val_accuracy": "-0.3 %", "train_time_s": "-30 %", "peak_mem_mb": "-50 %"},
    "window": {"val_accuracy": "+1.2 %", "train_time_s": "-15 %", "peak_mem_mb": "-20 %"},
}


def stamp(message: str) -> None:
    print(f"[{dt.datetime.now(dt.timezone.utc):%H:%M:%S}] {message}", flush=True)


def start_service(home: Path) -> tuple[subprocess.Popen[bytes], HpoClient]:
    port = free_port()
    env = {
        **os.environ,
        "HPO_HOME": str(home),
        "HPO_PORT": str(port),
        "HPO_API_TOKENS": f"{TOKEN}=bench:admin",
        "HPO_RUNNER_PYTHON": sys.executable,
    }
    home.mkdir(parents=True, exist_ok=True)
    log = (home / "service.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    client = HpoClient(f"http://127.0.0.1:{port}", token=TOKEN, timeout_s=120)
    deadline = time.monotonic() + 300
    while not client.ready():
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"the service did not start; see {home / 'service.log'}")
        time.sleep(0.5)
    return process, client


def follow(client: HpoClient, comparison_id: int, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    last = None
    stopping = False
    while True:
        study = client.study(comparison_id)
        counts = json.dumps(study.trial_counts, sort_keys=True)
        if counts != last:
            stamp(f"{study.status} {counts}")
            last = counts
        if study.status in TERMINAL:
            return study
        if time.monotonic() > deadline and not stopping:
            # Out of time: stop it and report the runs that finished (the report notes
            # the missing seeds) rather than lose them all.
            stamp(f"still {study.status} after {timeout_s:.0f} s: stopping it")
            client.stop(comparison_id)
            stopping = True
        time.sleep(2)


def machine() -> str:
    try:
        gpus = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout.strip().splitlines()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        gpus = []
    import torch

    what = f"{os.cpu_count()} CPUs, Python {platform.python_version()}, torch {torch.__version__}"
    if gpus:
        what = f"{len(gpus)} x {gpus[0]}; " + what
    return what


def claims_table(report: dict[str, Any]) -> str:
    labels = {m["key"]: m["label"] for m in report["metrics"]}
    lines = [
        "| variant | metric | the playbook says | we measured (mean [95 % CI]) |",
        "| --- | --- | --- | --- |",
    ]
    rows = {row["variant"]: row for row in report["rows"]}
    for variant, claims in CLAIMS.items():
        if variant not in rows:
            continue
        for key, claim in claims.items():
            cell = rows[variant]["metrics"].get(key) or {}
            measured = "n/a"
            if cell.get("delta") is not None:
                measured = f"{cell['delta']:+.2f}"
                if cell.get("ci_low") is not None:
                    measured += f" [{cell['ci_low']:+.2f}, {cell['ci_high']:+.2f}]"
                measured += " *" if cell.get("significant") else ""
            lines.append(f"| {variant} | {labels.get(key, key)} | {claim} | {measured} |")
    if len(lines) == 2:
        return "None of the playbook's claimed variants (bf16, window) is in this comparison."
    return "\n".join(lines)


def means_table(report: dict[str, Any], baseline: str) -> str:
    """The raw means behind the deltas, so the reader sees the scale."""
    keys = [m["key"] for m in report["metrics"]]
    lines = ["| run | " + " | ".join(keys) + " |", "| --- |" + " --- |" * len(keys)]
    first = report["rows"][0]["metrics"] if report["rows"] else {}
    lines.append(
        f"| {baseline} | "
        + " | ".join(_num(first.get(k, {}).get("baseline_mean")) for k in keys)
        + " |"
    )
    for row in report["rows"]:
        values = [_num(row["metrics"][k].get("variant_mean")) for k in keys]
        lines.append(f"| {row['variant']} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--spec", type=Path, default=REPO / "examples/compare-playbook-gpt2-small.yaml"
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/playbook_h200.md")
    parser.add_argument("--timeout-s", type=float, default=1800)
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a baseline key (a YAML value), e.g. --set steps_per_eval=20",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="VARIANT",
        help="run only these variants of the spec (against its baseline)",
    )
    args = parser.parse_args()
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    spec = yaml.safe_load(args.spec.read_text())
    if args.only:
        unknown = sorted(set(args.only) - set(spec.get("variants", {})))
        if unknown:
            parser.error(f"--only: no such variant in {args.spec}: {', '.join(unknown)}")
        spec["variants"] = {k: v for k, v in spec["variants"].items() if k in args.only}
    for override in args.overrides:
        key, sep, value = override.partition("=")
        if not sep or not key:
            parser.error(f"--set takes KEY=VALUE, got {override!r}")
        spec.setdefault("baseline", {})[key] = yaml.safe_load(value)
    home = args.home or Path(tempfile.mkdtemp(prefix="hpo-playbook-"))
    stamp(f"starting the service in {home}")
    process, client = start_service(home)
    started = time.monotonic()
    try:
        comparison = client.compare(spec)
        stamp(f"comparison {comparison.id}: {comparison.budget} runs")
        study = follow(client, comparison.id, args.timeout_s)
        wall = time.monotonic() - started
        result = client.comparison(comparison.id)
        markdown = client.comparison_report(comparison.id, "markdown")
        csv_text = client.comparison_report(comparison.id, "csv")
        chart = client.comparison_chart(comparison.id)
    finally:
        client.close()
        process.terminate()
        process.wait(120)
    stem = args.out.with_suffix("")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".csv").write_text(csv_text)
    stem.with_suffix(".json").write_text(json.dumps(result.model_dump(mode="json"), indent=1))
    stem.with_suffix(".png").write_bytes(chart)
    report = result.report
    page = [
        f"# {spec['name']}: what each strategy buys",
        "",
        f"- Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; machine: {machine()}",
        f"- Command: `{command}`",
        f"- Spec: `{args.spec.relative_to(REPO) if args.spec.is_relative_to(REPO) else args.spec}`"
        f" (baseline and variants below); status {study.status}, "
        f"{sum(study.trial_counts.values())} runs, {wall:.0f} s wall",
        f"- Baseline: `{json.dumps(spec.get('baseline', {}))}`",
        f"- Variants: `{json.dumps(spec['variants'])}`; seeds 0-{spec.get('repeats', 3) - 1}",
        "",
        "## Deltas against the baseline (paired by seed, mean and 95 % t-interval)",
        "",
        markdown.strip(),
        "",
        "## The playbook's claims against what we measured",
        "",
        claims_table(report),
        "",
        "Accuracy is in percentage points of next-byte accuracy; the playbook's accuracy",
        "figures are read as points too. Training time is the optimizer steps' wall time",
        "(no evaluation); memory is the run's peak allocated GPU memory (on CPU: the",
        "worker process's peak resident memory).",
        "",
        "## The means behind the deltas",
        "",
        means_table(report, result.baseline),
        "",
        f"Chart: `{stem.with_suffix('.png').name}`; CSV and JSON beside it.",
        "",
    ]
    args.out.write_text("\n".join(page))
    stamp(f"wrote {args.out}")
    print(args.out.read_text())
    return 0 if study.status == "COMPLETED" else 1


if __name__ == "__main__":
    sys.exit(main())
