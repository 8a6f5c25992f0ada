"""Fault 3b: a worker node of a two-node Ray cluster dies mid-study.

A head and a worker node on this machine (``ray start --address``, 2 CPUs each), trials
spread over both; the worker node's raylet is killed (SIGKILL). Its trials' actors die
with it; Tune retries them on the head from their checkpoints (``max_failures``) and the
study completes with every reported result stored.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.launcher import ray_auth_headers
from service.ray_local import LocalRayHead, free_port
from tests.faults.ledger import kill9, ledger, pids_matching, wait_for
from tests.fixtures.ray_cluster import RayCluster, own_ray_cluster
from tests.fixtures.service import running_service, wait_for_status
from tests.fixtures.watch import TERMINAL, noop_spec

pytestmark = pytest.mark.ray

# 16 s a trial: on a slow machine the fourth trial's actor starts after the first trial
# has ended when trials are short (8 s ones never ran four at once on one CI run).
TRIALS, ITERATIONS, SLEEP_S = 6, 16, 1.0


class WorkerNode:
    """``ray start --address=<head> --block``: one more node of the head's cluster."""

    def __init__(self, head: LocalRayHead, log_path: Path, num_cpus: int = 2) -> None:
        self.node_manager_port = free_port()
        ray_cli = Path(sys.executable).with_name("ray")
        command = [
            str(ray_cli),
            "start",
            f"--address={head.address}",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={num_cpus}",
            f"--node-manager-port={self.node_manager_port}",
            f"--object-manager-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            "--disable-usage-stats",
        ]
        env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
        env["RAY_API_SERVER_ADDRESS"] = head.dashboard_url
        self.process = subprocess.Popen(
            command,
            stdout=log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )

    def raylet_pid(self) -> int | None:
        pids = pids_matching(
            lambda argv: (
                "raylet" in Path(argv[0]).name
                and f"--node_manager_port={self.node_manager_port}" in argv
            )
        )
        return pids[0] if pids else None

    def stop(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(15)
                break
            except subprocess.TimeoutExpired:
                continue


def alive_nodes(dashboard_url: str) -> int:
    answer = httpx.get(
        f"{dashboard_url}/api/v0/nodes",
        params={"detail": "1"},
        headers=ray_auth_headers(),
        timeout=10,
    )
    nodes = answer.json()["data"]["result"]["result"]
    return sum(node.get("state") == "ALIVE" for node in nodes)


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[tuple[RayCluster, WorkerNode]]:
    """A two-node cluster of its own, with the session's Ray token (tests/conftest.py)."""
    with own_ray_cluster(tmp_path / "head", num_cpus=2) as (cluster, head):
        node = WorkerNode(head, tmp_path / "worker-node.log")
        try:
            wait_for("the worker node to join", lambda: alive_nodes(head.dashboard_url) == 2, 120)
            yield cluster, node
        finally:
            node.stop()


def test_a_dead_worker_node_s_trials_finish_on_the_head(
    two_nodes: tuple[RayCluster, WorkerNode], tmp_path: Path
) -> None:
    cluster, node = two_nodes
    report_log = tmp_path / "reports.log"
    spec = noop_spec(
        "node-crash",
        trials=TRIALS,
        iterations=ITERATIONS,
        sleep_s=SLEEP_S,
        max_concurrent_trials=4,  # 4 CPUs over two nodes: trials on both
        config={
            "iterations": ITERATIONS,
            "sleep_s": SLEEP_S,
            "checkpoint": True,
            "report_log": str(report_log),
        },
        stop={"max_failures": 2},
    )
    with running_service(cluster, tmp_path / "home") as service, service.client() as client:
        study = client.submit(spec)
        try:
            wait_for(
                "four trials running",
                lambda: (
                    (now := client.study(study.id)).trial_counts.get("RUNNING", 0) >= 4
                    and now.num_results >= 8
                ),
                timeout_s=240,
            )
        except AssertionError as error:
            log = (tmp_path / "worker-node.log").read_text()[-3000:]
            raise AssertionError(f"{error}: {client.study(study.id)}\n{log}") from None
        raylet = node.raylet_pid()
        assert raylet is not None, "no raylet of the worker node"
        at_kill = client.study(study.id).num_results
        kill9(raylet)
        wait_for("the node to be dead", lambda: alive_nodes(cluster.dashboard_url) == 1, 120)
        done = wait_for_status(client, study.id, TERMINAL, timeout_s=400)
        trials = client.trials(study.id, limit=100).items
        books = ledger(service.database_url, study.id, report_log)
        error_files = list(
            Path(service.home, "ray_results", f"hpo-study-{study.id}").glob("*/error.txt")
        )
    print(
        f"killed the worker node's raylet at {at_kill} results; "
        f"{len(error_files)} trials retried; {books.summary()}"
    )
    assert done.status == "COMPLETED", done.error
    assert len(trials) == TRIALS
    assert all(t.state == "TERMINATED" and t.num_results == ITERATIONS for t in trials)
    assert error_files, "no trial ran on the worker node"
    assert books.lost == set() and books.invented == set() and books.duplicated == set()
