"""Stored list items (PostgreSQL): a list page returns the item stored with each product
(`product.item_json`) and builds only those a write has cleared, which are then stored in the
background. Every write that changes an item clears it, and a store overtaken by a write keeps
nothing, so a page never shows an item older than a committed write."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from fastapi import FastAPI

from catalog.products.reads import PostgresProductReads, item_function_body, store_items
from tests.factories import API, create_brand, create_category, create_product, unique


@pytest.fixture
def reads(app: FastAPI, profile: str) -> PostgresProductReads:
    if profile != "production":
        pytest.skip("list items are stored on PostgreSQL only")
    product_reads: PostgresProductReads = app.state.product_reads
    return product_reads


async def _stored(reads: PostgresProductReads, product_id: str) -> Any:
    async with reads.pool.acquire() as conn:
        text = await conn.fetchval(
            "SELECT item_json FROM product WHERE id = $1", uuid.UUID(product_id)
        )
    return None if text is None else orjson.loads(text)


async def _listed(client: httpx.AsyncClient, product_id: str) -> dict[str, Any]:
    r = await client.get(f"{API}/products", params={"limit": 100})
    assert r.status_code == 200, r.text
    found = [item for item in r.json()["items"] if item["id"] == product_id]
    assert len(found) == 1
    item: dict[str, Any] = found[0]
    return item


async def _product(client: httpx.AsyncClient) -> dict[str, Any]:
    brand = await create_brand(client)
    category = await create_category(client)
    sku = unique("ITEM")
    return await create_product(
        client,
        sku=sku,
        brand_id=brand["id"],
        category_id=category["id"],
        options=[{"name": "size", "values": ["S", "M", "L"]}],
        variants=[
            {"sku": f"{sku}-S", "price": "10.00", "stock": 3, "option_values": {"size": "S"}},
            {"sku": f"{sku}-M", "price": "12.50", "stock": 0, "option_values": {"size": "M"}},
        ],
    )


async def test_a_page_stores_the_items_it_built(
    client: httpx.AsyncClient, reads: PostgresProductReads
) -> None:
    made = [await _product(client) for _ in range(3)]
    assert [await _stored(reads, p["id"]) for p in made] == [None] * 3
    first = await client.get(f"{API}/products", params={"limit": 100})
    await reads.items.idle()
    items = {item["id"]: item for item in first.json()["items"]}
    for product in made:
        assert await _stored(reads, product["id"]) == items[product["id"]] == product
    again = await client.get(f"{API}/products", params={"limit": 100})
    assert again.content == first.content


async def _patch_product(client: httpx.AsyncClient, p: dict[str, Any]) -> None:
    r = await client.patch(f"{API}/products/{p['id']}", json={"name": unique("Renamed")})
    assert r.status_code == 200, r.text


async def _patch_variant(client: httpx.AsyncClient, p: dict[str, Any]) -> None:
    variant = p["variants"][1]
    r = await client.patch(
        f"{API}/products/{p['id']}/variants/{variant['id']}", json={"price": "11.25"}
    )
    assert r.status_code == 200, r.text


async def _adjust_stock(client: httpx.AsyncClient, p: dict[str, Any]) -> None:
    variant = p["variants"][0]
    r = await client.post(
        f"{API}/products/{p['id']}/variants/{variant['id']}/stock-adjustments", json={"delta": -2}
    )
    assert r.status_code == 200, r.text


async def _add_variant(client: httpx.AsyncClient, p: dict[str, Any]) -> None:
    body = {"sku": unique("ITEM-L"), "price": "14.00", "stock": 1, "option_values": {"size": "L"}}
    r = await client.post(f"{API}/products/{p['id']}/variants", json=body)
    assert r.status_code == 201, r.text


async def _delete_variant(client: httpx.AsyncClient, p: dict[str, Any]) -> None:
    r = await client.delete(f"{API}/products/{p['id']}/variants/{p['variants'][1]['id']}")
    assert r.status_code == 204, r.text


async def _rename_brand(client: httpx.AsyncClient, p: dict[str, Any]) -> None:
    r = await client.patch(f"{API}/brands/{p['brand_id']}", json={"name": unique("Brand")})
    assert r.status_code == 200, r.text


async def _reslug_brand(client: httpx.AsyncClient, p: dict[str, Any]) -> None:
    r = await client.patch(f"{API}/brands/{p['brand_id']}", json={"slug": unique("brand-slug")})
    assert r.status_code == 200, r.text


async def _rename_category(client: httpx.AsyncClient, p: dict[str, Any]) -> None:
    body = {"name": unique("Category")}
    r = await client.patch(f"{API}/categories/{p['category_id']}", json=body)
    assert r.status_code == 200, r.text


async def _reslug_category(client: httpx.AsyncClient, p: dict[str, Any]) -> None:
    body = {"slug": unique("category-slug")}
    r = await client.patch(f"{API}/categories/{p['category_id']}", json=body)
    assert r.status_code == 200, r.text


Write = Callable[[httpx.AsyncClient, dict[str, Any]], Awaitable[None]]
WRITES: dict[str, Write] = {
    "product": _patch_product,
    "variant": _patch_variant,
    "stock-adjustment": _adjust_stock,
    "new-variant": _add_variant,
    "deleted-variant": _delete_variant,
    "brand-name": _rename_brand,
    "brand-slug": _reslug_brand,
    "category-name": _rename_category,
    "category-slug": _reslug_category,
}


@pytest.mark.parametrize("write", list(WRITES))
async def test_every_write_clears_the_stored_item(
    client: httpx.AsyncClient, reads: PostgresProductReads, write: str
) -> None:
    product = await _product(client)
    before = await _listed(client, product["id"])
    await reads.items.idle()
    assert await _stored(reads, product["id"]) == before

    await WRITES[write](client, product)
    assert await _stored(reads, product["id"]) is None
    after = await _listed(client, product["id"])
    single = (await client.get(f"{API}/products/{product['id']}")).json()
    assert after == single != before
    await reads.items.idle()
    assert await _stored(reads, product["id"]) == single


async def test_a_variant_changed_alone_clears_the_stored_item(
    client: httpx.AsyncClient, reads: PostgresProductReads
) -> None:
    """The statement triggers on variants cover a write that leaves the product's row alone."""
    product = await _product(client)
    await _listed(client, product["id"])
    await reads.items.idle()
    async with reads.pool.acquire() as conn:
        await conn.execute(
            "UPDATE product_variant SET stock = stock + 1 WHERE product_id = $1",
            uuid.UUID(product["id"]),
        )
    assert await _stored(reads, product["id"]) is None
    item = await _listed(client, product["id"])
    assert [v["stock"] for v in item["variants"]] == [4, 1]


