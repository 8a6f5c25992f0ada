"""Service settings from the environment (HPO_ prefix); the embedded default needs none."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.auth.tokens import (
    DEFAULT_SECRETS,
    TOKEN_FILE_NAME,
    AuthConfigError,
    TokenEntry,
    parse_api_tokens,
    weak_secret_reason,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HPO_", env_file=None, extra="ignore", hide_input_in_errors=True
    )

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
    # Runners kept started ahead of new studies (Ray jobs "hpo-warm-<hex>"): a study's
    # first trial then starts without waiting for a new job (4-5 s on 2 cores), but
    # its Ray job is named hpo-warm-<hex> instead of hpo-study-<id>. 0 turns them off.
    warm_runners: int = Field(default=0, ge=0, le=16)
    # "production" (the default) refuses default, short or empty secrets and refuses to
    # listen beyond loopback without configured tokens; "development" only warns.
    env: Literal["development", "production"] = "production"
    # API tokens: "TOKEN=PRINCIPAL[:admin],..." (a bare TOKEN is an admin of "local").
    # Empty: tokens from `hpo token create` (database) and the local token file
    # <home>/api_token, generated at first start.
    api_tokens: SecretStr = SecretStr("")
    # Study creation per principal: a token bucket of `study_create_burst` studies,
    # refilled at `study_create_per_minute`. 0 turns the limit off.
    study_create_per_minute: float = Field(default=120.0, ge=0)
    study_create_burst: int = Field(default=60, ge=1)
    # Request bodies larger than this are refused with 413 before they are read whole.
    max_body_bytes: int = Field(default=1_048_576, ge=1)

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("env", mode="before")
    @classmethod
    def _lower_env(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _refuse_weak_secrets(self) -> Settings:
        """Malformed or empty tokens are refused always; default or short ones (and a
        default database password) outside development."""
        problems = [
            f"HPO_API_TOKENS: the token of {entry.principal.name!r} {reason}"
            for entry in self.token_entries
            if (reason := weak_secret_reason(entry.token))
        ]
        password = _database_password(self.database_url)
        if password is not None and (not password or password.lower() in DEFAULT_SECRETS):
            problems.append("HPO_DATABASE_URL: the database password is empty or a default")
        if not problems:
            return self
        if self.env == "development":
            for problem in problems:
                warnings.warn(f"{problem} (allowed because HPO_ENV=development)", stacklevel=2)
            return self
        raise AuthConfigError(
            "; ".join(problems)
            + ". Use long random secrets (`hpo token create` makes API tokens), or set "
            "HPO_ENV=development on a machine of your own."
        )

    @property
    def token_entries(self) -> list[TokenEntry]:
        """``HPO_API_TOKENS`` parsed. Raises AuthConfigError (checked at construction)."""
        return parse_api_tokens(self.api_tokens.get_secret_value())

    @property
    def token_file(self) -> Path:
        """The local token file: the embedded default's generated admin token."""
        return self.home / TOKEN_FILE_NAME

    @property
    def development(self) -> bool:
        return self.env == "development"

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


def _database_password(url: str) -> str | None:
    """The password in a database URL, or None when it has none (or is not a URL)."""
    if not url:
        return None
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return None if password is None else unquote(password)


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
