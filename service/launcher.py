"""Submit, stop and watch studies as Ray jobs through Ray's Jobs API."""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from service.errors import LaunchError, RayUnavailable
from service.validation import ClusterCapacity


class JobState(str, enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    MISSING = "MISSING"  # the cluster does not know the job (head restarted, deleted)

    @property
    def is_terminal(self) -> bool:
        return self in {JobState.STOPPED, JobState.SUCCEEDED, JobState.FAILED, JobState.MISSING}


@dataclass(frozen=True)
class JobInfo:
    job_id: str
    state: JobState
    message: str | None


def job_id_for(study_id: int, attempt: int = 0) -> str:
    """The Ray job of a study's ``attempt``-th run (0 first; Ray never reuses a job id)."""
    return f"hpo-study-{study_id}" if attempt == 0 else f"hpo-study-{study_id}-r{attempt}"


def ray_auth_headers() -> dict[str, str]:
    """The bearer header for Ray's token auth, read the way Ray documents it:
    RAY_AUTH_TOKEN, then RAY_AUTH_TOKEN_PATH, then ~/.ray/auth_token."""
    token = os.environ.get("RAY_AUTH_TOKEN", "").strip()
    if not token:
        path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser("~/.ray/auth_token")
        try:
            with open(path) as handle:
                token = handle.read().strip()
        except OSError:
            token = ""
    return {"Authorization": f"Bearer {token}"} if token else {}


class RayJobLauncher:
    """Talks to the Ray head's Jobs API (the dashboard address, e.g. http://head:8265)."""

    def __init__(
        self,
        jobs_address: str,
        *,
        dashboard_url: str | None = None,
        runner_python: str = "python",
        env_vars: Mapping[str, str] | None = None,
    ) -> None:
        self.jobs_address = jobs_address.rstrip("/")
        self.dashboard_url = (dashboard_url or jobs_address).rstrip("/")
        self.runner_python = runner_python
        self.env_vars = dict(env_vars or {})
        self._client: object | None = None

    def _jobs(self):  # type: ignore[no-untyped-def]
        """Ray's JobSubmissionClient, created on first use (it contacts the cluster)."""
        if self._client is None:
            from ray.job_submission import JobSubmissionClient

            try:
                self._client = JobSubmissionClient(self.jobs_address, headers=ray_auth_headers())
            except Exception as error:  # Ray raises ConnectionError / RuntimeError
                raise RayUnavailable(_explain(error, self.jobs_address)) from error
        return self._client

    def job_url(self, job_id: str) -> str:
        return f"{self.dashboard_url}/#/jobs/{job_id}"

    def submit(
        self, study_id: int, study_name: str, *, attempt: int = 0, retry_for_s: float = 60.0
    ) -> str:
        """Submit the study's runner as job ``hpo-study-<id>`` (``-r<attempt>`` when it is
        resubmitted). A head that has just started answers "no available agent" until its
        job agent is up: retry that."""
        job_id = job_id_for(study_id, attempt)
        deadline = time.monotonic() + retry_for_s
        while True:
            try:
                return str(
                    self._jobs().submit_job(
                        entrypoint=f"{self.runner_python} -m service.runner {study_id}",
                        submission_id=job_id,
                        runtime_env={"env_vars": self.env_vars},
                        metadata={
                            "hpo_study_id": str(study_id),
                            "hpo_study_name": study_name[:200],
                            "hpo_attempt": str(attempt),
                        },
                    )
                )
            except RayUnavailable:
                raise
            except Exception as error:
                if "try again" in str(error) and time.monotonic() < deadline:
                    time.sleep(1.0)
                    continue
                raise LaunchError(
                    f"Ray did not accept job {job_id}: {_explain(error, self.jobs_address)}"
                ) from error

    def stop(self, job_id: str) -> bool:
        try:
            return bool(self._jobs().stop_job(job_id))
        except Exception as error:
            if "does not exist" in str(error):
                return False
            raise RayUnavailable(_explain(error, self.jobs_address)) from error

    def info(self, job_id: str) -> JobInfo:
        try:
            details = self._jobs().get_job_info(job_id)
        except Exception as error:
            if "does not exist" in str(error) or "404" in str(error):
                return JobInfo(job_id, JobState.MISSING, "the Ray cluster has no such job")
            raise RayUnavailable(_explain(error, self.jobs_address)) from error
        return JobInfo(job_id, JobState(str(details.status.value)), details.message)

    def logs_tail(self, job_id: str, chars: int = 4000) -> str:
        try:
            return str(self._jobs().get_job_logs(job_id))[-chars:]
        except Exception:
            return ""

    def capacity(self) -> ClusterCapacity:
        """CPUs and GPUs summed over the cluster's alive nodes (Ray's State API)."""
        try:
            answer = httpx.get(
                f"{self.jobs_address}/api/v0/nodes",
                params={"detail": "1", "limit": "10000"},
                headers=ray_auth_headers(),
                timeout=10,
            )
        except httpx.HTTPError as error:
            raise RayUnavailable(_explain(error, self.jobs_address)) from error
        if answer.status_code in (401, 403):
            raise RayUnavailable(
                f"the Ray cluster at {self.jobs_address} refused our token ({answer.status_code}); "
                "set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH to the cluster's token"
            )
        if answer.status_code != 200:
            raise RayUnavailable(
                f"Ray's State API answered {answer.status_code}: {answer.text[:200]}"
            )
        nodes = answer.json()["data"]["result"]["result"]
        cpus = gpus = 0.0
        for node in nodes:
            if node.get("state") == "ALIVE":
                total = node.get("resources_total") or {}
                cpus += float(total.get("CPU", 0))
                gpus += float(total.get("GPU", 0))
        return ClusterCapacity(cpus=cpus, gpus=gpus)

    def ping(self) -> None:
        """Raises RayUnavailable unless the Jobs API answers and accepts our token."""
        self.capacity()


def _explain(error: BaseException, address: str) -> str:
    text = str(error) or type(error).__name__
    if "401" in text or "nauthori" in text:
        return (
            f"the Ray cluster at {address} refused our token; set RAY_AUTH_TOKEN or "
            "RAY_AUTH_TOKEN_PATH to the cluster's token"
        )
    return f"cannot reach the Ray Jobs API at {address}: {text[:300]}"
