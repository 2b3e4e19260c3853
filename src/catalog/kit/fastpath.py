"""The hot read paths answered before routing: anonymous `GET /api/v1/products/{id}` and
`GET /api/v1/products?...` (cache hit or miss), and suggestions already in the cache.

Routing and dependency resolution cost several times what these reads themselves cost on a
small machine (a cache hit is a dictionary lookup; a miss is one asyncpg statement). This pure
ASGI middleware sits innermost, so request ids, access logs, security and rate-limit headers
still apply, and it gives the same answers as the routers: the same cache keys, the same
product reads (`app.state.product_reads`), the same headers and errors. It only takes requests
it fully understands: anonymous, and for lists only query strings whose every parameter is
known, given once and plainly valid. Anything else (credentials, an unknown or repeated
parameter, a value the router's validation might see differently) goes on to the router, which
is the reference behaviour and answers with its own validation errors.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from catalog.analytics.views import viewed_early
from catalog.auth.principal import ANONYMOUS
from catalog.errors import CatalogError, problem_response, unavailable_response
from catalog.kit.cache import Cached, ReadCache
from catalog.kit.clientip import client_ip
from catalog.kit.http import PRIVATE_CACHE, PUBLIC_CACHE, etag_for, fingerprint
from catalog.kit.invalidation import PRODUCTS, REFS, SEARCH, product_ns
from catalog.models import ProductStatus
from catalog.products.service import ProductFilters, ProductSort

_PRODUCT_PATH = re.compile(r"^/api/v1/products/([0-9a-fA-F-]{32,36})$")
_LIST_PATH = "/api/v1/products"
_SUGGEST_PATH = "/api/v1/search/suggest"
_CREDENTIAL_HEADERS = (b"authorization", b"x-api-key")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_PRICE = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,4})?$")
_LIMIT = re.compile(r"^[1-9][0-9]{0,3}$")
_STATUSES = frozenset(s.value for s in ProductStatus)
_SORTS = {s.value: s for s in ProductSort}
_BOOLS = {"true": True, "false": False}


_Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]


class _Defer(Exception):
    """The request is not one the fast path answers; the router will."""


def _list_query(
    items: list[tuple[str, str]], default_size: int, max_size: int
) -> tuple[ProductFilters, ProductSort, int, str | None]:
    values: dict[str, str] = {}
    for name, value in items:
        if name in values:
            raise _Defer
        values[name] = value
    try:
        limit = values.pop("limit", None)
        if limit is not None and not (_LIMIT.match(limit) and int(limit) <= 1000):
            raise _Defer
        cursor = values.pop("cursor", None)
        if cursor is not None and len(cursor) > 512:
            raise _Defer
        ids: dict[str, uuid.UUID | None] = {}
        for name in ("category_id", "brand_id"):
            raw = values.pop(name, None)
            if raw is not None and not _UUID.match(raw):
                raise _Defer
            ids[name] = uuid.UUID(raw) if raw is not None else None
        prices: dict[str, Decimal | None] = {}
        for name in ("price_min", "price_max"):
            raw = values.pop(name, None)
            if raw is not None and not _PRICE.match(raw):
                raise _Defer
            prices[name] = Decimal(raw) if raw is not None else None
        status = values.pop("status", None)
        if status is not None and status not in _STATUSES:
            raise _Defer
        in_stock_raw = values.pop("in_stock", None)
        if in_stock_raw is not None and in_stock_raw not in _BOOLS:
            raise _Defer
        sort = _SORTS[values.pop("sort", ProductSort.created_at_desc.value)]
    except (KeyError, ValueError) as exc:
        raise _Defer from exc
    if values:
        raise _Defer
    filters = ProductFilters(
        category_id=ids["category_id"],
        brand_id=ids["brand_id"],
        status=ProductStatus(status) if status is not None else None,
        price_min=prices["price_min"],
        price_max=prices["price_max"],
        in_stock=_BOOLS[in_stock_raw] if in_stock_raw is not None else None,
    )
    size = min(int(limit) if limit is not None else default_size, max_size)
    return filters, sort, size, cursor


def _tags(header: str | None) -> list[str]:
    return [t.strip().removeprefix("W/") for t in (header or "").split(",") if t.strip()]


class FastReadMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        match = _PRODUCT_PATH.match(path) if path != _LIST_PATH else None
        if match is None and path not in (_LIST_PATH, _SUGGEST_PATH):
            await self.app(scope, receive, send)
            return
        if_none_match = None
        for name, value in scope["headers"]:
            if name in _CREDENTIAL_HEADERS:
                await self.app(scope, receive, send)
                return
            if name == b"if-none-match":
                if_none_match = value.decode("latin-1")
        state: Any = scope["app"].state
        try:
            if match is not None:
                answer = self._product(state, match.group(1), scope)
            elif path == _LIST_PATH:
                answer = self._list(state, scope)
            else:
                answer = await self._suggest_hit(state, scope)
        except _Defer:
            await self.app(scope, receive, send)
            return
        try:
            limiter = state.ratelimiter
            ip = client_ip(scope, state.trusted_proxies)
            await limiter.enforce_general(scope, limiter.anonymous, "ip", ip)
            status, body, headers = await answer
        except CatalogError as exc:
            answer.close()
            response = problem_response(
                exc.status,
                title=exc.title,
                detail=exc.detail,
                errors=exc.errors,
                headers=exc.headers,
            )
            await response(scope, receive, send)
            return
        except Exception as exc:
            answer.close()
            # Out here no exception handler answers for the app: a database that is down or
            # busy is a 503 as on every other route.
            unavailable = unavailable_response(exc, scope.get("state", {}).get("request_id"))
            if unavailable is None:
                raise
            await unavailable(scope, receive, send)
            return
        viewed_early(state, scope, match)  # analytics: an in-memory append
        etag = next((v for k, v in headers if k == b"etag"), None)
        if etag is not None and if_none_match:
            tags = _tags(if_none_match)
            if etag.decode() in tags or "*" in tags:
                await send({"type": "http.response.start", "status": 304, "headers": headers})
                await send({"type": "http.response.body", "body": b""})
                return
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    def _product(self, state: Any, raw_id: str, scope: Scope) -> Coroutine[Any, Any, _Answer]:
        if scope.get("query_string"):
            raise _Defer
        try:
            product_id = uuid.UUID(raw_id)
        except ValueError as exc:
            raise _Defer from exc
        scope["route_template"] = "/api/v1/products/{product_id}"
        read_cache: ReadCache | None = state.read_cache
        reads = state.product_reads

        async def compute() -> bytes:
            body: bytes = await reads.product_body(ANONYMOUS, product_id=product_id)
            return body

        async def answer() -> _Answer:
            if read_cache is not None:
                key = await read_cache.key(
                    "product", [product_ns(product_id), REFS], str(product_id)
                )
                if key is not None:
                    value = await self._cached(read_cache, "product", key, compute, state)
                    return 200, value.body, _headers(value.etag, PUBLIC_CACHE)
            body = await compute()
            return 200, body, _headers(etag_for(body), PUBLIC_CACHE)

        return answer()

    def _list(self, state: Any, scope: Scope) -> Coroutine[Any, Any, _Answer]:
        settings = state.settings
        items = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        filters, sort, size, cursor = _list_query(
            items, settings.default_page_size, settings.max_page_size
        )
        scope["route_template"] = _LIST_PATH
        read_cache: ReadCache | None = state.read_cache
        reads = state.product_reads

        async def compute() -> bytes:
            body: bytes = await reads.page_body(
                ANONYMOUS, filters, sort=sort, limit=size, cursor=cursor
            )
            return body

        async def answer() -> _Answer:
            if read_cache is not None:
                key = await read_cache.key("products", [PRODUCTS, REFS], fingerprint(items))
                if key is not None:
                    value = await self._cached(read_cache, "products", key, compute, state)
                    return 200, value.body, _headers(value.etag, PUBLIC_CACHE)
            return 200, await compute(), [(b"cache-control", PRIVATE_CACHE.encode())]

        return answer()

    async def _suggest_hit(self, state: Any, scope: Scope) -> Coroutine[Any, Any, _Answer]:
        """Suggestions already in the cache (stored there by the router, after validation, under
        the same key); a miss goes to the router."""
        read_cache: ReadCache | None = state.read_cache
        if read_cache is None:
            raise _Defer
        items = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        key = await read_cache.key("suggest", [SEARCH], fingerprint(items))
        value = await read_cache.cache.get(key) if key is not None else None
        if value is None:
            raise _Defer
        read_cache.cache.stats.hit("suggest")
        scope["route_template"] = _SUGGEST_PATH

        async def answer() -> _Answer:
            return 200, value.body, _headers(value.etag, PUBLIC_CACHE)

        return answer()

    @staticmethod
    async def _cached(
        read_cache: ReadCache,
        name: str,
        key: str,
        compute: Callable[[], Awaitable[bytes]],
        state: Any,
    ) -> Cached:
        settings = state.settings
        ttl = settings.cache_ttl_seconds if name == "product" else settings.cache_list_ttl_seconds
        return await read_cache.fetch(name, key, compute, ttl)


def _headers(etag: str, cache_control: str) -> list[tuple[bytes, bytes]]:
    return [(b"etag", etag.encode()), (b"cache-control", cache_control.encode())]
