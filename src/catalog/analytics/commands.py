"""`catalog analytics rollup`, run from cron (once a day, after midnight UTC)."""

from __future__ import annotations

from redis.asyncio import Redis

from catalog.analytics.rollup import RollupResult, rollup
from catalog.config import Settings
from catalog.db import create_engine
from catalog.kit.cache import RedisCache


async def run_rollup(settings: Settings, *, keep_days: int) -> RollupResult:
    engine = create_engine(settings)
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    try:
        # New popularity reorders lists and search results: the servers' shared cache of them
        # is invalidated (the embedded profile's in-process cache expires within a minute).
        cache = (
            RedisCache(redis, settings.redis_prefix, l1_ttl=settings.cache_l1_ttl_seconds)
            if redis is not None and settings.cache_enabled
            else None
        )
        return await rollup(engine, keep_days=keep_days, cache=cache)
    finally:
        if redis is not None:
            await redis.aclose()
        await engine.dispose()
