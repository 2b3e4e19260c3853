"""HTTP hardening as pure ASGI middleware: security headers and a request body size limit."""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catalog.errors import problem_response
from catalog.kit.clientip import Network, forwarded_proto


class SecurityHeadersMiddleware:
    """`hsts`: send Strict-Transport-Security on HTTPS requests, recognised by the request's own
    scheme or by `X-Forwarded-Proto: https` from a trusted proxy."""

    def __init__(self, app: ASGIApp, *, hsts: bool, trusted: list[Network] | None = None) -> None:
        self.app = app
        self.hsts = hsts
        self.trusted = trusted or []
        self.headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https" or (
            self.hsts and forwarded_proto(scope, self.trusted) == "https"
        )

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *self.headers]
                if https and self.hsts:
                    headers.append(
                        (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
                    )
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_wrapper)


class BodySizeLimitMiddleware:
    """413 for bodies over `max_bytes`: by `Content-Length` up front, and by counting the
    streamed chunks otherwise. `overrides` gives larger limits to paths (uploads): a string is a
    path prefix, a compiled pattern must match the whole path."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        overrides: dict[str | re.Pattern[str], int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.overrides = overrides or {}

    def _limit(self, path: str) -> int:
        for paths, limit in self.overrides.items():
            if isinstance(paths, re.Pattern):
                if paths.fullmatch(path):
                    return limit
            elif path.startswith(paths):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > limit:
                    await self._reject(scope, receive, send, limit)
                    return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the request: FastAPI passes HTTPException through unchanged,
                    # and the problem+json handler renders it.
                    raise HTTPException(
                        413, detail=f"The request body is larger than the limit of {limit} bytes"
                    )
            return message

        await self.app(scope, counting_receive, send)

    @staticmethod
    async def _reject(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem_response(
            413, detail=f"The request body is larger than the limit of {limit} bytes"
        )
        await response(scope, receive, send)
