"""Submit, stop and watch studies as Ray jobs through Ray's Jobs API."""

from __future__ import annotations

import enum
import os
import re
import secrets
import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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


def job_id_for(study_id: int, attempt: int = 0, extension: int = 0) -> str:
    """The Ray job of a study's ``attempt``-th run (0 first; Ray never reuses a job id),
    ``-x<extension>`` once the study was extended after it had finished."""
    job_id = f"hpo-study-{study_id}"
    if extension:
        job_id += f"-x{extension}"
    return job_id if attempt == 0 else f"{job_id}-r{attempt}"


WARM_JOB_PREFIX = "hpo-warm-"

# Every call to Ray is bounded: seconds to connect, and to wait for an answer. Submitting
# waits longer: the Jobs API answers once the job's supervisor actor has started.
RAY_CONNECT_TIMEOUT_S = 5.0
RAY_READ_TIMEOUT_S = 15.0
RAY_SUBMIT_TIMEOUT_S = 60.0

_TOKEN_HELP = (
    "set RAY_AUTH_TOKEN to the cluster's token (or RAY_AUTH_TOKEN_PATH to a file holding "
    "it; the default file is ~/.ray/auth_token)"
)


def ray_auth_token() -> tuple[str, str | None]:
    """Ray's auth token and where it came from, read the way Ray documents it:
    RAY_AUTH_TOKEN, then RAY_AUTH_TOKEN_PATH, then ~/.ray/auth_token. ("", None) if none."""
    token = os.environ.get("RAY_AUTH_TOKEN", "").strip()
    if token:
        return token, "RAY_AUTH_TOKEN"
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    source = f"RAY_AUTH_TOKEN_PATH={path}" if path else "~/.ray/auth_token"
    try:
        with open(path or os.path.expanduser("~/.ray/auth_token")) as handle:
            token = handle.read().strip()
    except OSError:
        return "", None
    return (token, source) if token else ("", None)


def ray_auth_headers() -> dict[str, str]:
    """The bearer header for Ray's token auth (see :func:`ray_auth_token`)."""
    token, _ = ray_auth_token()
    return {"Authorization": f"Bearer {token}"} if token else {}


def token_refused(address: str, status: int | None = None) -> str:
    """What to say when the Ray cluster refuses our token (or our lack of one)."""
    _, source = ray_auth_token()
    answer = f" ({status})" if status else ""
    if source is None:
        return (
            f"the Ray cluster at {address} refused our token{answer}: we have none; {_TOKEN_HELP}"
        )
    return (
        f"the Ray cluster at {address} refused our token{answer} (read from {source}); "
        f"{_TOKEN_HELP}"
    )


