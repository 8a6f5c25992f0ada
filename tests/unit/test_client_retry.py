"""The client repeats a request the server dropped on a kept-alive connection, when the
request may be repeated (fake transport: the race itself needs a stalled server)."""

from __future__ import annotations

import httpx
import pytest

from service.client import HpoClient, ServiceUnreachable

DROPS = [
    httpx.RemoteProtocolError("Server disconnected without sending a response."),
    httpx.ReadError("[Errno 104] Connection reset by peer"),
]


def dropping_once(calls: list[str], drop: Exception = DROPS[0]) -> httpx.MockTransport:
    """Drops the first request as a server closing its idle connection does."""

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) == 1:
            raise drop
        return httpx.Response(204)

    return httpx.MockTransport(handle)


@pytest.mark.parametrize("drop", DROPS, ids=["disconnected", "reset"])
def test_a_delete_dropped_once_is_sent_again(drop: Exception) -> None:
    calls: list[str] = []
    transport = dropping_once(calls, drop)
    with HpoClient("http://hpo.test", token="t", transport=transport) as client:
        client.delete(7)
    assert calls == ["DELETE", "DELETE"]


def test_a_post_dropped_is_not_sent_again() -> None:
    calls: list[str] = []
    client = HpoClient("http://hpo.test", token="t", transport=dropping_once(calls))
    with client, pytest.raises(ServiceUnreachable, match="Server disconnected"):
        client.stop(7)
    assert calls == ["POST"]


def test_a_request_dropped_twice_is_reported() -> None:
    calls: list[str] = []

    def always_drop(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")

    transport = httpx.MockTransport(always_drop)
    client = HpoClient("http://hpo.test", token="t", transport=transport)
    with client, pytest.raises(ServiceUnreachable, match="no hpo service answers at http://hpo"):
        client.study(7)
    assert calls == ["GET", "GET"]
