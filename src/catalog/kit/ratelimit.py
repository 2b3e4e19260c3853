"""Rate limiting with the `limits` library: Redis storage in the production profile, process
memory in the embedded one. Results are kept on the request so a middleware can add the
`RateLimit-*` headers to whatever response is sent."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from redis.asyncio import Redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catalog.config import Settings
from catalog.errors import CatalogError, ServiceUnavailable
from catalog.kit import metrics

log = structlog.get_logger(__name__)


class TooManyRequests(CatalogError):
    status = 429
    title = "Too Many Requests"


class RateLimitUnavailable(ServiceUnavailable):
    """The rate-limit storage failed and limits are configured to fail closed."""


@dataclass(frozen=True, slots=True)
class RateLimitResult:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int  # seconds until the window resets

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_after),
        }


class RateLimiter:
    """Strict limits (login, registration) exact in Redis through `limits`; general limits
    counted in process and reconciled in the background (`BudgetRateLimiter`)."""

    def __init__(self, settings: Settings, redis: Redis | None = None) -> None:
        from catalog.kit.budget import BudgetRateLimiter

        self.enabled = settings.rate_limit_enabled
        self.fail_open = settings.rate_limit_fail_open
        storage: Storage
        if settings.redis_url:
            storage = RedisStorage(
                f"async+{settings.redis_url}",
                implementation="redispy",
                key_prefix=f"{settings.redis_prefix}rl",
                socket_timeout=1.0,
                socket_connect_timeout=1.0,
            )
        else:
            storage = MemoryStorage()
        self.storage = storage
        self._strategy = FixedWindowRateLimiter(storage)
        self.anonymous = parse(settings.rate_limit_anonymous)
        self.authenticated = parse(settings.rate_limit_authenticated)
        self.auth = parse(settings.rate_limit_auth)
        self.login_per_account = parse(settings.rate_limit_login_per_account)
        self.budget = BudgetRateLimiter(
            redis, settings.redis_prefix, fail_open=settings.rate_limit_fail_open
        )

    def start(self) -> None:
        self.budget.start()

    async def close(self) -> None:
        """Release the storage's connections (Redis)."""
        await self.budget.close()
        bridge = getattr(self.storage, "bridge", None)
        client = getattr(bridge, "storage", None)
        if client is not None and hasattr(client, "aclose"):
            await client.aclose()

    async def hit(self, item: RateLimitItem, *identifiers: str) -> RateLimitResult | None:
        """Count one request; None when limiting is off or the storage failed open."""
        if not self.enabled:
            return None
        try:
            allowed = await self._strategy.hit(item, *identifiers)
            stats = await self._strategy.get_window_stats(item, *identifiers)
        except Exception as exc:
            if self.fail_open:
                log.warning("rate_limit_storage_unavailable", error=str(exc))
                return None
            raise RateLimitUnavailable("Rate limiting is temporarily unavailable") from exc
        reset_after = max(0, math.ceil(stats.reset_time - time.time()))
        return RateLimitResult(allowed, item.amount, max(0, stats.remaining), reset_after)

    async def enforce_general(self, scope: Scope, item: RateLimitItem, *identifiers: str) -> None:
        """The general limit, without a Redis round trip on the common path."""
        if not self.enabled:
            return
        self._apply(scope, item, await self.budget.hit(item, *identifiers), identifiers[0])

    async def enforce(self, scope: Scope, item: RateLimitItem, *identifiers: str) -> None:
        """Count the request exactly and raise 429 when over the limit."""
        result = await self.hit(item, *identifiers)
        if result is None:
            return
        self._apply(scope, item, result, identifiers[0])

    @staticmethod
    def _apply(scope: Scope, item: RateLimitItem, result: RateLimitResult, limit: str) -> None:
        """Keep the tightest result of this request for the response headers; 429 if denied."""
        state = scope.setdefault("state", {})
        current: RateLimitResult | None = state.get("ratelimit")
        if current is None or result.remaining < current.remaining or not result.allowed:
            state["ratelimit"] = result
        if not result.allowed:
            metrics.rate_limited(limit)
            raise TooManyRequests(
                f"Rate limit of {item} exceeded; retry in {result.reset_after} s",
                headers={**result.headers(), "Retry-After": str(max(1, result.reset_after))},
            )


class RateLimitHeadersMiddleware:
    """Adds `RateLimit-*` headers when a limit was checked for this request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                result: RateLimitResult | None = scope.get("state", {}).get("ratelimit")
                if result is not None:
                    existing = {k.lower() for k, _ in message.get("headers", [])}
                    extra = [
                        (k.lower().encode(), v.encode())
                        for k, v in result.headers().items()
                        if k.lower().encode() not in existing
                    ]
                    message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_wrapper)
