"""Service settings from the environment (HPO_ prefix); the embedded default needs none."""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HPO_", env_file=None, extra="ignore")

    # Where the embedded default keeps its files (database, Ray token, Tune storage).
    home: Path = Field(default=Path(".hpo"))
    database_url: str = ""  # default: sqlite:///<home>/hpo.db
    # Ray cluster: empty = start a local Ray head with its dashboard. Otherwise the
    # dashboard (Jobs API) address, e.g. http://ray-head:8265.
    ray_address: str = ""
    # Public URL of the Ray dashboard for links (defaults to the Jobs API address).
    ray_dashboard_url: str = ""
    # CPUs the embedded local Ray head declares (0 = all of this machine's cores).
    ray_num_cpus: int = 0
    storage_path: str = ""  # Tune experiment storage; default <home>/ray_results
    host: str = "127.0.0.1"
    port: int = 8000
    # Public base URL of this service for links printed by the CLI.
    public_url: str = ""
    # Python that runs a study's Ray job on the cluster (default: "python" on a remote
    # cluster, this interpreter for the embedded local head).
    runner_python: str = ""
    # Refuse studies whose trials need more CPUs/GPUs than the cluster has in total.
    # Turn off for autoscaling clusters that grow on demand.
    validate_capacity: bool = True
    # How often the service polls Ray for the status of running studies' jobs.
    job_poll_interval_s: float = 2.0

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return absolute_sqlite_url(self.database_url)
        return f"sqlite:///{self.home / 'hpo.db'}"

    @property
    def resolved_storage_path(self) -> str:
        if self.storage_path:
            if "://" in self.storage_path:
                return self.storage_path
            return str(Path(self.storage_path).expanduser().resolve())
        return str(self.home / "ray_results")

    @property
    def local_ray_dir(self) -> Path:
        """State of the embedded local Ray head (its token, its log)."""
        return self.home / "ray"

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"


def absolute_sqlite_url(url: str) -> str:
    """A relative SQLite path is resolved against the current directory, so a Ray job
    started elsewhere opens the same file."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str(Path(url[len(prefix) :]).resolve())
    return url


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
