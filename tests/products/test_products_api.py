from __future__ import annotations

import base64
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import QueryCounter
from tests.factories import API, create_brand, create_category, create_product, unique

# A product id for hand-made cursors: fixed, so the parametrised test ids are the same in every
# process (pytest-xdist collects in each worker).
FIXED_CURSOR_ID = "3f2b9c1e-7a4d-4e8b-9c6f-1d2e3f4a5b6c"

SIZES = [{"name": "size", "values": ["S", "M", "L"]}]
SIZES_COLORS = [
    {"name": "size", "values": ["S", "M", "L"]},
    {"name": "color", "values": ["red", "blue"]},
]


def tee(sku: str, price: str, stock: int, option_values: dict[str, str]) -> dict[str, Any]:
    return {"sku": sku, "price": price, "stock": stock, "option_values": option_values}


def sized_variants(prefix: str, prices: list[str], stocks: list[int]) -> list[dict[str, Any]]:
    sizes = ["S", "M", "L"]
    return [
        {
            "sku": f"{prefix}-{sizes[i]}",
            "price": price,
            "stock": stock,
            "option_values": {"size": sizes[i]},
        }
        for i, (price, stock) in enumerate(zip(prices, stocks, strict=True))
    ]


async def create_sized_product(
    client: httpx.AsyncClient,
    prices: tuple[str, ...] = ("10.00", "12.50", "15.00"),
    stocks: tuple[int, ...] = (1, 2, 3),
    **fields: Any,
) -> dict[str, Any]:
    sku = fields.pop("sku", unique("SIZED"))
    return await create_product(
        client,
        sku=sku,
        options=SIZES,
        variants=sized_variants(sku, list(prices), list(stocks)),
        **fields,
    )


async def get_product(client: httpx.AsyncClient, product_id: str) -> dict[str, Any]:
    r = await client.get(f"{API}/products/{product_id}")
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


async def post_product(client: httpx.AsyncClient, **fields: Any) -> httpx.Response:
    body: dict[str, Any] = {"sku": unique("SKU"), "name": unique("Product"), "currency": "USD"}
    body.update(fields)
    return await client.post(f"{API}/products", json=body)


async def list_pages(client: httpx.AsyncClient, **params: Any) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = await client.get(f"{API}/products", params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100


async def list_ids(client: httpx.AsyncClient, **params: Any) -> list[str]:
    return [p["id"] for page in await list_pages(client, **params) for p in page]


def make_cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(parts))).decode().rstrip("=")


