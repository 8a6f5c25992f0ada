"""A small typed Python client of the REST API; the CLI is built on it.

Its API token, in order: ``token=``, credentials in the URL (``http://hpo:TOKEN@host``),
``HPO_TOKEN``, the local token file ``<HPO_HOME>/api_token`` (which the embedded
default writes at its first start; read when a request is made, so a client made before
the service started finds it).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import connect_sse

from service.api.schemas import (
    BestTrialPublic,
    ComparisonPublic,
    StudyList,
    StudyPublic,
    TrainablePublic,
    TrialList,
    TrialResults,
)
from service.auth.tokens import client_token, split_url_credentials

DEFAULT_URL = "http://127.0.0.1:8000"
# Requests that may be sent twice with the same effect (RFC 9110 9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# A kept-alive connection is dropped after this many idle seconds, well before uvicorn's
# own keep-alive timeout (5 s by default): httpx's default is also 5 s, and a request sent
# as the server closed the connection came back as "Server disconnected" or ECONNRESET.
KEEPALIVE_EXPIRY_S = 2.0


class ApiError(Exception):
    """The service answered with an error status; ``detail`` is its explanation."""

    def __init__(self, status_code: int, detail: Any) -> None:
        self.status_code = status_code
        self.detail = detail
        super().__init__(f"{status_code}: {format_detail(detail)}")


class ServiceUnreachable(Exception):
    """No service answered at the URL."""


def format_detail(detail: Any) -> str:
    """FastAPI's 422 list as 'field.path: message' lines; anything else as text."""
    if isinstance(detail, list):
        lines = []
        for item in detail:
            if isinstance(item, Mapping):
                loc = [str(part) for part in item.get("loc", []) if part != "body"]
                lines.append(f"{'.'.join(loc) or '(body)'}: {item.get('msg', '')}")
            else:
                lines.append(str(item))
        return "\n".join(lines)
    return str(detail)


TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "STOPPED"})
EVENT_KINDS = frozenset({"study", "trial", "result"})


@dataclass(frozen=True)
class StudyEvent:
    """One event of a study's stream: ``kind`` is study, trial or result."""

    id: int
    kind: str
    data: dict[str, Any]

    @property
    def is_terminal(self) -> bool:
        return self.kind == "study" and self.data.get("status") in TERMINAL_STATUSES


class TokenAuth(httpx.Auth):
    """``Authorization: Bearer`` with the client's token, looked up (see the module's doc)
    until one is found, then kept."""

    def __init__(self, explicit: str | None = None, *, home: Path | None = None) -> None:
        self._explicit = explicit or None
        self._home = home
        self._found: tuple[str, str] | None = None

    def resolve(self) -> tuple[str, str]:
        """(token, where it came from); ("", "none") when there is none yet."""
        if self._found is not None:
            return self._found
        token, source = client_token(self._explicit, home=self._home)
        if token:
            self._found = (token, source)
        return token, source

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token, _ = self.resolve()
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        yield request