@pytest.mark.parametrize("write", ["product", "variant", "brand-name", "category-slug"])
async def test_a_store_overtaken_by_a_write_keeps_nothing(
    client: httpx.AsyncClient, reads: PostgresProductReads, write: str
) -> None:
    product = await _product(client)
    product_id = uuid.UUID(product["id"])

    async def overtake() -> None:
        await WRITES[write](client, product)

    async with reads.pool.acquire() as conn:
        with pytest.raises(asyncpg.SerializationError):
            await store_items(conn, [product_id], after_snapshot=overtake)
        assert await _stored(reads, product["id"]) is None
        single = (await client.get(f"{API}/products/{product['id']}")).json()
        assert single != product
        assert await store_items(conn, [product_id]) == 1
    assert await _stored(reads, product["id"]) == single == await _listed(client, product["id"])


async def test_the_database_function_builds_the_items_of_the_code(
    reads: PostgresProductReads,
) -> None:
    """`catalog_product_item` was created by a migration from `item_function_body()`; a change
    to the items' shape or to a currency's decimals needs a migration that replaces it (and
    clears the stored items)."""
    async with reads.pool.acquire() as conn:
        body = await conn.fetchval(
            "SELECT prosrc FROM pg_proc WHERE proname = 'catalog_product_item'"
        )
    assert body == item_function_body()


async def test_items_are_stored_with_lz4_and_read_with_generic_plans(
    client: httpx.AsyncClient, reads: PostgresProductReads
) -> None:
    """Migration 0012: a page decompresses its twenty items, and lz4 does that faster than
    the default pglz; the read pool's statements keep one generic plan each."""
    product = await _product(client)
    # Long enough to be compressed (PostgreSQL compresses values of 2 KB and more).
    r = await client.patch(
        f"{API}/products/{product['id']}",
        json={"description": "lz4 " * 1000},
    )
    assert r.status_code == 200, r.text
    await _listed(client, product["id"])
    await reads.items.idle()
    async with reads.pool.acquire() as conn:
        lz4 = await conn.fetchval(
            "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' "
            "AND 'lz4' = ANY(enumvals)"
        )
        compression = await conn.fetchval(
            "SELECT pg_column_compression(item_json) FROM product WHERE id = $1",
            uuid.UUID(product["id"]),
        )
        assert compression == ("lz4" if lz4 else "pglz")
        assert await conn.fetchval("SHOW plan_cache_mode") == "force_generic_plan"


async def test_list_indexes_include_the_filtered_columns(reads: PostgresProductReads) -> None:
    """Migration 0012: a category's products and the multi-price products below a
    `price_min` are rejected from the indexes' included columns (index-only scans), so a page
    reads only its own rows from the table (`bench/load.py --explain` shows the plans)."""
    async with reads.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'product' "
            "AND (indexname LIKE 'ix_product_category_%' OR indexname = 'ix_product_price_spread')"
        )
    definitions = {row["indexname"]: row["indexdef"] for row in rows}
    for sort in ("created_at", "price_min", "name"):
        assert definitions[f"ix_product_category_{sort}_id"].endswith(
            f"(category_id, {sort}, id) INCLUDE (status, deleted_at)"
        )
    assert definitions["ix_product_price_spread"].endswith(
        "(price_min, id) INCLUDE (price_max, status, deleted_at) WHERE (price_min <> price_max)"
    )
