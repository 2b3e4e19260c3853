"""The analytics API on known event data: exact numbers for product performance, views per day
(before and after a rollup), search trends, user behaviour, per-user detail and inventory."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert

from catalog.analytics.rollup import rollup
from catalog.db import new_id
from catalog.models import ProductView, Role, SearchClick, SearchEvent
from tests.conftest import Account, make_account, make_client
from tests.factories import API, create_brand, create_category, create_product

A = f"{API}/analytics"
TODAY = dt.datetime.now(dt.UTC).date()


def day(offset: int) -> dt.date:
    return TODAY - dt.timedelta(days=offset)


def iso(offset: int) -> str:
    return day(offset).isoformat()


def at(offset: int, minute: int = 0) -> dt.datetime:
    d = day(offset)
    # Early in the day, so that "today" is never in the future while the test runs.
    return dt.datetime(d.year, d.month, d.day, 0, minute, tzinfo=dt.UTC)


@dataclass
class Data:
    p1: dict[str, Any]
    p2: dict[str, Any]
    p3: dict[str, Any]
    c1: dict[str, Any]
    c2: dict[str, Any]
    b1: dict[str, Any]
    buyer: Account


@pytest.fixture
async def data(app: FastAPI, client: httpx.AsyncClient) -> Data:
    c1 = await create_category(client, name="Lighting")
    c2 = await create_category(client, name="Seating")
    b1 = await create_brand(client, name="Acme")
    p1 = await create_product(
        client, name="Lamp", category_id=c1["id"], brand_id=b1["id"], price="10.00", stock=0,
        description="A lamp",
    )  # fmt: skip
    p2 = await create_product(
        client, name="Desk", category_id=c1["id"], price="20.00", stock=3, description="A desk"
    )
    p3 = await create_product(
        client, name="Chair", category_id=c2["id"], brand_id=b1["id"], price="5.00", stock=10
    )
    buyer = await make_account(app, Role.buyer)
    other = await make_account(app, Role.buyer)
    for who, product, score in ((buyer, p1, 4), (other, p1, 2), (other, p2, 5)):
        async with make_client(app, who.headers) as c:
            r = await c.post(f"{API}/products/{product['id']}/ratings", json={"score": score})
            assert r.status_code == 201, r.text
    i1, i2 = uuid.UUID(p1["id"]), uuid.UUID(p2["id"])
    views = [
        (i1, at(0, 1), "s1", None),
        (i1, at(0, 2), "s1", None),
        (i1, at(1), "s2", None),
        (i1, at(5), None, buyer.id),
        (i2, at(1, 1), "s3", None),
    ]
    lamp1, desk = new_id(), new_id()
    searches = [
        (lamp1, "lamp", 2, at(0), "s1", None),
        (new_id(), "lamp", 2, at(0, 1), None, buyer.id),
        (new_id(), "lamp", 2, at(10), "s5", None),
        (desk, "desk", 3, at(1), "s2", None),
        (new_id(), "sofa", 0, at(1, 1), "s9", None),
        (new_id(), "chair", 1, at(12), "s6", None),
        (new_id(), "chair", 1, at(12, 1), "s7", None),
    ]
    clicks = [(lamp1, i2, at(0, 3)), (lamp1, i2, at(0, 4)), (desk, i1, at(1, 2))]
    async with app.state.engine.begin() as conn:
        await conn.execute(
            insert(ProductView),
            [
                {"product_id": p, "created_at": t, "session_id": s, "user_id": u}
                for p, t, s, u in views
            ],
        )
        await conn.execute(
            insert(SearchEvent),
            [
                {
                    "id": i,
                    "query": q,
                    "filters": {},
                    "result_count": n,
                    "latency_ms": 2.0,
                    "created_at": t,
                    "session_id": s,
                    "user_id": u,
                }
                for i, q, n, t, s, u in searches
            ],
        )
        await conn.execute(
            insert(SearchClick),
            [
                {"id": new_id(), "search_id": s, "product_id": p, "position": 1, "created_at": t}
                for s, p, t in clicks
            ],
        )
    return Data(p1, p2, p3, c1, c2, b1, buyer)


def names(items: list[dict[str, Any]]) -> list[Any]:
    return [i["name"] for i in items]


class TestAccess:
    async def test_who_may_read(
        self, app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
    ) -> None:
        assert (await anon.get(f"{A}/products")).status_code == 401
        for role in (Role.buyer, Role.seller):
            account = await make_account(app, role)
            async with make_client(app, account.headers) as c:
                assert (await c.get(f"{A}/inventory")).status_code == 403
        with_scope = await client.post(
            f"{API}/api-keys", json={"name": "bi", "scopes": ["analytics:read"]}
        )
        without = await client.post(
            f"{API}/api-keys", json={"name": "cat", "scopes": ["catalog:read"]}
        )
        assert with_scope.status_code == without.status_code == 201
        async with make_client(app, {"X-API-Key": with_scope.json()["key"]}) as c:
            for path in ("products", "views", "search", "users", "inventory"):
                assert (await c.get(f"{A}/{path}")).status_code == 200, path
        async with make_client(app, {"X-API-Key": without.json()["key"]}) as c:
            assert (await c.get(f"{A}/products")).status_code == 403

    async def test_bad_ranges(self, client: httpx.AsyncClient) -> None:
        r = await client.get(f"{A}/views", params={"from": iso(0), "to": iso(1)})
        assert r.status_code == 422
        r = await client.get(f"{A}/views", params={"from": iso(400), "to": iso(0)})
        assert r.status_code == 422


@pytest.mark.usefixtures("data")
class TestProducts:
    async def test_top_products_by_views(self, client: httpx.AsyncClient, data: Data) -> None:
        r = await client.get(f"{A}/products")
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert [
            (i["name"], i["views"], i["clicks"], i["click_through"], i["rating_avg"]) for i in items
        ] == [
            ("Lamp", 4, 1, 0.25, 3.0),
            ("Desk", 1, 2, 2.0, 5.0),
            ("Chair", 0, 0, 0.0, 0.0),
        ]
        assert items[0]["rating_count"] == 2
        assert items[0]["product_id"] == data.p1["id"]

    async def test_range_sort_limit_and_filters(
        self, client: httpx.AsyncClient, data: Data
    ) -> None:
        r = await client.get(f"{A}/products", params={"from": iso(1), "to": iso(0)})
        assert [(i["name"], i["views"], i["clicks"]) for i in r.json()["items"][:2]] == [
            ("Lamp", 3, 1),
            ("Desk", 1, 2),
        ]
        r = await client.get(f"{A}/products", params={"sort": "rating", "limit": 2})
        assert names(r.json()["items"]) == ["Desk", "Lamp"]
        r = await client.get(f"{A}/products", params={"sort": "clicks"})
        assert names(r.json()["items"]) == ["Desk", "Lamp", "Chair"]
        r = await client.get(f"{A}/products", params={"brand_id": data.b1["id"]})
        assert names(r.json()["items"]) == ["Lamp", "Chair"]

    async def test_per_category_and_brand(self, client: httpx.AsyncClient, data: Data) -> None:
        r = await client.get(f"{A}/products", params={"group_by": "category"})
        assert r.json()["items"] == [
            {
                "id": data.c1["id"],
                "name": "Lighting",
                "products": 2,
                "views": 5,
                "clicks": 3,
                "click_through": 0.6,
                "rating_avg": 3.6667,
                "rating_count": 3,
            },
            {
                "id": data.c2["id"],
                "name": "Seating",
                "products": 1,
                "views": 0,
                "clicks": 0,
                "click_through": 0.0,
                "rating_avg": 0.0,
                "rating_count": 0,
            },
        ]
        r = await client.get(f"{A}/products", params={"group_by": "brand"})
        assert [(i["name"], i["views"], i["clicks"]) for i in r.json()["items"]] == [
            ("Acme", 4, 1),
            (None, 1, 2),
        ]

    async def test_views_per_day_before_and_after_rollup(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        params = {"from": iso(5), "to": iso(0)}
        expected = [
            {"day": day(5).isoformat(), "views": 1},
            {"day": day(4).isoformat(), "views": 0},
            {"day": day(3).isoformat(), "views": 0},
            {"day": day(2).isoformat(), "views": 0},
            {"day": day(1).isoformat(), "views": 2},
            {"day": day(0).isoformat(), "views": 2},
        ]
        r = await client.get(f"{A}/views", params=params)
        assert r.json()["days"] == expected
        top = (await client.get(f"{A}/products")).json()["items"]
        result = await rollup(app.state.engine, keep_days=3, today=TODAY)
        assert result.deleted_views == 1  # the one of five days ago, now only in the daily table
        assert (await client.get(f"{A}/views", params=params)).json()["days"] == expected
        assert (await client.get(f"{A}/products")).json()["items"] == top


@pytest.mark.usefixtures("data")
class TestSearchTrends:
    async def test_trends(self, client: httpx.AsyncClient) -> None:
        r = await client.get(f"{A}/search", params={"from": iso(13), "to": iso(0)})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["top_queries"] == [
            {
                "query": "lamp",
                "searches": 3,
                "clicks": 2,
                "click_through": 0.6667,
                "zero_results": 0,
            },
            {"query": "chair", "searches": 2, "clicks": 0, "click_through": 0.0, "zero_results": 0},
            {"query": "desk", "searches": 1, "clicks": 1, "click_through": 1.0, "zero_results": 0},
            {"query": "sofa", "searches": 1, "clicks": 0, "click_through": 0.0, "zero_results": 1},
        ]
        assert body["rising_queries"] == [  # nothing in the 14 days before
            {"query": "lamp", "recent": 3, "earlier": 0, "growth": 3},
            {"query": "chair", "recent": 2, "earlier": 0, "growth": 2},
            {"query": "desk", "recent": 1, "earlier": 0, "growth": 1},
            {"query": "sofa", "recent": 1, "earlier": 0, "growth": 1},
        ]
        week = await client.get(f"{A}/search", params={"from": iso(6), "to": iso(0)})
        assert week.json()["rising_queries"] == [  # chair: 2 searches the week before, 0 now
            {"query": "lamp", "recent": 2, "earlier": 1, "growth": 1},
            {"query": "desk", "recent": 1, "earlier": 0, "growth": 1},
            {"query": "sofa", "recent": 1, "earlier": 0, "growth": 1},
        ]
        assert body["zero_result_queries"] == [{"query": "sofa", "searches": 1, "zero_results": 1}]
        assert body["volume"] == [
            {"day": day(12).isoformat(), "searches": 2, "zero_results": 0, "clicks": 0},
            {"day": day(10).isoformat(), "searches": 1, "zero_results": 0, "clicks": 0},
            {"day": day(1).isoformat(), "searches": 2, "zero_results": 1, "clicks": 1},
            {"day": day(0).isoformat(), "searches": 2, "zero_results": 0, "clicks": 2},
        ]

    async def test_a_period_in_the_past(self, client: httpx.AsyncClient) -> None:
        r = await client.get(f"{A}/search", params={"from": iso(13), "to": iso(7)})
        body = r.json()
        assert [(q["query"], q["searches"]) for q in body["top_queries"]] == [
            ("chair", 2),
            ("lamp", 1),
        ]
        assert body["zero_result_queries"] == []
        assert [(v["day"], v["searches"]) for v in body["volume"]] == [
            (iso(12), 2),
            (iso(10), 1),
        ]

    async def test_a_shorter_period(self, client: httpx.AsyncClient) -> None:
        r = await client.get(f"{A}/search", params={"from": iso(1), "to": iso(1)})
        body = r.json()
        assert [v["day"] for v in body["volume"]] == [day(1).isoformat()]
        assert body["rising_queries"] == [
            {"query": "desk", "recent": 1, "earlier": 0, "growth": 1},
            {"query": "sofa", "recent": 1, "earlier": 0, "growth": 1},
        ]


@pytest.mark.usefixtures("data")
class TestUsers:
    async def test_behaviour(self, client: httpx.AsyncClient) -> None:
        r = await client.get(f"{A}/users", params={"from": iso(1), "to": iso(0)})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["active_per_day"] == [
            {"day": day(1).isoformat(), "active": 3, "signed_in": 0},
            {"day": day(0).isoformat(), "active": 2, "signed_in": 1},
        ]
        assert body["views_per_session"] == 1.3333
        assert body["sessions"] == 3
        assert (body["searches"], body["searches_with_click"]) == (4, 2)
        assert body["search_to_click_rate"] == 0.5

    async def test_one_user(self, client: httpx.AsyncClient, data: Data) -> None:
        r = await client.get(f"{A}/users/{data.buyer.id}")
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["views"], body["searches"], body["clicks"]) == (1, 1, 0)
        assert body["top_products"] == [{"product_id": data.p1["id"], "name": "Lamp", "views": 1}]
        assert body["top_queries"] == [{"query": "lamp", "searches": 1}]
        assert [(x["product_id"], x["score"]) for x in body["ratings"]] == [(data.p1["id"], 4)]
        assert body["last_seen_at"].startswith(day(0).isoformat())


@pytest.mark.usefixtures("data")
class TestInventory:
    async def test_alerts_values_and_gaps(self, client: httpx.AsyncClient, data: Data) -> None:
        r = await client.get(f"{A}/inventory")
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["out_of_stock_count"], body["low_stock_count"]) == (1, 1)
        assert [(v["name"], v["stock"]) for v in body["out_of_stock"]] == [("Lamp", 0)]
        assert [(v["name"], v["stock"], v["low_stock_threshold"]) for v in body["low_stock"]] == [
            ("Desk", 3, 5)
        ]
        assert body["stock_value_by_category"] == [
            {
                "id": data.c1["id"],
                "name": "Lighting",
                "currency": "USD",
                "units": 3,
                "value": "60.00",
            },
            {
                "id": data.c2["id"],
                "name": "Seating",
                "currency": "USD",
                "units": 10,
                "value": "50.00",
            },
        ]
        assert body["stock_value_by_brand"] == [
            {"id": None, "name": None, "currency": "USD", "units": 3, "value": "60.00"},
            {"id": data.b1["id"], "name": "Acme", "currency": "USD", "units": 10, "value": "50.00"},
        ]
        assert body["without_images_count"] == 3
        assert body["without_description_count"] == 1
        assert [p["name"] for p in body["without_description"]] == ["Chair"]

    async def test_per_variant_threshold(
        self, app: FastAPI, client: httpx.AsyncClient, data: Data
    ) -> None:
        variant = data.p3["variants"][0]["id"]
        url = f"{A}/inventory/variants/{variant}/threshold"
        assert (await client.put(url, json={"low_stock_threshold": 10})).status_code == 204
        body = (await client.get(f"{A}/inventory")).json()
        assert [(v["name"], v["stock"]) for v in body["low_stock"]] == [("Desk", 3), ("Chair", 10)]
        assert (await client.put(url, json={"low_stock_threshold": -1})).status_code == 422
        missing = f"{A}/inventory/variants/{uuid.uuid4()}/threshold"
        assert (await client.put(missing, json={"low_stock_threshold": 1})).status_code == 404
        buyer = await make_account(app, Role.buyer)
        async with make_client(app, buyer.headers) as c:
            assert (await c.put(url, json={"low_stock_threshold": 1})).status_code == 403
