"""The hot read path: anonymous `GET /api/v1/products/{id}` answered from the cache before
routing.

A cache hit needs none of what routing and dependency resolution provide (no session, no
principal, no validation beyond the id's shape), and on a small machine that machinery costs
several times the lookup itself. This pure ASGI middleware sits innermost, so request ids,
access logs, security and rate-limit headers still apply. It shares the router's cache keys;
a miss (or anything unusual: a query string, credentials, a malformed id) goes on to the router,
which computes and stores the value.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from catalog.errors import CatalogError, problem_response
from catalog.kit.cache import ReadCache
from catalog.kit.clientip import client_ip
from catalog.kit.http import PUBLIC_CACHE
from catalog.kit.invalidation import REFS, product_ns

_PRODUCT_PATH = re.compile(r"^/api/v1/products/([0-9a-fA-F-]{32,36})$")
_CREDENTIAL_HEADERS = (b"authorization", b"x-api-key")


class CachedProductReadMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or scope.get("query_string")
        ):
            await self.app(scope, receive, send)
            return
        match = _PRODUCT_PATH.match(scope["path"])
        state: Any = getattr(scope.get("app"), "state", None)
        read_cache: ReadCache | None = getattr(state, "read_cache", None)
        if match is None or read_cache is None:
            await self.app(scope, receive, send)
            return
        if_none_match = None
        for name, value in scope["headers"]:
            if name in _CREDENTIAL_HEADERS:
                await self.app(scope, receive, send)
                return
            if name == b"if-none-match":
                if_none_match = value.decode("latin-1")
        try:
            product_id = uuid.UUID(match.group(1))
        except ValueError:
            await self.app(scope, receive, send)
            return
        key = await read_cache.key("product", [product_ns(product_id), REFS], str(product_id))
        value = await read_cache.cache.get(key) if key is not None else None
        if value is None:
            await self.app(scope, receive, send)
            return
        limiter = state.ratelimiter
        try:
            ip = client_ip(scope, state.trusted_proxies)
            await limiter.enforce_general(scope, limiter.anonymous, "ip", ip)
        except CatalogError as exc:
            response = problem_response(
                exc.status, title=exc.title, detail=exc.detail, headers=exc.headers
            )
            await response(scope, receive, send)
            return
        read_cache.cache.stats.hit("product")
        headers = [
            (b"etag", value.etag.encode()),
            (b"cache-control", PUBLIC_CACHE.encode()),
        ]
        tags = [t.strip().removeprefix("W/") for t in (if_none_match or "").split(",")]
        if if_none_match and (value.etag in tags or "*" in tags):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(value.body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        body = b"" if scope["method"] == "HEAD" else value.body
        await send({"type": "http.response.body", "body": body})
