"""General rate limits counted in process: exact alone, never above the limit when several
workers lease budget from one Redis."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis
from limits import parse

from catalog.kit.budget import BudgetRateLimiter
from tests.conftest import REDIS_URL, Backend


async def test_exact_without_redis() -> None:
    limiter = BudgetRateLimiter(None, "t:")
    item = parse("5/minute")
    results = [await limiter.hit(item, "ip", "10.0.0.1") for _ in range(7)]
    assert [r.allowed for r in results] == [True] * 5 + [False] * 2
    assert [r.remaining for r in results[:5]] == [4, 3, 2, 1, 0]
    assert results[-1].reset_after > 0
    # Another identity has its own budget.
    assert (await limiter.hit(item, "ip", "10.0.0.2")).allowed


async def test_two_workers_share_one_budget(backend: Backend) -> None:
    if backend.profile != "production":
        pytest.skip("needs Redis")
    prefix = f"catalog-test-budget-{uuid.uuid4().hex[:8]}:"
    client = aioredis.Redis.from_url(REDIS_URL)
    a = BudgetRateLimiter(client, prefix)
    b = BudgetRateLimiter(client, prefix)
    try:
        await a.sync()
        await b.sync()
        await a.sync()  # both now know there are two workers
        item = parse("20/minute")
        admitted = 0
        for i in range(60):
            worker = a if i % 2 == 0 else b
            if (await worker.hit(item, "user", "u1")).allowed:
                admitted += 1
            if i % 7 == 0:
                await (b if i % 2 == 0 else a).sync()
        # Leases are granted atomically: never more than the limit in total, and budget
        # leased but unused by one worker is at most what it took in its last lease.
        assert 16 <= admitted <= 20
        assert a._workers == 2
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_counts_survive_a_redis_outage_locally(backend: Backend) -> None:
    if backend.profile != "production":
        pytest.skip("needs Redis")
    client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    limiter = BudgetRateLimiter(client, "t:", fail_open=True)
    try:
        item = parse("3/minute")
        results = [await limiter.hit(item, "ip", "x") for _ in range(5)]
        # Fails open while Redis is away, yet still stops at this worker's own count.
        assert [r.allowed for r in results] == [True, True, True, False, False]
    finally:
        await client.aclose()


async def test_concurrent_requests_share_one_lease(backend: Backend) -> None:
    """A burst of concurrent requests waits for one lease instead of each leasing a slice
    (which would spend the whole budget on leases nobody uses)."""
    if backend.profile != "production":
        pytest.skip("needs Redis")
    import asyncio

    prefix = f"catalog-test-budget-{uuid.uuid4().hex[:8]}:"
    client = aioredis.Redis.from_url(REDIS_URL)
    limiter = BudgetRateLimiter(client, prefix)
    try:
        item = parse("1000/minute")
        results = await asyncio.gather(*[limiter.hit(item, "ip", "burst") for _ in range(200)])
        assert all(r.allowed for r in results)
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_stopped_workers_give_their_leases_back(backend: Backend) -> None:
    """Workers that come and go (restarts, scaling) never strand the budget: a lease is at most
    a small share of the limit, and a stopping worker returns what it did not use."""
    if backend.profile != "production":
        pytest.skip("needs Redis")
    prefix = f"catalog-test-budget-{uuid.uuid4().hex[:8]}:"
    client = aioredis.Redis.from_url(REDIS_URL)
    item = parse("1000/minute")
    try:
        for _ in range(30):
            limiter = BudgetRateLimiter(client, prefix)
            assert (await limiter.hit(item, "ip", "restarts")).allowed
            await limiter.close()
        # Thirty workers each admitted one request; only those requests stay counted.
        keys = [k async for k in client.scan_iter(match=f"{prefix}rlb:*")]
        assert len(keys) == 1
        assert await client.get(keys[0]) == b"30"
        kept = BudgetRateLimiter(client, prefix)
        results = [await kept.hit(item, "ip", "restarts") for _ in range(100)]
        assert all(r.allowed for r in results)
        # Leases of at most 5% of the limit (50): two of them cover the hundred requests.
        assert await client.get(keys[0]) == b"130"
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