def assert_problem(r: httpx.Response, status: int, loc: list[Any] | None = None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == status
    if loc is not None:
        assert problem["errors"][0]["loc"] == loc, problem


class TestCreateProduct:
    async def test_simple_product_gets_one_default_variant(self, client: httpx.AsyncClient) -> None:
        r = await post_product(
            client,
            sku="CHAIR-01",
            name="  Oak Chair ",
            currency="usd",
            price="10",
            stock=3,
            status="active",
            attributes={"material": "oak", "legs": 4, "foldable": False, "tags": ["a", "b"]},
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert uuid.UUID(body["id"]).version == 7
        assert r.headers["location"] == f"{API}/products/{body['id']}"
        assert r.headers["etag"]
        assert body["sku"] == "CHAIR-01"
        assert body["name"] == "Oak Chair"
        assert body["slug"] == "oak-chair"
        assert body["currency"] == "USD"
        assert body["status"] == "active"
        assert body["price_min"] == body["price_max"] == "10.00"
        assert body["total_stock"] == 3
        assert body["in_stock"] is True
        assert body["options"] == []
        assert body["attributes"] == {
            "material": "oak",
            "legs": 4,
            "foldable": False,
            "tags": ["a", "b"],
        }
        assert body["brand_id"] is None
        assert body["brand"] is None
        assert body["category"] is None
        assert body["deleted_at"] is None
        assert body["version"] == 1
        [variant] = body["variants"]
        assert variant["sku"] == "CHAIR-01"
        assert variant["price"] == "10.00"
        assert variant["stock"] == 3
        assert variant["option_values"] == {}
        assert variant["product_id"] == body["id"]
        assert variant["position"] == 0
        assert variant["version"] == 1

    async def test_defaults_draft_and_zero_stock(self, client: httpx.AsyncClient) -> None:
        r = await post_product(client, price="3.5")
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["status"] == "draft"
        assert body["price_min"] == "3.50"
        assert body["total_stock"] == 0
        assert body["in_stock"] is False
        assert body["variants"][0]["stock"] == 0

    @pytest.mark.parametrize(
        ("currency", "price", "shown"),
        [
            ("USD", "10", "10.00"),
            ("USD", "0", "0.00"),
            ("EUR", "19.9", "19.90"),
            ("JPY", "1500", "1500"),
            ("JPY", "1500.00", "1500"),
            ("BHD", "1.5", "1.500"),
            ("USD", "999999999999.99", "999999999999.99"),
        ],
    )
    async def test_price_has_the_currency_decimals(
        self, client: httpx.AsyncClient, currency: str, price: str, shown: str
    ) -> None:
        r = await post_product(client, currency=currency, price=price)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["price_min"] == body["price_max"] == shown
        assert body["variants"][0]["price"] == shown
        assert (await get_product(client, body["id"]))["price_min"] == shown

    async def test_float_price_is_accepted(self, client: httpx.AsyncClient) -> None:
        r = await post_product(client, price=19.99, stock=1)
        assert r.status_code == 201, r.text
        assert r.json()["price_min"] == "19.99"
        assert (await get_product(client, r.json()["id"]))["variants"][0]["price"] == "19.99"

    async def test_with_options_and_variants(self, client: httpx.AsyncClient) -> None:
        brand = await create_brand(client, name="Nordic")
        category = await create_category(client, name="Shirts")
        r = await post_product(
            client,
            sku="TEE",
            name="Tee",
            brand_id=brand["id"],
            category_id=category["id"],
            options=SIZES_COLORS,
            variants=[
                tee("TEE-S-R", "12", 2, {"size": "S", "color": "red"}),
                tee("TEE-M-B", "9.99", 0, {"size": "M", "color": "blue"}),
                tee("TEE-L-R", "14.5", 5, {"color": "red", "size": "L"}),
            ],
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["price_min"] == "9.99"
        assert body["price_max"] == "14.50"
        assert body["total_stock"] == 7
        assert body["in_stock"] is True
        assert body["options"] == SIZES_COLORS
        assert [v["sku"] for v in body["variants"]] == ["TEE-S-R", "TEE-M-B", "TEE-L-R"]
        assert [v["position"] for v in body["variants"]] == [0, 1, 2]
        assert [v["price"] for v in body["variants"]] == ["12.00", "9.99", "14.50"]
        assert body["variants"][2]["option_values"] == {"size": "L", "color": "red"}
        assert body["brand"] == {"id": brand["id"], "name": "Nordic", "slug": brand["slug"]}
        assert body["category"] == {"id": category["id"], "name": "Shirts", "slug": "shirts"}
        assert await get_product(client, body["id"]) == body

    async def test_variants_out_of_stock(self, client: httpx.AsyncClient) -> None:
        p = await create_sized_product(client, stocks=(0, 0, 0))
        assert p["total_stock"] == 0
        assert p["in_stock"] is False

    async def test_generated_slug_is_made_unique(self, client: httpx.AsyncClient) -> None:
        first = (await post_product(client, name="Desk Lamp", price="1")).json()
        second = (await post_product(client, name="desk lamp!", price="1")).json()
        third = (await post_product(client, name="DESK LAMP", price="1")).json()
        assert [first["slug"], second["slug"], third["slug"]] == [
            "desk-lamp",
            "desk-lamp-2",
            "desk-lamp-3",
        ]

    async def test_generated_slug_of_a_long_name_fits(self, client: httpx.AsyncClient) -> None:
        name = "щ" * 200
        first = (await post_product(client, name=name, price="1")).json()
        second = (await post_product(client, name=name, price="1")).json()
        assert first["slug"] != second["slug"]
        assert len(second["slug"]) <= 200

    async def test_explicit_slug(self, client: httpx.AsyncClient) -> None:
        r = await post_product(client, name="Whatever", slug="my-slug", price="1")
        assert r.status_code == 201
        assert r.json()["slug"] == "my-slug"

    async def test_duplicate_sku_is_409_naming_sku(self, client: httpx.AsyncClient) -> None:
        await create_product(client, sku="DUP-1")
        r = await post_product(client, sku="DUP-1", price="1")
        assert_problem(r, 409, ["body", "sku"])

    async def test_sku_of_another_products_variant_is_409(self, client: httpx.AsyncClient) -> None:
        await create_sized_product(client, sku="SHOE")
        r = await post_product(client, sku="SHOE-M", price="1")
        assert_problem(r, 409, ["body", "sku"])

    async def test_duplicate_variant_sku_in_body_is_422(self, client: httpx.AsyncClient) -> None:
        variants = sized_variants("X", ["1", "2"], [1, 1])
        variants[1]["sku"] = variants[0]["sku"]
        r = await post_product(client, options=SIZES, variants=variants)
        assert_problem(r, 422, ["body", "variants"])

    async def test_variant_sku_of_another_product_is_409(self, client: httpx.AsyncClient) -> None:
        other = await create_product(client)
        variants = sized_variants("Y", ["1", "2"], [1, 1])
        variants[1]["sku"] = other["sku"]
        r = await post_product(client, options=SIZES, variants=variants)
        assert_problem(r, 409, ["body", "sku"])
        assert other["sku"] in r.json()["detail"]

    async def test_duplicate_slug_is_409(self, client: httpx.AsyncClient) -> None:
        await create_product(client, slug="taken")
        r = await post_product(client, slug="taken", price="1")
        assert_problem(r, 409, ["body", "slug"])

    async def test_unknown_currency_is_422(self, client: httpx.AsyncClient) -> None:
        r = await post_product(client, currency="XYZ", price="1")
        assert_problem(r, 422, ["body", "currency"])

    @pytest.mark.parametrize(
        ("currency", "price"),
        [("USD", "1.234"), ("JPY", "1.5"), ("JPY", 1.5), ("BHD", "0.0001")],
    )
    async def test_too_many_decimals_for_the_currency_is_422(
        self, client: httpx.AsyncClient, currency: str, price: str | float
    ) -> None:
        r = await post_product(client, currency=currency, price=price)
        assert_problem(r, 422, ["body", "price"])
        r = await post_product(
            client, currency=currency, variants=[{"sku": unique("V"), "price": price}]
        )
        assert_problem(r, 422, ["body", "variants", 0, "price"])

    async def test_unknown_brand_or_category_is_422(self, client: httpx.AsyncClient) -> None:
        r = await post_product(client, price="1", brand_id=str(uuid.uuid4()))
        assert_problem(r, 422, ["body", "brand_id"])
        r = await post_product(client, price="1", category_id=str(uuid.uuid4()))
        assert_problem(r, 422, ["body", "category_id"])

    async def test_price_and_variants_together_is_422(self, client: httpx.AsyncClient) -> None:
        r = await post_product(client, price="1", variants=[{"sku": unique("V"), "price": "1"}])
        assert_problem(r, 422)
        r = await post_product(client, stock=1, variants=[{"sku": unique("V"), "price": "1"}])
        assert_problem(r, 422)

    async def test_neither_price_nor_variants_is_422(self, client: httpx.AsyncClient) -> None:
        r = await post_product(client)
        assert_problem(r, 422)
        r = await post_product(client, stock=4)
        assert_problem(r, 422)
        r = await post_product(client, variants=[])
        assert_problem(r, 422, ["body", "variants"])

    @pytest.mark.parametrize(
        "option_values",
        [{}, {"size": "XL"}, {"size": "S", "color": "red"}, {"colour": "S"}],
    )
    async def test_variant_option_values_must_match_options(
        self, client: httpx.AsyncClient, option_values: dict[str, str]
    ) -> None:
        variants = sized_variants("OV", ["1", "2"], [1, 1])
        variants[1]["option_values"] = option_values
        r = await post_product(client, options=SIZES, variants=variants)
        assert_problem(r, 422)
        assert r.json()["errors"][0]["loc"][:4] == ["body", "variants", 1, "option_values"]

    async def test_two_variants_with_the_same_option_values_is_409(
        self, client: httpx.AsyncClient
    ) -> None:
        variants = sized_variants("TWIN", ["1", "2"], [1, 1])
        variants[1]["option_values"] = {"size": "S"}
        r = await post_product(client, options=SIZES, variants=variants)
        assert_problem(r, 409)

    async def test_several_variants_without_options_is_422(self, client: httpx.AsyncClient) -> None:
        r = await post_product(
            client,
            variants=[{"sku": unique("V"), "price": "1"}, {"sku": unique("V"), "price": "2"}],
        )
        assert_problem(r, 422, ["body", "options"])

    async def test_options_without_variants_is_422(self, client: httpx.AsyncClient) -> None:
        r = await post_product(client, price="1", options=SIZES)
        assert_problem(r, 422)

    async def test_single_explicit_variant_without_options(self, client: httpx.AsyncClient) -> None:
        r = await post_product(
            client, sku="BASE", variants=[{"sku": "BASE-ONLY", "price": "7", "stock": 2}]
        )
        assert r.status_code == 201, r.text
        assert r.json()["variants"][0]["sku"] == "BASE-ONLY"
        assert r.json()["total_stock"] == 2

    async def test_total_stock_beyond_the_limit_is_422(self, client: httpx.AsyncClient) -> None:
        r = await post_product(
            client,
            options=SIZES,
            variants=sized_variants("HUGE", ["1", "1", "1"], [1_000_000_000] * 3),
        )
        assert_problem(r, 422)
        r = await post_product(
            client,
            options=SIZES,
            variants=sized_variants("BIG", ["1", "1"], [1_000_000_000] * 2),
        )
        assert r.status_code == 201, r.text
        assert r.json()["total_stock"] == 2_000_000_000

    @pytest.mark.parametrize(
        ("fields", "loc"),
        [
            ({"price": "-1"}, ["body", "price"]),
            ({"price": "1", "stock": -1}, ["body", "stock"]),
            ({"price": "1", "stock": 1_000_000_001}, ["body", "stock"]),
            ({"price": "1000000000000"}, ["body", "price"]),
            ({"price": "1.23456"}, ["body", "price"]),
            ({"price": "abc"}, ["body", "price"]),
            ({"price": "NaN"}, ["body", "price"]),
            ({"price": "Infinity"}, ["body", "price"]),
            ({"price": True}, ["body", "price"]),
            ({"price": "1", "name": "n" * 201}, ["body", "name"]),
            ({"price": "1", "name": ""}, ["body", "name"]),
            ({"price": "1", "sku": "S" * 65}, ["body", "sku"]),
            ({"price": "1", "sku": "has space"}, ["body", "sku"]),
            ({"price": "1", "sku": "-leading"}, ["body", "sku"]),
            ({"price": "1", "slug": "s" * 201}, ["body", "slug"]),
            ({"price": "1", "slug": "not a slug"}, ["body", "slug"]),
            ({"price": "1", "description": "d" * 10_001}, ["body", "description"]),
            ({"price": "1", "currency": "US"}, ["body", "currency"]),
            ({"price": "1", "currency": "USDX"}, ["body", "currency"]),
            ({"price": "1", "currency": "U$D"}, ["body", "currency"]),
            ({"price": "1", "status": "deleted"}, ["body", "status"]),
            ({"price": "1", "brand_id": "nope"}, ["body", "brand_id"]),
            ({"price": "1", "unknown": 1}, ["body", "unknown"]),
            ({"price": "1", "name": "a\x00b"}, ["body", "name"]),
            ({"price": "1", "description": "\x00"}, ["body", "description"]),
            ({"price": "1", "attributes": {"k\x00": "v"}}, ["body", "attributes"]),
            ({"price": "1", "attributes": {"k": "v\x00"}}, ["body", "attributes"]),
            ({"price": "1", "attributes": {"k": ["a", "\x00"]}}, ["body", "attributes"]),
            ({"price": "1", "attributes": {"k" * 65: 1}}, ["body", "attributes"]),
            ({"price": "1", "attributes": {"k": "v" * 501}}, ["body", "attributes"]),
            ({"price": "1", "attributes": {"k": {"nested": 1}}}, ["body", "attributes"]),
            ({"price": "1", "attributes": {"k": 10**20}}, ["body", "attributes"]),
            ({"price": "1", "attributes": {"k": 1e20}}, ["body", "attributes"]),
            ({"price": "1", "attributes": {"k": -1e300}}, ["body", "attributes"]),
            ({"price": "1", "attributes": {f"k{i}": i for i in range(51)}}, ["body", "attributes"]),
            ({"price": "1", "attributes": ["not", "a", "dict"]}, ["body", "attributes"]),
        ],
    )
    async def test_invalid_input_is_422_with_field_path(
        self, client: httpx.AsyncClient, fields: dict[str, Any], loc: list[Any]
    ) -> None:
        r = await post_product(client, **fields)
        assert_problem(r, 422)
        assert r.json()["errors"][0]["loc"][: len(loc)] == loc

    @pytest.mark.parametrize(
        "fields",
        [
            {"options": [{"name": "size", "values": ["S", "S"]}]},
            {"options": [{"name": "Size", "values": ["S"]}, {"name": "size", "values": ["M"]}]},
            {"options": [{"name": f"o{i}", "values": ["x"]} for i in range(4)]},
            {"options": [{"name": "size", "values": []}]},
            {"options": [{"name": "size", "values": [f"v{i}" for i in range(51)]}]},
            {"options": [{"name": "n" * 51, "values": ["x"]}]},
            {"options": [{"name": "size", "values": ["v" * 101]}]},
            {"options": [{"name": "si\x00ze", "values": ["S"]}]},
            {"options": [{"name": "size", "values": ["S\x00"]}]},
        ],
    )
    async def test_invalid_options_are_422(
        self, client: httpx.AsyncClient, fields: dict[str, Any]
    ) -> None:
        r = await post_product(client, variants=[{"sku": unique("V"), "price": "1"}], **fields)
        assert_problem(r, 422)
        assert r.json()["errors"][0]["loc"][:2] == ["body", "options"]

    @pytest.mark.parametrize(
        "variant",
        [
            {"price": "1"},
            {"sku": "V-1"},
            {"sku": "V-1", "price": "1", "stock": -5},
            {"sku": "V-1", "price": "1", "option_values": {"size": "\x00"}},
            {"sku": "V-1", "price": "1", "option_values": {"size": "S" * 101}},
            {"sku": "V-1", "price": "1", "extra": True},
        ],
    )
    async def test_invalid_variant_is_422(
        self, client: httpx.AsyncClient, variant: dict[str, Any]
    ) -> None:
        r = await post_product(client, variants=[variant])
        assert_problem(r, 422)
        assert r.json()["errors"][0]["loc"][:3] == ["body", "variants", 0]

    async def test_too_many_variants_is_422(self, client: httpx.AsyncClient) -> None:
        values = [f"v{i}" for i in range(50)]
        options = [{"name": "a", "values": values}, {"name": "b", "values": ["x", "y", "z"]}]
        variants = [
            {"sku": f"MANY-{i}", "price": "1", "option_values": {"a": values[i % 50], "b": b}}
            for i, b in enumerate(["x"] * 50 + ["y"] * 50 + ["z"])
        ]
        r = await post_product(client, options=options, variants=variants)
        assert_problem(r, 422, ["body", "variants"])
        r = await post_product(client, options=options, variants=variants[:100])
        assert r.status_code == 201, r.text
        assert len(r.json()["variants"]) == 100

    @pytest.mark.parametrize(
        "raw",
        [
            b'{"sku": "RAW-1", "name": "n", "currency": "USD", "price": NaN}',
            b'{"sku": "RAW-2", "name": "n", "currency": "USD", "price": Infinity}',
            b'{"sku": "RAW-3", "name": "n", "currency": "USD", "price": 1e400}',
            b'{"sku": "RAW-4", "name": "n", "currency": "USD", "price": "1", "stock": 1.5}',
            b'{"sku": "RAW-5", "name": "n", "currency": "USD", "price": "1",'
            b' "attributes": {"x": NaN}}',
            b'{"sku": "RAW-6", "name": "n", "currency": "USD", "price": "1",'
            b' "attributes": {"x": -Infinity}}',
            b'{"sku": "RAW-7", "name": "n", "currency": "USD", "price": "1",'
            b' "attributes": {"x": 123456789012345678901234567890}}',
            b'{"sku": "RAW-8", "name": "n", "currency": "USD", "price": "1"',
            b"[]",
            b'"just a string"',
        ],
    )
    async def test_malformed_json_bodies_are_422(
        self, client: httpx.AsyncClient, raw: bytes
    ) -> None:
        r = await client.post(
            f"{API}/products", content=raw, headers={"content-type": "application/json"}
        )
        assert_problem(r, 422)

    async def test_numeric_attributes_round_trip(self, client: httpx.AsyncClient) -> None:
        attributes = {"weight": 2.5, "count": 9_007_199_254_740_991, "neg": -3, "big": 1e15}
        r = await post_product(client, price="1", attributes=attributes)
        assert r.status_code == 201, r.text
        got = (await get_product(client, r.json()["id"]))["attributes"]
        assert got == attributes


class TestGetProduct:
    async def test_by_id_and_by_slug_with_the_same_etag(self, client: httpx.AsyncClient) -> None:
        p = await create_product(client, name="Green Vase")
        r = await client.get(f"{API}/products/{p['id']}")
        assert r.status_code == 200
        assert r.json() == p
        assert r.headers["etag"] == (await client.get(f"{API}/products/{p['id']}")).headers["etag"]
        r2 = await client.get(f"{API}/products/by-slug/green-vase")
        assert r2.status_code == 200
        assert r2.json() == p
        assert r2.headers["etag"] == r.headers["etag"]

    async def test_if_none_match_gives_304_with_empty_body(self, client: httpx.AsyncClient) -> None:
        p = await create_product(client, slug="vase")
        etag = (await client.get(f"{API}/products/{p['id']}")).headers["etag"]
        for url in (f"{API}/products/{p['id']}", f"{API}/products/by-slug/vase"):
            r = await client.get(url, headers={"If-None-Match": etag})
            assert r.status_code == 304
            assert r.content == b""
            assert r.headers["etag"] == etag
            r = await client.get(url, headers={"If-None-Match": f'"other", W/{etag}'})
            assert r.status_code == 304
            r = await client.get(url, headers={"If-None-Match": '"other"'})
            assert r.status_code == 200

    async def test_etag_changes_after_a_write(self, client: httpx.AsyncClient) -> None:
        p = await create_product(client)
        etag = (await client.get(f"{API}/products/{p['id']}")).headers["etag"]
        await client.patch(f"{API}/products/{p['id']}", json={"name": "Renamed"})
        r = await client.get(f"{API}/products/{p['id']}", headers={"If-None-Match": etag})
        assert r.status_code == 200
        assert r.json()["name"] == "Renamed"

    async def test_responses_to_writes_match_a_later_read(self, client: httpx.AsyncClient) -> None:
        brand = await create_brand(client)
        r = await post_product(
            client,
            brand_id=brand["id"],
            attributes={"zeta": 1, "alpha": "x", "mid": ["b", "a"], "f": 1.5},
            options=SIZES_COLORS,
            variants=[
                {"sku": unique("V"), "price": "5", "option_values": {"color": "red", "size": "S"}}
            ],
        )
        assert r.status_code == 201, r.text
        got = await client.get(f"{API}/products/{r.json()['id']}")
        assert got.json() == r.json()
        assert got.headers["etag"] == r.headers["etag"]
        pid = r.json()["id"]
        r = await client.patch(f"{API}/products/{pid}", json={"attributes": {"b": 1, "a": 2}})
        got = await client.get(f"{API}/products/{pid}")
        assert got.json() == r.json()
        assert got.headers["etag"] == r.headers["etag"]

    async def test_missing_is_404(self, client: httpx.AsyncClient) -> None:
        missing = uuid.uuid4()
        r = await client.get(f"{API}/products/{missing}")
        assert_problem(r, 404)
        assert str(missing) in r.json()["detail"]
        r = await client.get(f"{API}/products/by-slug/no-such-product")
        assert_problem(r, 404)

    async def test_malformed_uuid_is_422(self, client: httpx.AsyncClient) -> None:
        r = await client.get(f"{API}/products/not-a-uuid")
        assert_problem(r, 422, ["path", "product_id"])

    @pytest.mark.parametrize("slug", ["s" * 201, "a%00b", "%00"])
    async def test_bad_slug_is_not_a_server_error(
        self, client: httpx.AsyncClient, slug: str
    ) -> None:
        r = await client.get(f"{API}/products/by-slug/{slug}")
        assert r.status_code in (404, 422)
        assert r.headers["content-type"] == "application/problem+json"


class TestListProducts:
    PRICES = ("5.00", "5.00", "7.50", "5.00", "1.00", "7.50", "12.00", "0")
    NAMES = ("beta", "alpha", "beta", "gamma", "alpha", "delta", "beta", "beta")

    async def _create_with_ties(self, client: httpx.AsyncClient) -> list[dict[str, Any]]:
        return [
            await create_product(client, name=name, price=price)
            for name, price in zip(self.NAMES, self.PRICES, strict=True)
        ]

    @staticmethod
    def _expected(products: list[dict[str, Any]], sort: str) -> list[str]:
        key = sort.removeprefix("-")

        def sort_key(p: dict[str, Any]) -> tuple[Any, str]:
            value: Any = {
                "created_at": dt.datetime.fromisoformat(p["created_at"]),
                "price": Decimal(p["price_min"]),
                "name": p["name"],
            }[key]
            return value, p["id"]

        ordered = sorted(products, key=sort_key, reverse=sort.startswith("-"))
        return [p["id"] for p in ordered]

    @pytest.mark.parametrize(
        "sort", ["created_at", "-created_at", "price", "-price", "name", "-name"]
    )
    async def test_cursor_pagination_over_every_page(
        self, client: httpx.AsyncClient, sort: str
    ) -> None:
        products = await self._create_with_ties(client)
        expected = self._expected(products, sort)
        for limit in (1, 3, 8, 50):
            pages = await list_pages(client, sort=sort, limit=limit)
            ids = [p["id"] for page in pages for p in page]
            assert ids == expected, (sort, limit)
            assert len(set(ids)) == len(products)
            assert all(len(page) == limit for page in pages[:-1])
            assert len(pages) == max(1, -(-len(products) // limit))

    async def test_default_sort_is_newest_first(self, client: httpx.AsyncClient) -> None:
        products = [await create_product(client) for _ in range(3)]
        r = await client.get(f"{API}/products")
        assert [p["id"] for p in r.json()["items"]] == [p["id"] for p in reversed(products)]
        assert r.json()["next_cursor"] is None
        assert r.json()["items"][0] == products[-1]

    async def test_pages_are_stable_when_products_are_added(
        self, client: httpx.AsyncClient
    ) -> None:
        products = [await create_product(client, price=str(i)) for i in range(1, 5)]
        r = await client.get(f"{API}/products", params={"sort": "price", "limit": 2})
        first = r.json()
        await create_product(client, price="0.5")
        r = await client.get(
            f"{API}/products", params={"sort": "price", "limit": 2, "cursor": first["next_cursor"]}
        )
        assert [p["id"] for p in r.json()["items"]] == [products[2]["id"], products[3]["id"]]

    async def test_category_filter_includes_sub_categories(self, client: httpx.AsyncClient) -> None:
        root = await create_category(client)
        child = await create_category(client, parent_id=root["id"])
        grandchild = await create_category(client, parent_id=child["id"])
        other = await create_category(client)
        in_root = await create_product(client, category_id=root["id"])
        in_child = await create_product(client, category_id=child["id"])
        in_grandchild = await create_product(client, category_id=grandchild["id"])
        await create_product(client, category_id=other["id"])
        await create_product(client)
        ids = await list_ids(client, category_id=root["id"], sort="created_at", limit=2)
        assert ids == [in_root["id"], in_child["id"], in_grandchild["id"]]
        ids = await list_ids(client, category_id=child["id"], sort="created_at")
        assert ids == [in_child["id"], in_grandchild["id"]]
        assert await list_ids(client, category_id=str(uuid.uuid4())) == []

    async def test_brand_and_status_filters(self, client: httpx.AsyncClient) -> None:
        brand = await create_brand(client)
        a = await create_product(client, brand_id=brand["id"], status="active")
        b = await create_product(client, brand_id=brand["id"], status="draft")
        c = await create_product(client, status="archived")
        assert await list_ids(client, brand_id=brand["id"], sort="created_at") == [a["id"], b["id"]]
        assert await list_ids(client, status="draft") == [b["id"]]
        assert await list_ids(client, status="archived") == [c["id"]]
        assert await list_ids(client, brand_id=brand["id"], status="archived") == []

    async def test_price_range_filters_overlap_the_variant_prices(
        self, client: httpx.AsyncClient
    ) -> None:
        cheap = await create_product(client, price="1")
        ranged = await create_sized_product(client, prices=("5", "12", "20"))
        dear = await create_product(client, price="30")
        assert ranged["price_min"] == "5.00"
        assert ranged["price_max"] == "20.00"

        async def ids(**params: Any) -> set[str]:
            return set(await list_ids(client, **params))

        assert await ids(price_min="10") == {ranged["id"], dear["id"]}
        assert await ids(price_max="10") == {cheap["id"], ranged["id"]}
        assert await ids(price_min="10", price_max="25") == {ranged["id"]}
        assert await ids(price_min="20", price_max="20") == {ranged["id"]}
        assert await ids(price_min="1", price_max="1") == {cheap["id"]}
        assert await ids(price_min="21", price_max="29.99") == set()
        assert await ids(price_min="0") == {cheap["id"], ranged["id"], dear["id"]}

    @pytest.mark.parametrize("limit", [1, 2, 50])
    async def test_price_sorted_pages_with_a_lower_bound(
        self, client: httpx.AsyncClient, limit: int
    ) -> None:
        """Sorted by price with `price_min`: products whose prices span the bound (lowest
        below it) come first, by their lowest price, then the others; every page in order."""
        spans_low = await create_sized_product(client, prices=("2", "15"), stocks=(1, 1))
        spans_high = await create_sized_product(client, prices=("8", "9", "40"))
        below = await create_sized_product(client, prices=("3", "9.99"), stocks=(1, 1))
        at = await create_product(client, price="10")
        above = await create_product(client, price="11")
        above_ranged = await create_sized_product(client, prices=("12", "13"), stocks=(1, 1))
        await create_product(client, price="9.99")  # below the bound
        await create_product(client, price="50")  # above price_max
        pages = await list_pages(client, sort="price", limit=limit, price_min="10", price_max="45")
        ids = [p["id"] for page in pages for p in page]
        assert ids == [spans_low["id"], spans_high["id"], at["id"], above["id"], above_ranged["id"]]
        assert below["id"] not in ids
        descending = await list_ids(client, sort="-price", price_min="10", price_max="45")
        assert descending == ids[::-1]

    async def test_price_min_above_price_max_is_422(self, client: httpx.AsyncClient) -> None:
        r = await client.get(f"{API}/products", params={"price_min": "10", "price_max": "5"})
        assert_problem(r, 422, ["query", "price_min"])

    async def test_in_stock_filter(self, client: httpx.AsyncClient) -> None:
        stocked = await create_product(client, stock=3)
        empty = await create_product(client, stock=0)
        mixed = await create_sized_product(client, stocks=(0, 0, 1))
        assert set(await list_ids(client, in_stock="true")) == {stocked["id"], mixed["id"]}
        assert await list_ids(client, in_stock="false") == [empty["id"]]
        assert len(await list_ids(client)) == 3

    async def test_limit_is_capped_at_100(self, client: httpx.AsyncClient) -> None:
        for _ in range(101):
            await create_product(client)
        r = await client.get(f"{API}/products")
        assert len(r.json()["items"]) == 20
        r = await client.get(f"{API}/products", params={"limit": 100})
        assert r.status_code == 200
        assert len(r.json()["items"]) == 100
        assert r.json()["next_cursor"]
        for limit in (101, 500, 1000):
            r = await client.get(f"{API}/products", params={"limit": limit})
            assert r.status_code == 200
            assert len(r.json()["items"]) == 100
        r = await client.get(
            f"{API}/products", params={"limit": 100, "cursor": r.json()["next_cursor"]}
        )
        assert len(r.json()["items"]) == 1
        assert r.json()["next_cursor"] is None

    @pytest.mark.parametrize(
        ("params", "loc"),
        [
            ({"limit": 1001}, ["query", "limit"]),
            ({"limit": 0}, ["query", "limit"]),
            ({"limit": -1}, ["query", "limit"]),
            ({"limit": "ten"}, ["query", "limit"]),
            ({"sort": "popularity"}, ["query", "sort"]),
            ({"status": "deleted"}, ["query", "status"]),
            ({"category_id": "nope"}, ["query", "category_id"]),
            ({"brand_id": "nope"}, ["query", "brand_id"]),
            ({"price_min": "-1"}, ["query", "price_min"]),
            ({"price_min": "abc"}, ["query", "price_min"]),
            ({"price_min": "NaN"}, ["query", "price_min"]),
            ({"price_max": "Infinity"}, ["query", "price_max"]),
            ({"price_max": "1e12"}, ["query", "price_max"]),
            ({"price_min": "1e-999999"}, ["query", "price_min"]),
            ({"price_max": "0.000001"}, ["query", "price_max"]),
            ({"in_stock": "maybe"}, ["query", "in_stock"]),
            ({"cursor": "garbage!!"}, ["query", "cursor"]),
            ({"cursor": "x" * 513}, ["query", "cursor"]),
        ],
    )
    async def test_bad_query_is_422(
        self, client: httpx.AsyncClient, params: dict[str, Any], loc: list[str]
    ) -> None:
        r = await client.get(f"{API}/products", params=params)
        assert_problem(r, 422, loc)

    async def test_cursor_for_another_sort_is_422(self, client: httpx.AsyncClient) -> None:
        for _ in range(3):
            await create_product(client)
        by_sort: dict[str, str] = {}
        for sort in ("created_at", "-created_at", "price", "-price", "name", "-name"):
            r = await client.get(f"{API}/products", params={"sort": sort, "limit": 1})
            by_sort[sort] = r.json()["next_cursor"]
        for sort, cursor in by_sort.items():
            for other in by_sort:
                r = await client.get(
                    f"{API}/products", params={"sort": other, "limit": 1, "cursor": cursor}
                )
                if other == sort:
                    assert r.status_code == 200
                else:
                    assert_problem(r, 422, ["query", "cursor"])

    @pytest.mark.parametrize(
        ("sort", "cursor"),
        [
            ("price", make_cursor("price", "sNaN", FIXED_CURSOR_ID)),
            ("price", make_cursor("price", "NaN", FIXED_CURSOR_ID)),
            ("price", make_cursor("price", "Infinity", FIXED_CURSOR_ID)),
            ("price", make_cursor("price", "1E+999999", FIXED_CURSOR_ID)),
            ("price", make_cursor("price", "1E-999999", FIXED_CURSOR_ID)),
            ("price", make_cursor("price", "abc", FIXED_CURSOR_ID)),
            ("price", make_cursor("price", None, FIXED_CURSOR_ID)),
            ("-created_at", make_cursor("-created_at", "yesterday", FIXED_CURSOR_ID)),
            (
                "-created_at",
                make_cursor("-created_at", "0001-01-01T00:00:00+14:00", FIXED_CURSOR_ID),
            ),
            (
                "created_at",
                make_cursor("created_at", "9999-12-31T23:59:59-10:00", FIXED_CURSOR_ID),
            ),
            ("name", make_cursor("name", 5, FIXED_CURSOR_ID)),
            ("name", make_cursor("name", "a\x00", FIXED_CURSOR_ID)),
            ("name", make_cursor("name", "a", "not-a-uuid")),
            ("name", make_cursor("name", "a")),
            ("name", make_cursor("name", "a", FIXED_CURSOR_ID, "extra")),
            ("name", base64.urlsafe_b64encode(b'{"a": 1}').decode()),
            ("name", base64.urlsafe_b64encode(b"\xff\xfe").decode()),
        ],
    )
    async def test_tampered_cursor_is_422(
        self, client: httpx.AsyncClient, sort: str, cursor: str
    ) -> None:
        await create_product(client)
        r = await client.get(f"{API}/products", params={"sort": sort, "cursor": cursor})
        assert_problem(r, 422, ["query", "cursor"])

    async def test_fixed_number_of_queries_whatever_the_page_size(
        self, client: httpx.AsyncClient, queries: QueryCounter
    ) -> None:
        brand = await create_brand(client)
        category = await create_category(client)

        async def add(n: int) -> None:
            for _ in range(n):
                await create_sized_product(client, brand_id=brand["id"], category_id=category["id"])

        async def count_list() -> tuple[int, int]:
            queries.reset()
            r = await client.get(f"{API}/products", params={"limit": 50})
            assert r.status_code == 200
            items = r.json()["items"]
            assert all(p["brand"] and p["category"] and len(p["variants"]) == 3 for p in items)
            return queries.count, len(items)

        await add(3)
        few, n_few = await count_list()
        await add(9)
        many, n_many = await count_list()
        assert (n_few, n_many) == (3, 12)
        assert few == many
        assert few <= 4

    async def test_filtered_list_also_has_a_fixed_number_of_queries(
        self, client: httpx.AsyncClient, queries: QueryCounter
    ) -> None:
        root = await create_category(client)
        child = await create_category(client, parent_id=root["id"])
        for _ in range(2):
            await create_product(client, category_id=child["id"])
        queries.reset()
        r = await client.get(
            f"{API}/products", params={"category_id": root["id"], "sort": "price", "limit": 1}
        )
        few = queries.count
        for _ in range(6):
            await create_product(client, category_id=child["id"])
        queries.reset()
        r = await client.get(
            f"{API}/products",
            params={"category_id": root["id"], "sort": "price", "limit": 7},
        )
        assert len(r.json()["items"]) == 7
        assert queries.count == few


class TestUpdateProduct:
    async def test_patch_name_and_status(self, client: httpx.AsyncClient) -> None:
        p = await create_product(client, name="Old name", status="draft")
        r = await client.patch(
            f"{API}/products/{p['id']}", json={"name": "New name", "status": "archived"}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["name"] == "New name"
        assert body["status"] == "archived"
        assert body["slug"] == p["slug"]
        assert body["sku"] == p["sku"]
        assert body["variants"] == p["variants"]
        assert body["version"] == 2
        assert body["created_at"] == p["created_at"]
        updated = dt.datetime.fromisoformat(body["updated_at"])
        assert updated > dt.datetime.fromisoformat(p["updated_at"])
        assert await get_product(client, p["id"]) == body

    async def test_patch_price_and_stock_of_a_simple_product(
        self, client: httpx.AsyncClient
    ) -> None:
        p = await create_product(client, price="10.00", stock=5)
        r = await client.patch(f"{API}/products/{p['id']}", json={"price": "7.5", "stock": 0})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["price_min"] == body["price_max"] == "7.50"
        assert body["total_stock"] == 0
        assert body["in_stock"] is False
        [variant] = body["variants"]
        assert variant["id"] == p["variants"][0]["id"]
        assert variant["price"] == "7.50"
        assert variant["stock"] == 0
        assert variant["version"] == 2
        assert await list_ids(client, in_stock="false") == [p["id"]]
        assert await list_ids(client, price_max="8") == [p["id"]]
        r = await client.patch(f"{API}/products/{p['id']}", json={"stock": 4})
        assert r.json()["price_min"] == "7.50"
        assert r.json()["total_stock"] == 4

    async def test_patch_price_of_a_multi_variant_product_is_422(
        self, client: httpx.AsyncClient
    ) -> None:
        p = await create_sized_product(client)
        r = await client.patch(f"{API}/products/{p['id']}", json={"price": "1"})
        assert_problem(r, 422, ["body", "price"])
        r = await client.patch(f"{API}/products/{p['id']}", json={"stock": 1})
        assert_problem(r, 422, ["body", "stock"])
        assert await get_product(client, p["id"]) == p

    async def test_patch_price_with_too_many_decimals_is_422(
        self, client: httpx.AsyncClient
    ) -> None:
        p = await create_product(client, currency="JPY", price="100")
        r = await client.patch(f"{API}/products/{p['id']}", json={"price": "100.5"})
        assert_problem(r, 422, ["body", "price"])
        assert (await get_product(client, p["id"]))["price_min"] == "100"

    async def test_patch_currency_keeps_prices_valid(self, client: httpx.AsyncClient) -> None:
        p = await create_product(client, price="10.50")
        r = await client.patch(f"{API}/products/{p['id']}", json={"currency": "JPY"})
        assert_problem(r, 422)
        q = await create_product(client, price="10.00")
        r = await client.patch(f"{API}/products/{q['id']}", json={"currency": "jpy"})
        assert r.status_code == 200, r.text
        assert r.json()["currency"] == "JPY"
        assert r.json()["price_min"] == "10"

    async def test_patch_sku_renames_the_default_variant(self, client: httpx.AsyncClient) -> None:
        p = await create_product(client, sku="OLD-SKU")
        r = await client.patch(f"{API}/products/{p['id']}", json={"sku": "NEW-SKU"})
        assert r.status_code == 200, r.text
        assert r.json()["sku"] == "NEW-SKU"
        assert r.json()["variants"][0]["sku"] == "NEW-SKU"
        again = await post_product(client, sku="OLD-SKU", price="1")
        assert again.status_code == 201, again.text

    async def test_patch_sku_of_a_multi_variant_product_keeps_variant_skus(
        self, client: httpx.AsyncClient
    ) -> None:
        p = await create_sized_product(client)
        r = await client.patch(f"{API}/products/{p['id']}", json={"sku": "RENAMED"})
        assert r.status_code == 200, r.text
        assert [v["sku"] for v in r.json()["variants"]] == [v["sku"] for v in p["variants"]]

    async def test_patch_sku_to_a_taken_one_is_409(self, client: httpx.AsyncClient) -> None:
        other = await create_product(client, sku="TAKEN")
        sized = await create_sized_product(client, sku="SIZED-X")
        p = await create_product(client)
        r = await client.patch(f"{API}/products/{p['id']}", json={"sku": other["sku"]})
        assert_problem(r, 409, ["body", "sku"])
        r = await client.patch(f"{API}/products/{p['id']}", json={"sku": "SIZED-X-M"})
        assert_problem(r, 409, ["body", "sku"])
        assert sized["variants"][1]["sku"] == "SIZED-X-M"
        assert await get_product(client, p["id"]) == p

    async def test_patch_slug(self, client: httpx.AsyncClient) -> None:
        await create_product(client, slug="taken")
        p = await create_product(client)
        r = await client.patch(f"{API}/products/{p['id']}", json={"slug": "taken"})
        assert_problem(r, 409, ["body", "slug"])
        r = await client.patch(f"{API}/products/{p['id']}", json={"slug": "free"})
        assert r.status_code == 200
        assert (await client.get(f"{API}/products/by-slug/free")).json()["id"] == p["id"]
        assert (await client.get(f"{API}/products/by-slug/{p['slug']}")).status_code == 404

    async def test_patch_brand_and_category_updates_the_references(
        self, client: httpx.AsyncClient
    ) -> None:
        old_brand = await create_brand(client)
        new_brand = await create_brand(client, name="Newbrand")
        category = await create_category(client, name="Lighting")
        p = await create_product(client, brand_id=old_brand["id"])
        r = await client.patch(
            f"{API}/products/{p['id']}",
            json={"brand_id": new_brand["id"], "category_id": category["id"]},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["brand_id"] == new_brand["id"]
        assert body["brand"] == {"id": new_brand["id"], "name": "Newbrand", "slug": "newbrand"}
        assert body["category_id"] == category["id"]
        assert body["category"] == {"id": category["id"], "name": "Lighting", "slug": "lighting"}
        assert await get_product(client, p["id"]) == body
        r = await client.patch(f"{API}/products/{p['id']}", json={"brand_id": None})
        assert r.json()["brand_id"] is None
        assert r.json()["brand"] is None
        assert r.json()["category"]["id"] == category["id"]

    async def test_patch_unknown_brand_or_category_is_422(self, client: httpx.AsyncClient) -> None:
        p = await create_product(client)
        r = await client.patch(f"{API}/products/{p['id']}", json={"brand_id": str(uuid.uuid4())})
        assert_problem(r, 422, ["body", "brand_id"])
        r = await client.patch(f"{API}/products/{p['id']}", json={"category_id": str(uuid.uuid4())})
        assert_problem(r, 422, ["body", "category_id"])

    @pytest.mark.parametrize(
        "field",
        ["sku", "slug", "name", "status", "attributes", "currency", "options", "price", "stock"],
    )
    async def test_patch_null_for_a_required_field_is_422(
        self, client: httpx.AsyncClient, field: str
    ) -> None:
        p = await create_product(client)
        r = await client.patch(f"{API}/products/{p['id']}", json={field: None})
        assert_problem(r, 422)
        assert await get_product(client, p["id"]) == p

    async def test_patch_null_description_clears_it(self, client: httpx.AsyncClient) -> None:
        p = await create_product(client, description="Long text")
        r = await client.patch(f"{API}/products/{p['id']}", json={"description": None})
        assert r.status_code == 200
        assert r.json()["description"] is None

    @pytest.mark.parametrize(
        "body",
        [
            {"name": "n" * 201},
            {"sku": "bad sku"},
            {"price": "-1"},
            {"stock": -1},
            {"currency": "XYZ"},
            {"status": "gone"},
            {"unknown": 1},
            {"name": "\x00"},
            {"attributes": {"x": 10**30}},
        ],
    )
    async def test_patch_invalid_input_is_422(
        self, client: httpx.AsyncClient, body: dict[str, Any]
    ) -> None:
        p = await create_product(client)
        r = await client.patch(f"{API}/products/{p['id']}", json=body)
        assert_problem(r, 422)
        assert r.json()["errors"][0]["loc"][:2] == ["body", next(iter(body))]

    async def test_patch_options_must_fit_the_variants(self, client: httpx.AsyncClient) -> None:
        p = await create_sized_product(client)
        r = await client.patch(
            f"{API}/products/{p['id']}",
            json={"options": [{"name": "size", "values": ["S", "M"]}]},
        )
        assert_problem(r, 422)
        r = await client.patch(
            f"{API}/products/{p['id']}",
            json={"options": [{"name": "size", "values": ["S", "M", "L", "XL"]}]},
        )
        assert r.status_code == 200, r.text
        assert r.json()["options"] == [{"name": "size", "values": ["S", "M", "L", "XL"]}]

    async def test_patch_missing_is_404(self, client: httpx.AsyncClient) -> None:
        r = await client.patch(f"{API}/products/{uuid.uuid4()}", json={"name": "x"})
        assert_problem(r, 404)

    async def test_put_replaces_the_product(self, client: httpx.AsyncClient) -> None:
        brand = await create_brand(client)
        p = await create_product(
            client,
            brand_id=brand["id"],
            description="old",
            attributes={"old": True},
            price="10",
            stock=1,
        )
        r = await client.put(
            f"{API}/products/{p['id']}",
            json={
                "sku": p["sku"],
                "slug": "fresh",
                "name": "Fresh",
                "currency": "USD",
                "price": "20",
                "stock": 9,
                "attributes": {"new": 1},
            },
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["slug"] == "fresh"
        assert body["name"] == "Fresh"
        assert body["description"] is None
        assert body["brand_id"] is None
        assert body["brand"] is None
        assert body["status"] == "draft"
        assert body["attributes"] == {"new": 1}
        assert body["price_min"] == "20.00"
        assert body["total_stock"] == 9
        assert body["variants"][0]["id"] == p["variants"][0]["id"]
        assert body["version"] == 2
        assert await get_product(client, p["id"]) == body

    async def test_put_replaces_variants_matched_by_sku(self, client: httpx.AsyncClient) -> None:
        p = await create_sized_product(client, sku="PUT", prices=("10", "11", "12"))
        by_sku = {v["sku"]: v for v in p["variants"]}
        r = await client.put(
            f"{API}/products/{p['id']}",
            json={
                "sku": "PUT",
                "slug": p["slug"],
                "name": p["name"],
                "currency": "USD",
                "status": "active",
                "options": SIZES,
                "variants": [
                    {"sku": "PUT-L", "price": "30", "stock": 3, "option_values": {"size": "L"}},
                    {"sku": "PUT-NEW", "price": "5", "stock": 4, "option_values": {"size": "S"}},
                    {"sku": "PUT-M", "price": "11", "stock": 0, "option_values": {"size": "M"}},
                ],
            },
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert [v["sku"] for v in body["variants"]] == ["PUT-L", "PUT-NEW", "PUT-M"]
        assert [v["position"] for v in body["variants"]] == [0, 1, 2]
        assert body["variants"][0]["id"] == by_sku["PUT-L"]["id"]
        assert body["variants"][0]["price"] == "30.00"
        assert body["variants"][2]["id"] == by_sku["PUT-M"]["id"]
        assert body["variants"][1]["id"] not in {v["id"] for v in p["variants"]}
        assert body["price_min"] == "5.00"
        assert body["price_max"] == "30.00"
        assert body["total_stock"] == 7
        assert await get_product(client, p["id"]) == body
        gone = by_sku["PUT-S"]["id"]
        r = await client.get(f"{API}/products/{p['id']}/variants/{gone}")
        assert_problem(r, 404)
        assert (await post_product(client, sku="PUT-S", price="1")).status_code == 201

    async def test_put_renaming_a_simple_product_keeps_its_listed_variant(
        self, client: httpx.AsyncClient
    ) -> None:
        p = await create_product(client, sku="SOLO")
        r = await client.put(
            f"{API}/products/{p['id']}",
            json={
                "sku": "SOLO-2",
                "slug": p["slug"],
                "name": p["name"],
                "currency": "USD",
                "variants": [{"sku": "SOLO", "price": "3", "stock": 1}],
            },
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["sku"] == "SOLO-2"
        assert [(v["id"], v["sku"]) for v in body["variants"]] == [(p["variants"][0]["id"], "SOLO")]

    async def test_put_with_price_on_a_multi_variant_product_is_422(
        self, client: httpx.AsyncClient
    ) -> None:
        p = await create_sized_product(client)
        r = await client.put(
            f"{API}/products/{p['id']}",
            json={
                "sku": p["sku"],
                "slug": p["slug"],
                "name": p["name"],
                "currency": "USD",
                "price": "1",
            },
        )
        assert_problem(r, 422)
        assert await get_product(client, p["id"]) == p

    async def test_put_requires_slug_and_price_or_variants(self, client: httpx.AsyncClient) -> None:
        p = await create_product(client)
        base = {"sku": p["sku"], "name": "x", "currency": "USD"}
        r = await client.put(f"{API}/products/{p['id']}", json={**base, "price": "1"})
        assert_problem(r, 422, ["body", "slug"])
        r = await client.put(f"{API}/products/{p['id']}", json={**base, "slug": "x"})
        assert_problem(r, 422)

    async def test_put_variant_sku_of_another_product_is_409(
        self, client: httpx.AsyncClient
    ) -> None:
        other = await create_product(client)
        p = await create_sized_product(client)
        variants = [
            {"sku": v["sku"], "price": v["price"], "option_values": v["option_values"]}
            for v in p["variants"]
        ]
        variants[0]["sku"] = other["sku"]
        body = {
            "sku": p["sku"],
            "slug": p["slug"],
            "name": p["name"],
            "currency": "USD",
            "options": SIZES,
            "variants": variants,
        }
        r = await client.put(f"{API}/products/{p['id']}", json=body)
        assert_problem(r, 409, ["body", "sku"])

    async def test_if_match_with_the_current_etag_succeeds(self, client: httpx.AsyncClient) -> None:
        p = await create_product(client)
        etag = (await client.get(f"{API}/products/{p['id']}")).headers["etag"]
        r = await client.patch(
            f"{API}/products/{p['id']}", json={"name": "Matched"}, headers={"If-Match": etag}
        )
        assert r.status_code == 200, r.text
        new_etag = r.headers["etag"]
        assert new_etag != etag
        r = await client.patch(
            f"{API}/products/{p['id']}", json={"name": "Again"}, headers={"If-Match": new_etag}
        )
        assert r.status_code == 200, r.text
        r = await client.patch(
            f"{API}/products/{p['id']}", json={"name": "Star"}, headers={"If-Match": "*"}
        )
        assert r.status_code == 200

    async def test_if_match_with_the_create_etag_succeeds(self, client: httpx.AsyncClient) -> None:
        category = await create_category(client)
        r = await post_product(
            client,
            price="1",
            category_id=category["id"],
            attributes={"long-key": 1, "k": 2},
        )
        r = await client.patch(
            f"{API}/products/{r.json()['id']}",
            json={"name": "After create"},
            headers={"If-Match": r.headers["etag"]},
        )
        assert r.status_code == 200, r.text

    async def test_stale_if_match_is_412_and_nothing_changes(
        self, client: httpx.AsyncClient
    ) -> None:
        p = await create_product(client, name="Original")
        etag = (await client.get(f"{API}/products/{p['id']}")).headers["etag"]
        await client.patch(f"{API}/products/{p['id']}", json={"stock": 42})
        current = await get_product(client, p["id"])
        r = await client.patch(
            f"{API}/products/{p['id']}", json={"name": "Lost"}, headers={"If-Match": etag}
        )
        assert_problem(r, 412)
        r = await client.put(
            f"{API}/products/{p['id']}",
            json={"sku": p["sku"], "slug": "lost", "name": "Lost", "currency": "USD", "price": "1"},
            headers={"If-Match": etag},
        )
        assert_problem(r, 412)
        r = await client.delete(f"{API}/products/{p['id']}", headers={"If-Match": etag})
        assert_problem(r, 412)
        assert await get_product(client, p["id"]) == current

    async def test_version_increments_on_every_write(self, client: httpx.AsyncClient) -> None:
        p = await create_product(
            client,
            sku="VER",
            options=SIZES,
            variants=sized_variants("VER", ["1", "2"], [1, 1]),
        )
        pid = p["id"]
        variant_url = f"{API}/products/{pid}/variants/{p['variants'][0]['id']}"
        versions = [p["version"]]

        async def record(r: httpx.Response) -> None:
            assert r.status_code < 300, r.text
            versions.append((await get_product(client, pid))["version"])

        await record(await client.patch(f"{API}/products/{pid}", json={"name": "v2"}))
        await record(await client.patch(f"{API}/products/{pid}", json={}))
        await record(
            await client.put(
                f"{API}/products/{pid}",
                json={
                    "sku": "VER",
                    "slug": p["slug"],
                    "name": "v4",
                    "currency": "USD",
                    "options": SIZES,
                    "variants": sized_variants("VER", ["1", "2"], [1, 1]),
                },
            )
        )
        await record(
            await client.post(
                f"{API}/products/{pid}/variants",
                json={"sku": "VER-L", "price": "3", "option_values": {"size": "L"}},
            )
        )
        await record(await client.patch(variant_url, json={"stock": 9}))
        await record(
            await client.put(
                variant_url, json={"sku": "VER-S", "price": "2", "option_values": {"size": "S"}}
            )
        )
        await record(await client.delete(variant_url))
        assert (await client.delete(f"{API}/products/{pid}")).status_code == 204
        r = await client.post(f"{API}/products/{pid}/restore")
        assert r.status_code == 200
        versions.append(r.json()["version"])
        assert versions == [1, 2, 3, 4, 5, 6, 7, 8, 10]


class TestDeleteProduct:
    async def test_soft_delete_hides_the_product_everywhere(
        self, client: httpx.AsyncClient
    ) -> None:
        category = await create_category(client)
        p = await create_product(client, slug="gone", category_id=category["id"], status="active")
        keep = await create_product(client)
        r = await client.delete(f"{API}/products/{p['id']}")
        assert r.status_code == 204
        assert r.content == b""
        assert_problem(await client.get(f"{API}/products/{p['id']}"), 404)
        assert_problem(await client.get(f"{API}/products/by-slug/gone"), 404)
        assert await list_ids(client) == [keep["id"]]
        assert await list_ids(client, category_id=category["id"]) == []
        assert await list_ids(client, status="active") == [keep["id"]]
        for sort in ("price", "name", "created_at"):
            assert await list_ids(client, sort=sort) == [keep["id"]]
        v = p["variants"][0]["id"]
        assert_problem(await client.get(f"{API}/products/{p['id']}/variants"), 404)
        assert_problem(await client.get(f"{API}/products/{p['id']}/variants/{v}"), 404)
        assert_problem(await client.patch(f"{API}/products/{p['id']}", json={"name": "x"}), 404)
        assert_problem(await client.delete(f"{API}/products/{p['id']}"), 404)

    async def test_deleted_product_keeps_its_sku_and_slug(self, client: httpx.AsyncClient) -> None:
        p = await create_product(client, sku="KEPT", slug="kept")
        await client.delete(f"{API}/products/{p['id']}")
        assert_problem(await post_product(client, sku="KEPT", price="1"), 409, ["body", "sku"])
        assert_problem(await post_product(client, slug="kept", price="1"), 409, ["body", "slug"])

    async def test_restore_brings_it_back(self, client: httpx.AsyncClient) -> None:
        p = await create_product(client, slug="back")
        await client.delete(f"{API}/products/{p['id']}")
        r = await client.post(f"{API}/products/{p['id']}/restore")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["deleted_at"] is None
        assert body["id"] == p["id"]
        assert body["variants"] == p["variants"]
        assert body["version"] == 3
        assert r.headers["etag"]
        assert await get_product(client, p["id"]) == body
        assert (await client.get(f"{API}/products/by-slug/back")).status_code == 200
        assert await list_ids(client) == [p["id"]]

    async def test_restore_of_a_live_product_is_409(self, client: httpx.AsyncClient) -> None:
        p = await create_product(client)
        assert_problem(await client.post(f"{API}/products/{p['id']}/restore"), 409)
        assert (await get_product(client, p["id"]))["version"] == 1

    async def test_restore_of_a_missing_product_is_404(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.post(f"{API}/products/{uuid.uuid4()}/restore"), 404)
        assert_problem(await client.post(f"{API}/products/nope/restore"), 422)

    async def test_delete_with_the_current_etag(self, client: httpx.AsyncClient) -> None:
        p = await create_product(client)
        etag = (await client.get(f"{API}/products/{p['id']}")).headers["etag"]
        r = await client.delete(f"{API}/products/{p['id']}", headers={"If-Match": etag})
        assert r.status_code == 204

    async def test_delete_missing_is_404(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.delete(f"{API}/products/{uuid.uuid4()}"), 404)


class TestVariants:
    async def test_list_variants_in_position_order(self, client: httpx.AsyncClient) -> None:
        p = await create_sized_product(client)
        r = await client.get(f"{API}/products/{p['id']}/variants")
        assert r.status_code == 200
        assert r.json() == p["variants"]
        assert_problem(await client.get(f"{API}/products/{uuid.uuid4()}/variants"), 404)

    async def test_create_variant_updates_the_product(self, client: httpx.AsyncClient) -> None:
        p = await create_product(
            client,
            sku="ADD",
            options=SIZES,
            variants=[{"sku": "ADD-S", "price": "10", "stock": 1, "option_values": {"size": "S"}}],
        )
        r = await client.post(
            f"{API}/products/{p['id']}/variants",
            json={"sku": "ADD-L", "price": "25.5", "stock": 4, "option_values": {"size": "L"}},
        )
        assert r.status_code == 201, r.text
        v = r.json()
        assert r.headers["location"] == f"{API}/products/{p['id']}/variants/{v['id']}"
        assert r.headers["etag"]
        assert v["sku"] == "ADD-L"
        assert v["price"] == "25.50"
        assert v["stock"] == 4
        assert v["option_values"] == {"size": "L"}
        assert v["product_id"] == p["id"]
        assert v["position"] == 1
        assert v["version"] == 1
        product = await get_product(client, p["id"])
        assert product["price_min"] == "10.00"
        assert product["price_max"] == "25.50"
        assert product["total_stock"] == 5
        assert product["version"] == 2
        assert [x["sku"] for x in product["variants"]] == ["ADD-S", "ADD-L"]
        got = await client.get(r.headers["location"])
        assert got.json() == v
        assert got.headers["etag"] == r.headers["etag"]

    async def test_get_variant_with_etag(self, client: httpx.AsyncClient) -> None:
        p = await create_sized_product(client)
        v = p["variants"][1]
        url = f"{API}/products/{p['id']}/variants/{v['id']}"
        r = await client.get(url)
        assert r.status_code == 200
        assert r.json() == v
        r2 = await client.get(url, headers={"If-None-Match": r.headers["etag"]})
        assert r2.status_code == 304
        assert r2.content == b""

    async def test_get_variant_errors(self, client: httpx.AsyncClient) -> None:
        p = await create_sized_product(client)
        other = await create_product(client)
        foreign = other["variants"][0]["id"]
        assert_problem(await client.get(f"{API}/products/{p['id']}/variants/{foreign}"), 404)
        assert_problem(await client.get(f"{API}/products/{p['id']}/variants/{uuid.uuid4()}"), 404)
        assert_problem(
            await client.get(f"{API}/products/{p['id']}/variants/nope"),
            422,
            ["path", "variant_id"],
        )

    async def test_patch_variant_price_and_stock_update_the_product(
        self, client: httpx.AsyncClient
    ) -> None:
        p = await create_sized_product(client, prices=("10", "20", "30"), stocks=(1, 2, 3))
        v = p["variants"][0]
        r = await client.patch(
            f"{API}/products/{p['id']}/variants/{v['id']}", json={"price": "4.25", "stock": 10}
        )
        assert r.status_code == 200, r.text
        assert r.json()["price"] == "4.25"
        assert r.json()["stock"] == 10
        assert r.json()["version"] == 2
        assert r.json()["sku"] == v["sku"]
        product = await get_product(client, p["id"])
        assert product["price_min"] == "4.25"
        assert product["price_max"] == "30.00"
        assert product["total_stock"] == 15
        assert await list_ids(client, price_max="5") == [p["id"]]
        r = await client.patch(
            f"{API}/products/{p['id']}/variants/{p['variants'][2]['id']}", json={"price": "50"}
        )
        assert (await get_product(client, p["id"]))["price_max"] == "50.00"

    async def test_put_variant(self, client: httpx.AsyncClient) -> None:
        p = await create_sized_product(client, sku="PV")
        v = p["variants"][0]
        r = await client.put(
            f"{API}/products/{p['id']}/variants/{v['id']}",
            json={"sku": "PV-SMALL", "price": "1", "option_values": {"size": "S"}},
        )
        assert r.status_code == 200, r.text
        assert r.json()["sku"] == "PV-SMALL"
        assert r.json()["stock"] == 0
        product = await get_product(client, p["id"])
        assert product["total_stock"] == 5
        assert product["price_min"] == "1.00"
        r = await client.put(
            f"{API}/products/{p['id']}/variants/{v['id']}", json={"sku": "PV-SMALL", "price": "1"}
        )
        assert_problem(r, 422, ["body", "option_values"])

    async def test_patch_variant_option_values(self, client: httpx.AsyncClient) -> None:
        p = await create_sized_product(client)
        url = f"{API}/products/{p['id']}/variants/{p['variants'][0]['id']}"
        assert_problem(await client.patch(url, json={"option_values": {"size": "M"}}), 409)
        assert_problem(await client.patch(url, json={"option_values": {"size": "XL"}}), 422)
        assert_problem(await client.patch(url, json={"option_values": {}}), 422)
        assert await get_product(client, p["id"]) == p

    async def test_variant_write_errors(self, client: httpx.AsyncClient) -> None:
        p = await create_sized_product(client)
        other = await create_product(client)
        url = f"{API}/products/{p['id']}/variants/{p['variants'][0]['id']}"
        assert_problem(await client.patch(url, json={"sku": other["sku"]}), 409, ["body", "sku"])
        taken = p["variants"][1]["sku"]
        assert_problem(await client.patch(url, json={"sku": taken}), 409, ["body", "sku"])
        assert_problem(await client.patch(url, json={"price": "1.001"}), 422, ["body", "price"])
        assert_problem(await client.patch(url, json={"price": None}), 422)
        assert_problem(await client.patch(url, json={"stock": -1}), 422, ["body", "stock"])
        assert_problem(await client.patch(url, json={"sku": "x" * 65}), 422, ["body", "sku"])
        assert_problem(await client.patch(url, json={"stock": 2_000_000_000}), 422)
        assert_problem(
            await client.patch(f"{API}/products/{p['id']}/variants/{uuid.uuid4()}", json={}), 404
        )
        assert await get_product(client, p["id"]) == p

    async def test_create_variant_validation(self, client: httpx.AsyncClient) -> None:
        p = await create_sized_product(client, prices=("10", "20", "30"))
        sku = p["variants"][0]["sku"]
        url = f"{API}/products/{p['id']}/variants"
        await client.delete(f"{url}/{p['variants'][2]['id']}")
        ok = {"sku": "NEW-L", "price": "1", "option_values": {"size": "L"}}
        assert_problem(await client.post(url, json={**ok, "sku": sku}), 409, ["body", "sku"])
        assert_problem(await client.post(url, json={**ok, "option_values": {"size": "S"}}), 409)
        r = await client.post(url, json={**ok, "option_values": {"size": "XL"}})
        assert_problem(r, 422, ["body", "option_values", "size"])
        r = await client.post(url, json={**ok, "option_values": {"size": "L", "color": "red"}})
        assert_problem(r, 422, ["body", "option_values"])
        assert_problem(await client.post(url, json={**ok, "option_values": {}}), 422)
        assert_problem(await client.post(url, json={**ok, "price": "1.111"}), 422)
        assert_problem(await client.post(url, json={**ok, "price": "-1"}), 422)
        assert_problem(await client.post(url, json={**ok, "sku": "n\x00"}), 422)
        assert_problem(await client.post(url, json={"sku": "NEW-L"}), 422, ["body", "price"])
        assert_problem(await client.post(f"{API}/products/{uuid.uuid4()}/variants", json=ok), 404)
        assert len((await get_product(client, p["id"]))["variants"]) == 2
        r = await client.post(url, json=ok)
        assert r.status_code == 201, r.text

    async def test_second_variant_needs_options(self, client: httpx.AsyncClient) -> None:
        p = await create_product(client)
        r = await client.post(
            f"{API}/products/{p['id']}/variants", json={"sku": unique("V"), "price": "1"}
        )
        assert_problem(r, 422, ["body", "options"])

    async def test_adding_stock_beyond_the_total_limit_is_422(
        self, client: httpx.AsyncClient
    ) -> None:
        p = await create_sized_product(client, stocks=(1_000_000_000, 1_000_000_000, 0))
        r = await client.patch(
            f"{API}/products/{p['id']}/variants/{p['variants'][2]['id']}",
            json={"stock": 1_000_000_000},
        )
        assert_problem(r, 422)
        assert (await get_product(client, p["id"]))["total_stock"] == 2_000_000_000

    async def test_delete_variant(self, client: httpx.AsyncClient) -> None:
        p = await create_sized_product(client, prices=("10", "20", "30"), stocks=(1, 2, 3))
        r = await client.delete(f"{API}/products/{p['id']}/variants/{p['variants'][2]['id']}")
        assert r.status_code == 204
        product = await get_product(client, p["id"])
        assert [v["id"] for v in product["variants"]] == [v["id"] for v in p["variants"][:2]]
        assert product["price_max"] == "20.00"
        assert product["total_stock"] == 3
        await client.delete(f"{API}/products/{p['id']}/variants/{p['variants'][1]['id']}")
        r = await client.delete(f"{API}/products/{p['id']}/variants/{p['variants'][0]['id']}")
        assert_problem(r, 409)
        product = await get_product(client, p["id"])
        assert [v["id"] for v in product["variants"]] == [p["variants"][0]["id"]]
        assert product["price_min"] == product["price_max"] == "10.00"
        r = await client.delete(f"{API}/products/{p['id']}/variants/{uuid.uuid4()}")
        assert_problem(r, 404)

    async def test_deleted_variant_sku_can_be_reused(self, client: httpx.AsyncClient) -> None:
        p = await create_sized_product(client, sku="REUSE")
        await client.delete(f"{API}/products/{p['id']}/variants/{p['variants'][0]['id']}")
        r = await client.post(
            f"{API}/products/{p['id']}/variants",
            json={"sku": "REUSE-S", "price": "1", "option_values": {"size": "S"}},
        )
        assert r.status_code == 201, r.text
        assert r.json()["position"] == 3

    async def test_variant_if_match(self, client: httpx.AsyncClient) -> None:
        p = await create_sized_product(client)
        url = f"{API}/products/{p['id']}/variants/{p['variants'][0]['id']}"
        etag = (await client.get(url)).headers["etag"]
        r = await client.patch(url, json={"stock": 7}, headers={"If-Match": etag})
        assert r.status_code == 200, r.text
        assert r.headers["etag"] != etag
        r = await client.patch(url, json={"stock": 8}, headers={"If-Match": etag})
        assert_problem(r, 412)
        body = {"sku": p["variants"][0]["sku"], "price": "1", "option_values": {"size": "S"}}
        assert_problem(await client.put(url, json=body, headers={"If-Match": etag}), 412)
        assert_problem(await client.delete(url, headers={"If-Match": etag}), 412)
        assert (await client.get(url)).json()["stock"] == 7
        fresh = (await client.get(url)).headers["etag"]
        r = await client.patch(url, json={"stock": 8}, headers={"If-Match": fresh})
        assert r.status_code == 200
        assert (
            await client.delete(url, headers={"If-Match": r.headers["etag"]})
        ).status_code == 204

    async def test_variant_etag_from_a_write_matches_a_read(
        self, client: httpx.AsyncClient
    ) -> None:
        p = await create_product(
            client,
            options=SIZES_COLORS,
            variants=[
                {"sku": unique("V"), "price": "1", "option_values": {"color": "red", "size": "S"}}
            ],
        )
        r = await client.post(
            f"{API}/products/{p['id']}/variants",
            json={
                "sku": unique("V"),
                "price": "2",
                "option_values": {"color": "blue", "size": "M"},
            },
        )
        assert r.status_code == 201, r.text
        url = r.headers["location"]
        assert (await client.get(url)).headers["etag"] == r.headers["etag"]
        r = await client.patch(url, json={"stock": 3}, headers={"If-Match": r.headers["etag"]})
        assert r.status_code == 200, r.text
        r = await client.patch(
            url,
            json={"option_values": {"color": "red", "size": "M"}},
            headers={"If-Match": r.headers["etag"]},
        )
        assert r.status_code == 200, r.text
        assert (await client.get(url)).headers["etag"] == r.headers["etag"]
