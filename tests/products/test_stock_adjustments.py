"""Atomic stock adjustments: relative changes that concurrent requests never lose and that never
take a variant below zero; the product's total follows; cached reads are refreshed."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from catalog.app import create_app
from catalog.models import Role
from tests.conftest import Backend, make_account, make_client
from tests.factories import API, create_product


def _path(product: dict[str, Any], n: int = 0) -> str:
    return (
        f"{API}/products/{product['id']}/variants/{product['variants'][n]['id']}/stock-adjustments"
    )


async def test_adjustments_apply_and_refuse_going_below_zero(client: httpx.AsyncClient) -> None:
    product = await create_product(client, stock=5)
    r = await client.post(_path(product), json={"delta": -3})
    assert r.status_code == 200, r.text
    assert r.json()["stock"] == 2
    r = await client.post(_path(product), json={"delta": -3})
    assert r.status_code == 409
    assert "2 available" in r.json()["detail"]
    r = await client.post(_path(product), json={"delta": 10})
    assert r.json()["stock"] == 12
    read = (await client.get(f"{API}/products/{product['id']}")).json()
    assert read["total_stock"] == 12
    assert read["variants"][0]["stock"] == 12
    assert read["version"] > product["version"]


@pytest.mark.parametrize(
    "body", [{"delta": 0}, {"delta": "x"}, {}, {"delta": 2_000_000_000}, {"delta": 1, "x": 1}]
)
async def test_bad_adjustments_are_422(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    product = await create_product(client, stock=1)
    r = await client.post(_path(product), json=body)
    assert r.status_code == 422, r.text


async def test_over_the_maximum_is_422(client: httpx.AsyncClient) -> None:
    product = await create_product(client, stock=999_999_999)
    r = await client.post(_path(product), json={"delta": 2})
    assert r.status_code == 422
    assert "exceed" in r.json()["detail"]


async def test_only_owners_and_admins_adjust(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    product = await create_product(client, stock=3)
    assert (await anon.post(_path(product), json={"delta": -1})).status_code == 401
    buyer = await make_account(app, Role.buyer)
    async with make_client(app, buyer.headers) as c:
        assert (await c.post(_path(product), json={"delta": -1})).status_code == 403
    seller = await make_account(app, Role.seller)
    async with make_client(app, seller.headers) as c:
        assert (await c.post(_path(product), json={"delta": -1})).status_code == 404
    unknown = f"{API}/products/{product['id']}/variants/{product['id']}/stock-adjustments"
    assert (await client.post(unknown, json={"delta": -1})).status_code == 404


async def test_concurrent_decrements_lose_nothing_and_stop_at_zero(
    backend: Backend, app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Two app instances (two workers) sell from the same stock at the same time."""
    product = await create_product(client, stock=25)
    other = create_app(backend.settings)
    async with other.router.lifespan_context(other):
        admin = await make_account(other, Role.admin)
        async with make_client(other, admin.headers) as second:
            clients = [client, second]
            responses = await asyncio.gather(
                *[clients[i % 2].post(_path(product), json={"delta": -1}) for i in range(40)]
            )
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 25, statuses
    assert statuses.count(409) == 15
    read = (await client.get(f"{API}/products/{product['id']}")).json()
    assert read["variants"][0]["stock"] == 0
    assert read["total_stock"] == 0


async def test_cached_reads_follow_adjustments(backend: Backend, app: FastAPI) -> None:
    settings = backend.settings.model_copy(update={"cache_enabled": True})
    cached = create_app(settings)
    async with cached.router.lifespan_context(cached):
        admin = await make_account(cached, Role.admin)
        async with make_client(cached, admin.headers) as c, make_client(cached) as anon:
            product = await create_product(c, stock=4)
            path = f"{API}/products/{product['id']}"
            assert (await anon.get(path)).json()["total_stock"] == 4
            assert (await c.post(_path(product), json={"delta": -1})).status_code == 200
            assert (await anon.get(path)).json()["total_stock"] == 3
