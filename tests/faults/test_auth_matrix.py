"""Authentication and ownership on a live service with real Ray jobs: the auth matrix.

No token: 401 on every route. A bad token: 401. Another owner's study: 404 on every
study route, exactly like a missing study, and nothing changes. An admin sees and
touches everything. /healthz, /readyz and /metrics stay open. Tokens come from the
settings (admin, alice, bob: tests/fixtures/service.py), from the database (``hpo token
create``), or from the embedded default's local token file.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.fixtures.service import LiveService, wait_for_status
from tests.fixtures.watch import TERMINAL, noop_spec

pytestmark = pytest.mark.ray

MISSING = 987_654
STUDY_ROUTES = [
    ("GET", "/api/v1/studies/{id}"),
    ("POST", "/api/v1/studies/{id}/stop"),
    ("DELETE", "/api/v1/studies/{id}"),
    ("GET", "/api/v1/studies/{id}/trials"),
    ("GET", "/api/v1/studies/{id}/trials/{trial}/results"),
    ("GET", "/api/v1/studies/{id}/events"),
    ("GET", "/api/v1/studies/{id}/snapshot"),
]
OTHER_ROUTES = [
    ("GET", "/api/v1/studies"),
    ("POST", "/api/v1/studies"),
    ("GET", "/api/v1/trainables"),
    ("GET", "/openapi.json"),
]
PAGES = ["/", "/studies/{id}", "/static/app.js", "/docs", "/redoc"]


@dataclass(frozen=True)
class Studies:
    alice: int  # finished, with a trial and results
    alice_trial: str
    alice_spare: int  # finished; alice deletes it
    bob: int  # finished; the admin deletes it


@pytest.fixture(scope="module")
def studies(live_service: LiveService) -> Studies:
    spec = noop_spec("auth", trials=1, iterations=2, sleep_s=0.0)
    ids = {}
    for owner, name in (("alice", "alice"), ("alice", "alice_spare"), ("bob", "bob")):
        with live_service.client(owner) as client:
            ids[name] = client.submit({**spec, "name": f"auth-{name}"}).id
    with live_service.client() as admin:
        for study_id in ids.values():
            assert wait_for_status(admin, study_id, TERMINAL, 240).status == "COMPLETED"
        trial = admin.trials(ids["alice"]).items[0].trial_id
    return Studies(ids["alice"], trial, ids["alice_spare"], ids["bob"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def call(
    live_service: LiveService,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """One request to the live service without any credentials but ``headers``."""
    if method == "POST" and path == "/api/v1/studies":
        kwargs.setdefault("json", noop_spec("auth-create", trials=1, iterations=1, sleep_s=0))
    return httpx.request(
        method, live_service.base_url + path, headers=headers or {}, timeout=60, **kwargs
    )


def fill(path: str, studies: Studies, study_id: int | None = None) -> str:
    return path.format(id=study_id or studies.alice, trial=studies.alice_trial)


def status_of(live_service: LiveService, study_id: int) -> str:
    with live_service.client() as admin:
        return admin.study(study_id).status


# --- 401 ------------------------------------------------------------------------------
def test_no_token_is_401_on_every_route(live_service: LiveService, studies: Studies) -> None:
    for method, path in STUDY_ROUTES + OTHER_ROUTES:
        answer = call(live_service, method, fill(path, studies))
        assert answer.status_code == 401, (method, path, answer.text)
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="hpo-service"'
        assert "hpo token show" in answer.json()["detail"]
    for page in PAGES:
        answer = call(live_service, "GET", fill(page, studies))
        assert answer.status_code == 401, page
        assert answer.headers["WWW-Authenticate"].startswith('Basic realm="hpo-service"')
        assert "hpo token show" in answer.text  # a sign-in page, not a browser error
    assert status_of(live_service, studies.alice) == "COMPLETED"  # nothing was touched


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer not-a-token",
        "Bearer",
        "Basic " + base64.b64encode(b"alice:not-a-token").decode(),
        "Basic !!!",
        "Token abc",
    ],
)
def test_bad_token_is_401_on_every_route(
    live_service: LiveService, studies: Studies, authorization: str
) -> None:
    for method, path in STUDY_ROUTES + OTHER_ROUTES:
        answer = call(live_service, method, fill(path, studies), {"Authorization": authorization})
        assert answer.status_code == 401, (method, path, answer.text)
        assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
        assert answer.json() == {"detail": "invalid token"}
    bad_cookie = {"Cookie": "hpo_token=not-a-token"}
    assert call(live_service, "GET", "/api/v1/studies", bad_cookie).status_code == 401
    page = call(live_service, "GET", "/", bad_cookie)
    assert page.status_code == 401 and "hpo_token=" in page.headers["set-cookie"]  # cleared


# --- 404 for others' studies -------------------------------------------------------------
def test_another_owners_study_is_404_on_every_route(
    live_service: LiveService, studies: Studies
) -> None:
    bob = bearer(live_service.token("bob"))
    for method, path in STUDY_ROUTES:
        answer = call(live_service, method, fill(path, studies), bob)
        assert answer.status_code == 404, (method, path, answer.text)
        # Word for word what a study that does not exist answers.
        missing = call(live_service, method, fill(path, studies, MISSING), bob)
        assert missing.status_code == 404
        assert answer.json()["detail"] == missing.json()["detail"].replace(
            str(MISSING), str(studies.alice)
        )
    # The page of alice's study loads for bob (it is only HTML), but its data does not.
    assert call(live_service, "GET", f"/studies/{studies.alice}", bob).status_code == 200
    # Bob's stop and delete changed nothing.
    assert status_of(live_service, studies.alice) == "COMPLETED"
    listed = httpx.get(f"{live_service.base_url}/api/v1/studies?limit=1000", headers=bob).json()
    assert studies.alice not in [s["id"] for s in listed["items"]]


def test_owners_see_and_touch_their_own(live_service: LiveService, studies: Studies) -> None:
    alice = bearer(live_service.token("alice"))
    for method, path in STUDY_ROUTES:
        if method == "DELETE":
            continue  # below, on the spare study
        answer = call(live_service, method, fill(path, studies), alice)
        expected = 409 if path.endswith("/stop") else 200  # stopping a finished study
        assert answer.status_code == expected, (method, path, answer.text)
    listed = call(live_service, "GET", "/api/v1/studies?limit=1000", alice).json()
    assert {s["owner"] for s in listed["items"]} == {"alice"}
    assert {studies.alice, studies.alice_spare} <= {s["id"] for s in listed["items"]}
    assert studies.bob not in {s["id"] for s in listed["items"]}
    # A user cannot list another owner's studies by asking for them.
    others = call(live_service, "GET", "/api/v1/studies?owner=bob", alice).json()
    assert others["items"] == [] and others["total"] == 0
    # The owner deletes its own finished study; bob could not.
    spare = f"/api/v1/studies/{studies.alice_spare}"
    assert call(live_service, "DELETE", spare, bearer(live_service.token("bob"))).status_code == 404
    assert call(live_service, "DELETE", spare, alice).status_code == 204
    assert call(live_service, "GET", spare, alice).status_code == 404


def test_created_study_belongs_to_its_creator(live_service: LiveService) -> None:
    with live_service.client("bob") as bob:
        study = bob.submit(noop_spec("auth-owned", trials=1, iterations=1, sleep_s=0))
        assert study.owner == "bob"
        wait_for_status(bob, study.id, TERMINAL, 240)
    with live_service.client("alice") as alice:
        with pytest.raises(Exception) as raised:
            alice.study(study.id)
        assert getattr(raised.value, "status_code", None) == 404


# --- admin -------------------------------------------------------------------------------
def test_admin_sees_and_touches_all(live_service: LiveService, studies: Studies) -> None:
    admin = bearer(live_service.token())
    listed = call(live_service, "GET", "/api/v1/studies?limit=1000", admin).json()
    owners = {s["id"]: s["owner"] for s in listed["items"]}
    assert owners[studies.alice] == "alice" and owners[studies.bob] == "bob"
    only_bob = call(live_service, "GET", "/api/v1/studies?owner=bob&limit=1000", admin).json()
    assert {s["owner"] for s in only_bob["items"]} == {"bob"}
    for method, path in STUDY_ROUTES:
        if method == "DELETE":
            continue
        answer = call(live_service, method, fill(path, studies), admin)
        assert answer.status_code == (409 if path.endswith("/stop") else 200), (path, answer.text)
    bobs = f"/api/v1/studies/{studies.bob}"
    assert call(live_service, "DELETE", bobs, admin).status_code == 204
    assert call(live_service, "GET", bobs, admin).status_code == 404


# --- open routes, browsers, cross-site -----------------------------------------------------
def test_probes_and_metrics_stay_open(live_service: LiveService) -> None:
    assert httpx.get(f"{live_service.base_url}/healthz").json() == {"status": "ok", "checks": {}}
    ready = httpx.get(f"{live_service.base_url}/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "ray": "ok"}
    metrics = httpx.get(f"{live_service.base_url}/metrics")
    assert metrics.status_code == 200 and "hpo_studies" in metrics.text


def test_browser_sign_in_sets_a_cookie_for_reads_only(
    live_service: LiveService, studies: Studies
) -> None:
    alice = live_service.token("alice")
    with httpx.Client(base_url=live_service.base_url, timeout=60) as browser:
        signed = browser.get(f"/studies/{studies.alice}?token={alice}&x=1")
        assert signed.status_code == 303 and signed.headers["location"] == (
            f"/studies/{studies.alice}?x=1"
        )  # the token leaves the address bar
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert browser.get(f"/studies/{studies.alice}").status_code == 200
        assert browser.get("/static/app.js").status_code == 200
        # The page's reads and its EventSource (which cannot send headers) use the cookie.
        assert browser.get(f"/api/v1/studies/{studies.alice}/snapshot").status_code == 200
        events = browser.get(f"/api/v1/studies/{studies.alice}/events")
        assert events.status_code == 200 and "event: study" in events.text
        assert browser.get(f"/api/v1/studies/{studies.bob}/events").status_code == 404
        # The cookie never changes anything: a forged form post finds no credentials.
        assert browser.post(f"/api/v1/studies/{studies.alice}/stop").status_code == 401
    wrong = httpx.get(f"{live_service.base_url}/?token=not-a-token")
    assert wrong.status_code == 401 and "not valid" in wrong.text


def test_basic_credentials_and_cross_site_writes(
    live_service: LiveService, studies: Studies
) -> None:
    alice = live_service.token("alice")
    answer = httpx.get(f"{live_service.base_url}/api/v1/studies", auth=("", alice))
    assert answer.status_code == 200  # curl -u :TOKEN
    cross = call(
        live_service,
        "POST",
        f"/api/v1/studies/{studies.alice}/stop",
        {**bearer(alice), "Sec-Fetch-Site": "cross-site"},
    )
    assert cross.status_code == 403 and "cross-site" in cross.json()["detail"]


# --- tokens stored in the database ----------------------------------------------------------
def hpo(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**{k: v for k, v in os.environ.items() if k != "HPO_TOKEN"}, "COLUMNS": "200", **env},
    )


def test_stored_tokens_from_hpo_token_create(live_service: LiveService, studies: Studies) -> None:
    db = {"HPO_DATABASE_URL": live_service.database_url}
    made = hpo("token", "create", "carol", **db)
    assert made.returncode == 0, made.stderr
    carol = made.stdout.strip().splitlines()[-1]
    assert carol.startswith("hpo_") and len(carol) > 40
    assert "carol" in made.stderr and carol not in made.stderr
    listed = hpo("token", "list", **db)
    assert listed.returncode == 0 and "carol" in listed.stdout and carol not in listed.stdout

    # Carol is a user: her own studies only, through the API and the CLI.
    mine = call(live_service, "GET", "/api/v1/studies", bearer(carol))
    assert mine.status_code == 200 and mine.json()["total"] == 0
    alices = f"/api/v1/studies/{studies.alice}"
    assert call(live_service, "GET", alices, bearer(carol)).status_code == 404
    shown = hpo("show", str(studies.alice), "--token", carol, HPO_URL=live_service.base_url)
    assert shown.returncode == 1 and "404" in shown.stderr
    listed_cli = hpo("studies", HPO_URL=live_service.base_url, HPO_TOKEN=carol)
    assert listed_cli.returncode == 0 and "0 of 0" in listed_cli.stdout

    # An admin token from the database sees alice's study.
    ops = hpo("token", "create", "ops", "--admin", **db).stdout.strip().splitlines()[-1]
    assert call(live_service, "GET", alices, bearer(ops)).status_code == 200

    # Revoked: refused within the authenticator's cache time.
    token_id = made.stderr.split("token ")[1].split()[0]  # "token 3 for carol (user)..."
    assert hpo("token", "revoke", token_id, **db).returncode == 0
    deadline = time.monotonic() + 20
    while call(live_service, "GET", "/api/v1/studies", bearer(carol)).status_code != 401:
        assert time.monotonic() < deadline, "a revoked token still works"
        time.sleep(0.5)
    assert hpo("token", "create", "not a name", **db).returncode == 1
