"""The fast read path answers exactly like the routers: same status, body, ETag, caching
headers, 304s and errors, with the cache on and off; requests it does not fully understand go
on to the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from catalog.app import create_app
from tests.conftest import Backend, make_client
from tests.factories import API, create_brand, create_category, create_product

COMPARED_HEADERS = ("etag", "cache-control", "content-type", "content-length")


@asynccontextmanager
async def instance(backend: Backend, *, fast: bool, cache: bool) -> AsyncIterator[FastAPI]:
    settings = backend.settings.model_copy(
        update={"fast_reads_enabled": fast, "cache_enabled": cache}
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


async def _catalog(client: httpx.AsyncClient) -> dict[str, Any]:
    brand = await create_brand(client)
    root = await create_category(client)
    leaf = await create_category(client, parent_id=root["id"])
    products = [
        await create_product(
            client,
            name=f"Item {n}",
            price=f"{n}.50",
            stock=n % 3,
            brand_id=brand["id"] if n % 2 else None,
            category_id=leaf["id"] if n % 3 else root["id"],
        )
        for n in range(7)
    ]
    draft = await create_product(client, status="draft")
    return {"brand": brand, "root": root, "products": products, "draft": draft}


def _paths(data: dict[str, Any]) -> list[str]:
    first = data["products"][0]["id"]
    return [
        f"/products/{first}",
        f"/products/{first}?x=1",  # unknown parameter: the router
        f"/products/{data['draft']['id']}",  # a draft is not found for anonymous callers
        "/products/00000000-0000-0000-0000-000000000000",
        "/products/not-a-uuid",
        "/products",
        "/products?limit=3",
        "/products?limit=3&sort=price",
        "/products?limit=2&sort=-name",
        f"/products?category_id={data['root']['id']}",
        f"/products?brand_id={data['brand']['id']}&sort=-price",
        "/products?in_stock=true",
        "/products?in_stock=1",  # the router's boolean parsing
        "/products?price_min=2&price_max=4.5&sort=price",
        "/products?price_min=5&price_max=1",  # 422
        "/products?cursor=garbage",  # 422
        "/products?limit=0",  # 422 by the router
        "/products?limit=5000",  # 422 by the router
        "/products?status=draft",
        "/products?status=nope",
        "/products?limit=2&limit=3",
        "/products?sort=unknown",
        "/products?unknown=1",
        "/search/suggest?q=item",
        "/search/suggest?q=item&limit=3",
        "/search/suggest?q=",
    ]


async def _answers(app: FastAPI, paths: list[str], method: str = "GET") -> list[Any]:
    answers = []
    async with make_client(app) as anon:
        for path in paths:
            r = await anon.request(method, API + path)
            etag = r.headers.get("etag")
            again = (
                (
                    await anon.request(method, API + path, headers={"If-None-Match": etag})
                ).status_code
                if etag
                else None
            )
            body = r.json() if r.content and r.status_code == 200 else r.content
            headers = {h: r.headers.get(h) for h in COMPARED_HEADERS}
            answers.append((path, r.status_code, body, headers, again))
    return answers


@pytest.mark.parametrize("cache", [False, True])
async def test_same_answers_as_the_routers(
    backend: Backend, app: FastAPI, client: httpx.AsyncClient, cache: bool
) -> None:
    data = await _catalog(client)
    paths = _paths(data)
    async with instance(backend, fast=False, cache=cache) as routed:
        expected = await _answers(routed, paths)
    async with instance(backend, fast=True, cache=cache) as fast:
        got = await _answers(fast, paths)
        got_head = await _answers(fast, paths[:1], method="HEAD")
    for want, have in zip(expected, got, strict=True):
        assert have == want, want[0]
    assert expected[0][1] == 200
    assert got_head[0][1] == 200


async def test_first_page_walk_and_cursor(backend: Backend, client: httpx.AsyncClient) -> None:
    data = await _catalog(client)
    async with instance(backend, fast=True, cache=False) as fast, make_client(fast) as anon:
        seen: list[str] = []
        params: dict[str, Any] = {"limit": 3, "sort": "price"}
        while True:
            page = (await anon.get(f"{API}/products", params=params)).json()
            seen += [p["id"] for p in page["items"]]
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
    assert seen == [p["id"] for p in data["products"]]


async def test_credentials_go_to_the_router(backend: Backend, client: httpx.AsyncClient) -> None:
    """An owner (here an admin) sees a draft: a request with credentials is not anonymous."""
    data = await _catalog(client)
    r = await client.get(f"{API}/products/{data['draft']['id']}")
    assert r.status_code == 200
    assert r.headers["cache-control"].startswith("private")


async def test_answered_before_routing(backend: Backend, client: httpx.AsyncClient) -> None:
    """With the routers' product reads broken, the requests the fast path takes still work and
    the others reach the (broken) routers."""
    from catalog.dependencies import get_product_reads

    data = await _catalog(client)
    first = data["products"][0]["id"]

    async def broken() -> None:
        raise RuntimeError("the router was used")

    for cache in (False, True):
        async with instance(backend, fast=True, cache=cache) as fast:
            fast.dependency_overrides[get_product_reads] = broken
            async with make_client(fast) as anon:
                for path in (f"/products/{first}", "/products?limit=3&sort=-price"):
                    assert (await anon.get(API + path)).status_code == 200, path
                with pytest.raises(RuntimeError, match="router was used"):
                    await anon.get(f"{API}/products?in_stock=1")
