"""Start and stop a local Ray head (with its dashboard and token auth) for the embedded default."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from service.errors import RayUnavailable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_ray_token(path: Path) -> str:
    """The Ray auth token at ``path``, created with user-only permissions if absent."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()


def default_token_path(state_dir: Path) -> Path:
    return state_dir / "ray_auth_token"


def use_ray_token(path: Path) -> None:
    """Point this process (and the processes it starts) at a token file, as Ray documents.

    Ray reads these variables when it is first imported: call this before importing ray.
    """
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(path)


class LocalRayHead:
    """A single-node Ray cluster started with ``ray start --head --block``.

    ``--block`` keeps one parent process for the whole cluster; stopping it (and its
    process group) stops exactly this cluster and no other Ray on the machine.

    The head runs in a session of its own, so it outlives a service that is killed; its
    ports and pid are written to ``<state_dir>/head.json``, and the next service on the
    same state dir adopts the head if it still answers (with ``adopt=True``): the
    studies running on it go on undisturbed.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        num_cpus: int = 0,
        log_path: Path | None = None,
        token_path: Path | None = None,
    ):
        self.state_dir = state_dir
        self.num_cpus = num_cpus
        self.token_path = token_path or default_token_path(state_dir)
        self.log_path = log_path or state_dir / "ray-head.log"
        self.gcs_port = free_port()
        self.dashboard_port = free_port()
        # The job agent's HTTP port is fixed (52365) unless set: two heads on one
        # machine would fight over it and jobs would find "no available agent".
        self.agent_port = free_port()
        # A temp dir of its own: Ray's job supervisor finds "its" cluster through
        # <temp_dir>/ray_current_cluster, so two heads sharing /tmp/ray would send jobs
        # to whichever started last. Kept short: Ray's socket paths must fit 107 bytes.
        self.temp_dir = Path(tempfile.gettempdir()) / f"hpo-ray-{self.gcs_port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._adopted_pid: int | None = None  # a head an earlier service started

    @property
    def record_path(self) -> Path:
        return self.state_dir / "head.json"

    @property
    def adopted(self) -> bool:
        return self._adopted_pid is not None

    def _write_record(self, pid: int) -> None:
        record = {
            "pid": pid,
            "gcs_port": self.gcs_port,
            "dashboard_port": self.dashboard_port,
            "agent_port": self.agent_port,
            "temp_dir": str(self.temp_dir),
        }
        self.record_path.write_text(json.dumps(record))

    def adopt(self) -> bool:
        """Take over the head an earlier service on this state dir left running (False
        when there is none that answers)."""
        if not self.token_path.exists():
            return False
        try:
            record = json.loads(self.record_path.read_text())
            pid = int(record["pid"])
            os.kill(pid, 0)  # raises when no such process
        except (OSError, ValueError, KeyError, TypeError):
            return False
        self.gcs_port = int(record["gcs_port"])
        self.dashboard_port = int(record["dashboard_port"])
        self.agent_port = int(record["agent_port"])
        self.temp_dir = Path(record["temp_dir"])
        if not self._answers():
            return False  # a stale record (the pid was reused, or the head is broken)
        self._adopted_pid = pid
        return True

    def _answers(self) -> bool:
        headers = {"Authorization": f"Bearer {self.token_path.read_text().strip()}"}
        try:
            jobs = httpx.get(f"{self.dashboard_url}/api/jobs/", headers=headers, timeout=5)
        except httpx.HTTPError:
            return False
        return jobs.status_code == 200

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def start(self, timeout_s: float = 120.0, *, adopt: bool = False) -> None:
        ensure_ray_token(self.token_path)
        use_ray_token(self.token_path)
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if adopt and self.adopt():
            os.environ["RAY_ADDRESS"] = self.address
            return
        # Give a stopped study's runner time to end its trials and flush its results.
        os.environ.setdefault("RAY_JOB_STOP_WAIT_TIME_S", "15")
        ray_cli = Path(sys.executable).with_name("ray")
        command = [
            str(ray_cli) if ray_cli.exists() else "ray",
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--port={self.gcs_port}",
            f"--temp-dir={self.temp_dir}",
            "--include-dashboard=true",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={self.dashboard_port}",
            f"--dashboard-agent-listen-port={self.agent_port}",
            "--disable-usage-stats",
        ]
        if self.num_cpus:
            command.append(f"--num-cpus={self.num_cpus}")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        # A RAY_ADDRESS inherited from elsewhere would point this head's own processes
        # (its job supervisor among them) at another cluster.
        env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
        # Ray Train's placement-group cleaner finds the State API through this: point it
        # at this head's dashboard, not at whichever cluster on the machine started last.
        env["RAY_API_SERVER_ADDRESS"] = self.dashboard_url
        self._process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
        self._write_record(self._process.pid)
        self._wait_ready(timeout_s)
        # This process now works with this head (e.g. a service's Ray clients), not with
        # whatever cluster an inherited RAY_ADDRESS named.
        os.environ["RAY_ADDRESS"] = self.address

    def _wait_ready(self, timeout_s: float) -> None:
        assert self._process is not None
        headers = {"Authorization": f"Bearer {self.token_path.read_text().strip()}"}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RayUnavailable(
                    f"the local Ray head exited with code {self._process.returncode}; "
                    f"see {self.log_path}"
                )
            # Ready once the Jobs API answers and the State API lists this node alive
            # (before that the cluster looks empty and every study would be refused).
            try:
                jobs = httpx.get(f"{self.dashboard_url}/api/jobs/", headers=headers, timeout=2)
                nodes = httpx.get(
                    f"{self.dashboard_url}/api/v0/nodes",
                    params={"detail": "1"},
                    headers=headers,
                    timeout=5,
                )
                agent = httpx.get(f"http://127.0.0.1:{self.agent_port}/api/healthz", timeout=2)
                if (
                    jobs.status_code == 200
                    and nodes.status_code == 200
                    and agent.status_code == 200
                ):
                    listed = nodes.json()["data"]["result"]["result"]
                    if any(node.get("state") == "ALIVE" for node in listed):
                        return
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(0.5)
        self.stop()
        raise RayUnavailable(
            f"the local Ray head did not start in {timeout_s:.0f} s; see {self.log_path}"
        )

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop this cluster: SIGINT lets ``ray start --block`` shut its processes down;
        whatever is left of its process group is then terminated."""
        if self._adopted_pid is not None:
            self._stop_adopted(self._adopted_pid, timeout_s)
            self._adopted_pid = None
            return
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            self.record_path.unlink()
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=timeout_s)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            time.sleep(2 if sig == signal.SIGTERM else 0)
        if process.poll() is None:
            process.wait(timeout=10)

    def _stop_adopted(self, pid: int, timeout_s: float) -> None:
        """Stop a head this process did not start (no Popen to wait on): signal its
        process group, as ``stop`` does, and wait for the pid to go."""
        with contextlib.suppress(OSError):
            self.record_path.unlink()
        for sig, wait_s in (
            (signal.SIGINT, timeout_s),
            (signal.SIGTERM, 2.0),
            (signal.SIGKILL, 5.0),
        ):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                if not _alive(pid):
                    return
                time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its new parent) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return True
