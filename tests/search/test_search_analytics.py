"""Search analytics: events recorded by searches and clicks, read back by administrators."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from catalog.models import Role
from tests.conftest import make_account, make_client
from tests.factories import API, create_product
from tests.search.test_search_api import search

ANALYTICS = f"{API}/search/analytics"
CLICK = f"{API}/search/click"
ENDPOINTS = ["top-queries", "zero-results", "low-click-through", "volume"]


async def click(
    client: httpx.AsyncClient, body: dict[str, Any], item: int = 0, position: int = 1
) -> None:
    r = await client.post(
        CLICK,
        json={
            "search_id": body["search_id"],
            "product_id": body["items"][item]["id"],
            "position": position,
        },
    )
    assert r.status_code == 202, r.text
    assert r.content == b""


async def report(client: httpx.AsyncClient, name: str, **params: Any) -> list[dict[str, Any]]:
    r = await client.get(f"{ANALYTICS}/{name}", params=params)
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()
    return rows


@pytest.fixture
async def activity(client: httpx.AsyncClient, anon: httpx.AsyncClient, app: FastAPI) -> None:
    """8 searches (2 with no result, 1 without words) and 3 clicks."""
    await create_product(client, name="Oak Chair")
    await create_product(client, name="Pine Table")
    await create_product(client, name="Pine Chair")
    chair1 = await search(client, {"q": "chair"})
    assert chair1["total"] == 2
    await search(anon, {"q": "  CHAIR!! "})  # the same query, normalised
    await search(client, {"q": "Chair", "sort": "price_asc"})
    table1 = await search(anon, {"q": "table"})
    await search(client, {"q": "table"})
    for _ in range(2):
        assert (await search(client, {"q": "qqqq xxxx"}))["total"] == 0
    await search(client, {})  # browsing: counted in the volume only
    await click(client, chair1, 0, 1)
    await click(anon, chair1, 1, 2)
    await click(client, table1, 0, 1)
    await app.state.recorder.flush()


class TestReports:
    async def test_top_queries(self, client: httpx.AsyncClient, activity: None) -> None:
        assert await report(client, "top-queries") == [
            {
                "query": "chair",
                "searches": 3,
                "clicks": 2,
                "click_through": 0.6667,
                "zero_results": 0,
            },
            {
                "query": "qqqq xxxx",
                "searches": 2,
                "clicks": 0,
                "click_through": 0.0,
                "zero_results": 2,
            },
            {"query": "table", "searches": 2, "clicks": 1, "click_through": 0.5, "zero_results": 0},
        ]
        assert [r["query"] for r in await report(client, "top-queries", limit=1)] == ["chair"]

    async def test_zero_results(self, client: httpx.AsyncClient, activity: None) -> None:
        assert await report(client, "zero-results") == [
            {"query": "qqqq xxxx", "searches": 2, "zero_results": 2}
        ]

    async def test_low_click_through(self, client: httpx.AsyncClient, activity: None) -> None:
        assert await report(client, "low-click-through") == []  # fewer than 5 searches each
        rows = await report(client, "low-click-through", min_searches=2)
        assert [(r["query"], r["searches"], r["click_through"]) for r in rows] == [
            ("table", 2, 0.5),
            ("chair", 3, 0.6667),
        ]
        rows = await report(client, "low-click-through", min_searches=3)
        assert [r["query"] for r in rows] == ["chair"]

    async def test_volume(self, client: httpx.AsyncClient, activity: None) -> None:
        today = dt.datetime.now(dt.UTC).date().isoformat()
        assert await report(client, "volume") == [
            {"day": today, "searches": 8, "zero_results": 2, "clicks": 3}
        ]
        assert await report(client, "volume", days=1) == [
            {"day": today, "searches": 8, "zero_results": 2, "clicks": 3}
        ]

    async def test_nothing_recorded(self, client: httpx.AsyncClient) -> None:
        for name in ENDPOINTS:
            assert await report(client, name) == []

    async def test_events_wait_for_the_flush(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        await create_product(client, name="Oak Chair")
        await app.state.recorder.flush()
        await search(client, {"q": "chair"})
        await search(client, {"q": "chair"})
        await app.state.recorder.flush()
        rows = await report(client, "top-queries")
        assert [(r["query"], r["searches"]) for r in rows] == [("chair", 2)]

    async def test_parameter_limits(self, client: httpx.AsyncClient) -> None:
        for name in ENDPOINTS:
            for params in ({"days": 0}, {"days": 367}, {"days": "x"}):
                r = await client.get(f"{ANALYTICS}/{name}", params=params)
                assert r.status_code == 422, (name, params)
        for name in ("top-queries", "zero-results", "low-click-through"):
            r = await client.get(f"{ANALYTICS}/{name}", params={"limit": 101})
            assert r.status_code == 422, name
        r = await client.get(f"{ANALYTICS}/low-click-through", params={"min_searches": 0})
        assert r.status_code == 422


class TestClick:
    async def test_invalid_clicks_are_422(self, client: httpx.AsyncClient) -> None:
        ok = {"search_id": str(uuid.uuid4()), "product_id": str(uuid.uuid4()), "position": 1}
        for body in (
            {**ok, "position": 0},
            {**ok, "position": 10_001},
            {**ok, "search_id": "nope"},
            {k: v for k, v in ok.items() if k != "product_id"},
            {**ok, "extra": 1},
        ):
            r = await client.post(CLICK, json=body)
            assert r.status_code == 422, body
        r = await client.post(CLICK, json=ok)
        assert r.status_code == 202


class TestAccess:
    async def test_only_administrators_read_analytics(
        self, app: FastAPI, anon: httpx.AsyncClient, activity: None
    ) -> None:
        seller = await make_account(app, Role.seller)
        buyer = await make_account(app, Role.buyer)
        for name in ENDPOINTS:
            assert (await anon.get(f"{ANALYTICS}/{name}")).status_code == 401, name
            for account in (seller, buyer):
                async with make_client(app, account.headers) as other:
                    r = await other.get(f"{ANALYTICS}/{name}")
                    assert r.status_code == 403, (name, account.role)
