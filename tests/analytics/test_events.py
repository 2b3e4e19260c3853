"""Analytics events: product views (fast read path and routers, sessions), their batching and
flush on shutdown, ratings, stock events from every kind of write, and the daily rollup."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, insert, select

from catalog.analytics.recorder import EventRecorder
from catalog.analytics.rollup import product_counts, rollup, through_day
from catalog.app import create_app
from catalog.db import create_engine, new_id
from catalog.models import (
    Product,
    ProductDailyStat,
    ProductView,
    Role,
    SearchClick,
    SearchEvent,
    StockEvent,
)
from tests.auth.helpers import client_for, running_app, settings_for
from tests.conftest import Account, Backend, _truncate, make_account, make_client
from tests.factories import API, create_product
from tests.imports.conftest import import_settings
from tests.imports.helpers import run_import, to_csv


async def views(app: FastAPI) -> list[Any]:
    recorder: EventRecorder = app.state.recorder
    await recorder.flush()
    async with app.state.engine.connect() as conn:
        stmt = select(ProductView).order_by(ProductView.created_at, ProductView.id)
        return list((await conn.execute(stmt)).all())


class TestViews:
    async def test_fast_path_and_router_record_views(
        self, app: FastAPI, client: httpx.AsyncClient, admin: Account
    ) -> None:
        product = await create_product(client)
        pid = uuid.UUID(product["id"])
        async with make_client(app, {"X-Session-ID": "s-1"}) as anon:
            assert (await anon.get(f"{API}/products/{pid}")).status_code == 200
            assert (await anon.get(f"{API}/products/{pid}")).status_code == 200
            by_slug = await anon.get(f"{API}/products/by-slug/{product['slug']}")
            assert by_slug.status_code == 200
            assert (await anon.head(f"{API}/products/{pid}")).status_code == 200  # not a view
            assert (await anon.get(f"{API}/products/{uuid.uuid4()}")).status_code == 404
        assert (await client.get(f"{API}/products/{pid}")).status_code == 200
        async with make_client(app, {"Cookie": "theme=dark; catalog_session=cookie-7"}) as c:
            assert (await c.get(f"{API}/products/by-slug/{product['slug']}")).status_code == 200
        rows = await views(app)
        # One row per viewer and write of the recorder, with the number of reads.
        assert [(r.product_id, r.user_id, r.session_id, r.views) for r in rows] == [
            (pid, None, "s-1", 3),
            (pid, admin.id, None, 1),
            (pid, None, "cookie-7", 1),
        ]

    async def test_repeated_reads_are_one_row_with_their_number(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        product = await create_product(client)
        pid = uuid.UUID(product["id"])
        recorder: EventRecorder = app.state.recorder
        async with make_client(app, {"X-Session-ID": "s-9"}) as anon:
            for _ in range(3):
                assert (await anon.get(f"{API}/products/{pid}")).status_code == 200
            await recorder.flush()
            for _ in range(2):
                assert (await anon.get(f"{API}/products/{pid}")).status_code == 200
        rows = await views(app)
        assert [(r.product_id, r.session_id, r.views) for r in rows] == [
            (pid, "s-9", 3),
            (pid, "s-9", 2),
        ]
        per_day = await client.get(f"{API}/analytics/views")
        assert per_day.status_code == 200, per_day.text
        assert sum(day["views"] for day in per_day.json()["days"]) == 5
        top = await client.get(f"{API}/analytics/products")
        assert top.status_code == 200, top.text
        assert [(i["product_id"], i["views"]) for i in top.json()["items"]] == [(str(pid), 5)]
        users = await client.get(f"{API}/analytics/users")
        assert users.status_code == 200, users.text
        assert users.json()["views_per_session"] == 5.0

    async def test_invisible_products_record_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
    ) -> None:
        draft = await create_product(client, status="draft")
        assert (await anon.get(f"{API}/products/{draft['id']}")).status_code == 404
        assert (await anon.get(f"{API}/products/by-slug/{draft['slug']}")).status_code == 404
        assert await views(app) == []

    async def test_malformed_session_ids_are_ignored(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        product = await create_product(client)
        async with make_client(app, {"X-Session-ID": "bad id with spaces"}) as anon:
            assert (await anon.get(f"{API}/products/{product['id']}")).status_code == 200
        (row,) = await views(app)
        assert row.session_id is None

    async def test_cached_reads_are_recorded(self, backend: Backend) -> None:
        settings = settings_for(backend, cache_enabled=True)
        async with running_app(settings) as app:
            admin = await make_account(app, Role.admin)
            async with make_client(app, admin.headers) as c:
                product = await create_product(c)
            async with client_for(app) as anon:
                for _ in range(3):  # a miss, then hits of the fast read path
                    assert (await anon.get(f"{API}/products/{product['id']}")).status_code == 200
                slug = product["slug"]
                for _ in range(2):
                    assert (await anon.get(f"{API}/products/by-slug/{slug}")).status_code == 200
            rows = await views(app)
            assert [(r.product_id, r.session_id, r.views) for r in rows] == [
                (uuid.UUID(product["id"]), None, 5)
            ]

    async def test_views_are_flushed_on_shutdown(self, backend: Backend) -> None:
        settings = settings_for(backend)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            admin = await make_account(app, Role.admin)
            async with make_client(app, admin.headers) as c:
                product = await create_product(c)
            async with client_for(app) as anon:
                for _ in range(4):
                    assert (await anon.get(f"{API}/products/{product['id']}")).status_code == 200
            recorder: EventRecorder = app.state.recorder
            assert recorder._pending == 1  # still in memory: the periodic flush has not run
        engine = create_engine(settings)
        try:
            async with engine.connect() as conn:
                stored = await conn.scalar(select(func.sum(ProductView.views)))
                assert stored == 4
        finally:
            await _truncate(engine)
            await engine.dispose()


class TestRatings:
    async def test_ratings_average_replace_and_permissions(
        self, app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
    ) -> None:
        product = await create_product(client)
        url = f"{API}/products/{product['id']}/ratings"
        first, second = await make_account(app, Role.buyer), await make_account(app, Role.buyer)
        async with make_client(app, first.headers) as one, make_client(app, second.headers) as two:
            r = await one.post(url, json={"score": 4, "comment": "Good"})
            assert r.status_code == 201, r.text
            assert r.json()["product"] == {"rating_avg": 4.0, "rating_count": 1}
            assert r.json()["comment"] == "Good"
            r = await two.post(url, json={"score": 1})
            assert r.status_code == 201
            assert r.json()["product"] == {"rating_avg": 2.5, "rating_count": 2}
            r = await one.post(url, json={"score": 5})  # replaces the first one
            assert r.status_code == 200
            assert r.json()["comment"] is None
            assert r.json()["product"] == {"rating_avg": 3.0, "rating_count": 2}
            assert (await one.post(url, json={"score": 6})).status_code == 422
            assert (await one.post(url, json={"score": 0})).status_code == 422
            missing = f"{API}/products/{uuid.uuid4()}/ratings"
            assert (await one.post(missing, json={"score": 3})).status_code == 404
            draft = await create_product(client, status="draft")
            draft_url = f"{API}/products/{draft['id']}/ratings"
            assert (await one.post(draft_url, json={"score": 3})).status_code == 404
        assert (await anon.post(url, json={"score": 3})).status_code == 401
        assert (await client.post(url, json={"score": 3})).status_code == 403  # admins don't rate
        shown = (await anon.get(f"{API}/products/{product['id']}")).json()
        assert (shown["rating_avg"], shown["rating_count"]) == (3.0, 2)

    async def test_rating_invalidates_cached_reads(self, backend: Backend) -> None:
        async with running_app(settings_for(backend, cache_enabled=True)) as app:
            admin = await make_account(app, Role.admin)
            buyer = await make_account(app, Role.buyer)
            async with make_client(app, admin.headers) as c:
                product = await create_product(c)
            async with client_for(app) as anon, make_client(app, buyer.headers) as b:
                before = await anon.get(f"{API}/products/{product['id']}")
                assert before.json()["rating_count"] == 0
                r = await b.post(f"{API}/products/{product['id']}/ratings", json={"score": 2})
                assert r.status_code == 201
                after = await anon.get(f"{API}/products/{product['id']}")
                assert (after.json()["rating_avg"], after.json()["rating_count"]) == (2.0, 1)
                assert after.headers["etag"] != before.headers["etag"]


async def stock_events(app: FastAPI) -> list[tuple[str, int | None, int]]:
    async with app.state.engine.connect() as conn:
        stmt = select(StockEvent.sku, StockEvent.old_stock, StockEvent.new_stock).order_by(
            StockEvent.id
        )
        return [tuple(r) for r in (await conn.execute(stmt)).all()]


class TestStockEvents:
    async def test_api_writes(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        product = await create_product(client, sku="STK-1", stock=5)
        variant = product["variants"][0]
        url = f"{API}/products/{product['id']}/variants/{variant['id']}"
        assert (await client.patch(url, json={"stock": 7})).status_code == 200
        assert (await client.patch(url, json={"price": "12.00"})).status_code == 200
        assert (await client.patch(f"{API}/products/{product['id']}", json={"stock": 0})).is_success
        events = await stock_events(app)
        sku = variant["sku"]
        assert events == [(sku, None, 5), (sku, 5, 7), (sku, 7, 0)]
        async with app.state.engine.connect() as conn:
            row = (await conn.execute(select(StockEvent).limit(1))).one()
        assert str(row.product_id) == product["id"]
        assert str(row.variant_id) == variant["id"]
        assert row.created_at.tzinfo is not None
        assert abs((dt.datetime.now(dt.UTC) - row.created_at).total_seconds()) < 60

    async def test_imports(self, backend: Backend, tmp_path: Path) -> None:
        app = create_app(import_settings(backend, tmp_path))
        async with app.router.lifespan_context(app):
            try:
                admin = await make_account(app, Role.admin)
                async with make_client(app, admin.headers) as c:
                    row = ["IMP-1", "Lamp", "", "", "active", "", "", "USD", "IMP-1-A", "9.00"]
                    job = await run_import(c, to_csv([[*row, 3]]))
                    assert job["status"] == "succeeded", job
                    job = await run_import(c, to_csv([[*row, 8]]))
                    assert job["status"] == "succeeded", job
                    job = await run_import(c, to_csv([[*row, 8]]))  # unchanged
                    assert job["status"] == "succeeded", job
                assert await stock_events(app) == [("IMP-1-A", None, 3), ("IMP-1-A", 3, 8)]
            finally:
                await _truncate(app.state.engine)


DAY = dt.date(2026, 3, 10)


def at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)


class TestRollup:
    async def test_folds_days_deletes_old_views_and_sets_popularity(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        a = uuid.UUID((await create_product(client))["id"])
        b = uuid.UUID((await create_product(client))["id"])
        c = uuid.UUID((await create_product(client))["id"])
        d1, d2 = DAY - dt.timedelta(days=40), DAY - dt.timedelta(days=2)
        view_rows = [
            (a, d1, "s1"),
            (a, d1, "s1"),
            (a, d2, "s1"),
            (a, d2, "s2"),
            (a, d2, None),
            (b, d2, "s3"),
            (a, DAY, "s4"),  # today: not folded
        ]
        search_id = new_id()
        engine = app.state.engine
        async with engine.begin() as conn:
            await conn.execute(
                insert(ProductView),
                [
                    {"product_id": p, "session_id": s, "created_at": at(day)}
                    for p, day, s in view_rows
                ],
            )
            await conn.execute(
                insert(SearchEvent),
                [
                    {
                        "id": search_id,
                        "query": "lamp",
                        "filters": {},
                        "result_count": 2,
                        "latency_ms": 1.0,
                        "created_at": at(d2),
                    }
                ],
            )
            await conn.execute(
                insert(SearchClick),
                [
                    {
                        "id": new_id(),
                        "search_id": search_id,
                        "product_id": pid,
                        "position": 1,
                        "created_at": at(d2, 13),
                    }
                    for pid in (b, b, c)
                ],
            )
            await conn.execute(
                Product.__table__.update()  # type: ignore[attr-defined]
                .where(Product.__table__.c.id == c)
                .values(rating_avg=4.5, rating_count=2)
            )
        async with engine.connect() as conn:
            before = await product_counts(conn, d1, DAY, None)

        result = await rollup(engine, keep_days=30, today=DAY)
        assert result.through_day == DAY - dt.timedelta(days=1)
        assert result.days == 40 + 1 - 1  # from the first event's day through yesterday
        assert result.views == 6
        assert result.deleted_views == 2  # the two of d1, older than 30 days
        async with engine.connect() as conn:
            stats = (
                await conn.execute(
                    select(
                        ProductDailyStat.day,
                        ProductDailyStat.product_id,
                        ProductDailyStat.views,
                        ProductDailyStat.sessions,
                        ProductDailyStat.clicks,
                    ).order_by(ProductDailyStat.day, ProductDailyStat.views.desc())
                )
            ).all()
            assert [tuple(s) for s in stats] == [
                (d1, a, 2, 1, 0),
                (d2, a, 3, 2, 0),
                (d2, b, 1, 1, 2),
                (d2, c, 0, 0, 1),
            ]
            assert await conn.scalar(select(func.count()).select_from(ProductView)) == 5
            after = await product_counts(conn, d1, DAY, await through_day(conn))
            assert dict(after) == dict(before)  # every view counted once, before and after
            popularity = dict((await conn.execute(select(Product.id, Product.popularity))).all())
        # 30 days up to today: a: 3 (d2) + 1 (today); b: 1 view + 2 clicks; c: 1 click + rating
        assert popularity == {a: 4.0, b: 1 + 5 * 2, c: 5 * 1 + 2 * 4.5 * 2}

        again = await rollup(engine, keep_days=30, today=DAY)
        assert (again.days, again.views, again.deleted_views, again.popularity_changed) == (
            0,
            0,
            0,
            0,
        )
        nextday = await rollup(engine, keep_days=30, today=DAY + dt.timedelta(days=1))
        assert (nextday.days, nextday.views) == (1, 1)

    async def test_cli(self, backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
        from typer.testing import CliRunner

        from catalog.cli import cli

        for name, value in {
            "CATALOG_DATABASE_URL": backend.settings.database_url,
            "CATALOG_REDIS_URL": backend.settings.redis_url or "",
            "CATALOG_REDIS_PREFIX": backend.settings.redis_prefix,
            "CATALOG_ENVIRONMENT": "test",
        }.items():
            if value:
                monkeypatch.setenv(name, value)
            else:
                monkeypatch.delenv(name, raising=False)
        engine = create_engine(backend.settings)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    insert(ProductView),
                    [
                        {
                            "product_id": uuid.uuid4(),
                            "created_at": dt.datetime.now(dt.UTC) - dt.timedelta(days=3),
                        }
                    ],
                )
            import asyncio

            result = await asyncio.to_thread(
                CliRunner().invoke, cli, ["analytics", "rollup", "--keep-days", "1"]
            )
            assert result.exit_code == 0, result.output
            assert "rolled up 3 day(s)" in result.output
            assert "1 views; deleted 1 raw views" in result.output
        finally:
            await _truncate(engine)
            await engine.dispose()


async def test_tallies_of_a_failed_flush_are_kept_and_merged(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flush that fails keeps its tallies queued, added to those counted while it ran, and
    the next flush writes them all: no search of a popular query is lost or counted twice."""
    from catalog.analytics import recorder as recorder_module
    from catalog.models import SearchQuery

    table = SearchQuery.__table__
    recorder = EventRecorder(app.state.engine)
    now = dt.datetime.now(dt.UTC)

    def searched(query: str) -> None:
        recorder.tally(table, "query", {"query": query, "last_searched_at": now}, "searches")  # type: ignore[arg-type]

    searched("oak chair")
    searched("oak chair")
    searched("lamp")
    real = recorder_module._add_tallies

    async def failing(*_args: Any, **_kwargs: Any) -> None:
        searched("oak chair")  # counted while the failing flush runs
        raise RuntimeError("database gone")

    monkeypatch.setattr(recorder_module, "_add_tallies", failing)
    with pytest.raises(RuntimeError):
        await recorder.flush()
    monkeypatch.setattr(recorder_module, "_add_tallies", real)
    assert await recorder.flush() == 2  # one upsert row per query
    async with app.state.engine.connect() as conn:
        rows = (await conn.execute(select(table.c.query, table.c.searches))).all()
    assert {str(q): int(n) for q, n in rows} == {"oak chair": 3, "lamp": 1}
