"""What stands before the routes: the request body limit and the API key, as ASGI layers.

Both answer with OpenAI's error object before the route reads anything, so a refused
client costs the server neither memory nor the model's time.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

from charlm.serving.protocol import error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def send_error(
    send: Send, status: int, message: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps(error_body(message, status)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """413 for a body over ``limit`` bytes: at once when its Content-Length says so (nothing
    of it is read), else as soon as the bytes received pass the limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit():
            await send_error(send, 400, "the request's Content-Length is not a number")
            return
        if int(length) > self.limit:
            message = f"the request body is {int(length)} bytes; the limit is {self.limit}"
            await send_error(send, 413, message)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:  # a chunked body: no length was declared
                raise HTTPException(413, f"the request body is over the limit of {self.limit}")
            return message

        await self.app(scope, counted, send)


class ApiKey:
    """With a key set, the API (/v1/...) needs ``Authorization: Bearer KEY``; the page and
    /healthz stay open (the page asks for the key; a load balancer checks health without it)."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app, self.key = app, f"Bearer {key}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.key):
                await send_error(
                    send,
                    401,
                    "this server needs an API key: send the header 'Authorization: Bearer KEY'",
                    {"WWW-Authenticate": "Bearer"},
                )
                return
        await self.app(scope, receive, send)
