"""Response caching: hits without database work, exact invalidation across app instances,
304 revalidation from the cache, stampede protection, and degradation when Redis is away."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from catalog.app import create_app
from catalog.config import Settings
from catalog.kit.cache import RedisCache
from catalog.models import Role
from tests.conftest import Backend, make_account, make_client
from tests.factories import API


def cached_settings(backend: Backend, **overrides: Any) -> Settings:
    return backend.settings.model_copy(update={"cache_enabled": True, **overrides})


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        cache = app.state.cache
        if isinstance(cache, RedisCache):
            for _ in range(200):  # the invalidation listener subscribes in the background
                if cache._listening:
                    break
                await asyncio.sleep(0.01)
        yield app


@pytest.fixture
async def pair(backend: Backend, app: FastAPI) -> AsyncIterator[tuple[FastAPI, FastAPI]]:
    """Two instances sharing PostgreSQL and Redis, like two workers. The embedded profile is one
    process by design (its cache lives in memory), so there both are the same instance.
    The `app` fixture cleans the tables afterwards."""
    settings = cached_settings(backend)
    if backend.profile == "embedded":
        async with running(settings) as only:
            yield only, only
        return
    async with running(settings) as a, running(settings) as b:
        yield a, b


def count_queries(app: FastAPI) -> tuple[list[str], Callable[[], None]]:
    """The statements `app` sends, through SQLAlchemy (both pools) and the product reads."""
    statements: list[str] = []
    engines: set[AsyncEngine] = {app.state.engine, app.state.search_engine}

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    for engine in engines:
        event.listen(engine.sync_engine, "before_cursor_execute", before)
    listeners = getattr(app.state.product_reads, "statement_listeners", [])

    def raw(statement: str, _params: Any) -> None:
        statements.append(statement)

    listeners.append(raw)

    def stop() -> None:
        for engine in engines:
            event.remove(engine.sync_engine, "before_cursor_execute", before)
        listeners.remove(raw)

    return statements, stop


async def settle(app: FastAPI, seen_before: int) -> None:
    """Wait until `app` has processed the invalidation published by the other instance."""
    cache = app.state.cache
    if not isinstance(cache, RedisCache):
        return
    deadline = time.monotonic() + 2
    while cache.invalidations_seen <= seen_before and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    assert cache.invalidations_seen > seen_before, "invalidation not received"


def seen(app: FastAPI) -> int:
    cache = app.state.cache
    return cache.invalidations_seen if isinstance(cache, RedisCache) else 0


async def admin_client(app: FastAPI) -> httpx.AsyncClient:
    account = await make_account(app, Role.admin)
    return make_client(app, account.headers)


async def make_product(admin: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"sku": "C-1", "name": "Cache Chair", "currency": "USD"}
    body["price"] = "10.00"
    body |= {"stock": 3, "status": "active", **fields}
    r = await admin.post(f"{API}/products", json=body)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


class TestHits:
    async def test_second_anonymous_read_makes_no_query(
        self, pair: tuple[FastAPI, FastAPI]
    ) -> None:
        a, _ = pair
        async with await admin_client(a) as admin, make_client(a) as anon:
            product = await make_product(admin)
            first = await anon.get(f"{API}/products/{product['id']}")
            assert first.status_code == 200
            statements, stop = count_queries(a)
            try:
                second = await anon.get(f"{API}/products/{product['id']}")
                revalidated = await anon.get(
                    f"{API}/products/{product['id']}",
                    headers={"If-None-Match": first.headers["etag"]},
                )
            finally:
                stop()
            assert second.status_code == 200
            assert second.content == first.content
            assert second.headers["etag"] == first.headers["etag"]
            assert "public" in second.headers["cache-control"]
            assert revalidated.status_code == 304
            assert revalidated.content == b""
            assert statements == []

    async def test_authenticated_reads_are_private(self, pair: tuple[FastAPI, FastAPI]) -> None:
        a, _ = pair
        async with await admin_client(a) as admin:
            product = await make_product(admin)
            r = await admin.get(f"{API}/products/{product['id']}")
            assert r.status_code == 200
            assert r.headers["cache-control"].startswith("private")

    async def test_drafts_are_never_served_from_the_cache(
        self, pair: tuple[FastAPI, FastAPI]
    ) -> None:
        a, _ = pair
        async with await admin_client(a) as admin, make_client(a) as anon:
            product = await make_product(admin, status="draft")
            for _ in range(2):
                assert (await anon.get(f"{API}/products/{product['id']}")).status_code == 404

    async def test_concurrent_misses_load_once(self, pair: tuple[FastAPI, FastAPI]) -> None:
        a, _ = pair
        async with await admin_client(a) as admin, make_client(a) as anon:
            product = await make_product(admin)
            statements, stop = count_queries(a)
            try:
                responses = await asyncio.gather(
                    *[anon.get(f"{API}/products/{product['id']}") for _ in range(10)]
                )
            finally:
                stop()
            assert {r.status_code for r in responses} == {200}
            product_selects = [
                s
                for s in statements
                if s.lstrip().upper().startswith("SELECT") and "FROM product" in s
            ]
            # One load of the product (and one of its variants), not ten.
            assert 1 <= len(product_selects) <= 2


class TestSearchMemo:
    """Synonym rules and which words some product has are kept per instance for the current
    SEARCH generation: read once, read again after any write that bumps it, on any instance."""

    async def test_words_and_synonyms_are_read_once_per_catalogue_change(
        self, pair: tuple[FastAPI, FastAPI]
    ) -> None:
        a, b = pair
        async with await admin_client(b) as admin, make_client(a) as anon:
            await make_product(admin, sku="M-1", name="Oak Chair")
            await settle(a, 0)

            async def search(**params: str) -> dict[str, Any]:
                r = await anon.get(f"{API}/search", params=params)
                assert r.status_code == 200, r.text
                body: dict[str, Any] = r.json()
                return body

            assert (await search(q="oakk"))["did_you_mean"] == "oak"
            statements, stop = count_queries(a)
            try:
                # Another sort: not the cached answer, but the same words.
                body = await search(q="oakk", sort="newest")
            finally:
                stop()
            assert body["did_you_mean"] == "oak"
            read = " ".join(statements).lower()
            assert "search_synonym" not in read
            assert "exists (select" not in read  # no word checks
            assert "search_term" not in read  # nor corrections

            before = seen(a)
            await make_product(admin, sku="M-2", name="Oakk Bench")
            await settle(a, before)
            body = await search(q="oakk", sort="price_asc")
            assert [i["name"] for i in body["items"]] == ["Oakk Bench"]
            assert body["did_you_mean"] is None

            before = seen(a)
            r = await admin.post(
                f"{API}/search/synonyms", json={"input": "seat", "synonyms": ["chair"]}
            )
            assert r.status_code == 201, r.text
            await settle(a, before)
            assert [i["name"] for i in (await search(q="seat"))["items"]] == ["Oak Chair"]

    async def test_category_subtrees_are_read_once_per_catalogue_change(
        self, pair: tuple[FastAPI, FastAPI]
    ) -> None:
        a, b = pair
        async with await admin_client(b) as admin, make_client(a) as anon:
            r = await admin.post(f"{API}/categories", json={"name": "Furniture"})
            assert r.status_code == 201, r.text
            furniture = r.json()["id"]
            await make_product(admin, sku="T-1", name="Oak Table", category_id=furniture)
            await settle(a, 0)

            async def names(**params: str) -> list[str]:
                r = await anon.get(f"{API}/search", params={"category_id": furniture, **params})
                assert r.status_code == 200, r.text
                return sorted(i["name"] for i in r.json()["items"])

            assert await names() == ["Oak Table"]
            statements, stop = count_queries(a)
            try:
                assert await names(sort="newest") == ["Oak Table"]
            finally:
                stop()
            assert not any("recursive" in s.lower() for s in statements)

            before = seen(a)
            r = await admin.post(
                f"{API}/categories", json={"name": "Chairs", "parent_id": furniture}
            )
            assert r.status_code == 201, r.text
            await make_product(admin, sku="T-2", name="Oak Chair", category_id=r.json()["id"])
            await settle(a, before)
            assert await names(sort="price_asc") == ["Oak Chair", "Oak Table"]


class TestFastPath:
    """Hot anonymous product reads are answered before routing, identically to the router."""

    async def test_same_answer_as_the_router(self, pair: tuple[FastAPI, FastAPI]) -> None:
        a, _ = pair
        async with await admin_client(a) as admin, make_client(a) as anon:
            product = await make_product(admin)
            path = f"{API}/products/{product['id']}"
            miss = await anon.get(path)  # computed by the router, stored in the cache
            statements, stop = count_queries(a)
            try:
                hit = await anon.get(path)
                head = await anon.head(path)
                not_modified = await anon.get(path, headers={"If-None-Match": miss.headers["etag"]})
            finally:
                stop()
            assert statements == []
            assert hit.status_code == 200
            assert hit.content == miss.content
            for header in ("etag", "cache-control", "content-type", "x-content-type-options"):
                assert hit.headers[header] == miss.headers[header]
            assert "x-request-id" in hit.headers
            assert "ratelimit-remaining" in hit.headers
            assert head.status_code == 200
            assert head.content == b""
            assert not_modified.status_code == 304
            assert not_modified.content == b""

    async def test_unusual_requests_go_to_the_router(self, pair: tuple[FastAPI, FastAPI]) -> None:
        a, _ = pair
        async with await admin_client(a) as admin, make_client(a) as anon:
            product = await make_product(admin)
            path = f"{API}/products/{product['id']}"
            await anon.get(path)
            private = await admin.get(path)
            assert private.headers["cache-control"].startswith("private")
            assert (await anon.get(f"{API}/products/not-a-uuid")).status_code == 422
            assert (await anon.get(path, params={"x": "1"})).status_code == 200

    async def test_rate_limit_applies(self, backend: Backend, app: FastAPI) -> None:
        settings = cached_settings(
            backend,
            rate_limit_anonymous="3/minute",
            redis_prefix=backend.settings.redis_prefix + "fast:",
        )
        async with running(settings) as limited, make_client(limited) as anon:
            async with await admin_client(limited) as admin:
                product = await make_product(admin)
            responses = [await anon.get(f"{API}/products/{product['id']}") for _ in range(5)]
        assert [r.status_code for r in responses] == [200, 200, 200, 429, 429]


class TestFreshAcrossInstances:
    """A write through instance A is never served stale by instance B."""

    async def test_product_detail_by_id_and_slug(self, pair: tuple[FastAPI, FastAPI]) -> None:
        a, b = pair
        async with await admin_client(a) as admin, make_client(b) as reader:
            product = await make_product(admin)
            pid = product["id"]
            assert (await reader.get(f"{API}/products/{pid}")).json()["name"] == "Cache Chair"
            by_slug = await reader.get(f"{API}/products/by-slug/{product['slug']}")
            assert by_slug.json()["price_min"] == "10.00"
            before = seen(b)
            r = await admin.patch(
                f"{API}/products/{pid}", json={"name": "Renamed", "price": "12.50"}
            )
            assert r.status_code == 200
            await settle(b, before)
            fresh = (await reader.get(f"{API}/products/{pid}")).json()
            assert fresh["name"] == "Renamed"
            assert fresh["price_min"] == "12.50"
            slug_fresh = (await reader.get(f"{API}/products/by-slug/{product['slug']}")).json()
            assert slug_fresh["price_min"] == "12.50"

    async def test_variant_write_and_delete(self, pair: tuple[FastAPI, FastAPI]) -> None:
        a, b = pair
        async with await admin_client(a) as admin, make_client(b) as reader:
            product = await make_product(admin)
            pid = product["id"]
            variant = product["variants"][0]
            assert (await reader.get(f"{API}/products/{pid}")).json()["total_stock"] == 3
            before = seen(b)
            r = await admin.patch(
                f"{API}/products/{pid}/variants/{variant['id']}", json={"stock": 0}
            )
            assert r.status_code == 200
            await settle(b, before)
            assert (await reader.get(f"{API}/products/{pid}")).json()["in_stock"] is False
            before = seen(b)
            assert (await admin.delete(f"{API}/products/{pid}")).status_code == 204
            await settle(b, before)
            assert (await reader.get(f"{API}/products/{pid}")).status_code == 404

    async def test_lists_search_and_suggest(self, pair: tuple[FastAPI, FastAPI]) -> None:
        a, b = pair
        async with await admin_client(a) as admin, make_client(b) as reader:
            await make_product(admin, sku="L-1", name="Walnut Stool")
            listing = await reader.get(f"{API}/products", params={"limit": 10})
            assert [p["name"] for p in listing.json()["items"]] == ["Walnut Stool"]
            found = await reader.get(f"{API}/search", params={"q": "walnut"})
            assert found.json()["total"] == 1
            suggested = await reader.get(f"{API}/search/suggest", params={"q": "walnu"})
            assert [s["text"] for s in suggested.json()["suggestions"]] == ["Walnut Stool"]
            before = seen(b)
            await make_product(admin, sku="L-2", name="Walnut Bench")
            await settle(b, before)
            listing = await reader.get(f"{API}/products", params={"limit": 10})
            assert {p["name"] for p in listing.json()["items"]} == {"Walnut Stool", "Walnut Bench"}
            assert (await reader.get(f"{API}/search", params={"q": "walnut"})).json()["total"] == 2
            suggested = await reader.get(f"{API}/search/suggest", params={"q": "walnu"})
            assert len(suggested.json()["suggestions"]) == 2

    async def test_browse_facet_counts_are_shared_and_follow_writes(
        self, pair: tuple[FastAPI, FastAPI]
    ) -> None:
        """Browsing keeps its total and facet counts (those of a facet whose filter is set
        made over the other filters only: the category facet of a category page counts every
        category) for the next pages and sorts, on every worker, until a write changes them."""
        a, b = pair
        async with await admin_client(a) as admin, make_client(b) as reader:

            async def categories(params: dict[str, str]) -> dict[str, int]:
                r = await reader.get(f"{API}/search", params=params)
                assert r.status_code == 200, r.text
                return {f["name"]: f["count"] for f in r.json()["facets"]["categories"]}

            chairs = (await admin.post(f"{API}/categories", json={"name": "Chairs"})).json()
            lamps = (await admin.post(f"{API}/categories", json={"name": "Lamps"})).json()
            await make_product(admin, sku="F-1", name="Oak Chair", category_id=chairs["id"])
            await make_product(admin, sku="F-2", name="Desk Lamp", category_id=lamps["id"])
            stats = b.state.cache.stats
            page = {"category_id": chairs["id"]}
            assert await categories(page) == {"Chairs": 1, "Lamps": 1}
            hits = stats.hits.get("search-facets", 0)
            assert await categories({**page, "sort": "newest"}) == {"Chairs": 1, "Lamps": 1}
            # Every count of the page is found: brands, categories, prices and the total.
            assert stats.hits.get("search-facets", 0) == hits + 4
            before = seen(b)
            await make_product(admin, sku="F-3", name="Floor Lamp", category_id=lamps["id"])
            await settle(b, before)
            assert await categories({**page, "sort": "rating"}) == {"Chairs": 1, "Lamps": 2}
            # The total is kept too, and follows writes like the counts.
            chair_page = (await reader.get(f"{API}/search", params={**page, "page": "2"})).json()
            assert (chair_page["total"], chair_page["items"]) == (1, [])
            before = seen(b)
            await make_product(admin, sku="F-4", name="Arm Chair", category_id=chairs["id"])
            await settle(b, before)
            r = await reader.get(f"{API}/search", params={**page, "sort": "price_desc"})
            assert r.json()["total"] == 2
            assert {i["name"] for i in r.json()["items"]} == {"Oak Chair", "Arm Chair"}
            before = seen(b)
            r = await admin.patch(f"{API}/categories/{lamps['id']}", json={"name": "Lighting"})
            assert r.status_code == 200, r.text
            await settle(b, before)
            renamed = {"Chairs": 2, "Lighting": 2}
            assert await categories({**page, "sort": "price_asc"}) == renamed
            # The other filters are part of what the counts depend on.
            assert await categories({**page, "price_min": "11"}) == {}
            assert await categories({**page, "in_stock": "true"}) == renamed

    async def test_search_gets_a_new_search_id_each_time(
        self, pair: tuple[FastAPI, FastAPI]
    ) -> None:
        a, _ = pair
        async with await admin_client(a) as admin, make_client(a) as anon:
            await make_product(admin, name="Teak Table")
            one = (await anon.get(f"{API}/search", params={"q": "teak"})).json()
            two = (await anon.get(f"{API}/search", params={"q": "teak"})).json()
            assert one["search_id"] != two["search_id"]
            assert one["items"] == two["items"]
            await a.state.recorder.flush()

    async def test_brand_rename_refreshes_product_details(
        self, pair: tuple[FastAPI, FastAPI]
    ) -> None:
        a, b = pair
        async with await admin_client(a) as admin, make_client(b) as reader:
            brand = (await admin.post(f"{API}/brands", json={"name": "Old Brand"})).json()
            product = await make_product(admin, brand_id=brand["id"])
            detail = await reader.get(f"{API}/products/{product['id']}")
            assert detail.json()["brand"]["name"] == "Old Brand"
            brands = await reader.get(f"{API}/brands")
            assert [x["name"] for x in brands.json()["items"]] == ["Old Brand"]
            before = seen(b)
            r = await admin.patch(f"{API}/brands/{brand['id']}", json={"name": "New Brand"})
            assert r.status_code == 200
            await settle(b, before)
            detail = await reader.get(f"{API}/products/{product['id']}")
            assert detail.json()["brand"]["name"] == "New Brand"
            brands = await reader.get(f"{API}/brands")
            assert [x["name"] for x in brands.json()["items"]] == ["New Brand"]

    async def test_category_tree(self, pair: tuple[FastAPI, FastAPI]) -> None:
        a, b = pair
        async with await admin_client(a) as admin, make_client(b) as reader:
            await admin.post(f"{API}/categories", json={"name": "Garden"})
            tree = await reader.get(f"{API}/categories/tree")
            assert [c["name"] for c in tree.json()] == ["Garden"]
            etag = tree.headers["etag"]
            assert (
                await reader.get(f"{API}/categories/tree", headers={"If-None-Match": etag})
            ).status_code == 304
            before = seen(b)
            await admin.post(f"{API}/categories", json={"name": "Attic"})
            await settle(b, before)
            tree = await reader.get(f"{API}/categories/tree", headers={"If-None-Match": etag})
            assert tree.status_code == 200
            assert [c["name"] for c in tree.json()] == ["Attic", "Garden"]


class TestRedisAway:
    async def test_reads_work_without_redis(self, backend: Backend, app: FastAPI) -> None:
        if backend.profile != "production":
            pytest.skip("the embedded profile has no Redis")
        async with await admin_client(app) as admin:
            product = await make_product(admin)
        settings = cached_settings(
            backend, redis_url="redis://127.0.0.1:1/0", rate_limit_fail_open=True
        )
        async with running(settings) as broken:
            account = await make_account(broken, Role.admin)
            async with make_client(broken) as anon, make_client(broken, account.headers) as admin:
                for _ in range(2):
                    r = await anon.get(f"{API}/products/{product['id']}")
                    assert r.status_code == 200
                    assert r.json()["name"] == "Cache Chair"
                found = await anon.get(f"{API}/search", params={"q": "chair"})
                assert found.json()["total"] == 1
                assert (await admin.get(f"{API}/products/{product['id']}")).status_code == 200
                # Token revocation cannot be checked: writes are refused, not let through.
                r = await admin.patch(f"{API}/products/{product['id']}", json={"name": "X"})
                assert r.status_code == 503
                assert r.headers["retry-after"] == "5"
