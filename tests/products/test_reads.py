"""The product read paths agree with each other and with write responses.

On PostgreSQL list pages build their items' JSON in the database while single products are
serialized in Python; both must carry the same fields and values, for every currency's number
of decimals, with and without brand and category, variants in order, and the timestamps
written alike."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.factories import API, create_brand, create_category, create_product, unique


async def _products(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    brand = await create_brand(client)
    parent = await create_category(client)
    category = await create_category(client, parent_id=parent["id"])
    made = []
    for currency, price in (("USD", "19.90"), ("JPY", "1990"), ("BHD", "1.235"), ("EUR", "0")):
        sku = unique("READ")
        made.append(
            await create_product(
                client,
                sku=sku,
                currency=currency,
                brand_id=brand["id"],
                category_id=category["id"],
                description="Ünïcode — “quotes” and \\ backslashes",
                attributes={"color": "red", "weight_kg": 1.5, "tags": ["a", "b"], "ok": True},
                options=[
                    {"name": "size", "values": ["S", "M"]},
                    {"name": "color", "values": ["red", "blue"]},
                ],
                variants=[
                    {
                        "sku": f"{sku}-{n}",
                        "price": price,
                        "stock": n,
                        "option_values": {"size": size, "color": color},
                    }
                    for n, (size, color) in enumerate(
                        [("M", "blue"), ("S", "red"), ("S", "blue"), ("M", "red")]
                    )
                ],
            )
        )
    made.append(await create_product(client, name="Bare"))  # no brand, no category
    return made


async def test_list_items_equal_single_products(client: httpx.AsyncClient) -> None:
    made = await _products(client)
    r = await client.get(f"{API}/products", params={"limit": 100})
    assert r.status_code == 200, r.text
    items = {item["id"]: item for item in r.json()["items"]}
    for product in made:
        single = await client.get(f"{API}/products/{product['id']}")
        assert single.status_code == 200
        assert items[product["id"]] == single.json()
        # The write response and the read are the same bytes (one ETag for If-Match).
        assert single.json() == product


@pytest.mark.parametrize("sort", ["price", "-price", "name", "-name", "created_at", "-created_at"])
async def test_pages_walk_every_product_once(client: httpx.AsyncClient, sort: str) -> None:
    made = [
        await create_product(client, name=f"Walk {n % 3}", price=f"{n % 4}.00") for n in range(9)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "sort": sort}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(f"{API}/products", params=params)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(p["id"] for p in made)
    assert len(seen) == len(set(seen))


async def test_single_product_etag_matches_write_response(client: httpx.AsyncClient) -> None:
    product = await create_product(client)
    read = await client.get(f"{API}/products/{product['id']}")
    r = await client.patch(
        f"{API}/products/{product['id']}",
        json={"name": "Renamed"},
        headers={"If-Match": read.headers["etag"]},
    )
    assert r.status_code == 200, r.text
    again = await client.get(f"{API}/products/{product['id']}")
    assert again.headers["etag"] == r.headers["etag"]


def _sort_key(sort: str) -> Callable[[dict[str, Any]], tuple[Any, str]]:
    field = sort.removeprefix("-")
    if field == "price":
        return lambda p: (Decimal(p["price_min"]), p["id"])
    return lambda p: (p[field], p["id"])


@pytest.mark.parametrize("sort", ["price", "-price", "name", "-name", "created_at", "-created_at"])
@pytest.mark.parametrize("scope", ["category", "brand", "category-from-price"])
async def test_filtered_pages_follow_the_sort_order(
    client: httpx.AsyncClient, sort: str, scope: str
) -> None:
    """A category's pages merge the first products of each of its descendants; a brand's read
    one range of its index: both in the list's order, ties by id, across pages."""
    brand, other_brand = await create_brand(client), await create_brand(client)
    root = await create_category(client)
    child = await create_category(client, parent_id=root["id"])
    grandchild = await create_category(client, parent_id=child["id"])
    elsewhere = await create_category(client)
    made = []
    for n in range(12):
        category = (root, child, grandchild, elsewhere)[n % 4]
        made.append(
            await create_product(
                client,
                name=f"Order {n % 3}",
                price=f"{5 + n % 5}.00",
                category_id=category["id"],
                brand_id=(brand if n % 3 else other_brand)["id"],
            )
        )
    params: dict[str, Any] = {"limit": 2, "sort": sort}
    if scope == "brand":
        params["brand_id"] = brand["id"]
        expected = [p for p in made if p["brand_id"] == brand["id"]]
    else:
        params["category_id"] = root["id"]
        expected = [p for p in made if p["category_id"] != elsewhere["id"]]
    if scope == "category-from-price":
        params["price_min"] = "7"
        expected = [p for p in expected if Decimal(p["price_max"]) >= 7]
    expected.sort(key=_sort_key(sort), reverse=sort.startswith("-"))
    seen: list[str] = []
    while True:
        page = (await client.get(f"{API}/products", params=params)).json()
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == [p["id"] for p in expected]