class HpoClient:
    """``home``: where to look for the local token file (default ``HPO_HOME`` or .hpo)."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | None = None,
        home: str | Path | None = None,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url = (base_url or os.environ.get("HPO_URL") or DEFAULT_URL).rstrip("/")
        url, url_token = split_url_credentials(url)  # never print a token with the URL
        self.base_url = url.rstrip("/")
        self.auth = TokenAuth(
            token or url_token, home=Path(home).expanduser().resolve() if home else None
        )
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=self.auth,
            timeout=timeout_s,
            transport=transport,
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_S),
        )

    @property
    def token(self) -> str:
        """The token this client sends ("" when it has none)."""
        return self.auth.resolve()[0]

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HpoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            try:
                response = self._http.request(method, path, **kwargs)
            except (httpx.RemoteProtocolError, httpx.ReadError):
                # The server closed a kept-alive connection as this request went out (its
                # keep-alive timer won the race: "Server disconnected" or a reset): a
                # request that may be repeated is sent once more, on a new connection.
                # httpx itself retries only connects.
                if method.upper() not in IDEMPOTENT_METHODS:
                    raise
                response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise ServiceUnreachable(
                f"no hpo service answers at {self.base_url}: {error}"
            ) from error
        if response.status_code >= 400:
            raise ApiError(response.status_code, _detail(response))
        return response

    def _post_document(self, path: str, spec: Mapping[str, Any] | str | Path) -> httpx.Response:
        """POST a document: a mapping, YAML/JSON text, or a path to a YAML/JSON file."""
        if isinstance(spec, Path) or (
            isinstance(spec, str) and "\n" not in spec and Path(spec).is_file()
        ):
            text = Path(spec).read_text()
            kind = "application/json" if str(spec).endswith(".json") else "application/yaml"
            return self._request("POST", path, content=text, headers={"content-type": kind})
        if isinstance(spec, str):
            return self._request(
                "POST", path, content=spec, headers={"content-type": "application/yaml"}
            )
        return self._request("POST", path, json=dict(spec))

    # --- studies ---------------------------------------------------------------------
    def submit(self, spec: Mapping[str, Any] | str | Path) -> StudyPublic:
        """Submit a spec: a mapping, YAML/JSON text, or a path to a YAML/JSON file."""
        return StudyPublic.model_validate(self._post_document("/api/v1/studies", spec).json())

    def extend(
        self,
        study_id: int,
        *,
        num_samples: int | None = None,
        time_budget_s: float | None = None,
    ) -> StudyPublic:
        """Raise a study's targets (new totals); it goes on from where it is."""
        body = {
            key: value
            for key, value in (("num_samples", num_samples), ("time_budget_s", time_budget_s))
            if value is not None
        }
        return StudyPublic.model_validate(
            self._request("POST", f"/api/v1/studies/{study_id}/extend", json=body).json()
        )

    def best(self, study_id: int) -> BestTrialPublic:
        return BestTrialPublic.model_validate(
            self._request("GET", f"/api/v1/studies/{study_id}/best").json()
        )

    # --- comparisons -------------------------------------------------------------------
    def compare(self, spec: Mapping[str, Any] | str | Path) -> ComparisonPublic:
        """Submit a comparison: a mapping, YAML/JSON text, or a path to a file."""
        response = self._post_document("/api/v1/comparisons", spec)
        return ComparisonPublic.model_validate(response.json())

    def comparison(self, study_id: int) -> ComparisonPublic:
        return ComparisonPublic.model_validate(
            self._request("GET", f"/api/v1/comparisons/{study_id}").json()
        )

    def comparison_report(self, study_id: int, format: str = "markdown") -> str:
        """The report as ``markdown``, ``csv`` or ``json`` text."""
        return self._request(
            "GET", f"/api/v1/comparisons/{study_id}/report", params={"format": format}
        ).text

    def comparison_chart(self, study_id: int) -> bytes:
        """The report's bar chart (PNG)."""
        return self._request("GET", f"/api/v1/comparisons/{study_id}/chart.png").content

    def studies(self, *, status: str | None = None, limit: int = 50, offset: int = 0) -> StudyList:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status:
            params["status"] = status
        return StudyList.model_validate(
            self._request("GET", "/api/v1/studies", params=params).json()
        )

    def study(self, study_id: int) -> StudyPublic:
        return StudyPublic.model_validate(
            self._request("GET", f"/api/v1/studies/{study_id}").json()
        )

    def stop(self, study_id: int) -> StudyPublic:
        return StudyPublic.model_validate(
            self._request("POST", f"/api/v1/studies/{study_id}/stop").json()
        )

    def delete(self, study_id: int) -> None:
        self._request("DELETE", f"/api/v1/studies/{study_id}")

    def trials(
        self, study_id: int, *, limit: int = 100, offset: int = 0, order: str = "number"
    ) -> TrialList:
        params = {"limit": limit, "offset": offset, "order": order}
        return TrialList.model_validate(
            self._request("GET", f"/api/v1/studies/{study_id}/trials", params=params).json()
        )

    def results(self, study_id: int, trial_id: str) -> TrialResults:
        return TrialResults.model_validate(
            self._request("GET", f"/api/v1/studies/{study_id}/trials/{trial_id}/results").json()
        )

    def events(
        self,
        study_id: int,
        *,
        last_event_id: int | None = None,
        reconnect_for_s: float = 60.0,
    ) -> Iterator[StudyEvent]:
        """Follow a study's event stream (SSE) until it ends with a terminal ``study`` event. A
        dropped connection (or a restarting service) is resumed with ``Last-Event-ID``,
        for up to ``reconnect_for_s`` without an answer, so no event comes twice."""
        cursor = last_event_id
        path = f"/api/v1/studies/{study_id}/events"
        timeout = httpx.Timeout(10.0, read=90.0)  # heartbeats come every 15 s
        failing_since: float | None = None
        while True:
            headers = {"Last-Event-ID": str(cursor)} if cursor is not None else {}
            try:
                with connect_sse(self._http, "GET", path, headers=headers, timeout=timeout) as src:
                    if src.response.status_code == 204:  # ended; nothing after the cursor
                        return
                    if src.response.status_code >= 400:
                        src.response.read()
                        raise ApiError(src.response.status_code, _detail(src.response))
                    failing_since = None
                    ended = False
                    for sse in src.iter_sse():
                        if sse.event not in EVENT_KINDS or not sse.data:
                            continue  # a heartbeat (httpx-sse repeats the last id for it)
                        event = StudyEvent(int(sse.id), sse.event, json.loads(sse.data))
                        cursor = event.id
                        yield event
                        # The service ends the stream after the study's last terminal
                        # event; an extended study's earlier one is followed by more.
                        ended = event.is_terminal
                    if ended:
                        return
            except httpx.TransportError as error:
                failing_since = failing_since or time.monotonic()
                if time.monotonic() - failing_since > reconnect_for_s:
                    raise ServiceUnreachable(
                        f"the event stream at {self.base_url} broke off: {error}"
                    ) from error
            time.sleep(0.5)  # the stream ended early (a restart): resume after the cursor

    def trainables(self) -> list[TrainablePublic]:
        return [
            TrainablePublic.model_validate(item)
            for item in self._request("GET", "/api/v1/trainables").json()
        ]

    def ready(self) -> bool:
        try:
            return self._http.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False


def _detail(response: httpx.Response) -> Any:
    try:
        return response.json().get("detail", response.text)
    except (json.JSONDecodeError, AttributeError):
        return response.text
