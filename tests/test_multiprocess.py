"""Two worker processes of the real server (`catalog serve --workers 2`) on loopback, sharing
PostgreSQL and Redis (production profile): an update through one worker is never served stale
by the other, concurrent updates with the same `If-Match` have exactly one winner, and
concurrent stock decrements neither lose an update nor go below zero, and writes without
`If-Match` racing stock adjustments all succeed."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from catalog.models import Role
from tests.conftest import TEST_SECRET, Backend, make_account
from tests.factories import API

LIMIT = "100000000/minute"


@pytest.fixture
async def server(backend: Backend, app: FastAPI) -> AsyncIterator[str]:
    """The base URL of a two-worker server on the test database (the `app` fixture cleans the
    tables afterwards)."""
    if backend.profile != "production":
        pytest.skip("several worker processes need the production profile")
    settings = backend.settings
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    env.update(
        {
            "CATALOG_ENVIRONMENT": "test",
            "CATALOG_SECRET_KEY": TEST_SECRET,
            "CATALOG_DATABASE_URL": settings.database_url,
            "CATALOG_REDIS_URL": settings.redis_url or "",
            "CATALOG_REDIS_PREFIX": settings.redis_prefix,
            "CATALOG_CACHE_ENABLED": "true",
            "CATALOG_LOG_LEVEL": "WARNING",
            "CATALOG_RATE_LIMIT_ANONYMOUS": LIMIT,
            "CATALOG_RATE_LIMIT_AUTHENTICATED": LIMIT,
        }
    )
    argv = [sys.executable, "-m", "catalog.cli", "serve", "--port", str(port), "--workers", "2"]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # a process group of its own: nothing of it outlives the test
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient() as probe:
            while True:
                try:
                    if (await probe.get(f"{base}/health/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or proc.returncode is not None:
                    raise RuntimeError("the server did not start")
                await asyncio.sleep(0.2)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.communicate(), timeout=30)
        except TimeoutError:
            # A worker still starting when the server was stopped can outlive it, holding the
            # pipe open: the whole group goes.
            os.killpg(proc.pid, signal.SIGKILL)
            await asyncio.wait_for(proc.communicate(), timeout=30)


async def _fresh_connections(base: str, path: str, n: int) -> list[dict[str, Any]]:
    """`n` reads, each on a new connection: they land on both workers."""

    async def one() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=base) as c:
            r = await c.get(path)
            assert r.status_code == 200, r.text
            data: dict[str, Any] = r.json()
            return data

    return list(await asyncio.gather(*[one() for _ in range(n)]))


async def test_two_workers_stay_consistent(app: FastAPI, server: str) -> None:
    admin = await make_account(app, Role.admin)
    async with httpx.AsyncClient(base_url=server, headers=admin.headers) as client:
        r = await client.post(
            f"{API}/products",
            json={
                "sku": "MP-1",
                "name": "First name",
                "currency": "EUR",
                "price": "5.00",
                "stock": 20,
                "status": "active",
            },
        )
        assert r.status_code == 201, r.text
        product = r.json()
        path = f"{API}/products/{product['id']}"

        # Both workers cache the product, then one of them takes an update.
        for _ in range(3):
            names = {p["name"] for p in await _fresh_connections(server, path, 12)}
            assert names == {"First name"}
        listed = await _fresh_connections(server, f"{API}/products?limit=5", 8)
        assert {p["items"][0]["name"] for p in listed} == {"First name"}
        r = await client.patch(path, json={"name": "Second name"})
        assert r.status_code == 200, r.text
        names = {p["name"] for p in await _fresh_connections(server, path, 16)}
        assert names == {"Second name"}
        listed = await _fresh_connections(server, f"{API}/products?limit=5", 8)
        assert {p["items"][0]["name"] for p in listed} == {"Second name"}

        # The same If-Match from many connections at once: exactly one update wins.
        etag = (await client.get(path)).headers["etag"]

        async def patch(n: int) -> int:
            async with httpx.AsyncClient(base_url=server, headers=admin.headers) as c:
                r = await c.patch(path, json={"name": f"Racer {n}"}, headers={"If-Match": etag})
                return r.status_code

        statuses = await asyncio.gather(*[patch(n) for n in range(10)])
        assert statuses.count(200) == 1, statuses
        assert set(statuses) <= {200, 412}  # the writers take turns: the others see a new ETag

        # Twenty units, thirty concurrent sales spread over both workers.
        variant = product["variants"][0]["id"]
        adjust = f"{path}/variants/{variant}/stock-adjustments"

        async def sell() -> int:
            async with httpx.AsyncClient(base_url=server, headers=admin.headers) as c:
                return (await c.post(adjust, json={"delta": -1})).status_code

        sales = await asyncio.gather(*[sell() for _ in range(30)])
        assert sales.count(200) == 20, sales
        assert sales.count(409) == 10
        final = await _fresh_connections(server, path, 8)
        assert {(p["total_stock"], p["variants"][0]["stock"]) for p in final} == {(0, 0)}


async def test_concurrent_writes_without_if_match_all_succeed(app: FastAPI, server: str) -> None:
    """Price changes (no `If-Match`: last writer wins) racing stock adjustments of the same
    product on both workers: none is refused as a concurrent modification, no stock change is
    lost, and the product ends with one of the prices sent."""
    seller = await make_account(app, Role.seller)
    async with httpx.AsyncClient(base_url=server, headers=seller.headers) as client:
        r = await client.post(
            f"{API}/products",
            json={
                "sku": "MP-2",
                "name": "Raced product",
                "currency": "EUR",
                "price": "5.00",
                "stock": 100,
                "status": "active",
            },
        )
        assert r.status_code == 201, r.text
        product = r.json()
    path = f"{API}/products/{product['id']}"
    adjust = f"{path}/variants/{product['variants'][0]['id']}/stock-adjustments"
    prices = [f"{n}.50" for n in range(6, 26)]

    async def write(n: int) -> int:
        async with httpx.AsyncClient(base_url=server, headers=seller.headers) as c:
            if n % 2:
                r = await c.patch(path, json={"price": prices[n // 2]})
            else:
                r = await c.post(adjust, json={"delta": 1 if n % 4 else -3})
            assert r.status_code == 200, (n, r.status_code, r.text)
            return r.status_code

    statuses = await asyncio.gather(*[write(n) for n in range(40)])
    assert statuses == [200] * 40
    final = await _fresh_connections(server, path, 8)
    # 10 adjustments of +1 and 10 of -3.
    assert {(p["total_stock"], p["variants"][0]["stock"]) for p in final} == {(80, 80)}
    assert len({p["variants"][0]["price"] for p in final}) == 1
    assert final[0]["variants"][0]["price"] in prices
