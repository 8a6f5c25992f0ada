"""Training speed of ``transformer_lm``: MFU on one GPU, DDP scaling, Ray Train vs torchrun.

Every measurement runs the trainable's own loop (``trainables.transformer_lm.loop.train``)
on a GPT-2-small-sized model (d_model 768, 12 layers, 12 heads, seq 1024, bf16, the byte
vocabulary padded to GPT-2's 50,304 embeddings: 124M parameters and GPT-2's FLOPs).

    python benchmarks/train_gpu.py all [--quick]   # on a GPU machine: every row below
    python benchmarks/train_gpu.py cpu             # the tiny CPU preset's tokens/s

Rows (each a JSON line, then a table; JSON saved to --out):
  single: 1 GPU, with and without torch.compile and fused AdamW -> tokens/s, MFU
  ddp:    2 GPUs under torchrun (NCCL) -> scaling efficiency vs 1 GPU
  ray:    the same 2-GPU loop under Ray Train (dashboard on) -> step-time ratio vs torchrun,
          worker-group start (fit() to the workers' first line) and time to first result
Steady-state figures leave out the first evaluation (compilation, warm-up).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from trainables.transformer_lm.hparams import LmHyperparams  # noqa: E402

GPT2_SMALL = LmHyperparams(
    d_model=768,
    n_layers=12,
    n_heads=12,
    mlp_ratio=4,
    vocab_size=50_304,
    seq_len=1024,
    batch_size=32,
    precision="bf16",
    dropout=0.0,
    attention="full",
    norm="pre",
    norm_type="layernorm",
    schedule="warmup_cosine",
    lr=6e-4,
    warmup_steps=10,
    evals=4,
    steps_per_eval=20,
    eval_batches=2,
    corpus_bytes=40_000_000,
    compress_eval=False,
    checkpoint_every=0,
    compile=True,
    fused_adamw=True,
)
TINY_CPU = LmHyperparams(evals=4, steps_per_eval=20, compress_eval=False, checkpoint_every=0)


def steady(metrics: list[dict[str, Any]], key: str) -> float:
    """Mean of ``key`` over the evaluations after the first (compile and warm-up)."""
    values = [m[key] for m in metrics[1:]] or [metrics[0][key]]
    return statistics.fmean(values)


def summarize(name: str, metrics: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    row = {
        "row": name,
        "tokens_per_s": steady(metrics, "tokens_per_s"),
        "step_time_s": steady(metrics, "step_time_s"),
        "mfu": steady(metrics, "mfu") if metrics[0].get("mfu") is not None else None,
        "peak_mem_mb": metrics[-1]["peak_mem_mb"],
        "params": metrics[0]["params"],
        "first_eval_s": metrics[0]["step_time_s"] * metrics[0].get("steps", 1),
        **extra,
    }
    return row


# -- one process on one device ---------------------------------------------------------


def run_local(hp: LmHyperparams, device_name: str) -> list[dict[str, Any]]:
    import torch

    from trainables.transformer_lm.corpus import load_corpus
    from trainables.transformer_lm.loop import train
    from trainables.transformer_lm.parallel import make_topology

    device = torch.device(device_name)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
    else:
        torch.set_num_threads(1)
    metrics: list[dict[str, Any]] = []
    train(
        hp,
        load_corpus(hp.corpus_bytes),
        make_topology(1, device.type),
        device,
        lambda m, _state: metrics.append({**m, "steps": hp.steps_per_eval}),
    )
    return metrics


def command_single(args: argparse.Namespace) -> None:
    hp = replace(_hp(args), compile=args.compile, fused_adamw=args.fused)
    name = f"1 GPU compile={hp.compile} fused={hp.fused_adamw}"
    if args.batch:
        hp = replace(hp, batch_size=args.batch)
        name += f" batch={args.batch}"
    metrics = run_local(hp, "cuda:0")
    row = summarize(name, metrics)
    print(json.dumps(row), flush=True)


def command_cpu(args: argparse.Namespace) -> None:
    hp = replace(TINY_CPU, evals=2 if args.quick else TINY_CPU.evals)
    metrics = run_local(hp, "cpu")
    row = summarize("CPU tiny preset (1 thread)", metrics)
    print(json.dumps(row), flush=True)
    _save([row], args.out, "train_cpu.json", model="tiny CPU preset: d64 x 2 layers, seq 64")


# -- torchrun ----------------------------------------------------------------------------


def command_torchrun_worker(args: argparse.Namespace) -> None:
    """Run under ``torchrun``: NCCL over every rank, rank 0 prints the summary."""
    import torch
    import torch.distributed as dist

    from trainables.transformer_lm.corpus import load_corpus
    from trainables.transformer_lm.loop import train
    from trainables.transformer_lm.parallel import make_topology

    local_rank = int(os.environ["LOCAL_RANK"])
    if args.cpu:  # a dry run of this path on a machine without GPUs
        device = torch.device("cpu")
        torch.set_num_threads(1)
        dist.init_process_group("gloo")
    else:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        dist.init_process_group("nccl", device_id=device)
    hp = _hp(args)
    metrics: list[dict[str, Any]] = []
    started = time.perf_counter()
    train(
        hp,
        load_corpus(hp.corpus_bytes),
        make_topology(1, device.type),
        device,
        lambda m, _state: metrics.append({**m, "steps": hp.steps_per_eval}),
    )
    wall = time.perf_counter() - started
    if dist.get_rank() == 0:
        world = dist.get_world_size()
        print(json.dumps(summarize(f"{world} GPU DDP torchrun", metrics, wall_s=wall)), flush=True)
    dist.destroy_process_group()


# -- Ray Train ---------------------------------------------------------------------------


def _ray_loop(loop_config: dict[str, Any]) -> None:
    """The per-worker function under Ray Train: the same loop, metrics kept by rank 0."""
    import ray.train
    import ray.train.torch
    import torch

    from trainables.transformer_lm.corpus import load_corpus
    from trainables.transformer_lm.loop import train
    from trainables.transformer_lm.parallel import make_topology

    started_at = time.time()
    device = ray.train.torch.get_device()
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
    else:
        torch.set_num_threads(1)
    hp = LmHyperparams(**loop_config["hparams"])
    rank = ray.train.get_context().get_world_rank()
    out = Path(loop_config["out"])

    def report(metrics: dict[str, Any], _state: Any) -> None:
        if rank == 0:
            row = {**metrics, "steps": hp.steps_per_eval, "worker_started_at": started_at}
            with out.open("a") as handle:
                handle.write(json.dumps({**row, "reported_at": time.time()}) + "\n")
        ray.train.report({k: v for k, v in metrics.items() if v is not None})

    train(hp, load_corpus(hp.corpus_bytes), make_topology(1, device.type), device, report)


def command_ray(args: argparse.Namespace) -> None:
    """The loop under Ray Train, twice: on a fresh cluster (cold), then again (warm).

    The warm run is short: it measures only how fast a worker group starts once Ray's
    processes exist, as for every trial of a study after its first.
    """
    from service.ray_local import LocalRayHead

    hp = _hp(args)
    state = Path(tempfile.mkdtemp(prefix="hpo-bench-ray-"))
    head = LocalRayHead(state, num_cpus=os.cpu_count() or 8)
    head.start()  # sets the token variables Ray reads when it is imported: import it after
    import ray

    from trainables.train_in_tune import TRAIN_POLL_ENV, TRAIN_POLL_S

    # As a trial does (trainables.train_in_tune): the Train controller polls faster.
    os.environ.setdefault(TRAIN_POLL_ENV, str(TRAIN_POLL_S))

    try:
        ray.init(address=head.address, log_to_driver=False)
        cold, cold_wall, cold_start = _fit_under_ray(hp, args, state / "cold")
        warm_hp = replace(hp, evals=1, steps_per_eval=5)
        warm, _, warm_start = _fit_under_ray(warm_hp, args, state / "warm")
        row = summarize(
            f"{args.gpus} GPU DDP Ray Train",
            cold,
            wall_s=cold_wall,
            worker_group_start_s=cold[0]["worker_started_at"] - cold_start,
            first_result_s=cold[0]["reported_at"] - cold_start,
            warm_worker_group_start_s=warm[0]["worker_started_at"] - warm_start,
            warm_first_result_s=warm[0]["reported_at"] - warm_start,
        )
        print(json.dumps(row), flush=True)
    finally:
        ray.shutdown()
        head.stop()


def _fit_under_ray(
    hp: LmHyperparams, args: argparse.Namespace, folder: Path
) -> tuple[list[dict[str, Any]], float, float]:
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    folder.mkdir(parents=True)
    out = folder / "metrics.jsonl"
    trainer = TorchTrainer(
        _ray_loop,
        train_loop_config={"hparams": asdict(hp), "out": str(out)},
        scaling_config=ScalingConfig(num_workers=args.gpus, use_gpu=not args.cpu),
        run_config=RunConfig(name=folder.name, storage_path=str(folder / "storage")),
    )
    started = time.time()
    trainer.fit()
    wall = time.time() - started
    return [json.loads(line) for line in out.read_text().splitlines()], wall, started


# -- everything ---------------------------------------------------------------------------


def _run_json(command: list[str], log: Path, timeout_s: float) -> dict[str, Any]:
    """Run a benchmark row in its own process; its last JSON line is the row."""
    env = {**os.environ, "NCCL_NVLS_ENABLE": "0", "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    with log.open("a") as handle:
        handle.write(f"\n$ {' '.join(command)}  [{time.strftime('%H:%M:%S')}]\n")
        handle.flush()
        try:
            done = subprocess.run(
                command,
                stdout=subprocess.PIPE,
                stderr=handle,
                text=True,
                env=env,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            return {"row": " ".join(command[-3:]), "error": f"over {timeout_s:.0f} s"}
        handle.write(done.stdout)
    rows = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not rows:
        return {"row": " ".join(command[-3:]), "error": f"exit {done.returncode}; see log"}
    row: dict[str, Any] = json.loads(rows[-1])
    row["process_s"] = time.perf_counter() - started
    print(json.dumps(row), flush=True)
    return row


def command_all(args: argparse.Namespace) -> None:
    import torch

    me = [sys.executable, str(Path(__file__).resolve())]
    quick = ["--quick"] if args.quick else []
    log = Path(args.out) / "train_gpu.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    gpus = torch.cuda.device_count()
    rows: list[dict[str, Any]] = []
    # What torch.compile gives (rows 1 vs 2) and what fused AdamW gives (rows 2 vs 3).
    variants = [
        ("--compile", "--fused"),
        ("--no-compile", "--fused"),
        ("--no-compile", "--no-fused"),
    ]
    wanted = set(args.rows.split(","))
    if "single" in wanted:
        for compile_flag, fused_flag in variants[:1] if args.compiled_only else variants:
            rows.append(_run_json([*me, "single", compile_flag, fused_flag, *quick], log, 240))
        rows.append(_run_json([*me, "single", "--batch=64", *quick], log, 240))
    if gpus >= 2 and "ddp" in wanted:
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        for gpus_used in (1, 2) if "single" in wanted else (2,):
            worker = [f"--nproc-per-node={gpus_used}", *me[1:], "torchrun-worker", *quick]
            rows.append(_run_json([*torchrun, *worker], log, 420))
    if gpus >= 2 and "ray" in wanted:
        rows.append(_run_json([*me, "ray", "--gpus=2", *quick], log, 300))
    _derive(rows)
    _save(rows, args.out, "train_gpu.json", device=torch.cuda.get_device_name(0), gpus=gpus)


def _derive(rows: list[dict[str, Any]]) -> None:
    by_name = {row["row"]: row for row in rows if "error" not in row}
    # The 1-GPU baseline is the compiled, fused single-process row: the same loop, no DDP.
    one, two = by_name.get("1 GPU compile=True fused=True"), by_name.get("2 GPU DDP torchrun")
    ray_two = by_name.get("2 GPU DDP Ray Train")
    if one and two:
        two["scaling_efficiency"] = two["tokens_per_s"] / (2 * one["tokens_per_s"])
    if two and ray_two:
        ray_two["step_time_ratio_vs_torchrun"] = ray_two["step_time_s"] / two["step_time_s"]
        ray_two["wall_ratio_vs_torchrun"] = ray_two["wall_s"] / two["wall_s"]


def _save(rows: list[dict[str, Any]], out: str, name: str, **machine: Any) -> None:
    document = {
        "benchmark": "train_gpu",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            **machine,
        },
        "model": "GPT-2-small shape: d768 x 12 layers, 12 heads, seq 1024, bf16, vocab 50304",
        "rows": rows,
    }
    path = Path(out) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(_table(rows))
    print(f"wrote {path}")


def _table(rows: list[dict[str, Any]]) -> str:
    columns = [
        "row", "tokens_per_s", "mfu", "step_time_s", "peak_mem_mb", "scaling_efficiency",
        "step_time_ratio_vs_torchrun", "worker_group_start_s", "first_result_s",
        "warm_worker_group_start_s", "warm_first_result_s", "wall_s",
    ]  # fmt: skip
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column, row.get("error", "") if column == "row" else "")
            cells.append(f"{value:.4g}" if isinstance(value, float) else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _hp(args: argparse.Namespace) -> LmHyperparams:
    if getattr(args, "cpu", False):
        return replace(TINY_CPU, evals=2)
    if args.quick:
        return replace(GPT2_SMALL, evals=3, steps_per_eval=10)
    return GPT2_SMALL


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("all", "single", "torchrun-worker", "ray", "cpu"):
        sub = commands.add_parser(name)
        sub.add_argument("--quick", action="store_true", help="fewer steps")
        sub.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
        if name == "all":
            sub.add_argument("--rows", default="single,ddp,ray", help="which groups of rows")
            sub.add_argument(
                "--compiled-only", action="store_true", help="skip the uncompiled 1-GPU rows"
            )
        if name == "single":
            sub.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
            sub.add_argument("--fused", action=argparse.BooleanOptionalAction, default=True)
            sub.add_argument("--batch", type=int, default=0, help="sequences per step")
        if name == "ray":
            sub.add_argument("--gpus", type=int, default=2, help="workers (one GPU each)")
        if name in ("ray", "torchrun-worker"):
            sub.add_argument("--cpu", action="store_true", help="dry run: tiny model, gloo, CPU")
    args = parser.parse_args()
    {
        "all": command_all,
        "single": command_single,
        "torchrun-worker": command_torchrun_worker,
        "ray": command_ray,
        "cpu": command_cpu,
    }[args.command](args)


if __name__ == "__main__":
    main()
