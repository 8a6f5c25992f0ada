"""``hpo demo``: start the service, run the example study, print the best trial, shut down."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from rich.console import Console

from service.client import ApiError, HpoClient, ServiceUnreachable
from service.ray_local import free_port

DEMO_SPEC_PATH = Path(__file__).resolve().parent.parent / "examples" / "hartmann6-bohb.yaml"
HARTMANN6_OPTIMUM = -3.32237


def demo_spec() -> dict[str, object]:
    if DEMO_SPEC_PATH.exists():
        return dict(yaml.safe_load(DEMO_SPEC_PATH.read_text()))
    # Installed without the examples folder: the same study, inline.
    return {
        "name": "hartmann6-bohb-demo",
        "trainable": "hartmann6",
        "metric": "loss",
        "mode": "min",
        "search_space": {f"x{i}": {"type": "uniform", "low": 0, "high": 1} for i in range(1, 7)},
        "algorithm": {"name": "bohb", "seed": 0},
        "scheduler": {"name": "hyperband", "max_t": 27, "reduction_factor": 3},
        "num_samples": 60,
        "max_concurrent_trials": 2,
        "config": {"epochs": 27},
    }


def _port_is_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def run_demo(*, port: int = 8000, keep: bool = False, console: Console | None = None) -> int:
    from service.cli import follow_study, print_study

    console = console or Console()
    if not _port_is_free(port):
        port = free_port()
    url = f"http://127.0.0.1:{port}"
    home = Path(os.environ.get("HPO_HOME", ".hpo")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "demo-service.log"
    console.print(f"starting the service on {url} (local Ray head with dashboard; log: {log_path})")
    env = {**os.environ, "HPO_PORT": str(port), "HPO_HOST": "127.0.0.1", "HPO_HOME": str(home)}
    with log_path.open("ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "service", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    code = 1
    try:
        with HpoClient(url, timeout_s=180) as client:
            with console.status("waiting for the service and Ray to be ready"):
                deadline = time.monotonic() + 240
                while not client.ready():
                    if server.poll() is not None:
                        console.print(
                            f"[red]the service exited ({server.returncode}); see {log_path}"
                        )
                        return 1
                    if time.monotonic() > deadline:
                        console.print(f"[red]the service was not ready in 240 s; see {log_path}")
                        return 1
                    time.sleep(0.5)
            try:
                study = client.submit(demo_spec())
            except (ApiError, ServiceUnreachable) as error:
                console.print(f"[red]the service refused the demo study: {error}")
                return 1
            console.print(
                f"submitted study {study.id} ({study.name}): BOHB + HyperBand on hartmann6"
            )
            study = follow_study(client, study.id)
            print_study(study, url)
            if study.best_trial is not None and study.best_trial.best_value is not None:
                gap = study.best_trial.best_value - HARTMANN6_OPTIMUM
                console.print(
                    f"best loss {study.best_trial.best_value:.5f}; "
                    f"the known optimum is {HARTMANN6_OPTIMUM} (gap {gap:.4f})"
                )
            console.print(f"API:           {url}/api/v1/studies/{study.id}")
            console.print(f"page / docs:   {url}/  ({url}/docs)")
            console.print(f"Ray dashboard: {study.ray_dashboard_url}")
            console.print(f"store:         {home / 'hpo.db'}")
            code = 0 if study.status == "COMPLETED" else 1
            if keep:
                console.print("the service keeps running; press Ctrl-C to stop it")
                server.wait()
    except KeyboardInterrupt:
        code = 130
    finally:
        if server.poll() is None:
            with console.status("shutting the service and its Ray head down"):
                server.send_signal(signal.SIGINT)
                try:
                    server.wait(timeout=90)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
    return code