def _job_client(address: str, headers: dict[str, str]) -> Any:
    """Ray's JobSubmissionClient, with a timeout on every request it makes (Ray's own has
    none: a cluster that accepts the connection and never answers would hang us)."""
    import ray
    from ray.dashboard.modules.dashboard_sdk import SubmissionClient
    from ray.job_submission import JobSubmissionClient

    class BoundedJobSubmissionClient(JobSubmissionClient):  # type: ignore[misc]
        def __init__(self, address: str, headers: dict[str, str]) -> None:
            # Not JobSubmissionClient.__init__: it lets RAY_API_SERVER_ADDRESS or
            # RAY_ADDRESS replace the address it is given, and resolves a GCS address by
            # pointing this process's global GCS client (ray.experimental.internal_kv)
            # at that cluster. We always have the Jobs API's URL: use it, touch nothing.
            self._client_ray_version = ray.__version__
            SubmissionClient.__init__(self, address=address, headers=headers)
            self._check_connection_and_version(
                min_version="2.0",
                version_error_message=f"the Ray cluster at {address} runs a Ray older "
                "than 2.0, which has no Jobs API we can use",
            )

        def _do_request(self, method: str, endpoint: str, **kwargs: Any) -> Any:
            read_s = RAY_SUBMIT_TIMEOUT_S if method == "POST" else RAY_READ_TIMEOUT_S
            kwargs.setdefault("timeout", (RAY_CONNECT_TIMEOUT_S, read_s))
            return super()._do_request(method, endpoint, **kwargs)

    return BoundedJobSubmissionClient(address, headers=headers)


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
            try:
                self._client = _job_client(self.jobs_address, ray_auth_headers())
            except Exception as error:  # ConnectionError, AuthenticationError, timeouts
                raise RayUnavailable(_explain(error, self.jobs_address)) from error
        return self._client

    def job_url(self, job_id: str) -> str:
        return f"{self.dashboard_url}/#/jobs/{job_id}"

    def entrypoint(self, *runner_args: str) -> str:
        """The job's shell command: the runner, with the service's settings in its
        environment. Not a runtime_env: Ray applies a job's runtime_env to every actor the
        job starts and cannot give those its prestarted worker processes (an actor took
        1.5 s to start instead of 0.3-1.0 s on 2 cores; a Ray Train trial starts about six)."""
        assignments = [f"{key}={shlex.quote(value)}" for key, value in self.env_vars.items()]
        runner = [self.runner_python, "-m", "service.runner", *map(shlex.quote, runner_args)]
        return " ".join([*assignments, *runner])

    def submit(
        self,
        study_id: int,
        study_name: str,
        *,
        attempt: int = 0,
        extension: int = 0,
        retry_for_s: float = 60.0,
    ) -> str:
        """Submit the study's runner as job ``hpo-study-<id>`` (see :func:`job_id_for`)."""
        return self._submit(
            job_id_for(study_id, attempt, extension),
            self.entrypoint(str(study_id)),
            {
                "hpo_study_id": str(study_id),
                "hpo_study_name": study_name[:200],
                "hpo_attempt": str(attempt),
                "hpo_extension": str(extension),
            },
            retry_for_s,
        )

    def submit_warm_runner(self, retry_for_s: float = 60.0) -> str:
        """Submit a warm runner: a job ``hpo-warm-<hex>`` that starts and imports everything
        a study's runner needs, then waits until a study is given its job id."""
        job_id = f"{WARM_JOB_PREFIX}{secrets.token_hex(4)}"
        entrypoint = self.entrypoint("--warm", job_id)
        return self._submit(job_id, entrypoint, {"hpo_warm_runner": "1"}, retry_for_s)

    def _submit(
        self, job_id: str, entrypoint: str, metadata: dict[str, str], retry_for_s: float
    ) -> str:
        """A head that has just started answers "no available agent" until its job agent
        is up: retry that."""
        deadline = time.monotonic() + retry_for_s
        while True:
            try:
                return str(
                    self._jobs().submit_job(
                        entrypoint=entrypoint, submission_id=job_id, metadata=metadata
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
                timeout=httpx.Timeout(RAY_READ_TIMEOUT_S, connect=RAY_CONNECT_TIMEOUT_S),
            )
        except httpx.HTTPError as error:
            raise RayUnavailable(_explain(error, self.jobs_address)) from error
        if answer.status_code in (401, 403):
            raise RayUnavailable(token_refused(self.jobs_address, answer.status_code))
        if answer.status_code != 200:
            raise RayUnavailable(
                f"Ray's State API at {self.jobs_address} answered {answer.status_code}: "
                f"{answer.text[:200]}"
            )
        try:
            nodes = answer.json()["data"]["result"]["result"]
            cpus = gpus = 0.0
            for node in nodes:
                if node.get("state") == "ALIVE":
                    total = node.get("resources_total") or {}
                    cpus += float(total.get("CPU", 0))
                    gpus += float(total.get("GPU", 0))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise RayUnavailable(
                f"Ray's State API at {self.jobs_address} answered something unexpected: "
                f"{answer.text[:200]}"
            ) from error
        return ClusterCapacity(cpus=cpus, gpus=gpus)

    def ping(self) -> None:
        """Raises RayUnavailable unless the Jobs API answers and accepts our token."""
        self.capacity()


def _explain(error: BaseException, address: str) -> str:
    """A message for a failed call to Ray that says what to do about it."""
    if isinstance(error, RayUnavailable):  # already explained (creating the client)
        return str(error)
    text = str(error) or type(error).__name__
    if _is_auth_refusal(error, text):
        status = 403 if re.search(r"(?<![0-9])403(?![0-9])|Forbidden|invalid", text) else 401
        return token_refused(address, status)
    if _is_timeout(error):
        return (
            f"the Ray Jobs API at {address} did not answer in time "
            f"({RAY_CONNECT_TIMEOUT_S:g} s to connect, {RAY_READ_TIMEOUT_S:g} s to answer)"
        )
    return f"cannot reach the Ray Jobs API at {address}: {text[:300]}"


def _is_auth_refusal(error: BaseException, text: str) -> bool:
    try:
        from ray.exceptions import AuthenticationError
    except ImportError:  # pragma: no cover - ray is a dependency
        AuthenticationError = ()  # type: ignore[assignment,misc]  # noqa: N806
    if isinstance(error, AuthenticationError):
        return True
    return bool(_AUTH_WORDS.search(text))


# A 401/403 status (not a port such as 40123) or the words Ray's answers use.
_AUTH_WORDS = re.compile(r"(?<![0-9])40[13](?![0-9])|nauthori[sz]ed|Forbidden|Authentication")


def _is_timeout(error: BaseException) -> bool:
    if isinstance(error, (httpx.TimeoutException, TimeoutError)):
        return True
    try:
        import requests
    except ImportError:  # pragma: no cover
        return False
    return isinstance(error, requests.Timeout)
