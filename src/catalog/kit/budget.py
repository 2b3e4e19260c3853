"""General rate limits counted in process, with budget leased from Redis.

A Redis round trip per request costs more than the request itself on a hot read path, so the
general per-key / per-user / per-IP limits (fixed windows, the same `limits` items as the
strict limiter) are admitted from a local *lease*: a worker takes a slice of the window's
remaining budget with one `INCRBY` (about a half of the remainder divided by the number of
active workers, and never more than 5% of the limit), admits requests from it without talking
to Redis, and leases again when it is spent. Leases are granted atomically by Redis, so all
workers together never admit more than the limit; the price is that budget leased by one worker
and not used yet is not available to the others (at most 5% of the limit per worker), and a
worker that stops gives its unused leases back. Without Redis (embedded profile) the count is
exact.

Login and registration keep the exact, per-request `limits` strategy (see `ratelimit.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from dataclasses import dataclass, field

import structlog
from limits import RateLimitItem
from redis.asyncio import Redis

from catalog.kit.ratelimit import RateLimitResult, RateLimitUnavailable

log = structlog.get_logger(__name__)

# The largest lease, as a share of the limit: what one worker can hold unused at a time.
MAX_LEASE_SHARE = 0.05


@dataclass
class _Counter:
    limit: int
    expires_at: float  # end of the window (epoch seconds)
    leased: int = 0  # budget taken from Redis by all workers, as of our last lease
    lease_left: int = 0  # slots of our lease not used yet
    used: int = 0  # admitted here (exact count when there is no Redis)
    # One lease request at a time: concurrent requests wait for it instead of each leasing
    # a slice (which would exhaust the budget with leases nobody uses).
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class BudgetRateLimiter:
    def __init__(
        self,
        redis: Redis | None,
        prefix: str,
        *,
        sync_interval: float = 1.0,
        fail_open: bool = True,
    ) -> None:
        self._redis = redis
        self._prefix = prefix + "rlb:"
        self._workers_key = prefix + "rlb-workers"
        self._worker_id = uuid.uuid4().hex
        self._interval = sync_interval
        self._fail_open = fail_open
        self._counters: dict[str, _Counter] = {}
        self._workers = 1
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def _counter(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> tuple[str, _Counter]:
        period = item.get_expiry()
        now = time.time()
        window = int(now // period)
        key = f"{item.key_for(*identifiers)}/{window}"
        counter = self._counters.get(key)
        if counter is None:
            counter = _Counter(limit=item.amount, expires_at=(window + 1) * period)
            self._counters[key] = counter
        return key, counter

    def _lease_size(self, counter: _Counter) -> int:
        remaining = max(0, counter.limit - counter.leased)
        share = math.ceil(remaining / (2 * max(1, self._workers)))
        return max(1, min(share, math.ceil(counter.limit * MAX_LEASE_SHARE)))

    async def hit(self, item: RateLimitItem, *identifiers: str) -> RateLimitResult:
        key, counter = self._counter(item, identifiers)
        reset_after = max(0, math.ceil(counter.expires_at - time.time()))
        if self._redis is None:
            if counter.used >= counter.limit:
                return RateLimitResult(False, counter.limit, 0, reset_after)
            counter.used += 1
            return RateLimitResult(True, counter.limit, counter.limit - counter.used, reset_after)
        if counter.lease_left <= 0:
            async with counter.lock:
                if counter.lease_left <= 0:
                    if counter.leased >= counter.limit:
                        return RateLimitResult(False, counter.limit, 0, reset_after)
                    try:
                        await self._lease(key, counter)
                    except Exception as exc:
                        log.warning("rate_limit_storage_unavailable", error=str(exc))
                        if not self._fail_open:
                            raise RateLimitUnavailable(
                                "Rate limiting is temporarily unavailable"
                            ) from exc
                        # Fail open, but never beyond what this worker alone has admitted.
                        if counter.used >= counter.limit:
                            return RateLimitResult(False, counter.limit, 0, reset_after)
                        counter.used += 1
                        return RateLimitResult(True, counter.limit, 0, reset_after)
            if counter.lease_left <= 0:
                return RateLimitResult(False, counter.limit, 0, reset_after)
        counter.lease_left -= 1
        counter.used += 1
        remaining = max(0, counter.limit - counter.leased) + counter.lease_left
        return RateLimitResult(True, counter.limit, remaining, reset_after)

    async def _lease(self, key: str, counter: _Counter) -> None:
        assert self._redis is not None
        size = self._lease_size(counter)
        ttl = max(1, math.ceil(counter.expires_at - time.time()) + 1)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.incrby(self._prefix + key, size)
            pipe.expire(self._prefix + key, ttl)
            total, _ = await pipe.execute()
        total = int(total)
        granted = max(0, min(size, size - (total - counter.limit)))
        counter.leased = min(total, counter.limit)
        counter.lease_left += granted

    async def sync(self) -> None:
        """Drop finished windows and learn how many workers share the budget."""
        now = time.time()
        for key in [k for k, c in self._counters.items() if c.expires_at <= now]:
            del self._counters[key]
        if self._redis is None:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self._workers_key, {self._worker_id: now})
            pipe.zremrangebyscore(self._workers_key, 0, now - 5)
            pipe.zcard(self._workers_key)
            pipe.expire(self._workers_key, 60)
            results = await pipe.execute()
        self._workers = max(1, int(results[2]))

    def start(self) -> None:
        if self._task is None and self._redis is not None:
            self._task = asyncio.create_task(self._run(), name="rate-limit-sync")

    async def _run(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self._interval)
            try:
                await self.sync()
            except Exception as exc:
                log.warning("rate_limit_sync_failed", error=str(exc))

    async def close(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._give_back()
            with contextlib.suppress(Exception):
                await self._redis.zrem(self._workers_key, self._worker_id)

    async def _give_back(self) -> None:
        """Return the unused part of each current lease, so a restarted or scaled-down fleet
        does not lose the budget this worker held."""
        assert self._redis is not None
        now = time.time()
        unused = {
            key: counter.lease_left
            for key, counter in self._counters.items()
            if counter.lease_left > 0 and counter.expires_at > now
        }
        if not unused:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, amount in unused.items():
                pipe.decrby(self._prefix + key, amount)
            await pipe.execute()
        for key in unused:
            self._counters[key].lease_left = 0
