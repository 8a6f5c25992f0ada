"""Request body size limit: 413 with a JSON detail, before an oversized body is read whole.

A pure ASGI middleware: a ``Content-Length`` over the limit is answered at once, without
reading the body; a body without one (chunked) is counted as it streams in, and the read
that crosses the limit raises :class:`BodyTooLarge` (answered 413 by the error handlers).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    """A request body over the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is over the limit of {limit} bytes")
        self.limit = limit


def body_too_large_body(limit: int) -> bytes:
    return json.dumps({"detail": str(BodyTooLarge(limit))}).encode()


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _send_413(send, limit)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            # Normally answered by the app's error handler; this covers reads outside it.
            if started:
                raise
            await _send_413(send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed one before we see it
    return None


async def _send_413(send: Send, limit: int) -> None:
    body = body_too_large_body(limit)
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def read_document(request: Request) -> dict[str, Any]:
    """A create request's body (JSON or YAML) as a mapping. Raises BodyTooLarge,
    InvalidSpec (not a mapping, not JSON/YAML)."""
    from fastapi.concurrency import run_in_threadpool

    from service.spec import parse_spec_document

    body = await request.body()  # bounded by the BodySizeLimit middleware
    limit = request.app.state.settings.max_body_bytes
    if len(body) > limit:
        raise BodyTooLarge(limit)
    return await run_in_threadpool(parse_spec_document, body, request.headers.get("content-type"))
