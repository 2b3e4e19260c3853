"""The `Cache` seam: prepared response bytes with their ETag.

* `MemoryCache` (embedded profile): one process, exact invalidation.
* `RedisCache` (production profile): Redis shared by every worker, with a small in-process L1 in
  front so a hot read makes no Redis round trip. Writers delete keys / bump namespace
  generations in Redis and publish the change; every worker's listener applies it to its L1.
  While the listener is disconnected the L1 is bypassed (it could miss invalidations), and L1
  entries live at most `l1_ttl` seconds whatever happens.

Every key embeds *generations* (a counter per namespace: one per product, one per slug, one for
product lists, one for search, ...). A write bumps the generations it affects after it commits,
so every older key becomes unreachable at once, including a value computed from data read just
before the write and stored just after it. Old keys simply expire. A bump that cannot reach
Redis is retried until it does. Cache failures never fail a request: reads fall back to the
database.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import orjson
import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from catalog.kit import metrics

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Cached:
    body: bytes
    etag: str
    meta: str = ""  # small facts about the body its users need without parsing it

    def encode(self) -> bytes:
        return self.etag.encode() + b"\n" + self.meta.encode() + b"\n" + self.body

    @classmethod
    def decode(cls, raw: bytes) -> Cached:
        etag, _, rest = raw.partition(b"\n")
        meta, _, body = rest.partition(b"\n")
        return cls(body=body, etag=etag.decode(), meta=meta.decode())


class CacheStats:
    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.misses: dict[str, int] = {}

    def hit(self, name: str) -> None:
        self.hits[name] = self.hits.get(name, 0) + 1
        metrics.cache_hit(name)

    def miss(self, name: str) -> None:
        self.misses[name] = self.misses.get(name, 0) + 1
        metrics.cache_miss(name)


class Cache(Protocol):
    stats: CacheStats

    async def get(self, key: str) -> Cached | None: ...

    async def get_many(self, keys: list[str]) -> list[Cached | None]:
        """`get` of each key, in one round trip."""
        ...

    async def set(self, key: str, value: Cached, ttl: float) -> None: ...

    def set_soon(self, key: str, value: Cached, ttl: float) -> None:
        """`set` without waiting for it: this process finds the value at once, other processes
        once the write has landed (a write that fails only costs them a miss)."""

    async def generation(self, namespace: str) -> int: ...

    async def bump(self, *namespaces: str) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


def jittered(ttl: float) -> float:
    """TTLs are a safety net; jitter keeps keys written together from expiring together."""
    return ttl * random.uniform(0.9, 1.1)  # noqa: S311 - not security relevant


class _Lru:
    def __init__(self, max_entries: int) -> None:
        self._data: OrderedDict[str, tuple[float, Cached]] = OrderedDict()
        self._max = max_entries

    def get(self, key: str) -> Cached | None:
        item = self._data.get(key)
        if item is None:
            return None
        expires, value = item
        if expires < time.monotonic():
            self._data.pop(key, None)
            return None
        self._data.move_to_end(key)
        return value

    def set(self, key: str, value: Cached, ttl: float) -> None:
        self._data[key] = (time.monotonic() + ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    def delete(self, key: str) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class MemoryCache:
    def __init__(self, max_entries: int = 20_000) -> None:
        self._lru = _Lru(max_entries)
        self._generations: dict[str, int] = {}
        self.stats = CacheStats()

    async def get(self, key: str) -> Cached | None:
        return self._lru.get(key)

    async def get_many(self, keys: list[str]) -> list[Cached | None]:
        return [self._lru.get(key) for key in keys]

    async def set(self, key: str, value: Cached, ttl: float) -> None:
        self._lru.set(key, value, ttl)

    def set_soon(self, key: str, value: Cached, ttl: float) -> None:
        self._lru.set(key, value, ttl)

    async def generation(self, namespace: str) -> int:
        return self._generations.get(namespace, 0)

    async def bump(self, *namespaces: str) -> None:
        for ns in namespaces:
            self._generations[ns] = self._generations.get(ns, 0) + 1

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisCache:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        l1_entries: int = 20_000,
        l1_ttl: float = 5.0,
    ) -> None:
        self._redis = redis
        self._prefix = prefix + "cache:"
        self._channel = prefix + "cache-invalidation"
        self._l1 = _Lru(l1_entries)
        self._l1_ttl = l1_ttl
        self._generations: OrderedDict[str, int] = OrderedDict()
        self._max_generations = 200_000
        self._pending_bumps: set[str] = set()
        self._writes: set[asyncio.Task[bool]] = set()
        self._listening = False
        self._stopping = False
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None
        self.stats = CacheStats()
        self.invalidations_seen = 0

    # ------------------------------------------------------------------ reads
    async def get(self, key: str) -> Cached | None:
        if self._listening:
            value = self._l1.get(key)
            if value is not None:
                return value
        try:
            raw = await self._redis.get(self._prefix + key)
        except Exception as exc:
            log.warning("cache_unavailable", op="get", error=str(exc))
            return None
        if raw is None:
            return None
        value = Cached.decode(raw if isinstance(raw, bytes) else str(raw).encode())
        if self._listening:
            self._l1.set(key, value, self._l1_ttl)
        return value

    async def get_many(self, keys: list[str]) -> list[Cached | None]:
        found: list[Cached | None] = [
            self._l1.get(key) if self._listening else None for key in keys
        ]
        missing = [i for i, value in enumerate(found) if value is None]
        if not missing:
            return found
        try:
            raws = await self._redis.mget([self._prefix + keys[i] for i in missing])
        except Exception as exc:
            log.warning("cache_unavailable", op="get_many", error=str(exc))
            return found
        for i, raw in zip(missing, raws, strict=True):
            if raw is None:
                continue
            value = Cached.decode(raw if isinstance(raw, bytes) else str(raw).encode())
            found[i] = value
            if self._listening:
                self._l1.set(keys[i], value, self._l1_ttl)
        return found

    async def set(self, key: str, value: Cached, ttl: float) -> None:
        if await self._write(key, value, ttl) and self._listening:
            self._l1.set(key, value, min(self._l1_ttl, ttl))

    def set_soon(self, key: str, value: Cached, ttl: float) -> None:
        # The response need not wait for Redis: the write goes out at the request's next pause.
        if self._listening:
            self._l1.set(key, value, min(self._l1_ttl, ttl))
        task = asyncio.get_running_loop().create_task(self._write(key, value, ttl))
        self._writes.add(task)  # the loop only keeps a weak reference to a task
        task.add_done_callback(self._writes.discard)

    async def _write(self, key: str, value: Cached, ttl: float) -> bool:
        try:
            await self._redis.set(self._prefix + key, value.encode(), px=int(jittered(ttl) * 1000))
        except Exception as exc:
            log.warning("cache_unavailable", op="set", error=str(exc))
            return False
        return True

    def _remember(self, namespace: str, value: int) -> None:
        self._generations[namespace] = max(value, self._generations.get(namespace, 0))
        self._generations.move_to_end(namespace)
        while len(self._generations) > self._max_generations:
            self._generations.popitem(last=False)

    async def generation(self, namespace: str) -> int:
        """The namespace's current generation: from memory while the listener keeps it
        current, otherwise from Redis. Raises CacheUnavailable when Redis cannot answer."""
        if self._listening and not self._pending_bumps:
            known = self._generations.get(namespace)
            if known is not None:
                return known
        try:
            raw = await self._redis.get(self._prefix + "gen:" + namespace)
        except Exception as exc:
            log.warning("cache_unavailable", op="generation", error=str(exc))
            raise CacheUnavailable from exc
        value = int(raw or 0)
        if self._listening:
            self._remember(namespace, value)
        return value

    # ------------------------------------------------------------------ writes
    async def bump(self, *namespaces: str) -> None:
        if not namespaces:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for ns in namespaces:
                    pipe.incr(self._prefix + "gen:" + ns)
                values = await pipe.execute()
            gens = {ns: int(v) for ns, v in zip(namespaces, values, strict=True)}
            for ns, value in gens.items():
                self._remember(ns, value)
            await self._redis.publish(self._channel, orjson.dumps({"gens": gens}))
        except Exception as exc:
            # Not lost: retried as soon as Redis answers; meanwhile this worker bypasses its L1.
            log.warning("cache_invalidation_deferred", namespaces=list(namespaces), error=str(exc))
            self._pending_bumps.update(namespaces)

    async def _retry_pending(self) -> None:
        if self._pending_bumps:
            pending, self._pending_bumps = self._pending_bumps, set()
            await self.bump(*sorted(pending))

    # ------------------------------------------------------------------ invalidation listener
    async def start(self) -> None:
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="cache-invalidation")

    def _apply(self, message: dict[str, object]) -> None:
        gens = message.get("gens") or {}
        if isinstance(gens, dict):
            for ns, value in gens.items():
                self._remember(str(ns), int(value))
        self.invalidations_seen += 1

    async def _listen(self) -> None:
        backoff = 0.1
        while not self._stopping:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            self._pubsub = pubsub
            try:
                await pubsub.subscribe(self._channel)
                # Anything cached before (re)subscribing may have missed an invalidation.
                self._l1.clear()
                self._generations.clear()
                await self._retry_pending()
                self._listening = True
                backoff = 0.1
                while not self._stopping:
                    message = await pubsub.get_message(timeout=30.0)
                    if message is None or message.get("type") != "message":
                        continue
                    try:
                        self._apply(orjson.loads(message["data"]))
                    except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
                        log.warning("cache_invalidation_malformed", error=str(exc))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self._stopping:
                    log.warning("cache_invalidation_disconnected", error=str(exc))
            finally:
                self._listening = False
                self._l1.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            if not self._stopping:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def close(self) -> None:
        self._stopping = True
        self._listening = False
        task, self._listener = self._listener, None
        if task is None:
            return
        # Closing the connection wakes the blocked read (redis-py may not honour a cancellation
        # while it waits for a message).
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        done, _ = await asyncio.wait({task}, timeout=2.0)
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=2.0)


class CacheUnavailable(Exception):
    pass


class SingleFlight:
    """At most one computation per key at a time in this process: concurrent misses of a hot
    key wait for the first one instead of all hitting the database (stampede protection)."""

    def __init__(self) -> None:
        self._inflight: dict[str, asyncio.Future[Cached]] = {}

    async def do(self, key: str, compute: Callable[[], Awaitable[Cached]]) -> Cached:
        existing = self._inflight.get(key)
        if existing is not None:
            return await asyncio.shield(existing)
        future: asyncio.Future[Cached] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await compute()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        else:
            future.set_result(value)
            return value
        finally:
            self._inflight.pop(key, None)


class ReadCache:
    """Read-through caching of prepared responses, keyed by namespace generations."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self._flight = SingleFlight()

    async def key(self, name: str, namespaces: list[str], suffix: str) -> str | None:
        """The cache key for the current generations, or None when the cache is unavailable."""
        try:
            generations = [await self.cache.generation(ns) for ns in namespaces]
        except CacheUnavailable:
            return None
        return f"{name}:{suffix}:" + ".".join(str(g) for g in generations)

    async def fetch(
        self,
        name: str,
        key: str,
        compute: Callable[[], Awaitable[bytes | tuple[bytes, str]]],
        ttl: float,
    ) -> Cached:
        hit = await self.cache.get(key)
        if hit is not None:
            self.cache.stats.hit(name)
            return hit
        self.cache.stats.miss(name)

        async def fill() -> Cached:
            from catalog.kit.http import etag_for

            computed = await compute()
            body, meta = computed if isinstance(computed, tuple) else (computed, "")
            value = Cached(body=body, etag=etag_for(body), meta=meta)
            self.cache.set_soon(key, value, ttl)
            return value

        return await self._flight.do(key, fill)
