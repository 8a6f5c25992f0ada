"""The API's limits on the live service (real HTTP): bodies over HPO_MAX_BODY_BYTES are
413 whether declared or streamed, answered without waiting for the rest; specs over a
bound are 422 naming the field; nothing is stored either way."""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from service.spec import MAX_DEPTH, MAX_LIST_LENGTH, MAX_SEARCH_SPACE_PARAMS
from tests.fixtures.service import LiveService

pytestmark = pytest.mark.ray

LIMIT = 1_048_576  # the default HPO_MAX_BODY_BYTES


def total(live_service: LiveService) -> int:
    answer = httpx.get(f"{live_service.base_url}/api/v1/studies", headers=live_service.headers())
    return int(answer.json()["total"])


def raw_exchange(live_service: LiveService, head: str, chunks: list[bytes]) -> bytes:
    """Send a request head and then body chunks (as far as the server lets us), and
    return what the server answered."""
    address = urlsplit(live_service.base_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(head.encode())
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except OSError:  # the server answered and closed: it read no further
                break
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            try:
                data = sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            answer += data
        return answer


def request_head(live_service: LiveService, extra: str) -> str:
    token = live_service.token()
    return (
        "POST /api/v1/studies HTTP/1.1\r\nHost: localhost\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n{extra}\r\n"
    )


def test_a_declared_length_over_the_limit_is_413_before_the_body(
    live_service: LiveService,
) -> None:
    before = total(live_service)
    # A gigabyte is announced and never sent: the answer cannot wait for it (the socket
    # gives up after 10 s).
    answer = raw_exchange(
        live_service, request_head(live_service, "Content-Length: 1000000000\r\n"), []
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert str(LIMIT) in body["detail"]
    assert total(live_service) == before


def test_a_chunked_body_over_the_limit_is_413(live_service: LiveService) -> None:
    before = total(live_service)
    piece = b"#" * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    chunks = [chunk] * (2 * LIMIT // len(piece)) + [b"0\r\n\r\n"]
    answer = raw_exchange(
        live_service, request_head(live_service, "Transfer-Encoding: chunked\r\n"), chunks
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert "detail" in json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert total(live_service) == before


def uniform() -> dict[str, Any]:
    return {"type": "uniform", "low": 0, "high": 1}


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def spec(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": "limits",
        "trainable": "branin",
        "search_space": {"x1": uniform()},
        "num_samples": 1,
        "config": {"epochs": 1},
    }
    return {**document, **overrides}


BRANCHES = [{"value": i, **{f"p{j}": uniform() for j in range(9)}} for i in range(29)]


@pytest.mark.parametrize(
    ("document", "loc", "words"),
    [
        (
            spec(search_space={f"p{i}": uniform() for i in range(MAX_SEARCH_SPACE_PARAMS + 1)}),
            ["body", "search_space"],
            f"at most {MAX_SEARCH_SPACE_PARAMS}",
        ),
        (
            spec(search_space={"arch": {"type": "choice", "values": BRANCHES}}),
            ["body", "search_space"],
            "262 parameters",
        ),
        (
            spec(
                search_space={"w": {"type": "choice", "values": list(range(MAX_LIST_LENGTH + 1))}}
            ),
            ["body", "search_space", "w", "values"],
            f"at most {MAX_LIST_LENGTH}",
        ),
        (spec(config={"k" * 201: 1}), ["body", "config", "k" * 50 + "…"], "at most 200"),
        (spec(config={"notes": "x" * 10_001}), ["body", "config", "notes"], "at most 10000"),
        (
            spec(config={"deep": deep(MAX_DEPTH)}),
            ["body", "config", "deep", *["a"] * (MAX_DEPTH - 2)],
            "nested too deeply",
        ),
        (spec(name="n" * 201), ["body", "name"], "at most 200"),
        (spec(trainable="t" * 101), ["body", "trainable"], "at most 100"),
        (spec(metric="m" * 101), ["body", "metric"], "at most 100"),
        (spec(num_samples=100_001), ["body", "num_samples"], "100000"),
    ],
)
def test_a_spec_over_a_bound_is_422_with_its_path(
    live_service: LiveService, document: dict[str, Any], loc: list[Any], words: str
) -> None:
    before = total(live_service)
    answer = httpx.post(
        f"{live_service.base_url}/api/v1/studies",
        json=document,
        headers=live_service.headers(),
        timeout=30,
    )
    assert answer.status_code == 422, answer.text[:500]
    problems = answer.json()["detail"]
    assert any(p["loc"] == loc and words in p["msg"] for p in problems), problems
    assert total(live_service) == before


def test_a_yaml_alias_bomb_is_422_quickly(live_service: LiveService) -> None:
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for i in range(1, 9):  # 10**9 values once expanded, in 400 bytes
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    body = "name: bomb\ntrainable: branin\nconfig:\n" + "\n".join("  " + x for x in lines)
    answer = httpx.post(  # expanded, it would take hours to walk: 10 s is plenty
        f"{live_service.base_url}/api/v1/studies",
        content=body.encode(),
        headers={**live_service.headers(), "Content-Type": "application/yaml"},
        timeout=10,
    )
    assert answer.status_code == 422
    assert "more than" in json.dumps(answer.json()["detail"])
