"""Authentication pieces without a server: token settings, the token file, the client's
token, the rate limiter, the authenticator's decisions, and that every route is guarded."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from service.api.app import create_app
from service.auth import (
    DEFAULT_PRINCIPAL,
    AuthConfigError,
    Principal,
    client_token,
    ensure_token_file,
    hash_token,
    is_loopback,
    parse_api_tokens,
    split_url_credentials,
)
from service.auth.authenticator import build_authenticator
from service.auth.ratelimit import RateLimiter
from service.settings import Settings
from service.store import StudyStore, open_store

STRONG_A = "a" * 12 + "-strong-token-a"
STRONG_B = "b" * 12 + "-strong-token-b"
OPEN_ROUTES = {"/healthz", "/readyz", "/metrics"}


# --- HPO_API_TOKENS --------------------------------------------------------------------
def test_parse_tokens_with_principals_and_admins() -> None:
    entries = parse_api_tokens(f" {STRONG_A}=alice , {STRONG_B}=ops:admin,bare-token-0123456789")
    assert [(e.token, e.principal) for e in entries] == [
        (STRONG_A, Principal("alice", is_admin=False)),
        (STRONG_B, Principal("ops", is_admin=True)),
        ("bare-token-0123456789", Principal(DEFAULT_PRINCIPAL, is_admin=True)),
    ]
    assert parse_api_tokens("") == [] and parse_api_tokens("  ") == []
    assert STRONG_A not in repr(entries)  # tokens never show in reprs


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a-token-of-some-length=alice,", "entry 2 is empty"),
        (",a-token-of-some-length", "entry 1 is empty"),
        ("=alice", "entry 1 has an empty token"),
        ("tok en=alice", "white space"),
        ("a-token-of-some-length=", "not a principal name"),
        ("a-token-of-some-length=al ice", "not a principal name"),
        ("a-token-of-some-length=alice:root", "the only role is 'admin'"),
        ("a-token-of-some-length=a,a-token-of-some-length=b", "entry 2 repeats"),
    ],
)
def test_malformed_tokens_are_refused_by_position(text: str, message: str) -> None:
    with pytest.raises(AuthConfigError) as raised:
        parse_api_tokens(text)
    assert message in str(raised.value)
    assert "a-token-of-some-length" not in str(raised.value)  # never echo a secret


def test_settings_refuse_weak_or_default_secrets_outside_development() -> None:
    for weak in ("changeme=alice", "tiny-tok=alice", "PassWord"):
        with pytest.raises(ValueError) as raised:
            Settings(api_tokens=SecretStr(weak))
        assert "HPO_ENV=development" in str(raised.value)
        assert weak.split("=")[0] not in str(raised.value)
    with pytest.raises(ValueError, match="database password"):
        Settings(database_url="postgresql+psycopg://hpo:changeme@db/hpo")
    with pytest.raises(ValueError, match="empty"):  # empty tokens: never, not even in dev
        Settings(api_tokens=SecretStr(f"{STRONG_A}=alice,,"), env="development")
    with pytest.warns(UserWarning, match="shorter than"):
        settings = Settings(api_tokens=SecretStr("short=alice"), env="development")
    assert settings.token_entries[0].principal.name == "alice"
    strong = Settings(api_tokens=SecretStr(f"{STRONG_A}=alice"), env="PRODUCTION")  # type: ignore[arg-type]
    assert strong.env == "production" and STRONG_A not in repr(strong)


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPO_API_TOKENS", f"{STRONG_A}=alice:admin")
    monkeypatch.setenv("HPO_STUDY_CREATE_PER_MINUTE", "6")
    settings = Settings()
    assert settings.token_entries[0].principal == Principal("alice", is_admin=True)
    assert settings.study_create_per_minute == 6.0
    monkeypatch.setenv("HPO_API_TOKENS", "changeme")
    with pytest.raises(ValueError):
        Settings()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("hpo.example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


# --- the token file and the client's token ----------------------------------------------
def test_token_file_is_made_once_with_user_only_permissions(tmp_path: Path) -> None:
    path = tmp_path / "home" / "api_token"
    first = ensure_token_file(path)
    assert len(first) >= 40 and path.read_text().strip() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_token_file(path) == first  # the next start reuses it
    path.chmod(0o644)
    assert ensure_token_file(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # made private again
    assert [p.name for p in path.parent.iterdir()] == ["api_token"]  # no temp files left


def test_concurrent_first_starts_agree_on_one_token(tmp_path: Path) -> None:
    path = tmp_path / "api_token"
    found: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        found.append(ensure_token_file(path))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(found)) == 1 and path.read_text().strip() == found[0]


def test_client_token_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HPO_TOKEN", raising=False)
    monkeypatch.setenv("HPO_HOME", str(tmp_path))
    assert client_token() == ("", "none")
    (tmp_path / "api_token").write_text("from-file\n")
    assert client_token() == ("from-file", str(tmp_path / "api_token"))
    monkeypatch.setenv("HPO_TOKEN", "from-env")
    assert client_token() == ("from-env", "HPO_TOKEN")
    assert client_token("explicit") == ("explicit", "explicit")


def test_url_credentials_are_split_off() -> None:
    assert split_url_credentials("http://127.0.0.1:8000") == ("http://127.0.0.1:8000", None)
    assert split_url_credentials("http://hpo:s3cret@h:1/x") == ("http://h:1/x", "s3cret")
    assert split_url_credentials("https://s3cret@h") == ("https://h", "s3cret")
    assert split_url_credentials("http://:a%2Fb@h") == ("http://h", "a/b")


# --- rate limit ---------------------------------------------------------------------------
def test_rate_limiter_is_a_token_bucket_per_key() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=3, clock=lambda: now[0])
    assert [limiter.acquire("alice") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("alice") == pytest.approx(1.0)  # one a second
    assert limiter.acquire("bob") == 0.0  # buckets are per principal
    now[0] = 0.5
    assert limiter.acquire("alice") == pytest.approx(0.5)
    now[0] = 1.0
    assert limiter.acquire("alice") == 0.0
    now[0] = 100.0  # refills to the burst, not beyond
    assert [limiter.acquire("alice") for _ in range(4)][-1] > 0
    off = RateLimiter(per_minute=0, burst=1)
    assert all(off.acquire("x") == 0.0 for _ in range(100))


# --- the authenticator ----------------------------------------------------------------------
@pytest.fixture
def store(tmp_path: Path) -> Iterator[StudyStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'db' / 'hpo.db'}")
    yield opened
    opened.close()


def test_configured_tokens_and_stored_tokens(tmp_path: Path, store: StudyStore) -> None:
    settings = Settings(home=tmp_path, api_tokens=SecretStr(f"{STRONG_A}=alice"))
    store.add_api_token(token_hash=hash_token(STRONG_B), principal="carol", is_admin=True)
    auth = build_authenticator(settings, store)
    assert auth.authenticate(STRONG_A) == Principal("alice")
    assert auth.authenticate(STRONG_B) == Principal("carol", is_admin=True)
    assert auth.authenticate("") is None and auth.authenticate("nope") is None
    assert not settings.token_file.exists()  # configured tokens: no local token file


def test_embedded_default_generates_the_local_admin_token(
    tmp_path: Path, store: StudyStore
) -> None:
    settings = Settings(home=tmp_path)
    auth = build_authenticator(settings, store)
    token = settings.token_file.read_text().strip()
    assert auth.authenticate(token) == Principal(DEFAULT_PRINCIPAL, is_admin=True)
    assert stat.S_IMODE(os.stat(settings.token_file).st_mode) == 0o600


def test_never_open_beyond_loopback_without_tokens(tmp_path: Path, store: StudyStore) -> None:
    with pytest.raises(AuthConfigError, match="refusing to listen on 0.0.0.0"):
        build_authenticator(Settings(home=tmp_path, host="0.0.0.0"), store)
    assert not (tmp_path / "api_token").exists()
    # Development: the local token file guards it (with a warning), still never open.
    dev = build_authenticator(Settings(home=tmp_path, host="0.0.0.0", env="development"), store)
    assert dev.authenticate((tmp_path / "api_token").read_text().strip()) is not None
    assert dev.authenticate("") is None
    # Tokens in the settings or in the database make it fine.
    ok = Settings(home=tmp_path / "b", host="0.0.0.0", api_tokens=SecretStr(STRONG_A))
    assert build_authenticator(ok, store).authenticate(STRONG_A) is not None
    store.add_api_token(token_hash=hash_token(STRONG_B), principal="bob", is_admin=False)
    stored = build_authenticator(Settings(home=tmp_path / "c", host="0.0.0.0"), store)
    assert stored.authenticate(STRONG_B) == Principal("bob")


def test_revoked_stored_token_stops_working_after_the_cache(
    tmp_path: Path, store: StudyStore
) -> None:
    record = store.add_api_token(token_hash=hash_token(STRONG_B), principal="bob", is_admin=False)
    auth = build_authenticator(Settings(home=tmp_path), store)
    auth._cache_s = 0.0  # no reuse: every request reads the store
    assert auth.authenticate(STRONG_B) == Principal("bob")
    store.delete_api_token(record.id)
    assert auth.authenticate(STRONG_B) is None


# --- every route is guarded ------------------------------------------------------------------
PAGES = ["/", "/studies/1", "/static/app.js", "/docs", "/redoc"]


def test_every_route_but_the_probes_needs_a_token(tmp_path: Path) -> None:
    """Every operation of the OpenAPI document (so a new route is checked without being
    listed here) and every page answers 401 without a token, and not with a bad one."""
    from fastapi.testclient import TestClient

    app = create_app(Settings(home=tmp_path, ray_address="http://127.0.0.1:9"))
    with TestClient(app) as client:
        token = (tmp_path / "api_token").read_text().strip()
        schema = client.get("/openapi.json", headers={"Authorization": f"Bearer {token}"})
        operations = [
            (method.upper(), path.replace("{study_id}", "1").replace("{trial_id}", "t"))
            for path, item in schema.json()["paths"].items()
            for method in item
        ]
        assert ("POST", "/api/v1/studies") in operations and len(operations) >= 9
        for method, path in [*operations, ("GET", "/openapi.json")]:
            if path in OPEN_ROUTES:
                continue
            for headers in ({}, {"Authorization": "Bearer not-a-token"}):
                answer = client.request(method, path, headers=headers)
                assert answer.status_code == 401, (method, path, answer.text)
                assert answer.headers["www-authenticate"].startswith("Bearer")
                assert "detail" in answer.json()
        for path in PAGES:
            answer = client.get(path)
            assert answer.status_code == 401, path
            assert answer.headers["www-authenticate"].startswith("Basic")
        for path in OPEN_ROUTES:
            assert client.get(path).status_code in (200, 503), path  # 503: no Ray here
