"""Search behaviour: ranking, typos, filters, facets, paging, visibility, bad input, freshness.

Every test runs on both profiles (SQLite FTS5 and PostgreSQL full-text search) and asserts the
same exact answers: the two engines must behave the same.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text, update

from catalog.models import Product
from tests.factories import API, create_brand, create_category, create_product

SEARCH = f"{API}/search"
Params = dict[str, Any] | list[tuple[str, Any]]


async def search(client: httpx.AsyncClient, params: Params) -> dict[str, Any]:
    r = await client.get(SEARCH, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def names(client: httpx.AsyncClient, params: Params) -> list[str]:
    return [item["name"] for item in (await search(client, params))["items"]]


async def set_columns(app: FastAPI, product_id: str, **values: Any) -> None:
    """Columns the API does not expose (popularity, ratings), written straight to the table."""
    async with app.state.sessionmaker() as session:
        await session.execute(
            update(Product).where(Product.id == uuid.UUID(product_id)).values(**values)
        )
        await session.commit()


async def product(client: httpx.AsyncClient, name: str, **fields: Any) -> dict[str, Any]:
    return await create_product(client, name=name, **fields)


class TestRanking:
    async def test_name_above_brand_or_category_above_description(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        brand = await create_brand(client, name="Walnut Works")
        category = await create_category(client, name="Walnut Furniture")
        desc = await product(client, "Basic Bench", description="Made of solid walnut.")
        by_brand = await product(client, "Plain Shelf", brand_id=brand["id"])
        by_category = await product(client, "Simple Stool", category_id=category["id"])
        await product(client, "Walnut Desk")
        await product(client, "Pine Desk")  # no walnut anywhere
        # Popularity must not lift a weaker field above a stronger one.
        await set_columns(app, desc["id"], popularity=100.0)
        await set_columns(app, by_brand["id"], popularity=50.0)
        await set_columns(app, by_category["id"], popularity=40.0)
        body = await search(client, {"q": "walnut"})
        assert [i["name"] for i in body["items"]] == [
            "Walnut Desk",
            "Plain Shelf",
            "Simple Stool",
            "Basic Bench",
        ]
        assert body["total"] == 4
        assert body["partial"] is False
        assert body["did_you_mean"] is None

    async def test_all_terms_only_when_some_product_has_them_all(
        self, client: httpx.AsyncClient
    ) -> None:
        await product(client, "Oak Table")
        await product(client, "Oak Chair")
        await product(client, "Pine Chair")
        body = await search(client, {"q": "oak chair"})
        assert [i["name"] for i in body["items"]] == ["Oak Chair"]
        assert body["partial"] is False

    async def test_partial_matches_rank_by_number_of_terms(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        two = await product(client, "Oak Chair")
        one = await product(client, "Linen Cushion")
        await product(client, "Steel Bucket")
        await set_columns(app, one["id"], popularity=99.0)
        await set_columns(app, two["id"], popularity=1.0)
        body = await search(client, {"q": "oak chair cushion spaceship"})
        assert [i["name"] for i in body["items"]] == ["Oak Chair", "Linen Cushion"]
        assert body["total"] == 2
        assert body["partial"] is True

    async def test_unmatchable_query_returns_best_partial_matches(
        self, client: httpx.AsyncClient
    ) -> None:
        await product(client, "Oak Chair")
        await product(client, "Pine Table")
        body = await search(client, {"q": "oak zqxwvjk"})
        assert [i["name"] for i in body["items"]] == ["Oak Chair"]
        assert body["partial"] is True

    async def test_exact_phrase_in_name_above_scattered_words(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        scattered = await product(client, "Garden Lounge Chair")
        phrase = await product(client, "Blue Garden Chair")
        await set_columns(app, scattered["id"], popularity=100.0)
        await set_columns(app, phrase["id"], popularity=0.0)
        assert await names(client, {"q": "garden chair"}) == [
            "Blue Garden Chair",
            "Garden Lounge Chair",
        ]

    async def test_ties_are_broken_by_popularity(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        lamp = await product(client, "Maple Lamp")
        vase = await product(client, "Maple Vase")
        tray = await product(client, "Maple Tray")
        await set_columns(app, lamp["id"], popularity=1.0)
        await set_columns(app, vase["id"], popularity=3.0)
        await set_columns(app, tray["id"], popularity=2.0)
        assert await names(client, {"q": "maple"}) == ["Maple Vase", "Maple Tray", "Maple Lamp"]

    async def test_popularity_breaks_ties_whatever_the_name_length(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        # Both have the word once in the name: equally relevant, so the popular one comes first
        # on both engines (a length-normalised text score must not decide).
        short = await product(client, "Cedar Box")
        long = await product(client, "Cedar Storage Box With Extra Large Lid")
        await set_columns(app, short["id"], popularity=1.0)
        await set_columns(app, long["id"], popularity=9.0)
        assert await names(client, {"q": "cedar"}) == [
            "Cedar Storage Box With Extra Large Lid",
            "Cedar Box",
        ]
        await set_columns(app, short["id"], popularity=10.0)
        assert await names(client, {"q": "cedar"}) == [
            "Cedar Box",
            "Cedar Storage Box With Extra Large Lid",
        ]

    async def test_stemming_both_ways(self, client: httpx.AsyncClient) -> None:
        await product(client, "Oak Chair")
        await product(client, "Garden Chairs")
        await product(client, "Oak Table")
        assert sorted(await names(client, {"q": "chairs"})) == ["Garden Chairs", "Oak Chair"]
        assert sorted(await names(client, {"q": "chair"})) == ["Garden Chairs", "Oak Chair"]

    async def test_without_q_results_are_sorted_by_popularity(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        a = await product(client, "Item Aaa")
        b = await product(client, "Item Bbb")
        await set_columns(app, a["id"], popularity=1.0)
        await set_columns(app, b["id"], popularity=2.0)
        assert await names(client, {}) == ["Item Bbb", "Item Aaa"]
        assert await names(client, {"sort": "relevance"}) == ["Item Bbb", "Item Aaa"]


class TestTypos:
    async def test_transposed_letters_find_chairs_and_suggest_the_word(
        self, client: httpx.AsyncClient
    ) -> None:
        await product(client, "Oak Chair")
        await product(client, "Garden Chairs")
        await product(client, "Pine Table")
        body = await search(client, {"q": "chiar"})
        assert sorted(i["name"] for i in body["items"]) == ["Garden Chairs", "Oak Chair"]
        assert body["did_you_mean"] == "chair"

    async def test_misspelled_brand(self, client: httpx.AsyncClient) -> None:
        samsung = await create_brand(client, name="Samsung")
        await product(client, "Galaxy Phone", brand_id=samsung["id"])
        await product(client, "Samsung Monitor")
        await product(client, "Pixel Phone")
        body = await search(client, {"q": "samsnug"})
        assert sorted(i["name"] for i in body["items"]) == ["Galaxy Phone", "Samsung Monitor"]
        assert body["did_you_mean"] == "samsung"

    async def test_typo_in_one_word_of_several(self, client: httpx.AsyncClient) -> None:
        await product(client, "Oak Chair")
        await product(client, "Oak Table")
        body = await search(client, {"q": "oak chiar"})
        assert [i["name"] for i in body["items"]] == ["Oak Chair"]
        assert body["did_you_mean"] == "oak chair"
        assert body["partial"] is False

    async def test_correct_spelling_has_no_suggestion(self, client: httpx.AsyncClient) -> None:
        await product(client, "Oak Chair")
        body = await search(client, {"q": "chair"})
        assert body["total"] == 1
        assert body["did_you_mean"] is None

    async def test_no_correction_towards_words_of_hidden_products(
        self, client: httpx.AsyncClient
    ) -> None:
        await product(client, "Zanzibar Prototype", status="draft")
        await product(client, "Oak Chair")
        body = await search(client, {"q": "zanzibra"})
        assert body["total"] == 0
        assert body["did_you_mean"] is None

    async def test_a_word_is_no_typo_once_a_product_has_it(self, client: httpx.AsyncClient) -> None:
        await product(client, "Oak Chair")
        body = await search(client, {"q": "oakk"})
        assert body["did_you_mean"] == "oak"
        await product(client, "Oakk Bench")
        body = await search(client, {"q": "oakk"})
        assert [i["name"] for i in body["items"]] == ["Oakk Bench"]
        assert body["did_you_mean"] is None


@pytest.fixture
async def shop(client: httpx.AsyncClient, app: FastAPI) -> dict[str, dict[str, Any]]:
    """Five products over three brands and a small category tree."""
    furniture = await create_category(client, name="Furniture")
    chairs = await create_category(client, name="Chairs", parent_id=furniture["id"])
    lighting = await create_category(client, name="Lighting")
    acme = await create_brand(client, name="Acme")
    bolt = await create_brand(client, name="Bolt")
    crest = await create_brand(client, name="Crest")
    spec = [
        ("Alpha Seat", acme, chairs, "20.00", 5, "red", 4.5, 5.0),
        ("Bravo Seat", bolt, furniture, "60.00", 0, "blue", 3.0, 1.0),
        ("Charlie Lamp", acme, lighting, "120.00", 3, "red", 4.8, 4.0),
        ("Delta Lamp", crest, lighting, "300.00", 0, "green", 2.0, 2.0),
        ("Echo Stool", bolt, chairs, "45.00", 10, "red", 0.0, 3.0),
    ]
    out: dict[str, dict[str, Any]] = {
        "furniture": furniture,
        "chairs": chairs,
        "lighting": lighting,
        "acme": acme,
        "bolt": bolt,
        "crest": crest,
    }
    for name, brand, category, price, stock, color, rating, popularity in spec:
        p = await product(
            client,
            name,
            brand_id=brand["id"],
            category_id=category["id"],
            price=price,
            stock=stock,
            attributes={"color": color, "material": "wood"},
        )
        await set_columns(app, p["id"], rating_avg=rating, rating_count=3, popularity=popularity)
        out[name] = p
    return out


ALL_BY_PRICE = ["Alpha Seat", "Echo Stool", "Bravo Seat", "Charlie Lamp", "Delta Lamp"]


class TestFilters:
    async def test_category_includes_sub_categories(
        self, client: httpx.AsyncClient, shop: dict[str, dict[str, Any]]
    ) -> None:
        params = {"category_id": shop["furniture"]["id"], "sort": "price_asc"}
        assert await names(client, params) == ["Alpha Seat", "Echo Stool", "Bravo Seat"]
        params = {"category_id": shop["chairs"]["id"], "sort": "price_asc"}
        assert await names(client, params) == ["Alpha Seat", "Echo Stool"]
        assert await names(client, {"category_id": str(uuid.uuid4())}) == []

    async def test_several_brands(
        self, client: httpx.AsyncClient, shop: dict[str, dict[str, Any]]
    ) -> None:
        params = [
            ("brand_id", shop["acme"]["id"]),
            ("brand_id", shop["crest"]["id"]),
            ("sort", "price_asc"),
        ]
        assert await names(client, params) == ["Alpha Seat", "Charlie Lamp", "Delta Lamp"]

    async def test_price_range(
        self, client: httpx.AsyncClient, shop: dict[str, dict[str, Any]]
    ) -> None:
        params = {"price_min": "40", "price_max": "150", "sort": "price_asc"}
        assert await names(client, params) == ["Echo Stool", "Bravo Seat", "Charlie Lamp"]
        assert await names(client, {"price_min": "300", "sort": "price_asc"}) == ["Delta Lamp"]
        assert await names(client, {"price_max": "20", "sort": "price_asc"}) == ["Alpha Seat"]

    async def test_price_min_above_price_max_is_422(self, client: httpx.AsyncClient) -> None:
        r = await client.get(SEARCH, params={"price_min": "100", "price_max": "50"})
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["query", "price_min"]
        r = await client.get(SEARCH, params={"price_min": "-1"})
        assert r.status_code == 422

    async def test_in_stock(
        self, client: httpx.AsyncClient, shop: dict[str, dict[str, Any]]
    ) -> None:
        assert await names(client, {"in_stock": "true", "sort": "price_asc"}) == [
            "Alpha Seat",
            "Echo Stool",
            "Charlie Lamp",
        ]
        assert await names(client, {"in_stock": "false", "sort": "price_asc"}) == [
            "Bravo Seat",
            "Delta Lamp",
        ]

    async def test_rating_min(
        self, client: httpx.AsyncClient, shop: dict[str, dict[str, Any]]
    ) -> None:
        assert await names(client, {"rating_min": "4", "sort": "price_asc"}) == [
            "Alpha Seat",
            "Charlie Lamp",
        ]
        assert await names(client, {"rating_min": "4.8"}) == ["Charlie Lamp"]
        r = await client.get(SEARCH, params={"rating_min": "6"})
        assert r.status_code == 422

    async def test_attribute_values(
        self, client: httpx.AsyncClient, shop: dict[str, dict[str, Any]]
    ) -> None:
        params: Params = {"attributes.color": "red", "sort": "price_asc"}
        assert await names(client, params) == ["Alpha Seat", "Echo Stool", "Charlie Lamp"]
        params = [
            ("attributes.color", "red"),
            ("attributes.color", "green"),
            ("sort", "price_asc"),
        ]
        assert await names(client, params) == [
            "Alpha Seat",
            "Echo Stool",
            "Charlie Lamp",
            "Delta Lamp",
        ]
        params = {"attributes.color": "red", "attributes.material": "metal"}
        assert await names(client, params) == []
        assert await names(client, {"attributes.size": "XL"}) == []

    async def test_boolean_and_number_attributes(self, client: httpx.AsyncClient) -> None:
        await product(client, "Desk Fan", attributes={"wireless": True, "Watts": 40})
        await product(client, "Ceiling Fan", attributes={"wireless": False, "Watts": 60})
        await product(client, "Hand Fan", attributes={"weight": 0.25})
        body = await search(client, {"attributes.wireless": "true", "facet": "Watts"})
        assert [i["name"] for i in body["items"]] == ["Desk Fan"]
        assert body["facets"]["attributes"] == {
            "wireless": [{"value": "false", "count": 1}, {"value": "true", "count": 1}],
            "Watts": [{"value": "40", "count": 1}],
        }
        assert await names(client, {"attributes.wireless": "false"}) == ["Ceiling Fan"]
        assert await names(client, {"attributes.Watts": "60"}) == ["Ceiling Fan"]
        assert await names(client, {"attributes.weight": "0.25"}) == ["Hand Fan"]

    async def test_filters_combine_with_the_query(
        self, client: httpx.AsyncClient, shop: dict[str, dict[str, Any]]
    ) -> None:
        params = {"q": "lamp", "attributes.color": "red"}
        assert await names(client, params) == ["Charlie Lamp"]
        params = {"q": "seat", "category_id": shop["chairs"]["id"]}
        assert await names(client, params) == ["Alpha Seat"]

    async def test_every_sort(
        self, client: httpx.AsyncClient, shop: dict[str, dict[str, Any]]
    ) -> None:
        expected_orders: list[tuple[str, list[str]]] = [
            ("price_asc", ALL_BY_PRICE),
            ("price_desc", list(reversed(ALL_BY_PRICE))),
            ("rating", ["Charlie Lamp", "Alpha Seat", "Bravo Seat", "Delta Lamp", "Echo Stool"]),
            (
                "popularity",
                ["Alpha Seat", "Charlie Lamp", "Echo Stool", "Delta Lamp", "Bravo Seat"],
            ),
            ("newest", ["Echo Stool", "Delta Lamp", "Charlie Lamp", "Bravo Seat", "Alpha Seat"]),
            (
                "relevance",
                ["Alpha Seat", "Charlie Lamp", "Echo Stool", "Delta Lamp", "Bravo Seat"],
            ),
        ]
        for sort, expected in expected_orders:
            assert await names(client, {"sort": sort}) == expected, sort

    async def test_sorts_with_a_query(
        self, client: httpx.AsyncClient, shop: dict[str, dict[str, Any]]
    ) -> None:
        assert await names(client, {"q": "seat", "sort": "price_desc"}) == [
            "Bravo Seat",
            "Alpha Seat",
        ]
        assert await names(client, {"q": "seat", "sort": "rating"}) == [
            "Alpha Seat",
            "Bravo Seat",
        ]

    async def test_unknown_sort_is_422(self, client: httpx.AsyncClient) -> None:
        r = await client.get(SEARCH, params={"sort": "cheapest"})
        assert r.status_code == 422


def counts(facet: list[dict[str, Any]], key: str = "name") -> dict[str, int]:
    return {f[key]: f["count"] for f in facet}


class TestFacets:
    async def test_counts_over_everything(
        self, client: httpx.AsyncClient, shop: dict[str, dict[str, Any]]
    ) -> None:
        facets = (await search(client, [("facet", "color")]))["facets"]
        assert counts(facets["brands"]) == {"Acme": 2, "Bolt": 2, "Crest": 1}
        assert [f["name"] for f in facets["brands"]] == ["Acme", "Bolt", "Crest"]
        assert counts(facets["categories"]) == {"Chairs": 2, "Furniture": 1, "Lighting": 2}
        assert facets["price"] == [
            {"key": "0-25", "min": "0", "max": "25", "count": 1},
            {"key": "25-50", "min": "25", "max": "50", "count": 1},
            {"key": "50-100", "min": "50", "max": "100", "count": 1},
            {"key": "100-250", "min": "100", "max": "250", "count": 1},
            {"key": "250-500", "min": "250", "max": "500", "count": 1},
        ]
        assert facets["attributes"] == {
            "color": [
                {"value": "red", "count": 3},
                {"value": "blue", "count": 1},
                {"value": "green", "count": 1},
            ]
        }

    async def test_a_facet_ignores_its_own_filter_only(
        self, client: httpx.AsyncClient, shop: dict[str, dict[str, Any]]
    ) -> None:
        body = await search(client, [("brand_id", shop["acme"]["id"]), ("facet", "color")])
        assert body["total"] == 2
        facets = body["facets"]
        assert counts(facets["brands"]) == {"Acme": 2, "Bolt": 2, "Crest": 1}
        assert counts(facets["categories"]) == {"Chairs": 1, "Lighting": 1}
        assert counts(facets["price"], "key") == {"0-25": 1, "100-250": 1}
        assert counts(facets["attributes"]["color"], "value") == {"red": 2}

    async def test_attribute_filter_and_facet(
        self, client: httpx.AsyncClient, shop: dict[str, dict[str, Any]]
    ) -> None:
        # Filtering on an attribute facets it too, counted without its own filter.
        body = await search(client, {"attributes.color": "blue"})
        assert [i["name"] for i in body["items"]] == ["Bravo Seat"]
        facets = body["facets"]
        assert counts(facets["attributes"]["color"], "value") == {"red": 3, "blue": 1, "green": 1}
        assert counts(facets["brands"]) == {"Bolt": 1}
        body = await search(client, [("attributes.color", "red"), ("brand_id", shop["bolt"]["id"])])
        assert [i["name"] for i in body["items"]] == ["Echo Stool"]
        facets = body["facets"]
        assert counts(facets["brands"]) == {"Acme": 2, "Bolt": 1}
        assert counts(facets["attributes"]["color"], "value") == {"red": 1, "blue": 1}

    async def test_price_buckets_at_their_bounds(self, client: httpx.AsyncClient) -> None:
        """A bucket holds its lowest price and not its highest, with words and without."""
        for price in ("0.00", "24.99", "25.00", "999.99", "1000.00", "25000.00"):
            await product(client, f"Bound Crate {price}", price=price)
        expected = {"0-25": 2, "25-50": 1, "500-1000": 1, "1000+": 2}
        for params in ({"q": "crate"}, {}):
            facets = (await search(client, params))["facets"]
            assert counts(facets["price"], "key") == expected
            assert facets["price"][-1] == {"key": "1000+", "min": "1000", "max": None, "count": 2}

    async def test_category_and_price_facets_ignore_their_filters(
        self, client: httpx.AsyncClient, shop: dict[str, dict[str, Any]]
    ) -> None:
        body = await search(client, {"category_id": shop["lighting"]["id"], "price_max": "200"})
        assert [i["name"] for i in body["items"]] == ["Charlie Lamp"]
        facets = body["facets"]
        # categories: price filter only (<= 200): Alpha, Bravo, Charlie, Echo
        assert counts(facets["categories"]) == {"Chairs": 2, "Furniture": 1, "Lighting": 1}
        # price: category filter only (Lighting): Charlie, Delta
        assert counts(facets["price"], "key") == {"100-250": 1, "250-500": 1}
        assert counts(facets["brands"]) == {"Acme": 1}

    async def test_facets_follow_the_query(
        self, client: httpx.AsyncClient, shop: dict[str, dict[str, Any]]
    ) -> None:
        facets = (await search(client, {"q": "lamp", "facet": "material"}))["facets"]
        assert counts(facets["brands"]) == {"Acme": 1, "Crest": 1}
        assert facets["attributes"] == {"material": [{"value": "wood", "count": 2}]}

    async def test_invalid_facet_name_is_422(self, client: httpx.AsyncClient) -> None:
        r = await client.get(SEARCH, params={"facet": "bad-name"})
        assert r.status_code == 422


class TestPagination:
    async def test_pages_and_total(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        for i in range(5):
            p = await product(client, f"Teapot {'ABCDE'[i]}")
            await set_columns(app, p["id"], popularity=float(10 - i))
        seen: list[str] = []
        for page in (1, 2, 3):
            body = await search(client, {"q": "teapot", "page": page, "page_size": 2})
            assert body["total"] == 5
            assert body["page"] == page
            assert body["page_size"] == 2
            seen += [i["name"] for i in body["items"]]
        assert seen == ["Teapot A", "Teapot B", "Teapot C", "Teapot D", "Teapot E"]
        body = await search(client, {"q": "teapot", "page": 4, "page_size": 2})
        assert body["items"] == []
        assert body["total"] == 5

    async def test_pages_without_words(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        """Browsing reads its page apart from its facets: same order, total and paging."""
        kitchen = await create_category(client, name="Kitchen")
        for i in range(5):
            p = await product(client, f"Kettle {'ABCDE'[i]}", category_id=kitchen["id"])
            await set_columns(app, p["id"], popularity=float(10 - i))
        garden = await create_category(client, name="Garden")
        await product(client, "Garden Hose", category_id=garden["id"])
        seen: list[str] = []
        for page in (1, 2, 3):
            body = await search(
                client, {"category_id": kitchen["id"], "page": page, "page_size": 2}
            )
            assert body["total"] == 5
            assert counts(body["facets"]["categories"]) == {"Kitchen": 5, "Garden": 1}
            seen += [i["name"] for i in body["items"]]
        assert seen == ["Kettle A", "Kettle B", "Kettle C", "Kettle D", "Kettle E"]
        body = await search(
            client, {"category_id": kitchen["id"], "sort": "popularity", "page": 4, "page_size": 2}
        )
        assert body["items"] == []
        assert body["total"] == 5

    async def test_limits(self, client: httpx.AsyncClient) -> None:
        await product(client, "Teapot")
        for params in (
            {"page_size": 1000},
            {"page_size": 0},
            {"page": 0},
            {"page": 501, "page_size": 20},
            {"page": 10_001, "page_size": 1},
        ):
            r = await client.get(SEARCH, params=params)
            assert r.status_code == 422, params
        body = await search(client, {"page": 500, "page_size": 20})
        assert body["items"] == []
        assert body["total"] == 1
        body = await search(client, {"page": 100, "page_size": 100})
        assert body["total"] == 1


class TestVisibility:
    async def test_only_active_products_are_found(self, client: httpx.AsyncClient) -> None:
        await product(client, "Kettle Active")
        await product(client, "Kettle Draft", status="draft")
        archived = await product(client, "Kettle Archived", status="archived")
        deleted = await product(client, "Kettle Deleted")
        r = await client.delete(f"{API}/products/{deleted['id']}")
        assert r.status_code == 204
        body = await search(client, {"q": "kettle"})
        assert [i["name"] for i in body["items"]] == ["Kettle Active"]
        assert body["total"] == 1
        assert await names(client, {}) == ["Kettle Active"]
        assert await names(client, {"q": "draft"}) == []
        facets = (await search(client, {"q": "kettle"}))["facets"]
        assert facets["price"] == [{"key": "0-25", "min": "0", "max": "25", "count": 1}]

        r = await client.patch(f"{API}/products/{archived['id']}", json={"status": "active"})
        assert r.status_code == 200, r.text
        assert sorted(await names(client, {"q": "kettle"})) == [
            "Kettle Active",
            "Kettle Archived",
        ]
        r = await client.patch(f"{API}/products/{archived['id']}", json={"status": "archived"})
        assert r.status_code == 200, r.text
        assert await names(client, {"q": "kettle"}) == ["Kettle Active"]

    async def test_anonymous_search_sees_the_same(
        self, client: httpx.AsyncClient, anon: httpx.AsyncClient
    ) -> None:
        await product(client, "Kettle Active")
        await product(client, "Kettle Draft", status="draft")
        assert await names(anon, {"q": "kettle"}) == ["Kettle Active"]


class TestBadInput:
    async def test_query_length(self, client: httpx.AsyncClient) -> None:
        await product(client, "Teapot")
        r = await client.get(SEARCH, params={"q": "a" * 201})
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["query", "q"]
        body = await search(client, {"q": ("teapot " * 29)[:200]})
        assert [i["name"] for i in body["items"]] == ["Teapot"]
        body = await search(client, {"q": "x" * 200})
        assert body["total"] == 0

    async def test_punctuation_only_is_like_no_query(self, client: httpx.AsyncClient) -> None:
        await product(client, "Teapot")
        await product(client, "Kettle")
        for q in [
            "'&|!:*()",
            '"',
            '""',
            "-",
            "^",
            "!!!",
            "*",
            "(",
            ")",
            ":",
            "\\",
            "%",
            "_",
            "<->",
        ]:
            body = await search(client, {"q": q})
            assert body["total"] == 2, q
            assert body["did_you_mean"] is None
            assert body["partial"] is False

    async def test_operators_are_plain_words(self, client: httpx.AsyncClient) -> None:
        await product(client, "Teapot Blue")
        await product(client, "Green Mug")
        for q in [
            "teapot'&|!:*()",
            '"teapot',
            'teapot" OR "kettle',
            "teapot NEAR kettle",
            "NEAR(teapot blue)",
            "teapot AND OR NOT",
            "-teapot",
            "^teapot",
            "teapot*",
            "name:teapot",
            "teapot <-> blue",
            "teapot'; DROP TABLE product; --",
            "blue:* & !teapot",
            "teapot%",
            "teapot_",
        ]:
            body = await search(client, {"q": q})
            assert [i["name"] for i in body["items"]] == ["Teapot Blue"], q

    async def test_operator_words_alone(self, client: httpx.AsyncClient) -> None:
        await product(client, "Teapot")
        for q in ("AND OR NOT", "NEAR", "not", "OR"):
            body = await search(client, {"q": q})
            assert body["total"] == 0, q

    async def test_stopwords_only_find_nothing(self, client: httpx.AsyncClient) -> None:
        await product(client, "The Teapot")
        for q in ("the", "The", "of the", "a"):
            body = await search(client, {"q": q})
            assert body["total"] == 0, q
            assert body["partial"] is False

    async def test_stop_words_are_ignored_on_both_engines(self, client: httpx.AsyncClient) -> None:
        await product(client, "Over Ear Headphones")
        await product(client, "In Ear Buds")
        await product(client, "Not Sorry Mug")
        body = await search(client, {"q": "over ear"})
        assert sorted(i["name"] for i in body["items"]) == ["In Ear Buds", "Over Ear Headphones"]
        assert body["partial"] is False
        for q in ("not", "over", "can", "only the"):
            assert (await search(client, {"q": q}))["total"] == 0, q
        assert await names(client, {"q": "not sorry"}) == ["Not Sorry Mug"]

    async def test_accents_in_the_query_are_folded(self, client: httpx.AsyncClient) -> None:
        await product(client, "cafe Table")
        await product(client, "Espresso Cup", description="For the cafe au lait lover")
        assert await names(client, {"q": "Café"}) == ["cafe Table", "Espresso Cup"]
        assert await names(client, {"q": "CAFÉ TABLE"}) == ["cafe Table"]
        assert await names(client, {"q": "cafè"}) == ["cafe Table", "Espresso Cup"]

    async def test_accents_in_the_catalog_are_folded(self, client: httpx.AsyncClient) -> None:
        await product(client, "Café Table")
        await product(client, "Espresso Cup", description="For the Café au lait lover")
        for q in ("cafe", "Café", "CAFE"):
            body = await search(client, {"q": q})
            assert [i["name"] for i in body["items"]] == ["Café Table", "Espresso Cup"], q
            assert body["did_you_mean"] is None, q  # not a typo

    async def test_decimal_numbers(self, client: httpx.AsyncClient) -> None:
        await product(client, "USB 3.0 Cable")
        await product(client, "USB Hub")
        body = await search(client, {"q": "usb 3.0"})
        assert [i["name"] for i in body["items"]] == ["USB 3.0 Cable"]
        assert body["partial"] is False

    async def test_other_unicode_never_fails(self, client: httpx.AsyncClient) -> None:
        await product(client, "Teapot")
        for q in ("日本語", "teapot 日本語", "emoji 🫖", "\u200b", "İstanbul", "ß", "\x7f"):
            r = await client.get(SEARCH, params={"q": q})
            assert r.status_code == 200, (q, r.text)
        assert await names(client, {"q": "teapot 🫖"}) == ["Teapot"]

    async def test_invalid_attribute_name_is_422(self, client: httpx.AsyncClient) -> None:
        r = await client.get(SEARCH, params={"attributes.bad-name": "x"})
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["query", "attributes.bad-name"]
        r = await client.get(SEARCH, params={"attributes.": "x"})
        assert r.status_code == 422
        r = await client.get(SEARCH, params={"attributes.color": "x" * 201})
        assert r.status_code == 422
        too_many: Params = [(f"attributes.a{i}", "x") for i in range(11)]
        r = await client.get(SEARCH, params=too_many)
        assert r.status_code == 422

    async def test_malformed_ids_are_422(self, client: httpx.AsyncClient) -> None:
        for params in ({"brand_id": "nope"}, {"category_id": "1"}, {"in_stock": "maybe"}):
            r = await client.get(SEARCH, params=params)
            assert r.status_code == 422, params


class TestIndexFreshness:
    async def test_renamed_brand_is_found_by_its_new_name(self, client: httpx.AsyncClient) -> None:
        brand = await create_brand(client, name="Oldbrandname")
        await product(client, "Desk Lamp", brand_id=brand["id"])
        assert await names(client, {"q": "oldbrandname"}) == ["Desk Lamp"]
        r = await client.patch(f"{API}/brands/{brand['id']}", json={"name": "Newbrandname"})
        assert r.status_code == 200, r.text
        assert await names(client, {"q": "newbrandname"}) == ["Desk Lamp"]
        assert await names(client, {"q": "oldbrandname"}) == []
        item = (await search(client, {"q": "newbrandname"}))["items"][0]
        assert item["brand"]["name"] == "Newbrandname"

    async def test_renamed_category_is_found_by_its_new_name(
        self, client: httpx.AsyncClient
    ) -> None:
        category = await create_category(client, name="Oldcatname")
        await product(client, "Desk Lamp", category_id=category["id"])
        r = await client.patch(f"{API}/categories/{category['id']}", json={"name": "Newcatname"})
        assert r.status_code == 200, r.text
        assert await names(client, {"q": "newcatname"}) == ["Desk Lamp"]
        assert await names(client, {"q": "oldcatname"}) == []

    async def test_moving_a_product_to_another_brand(self, client: httpx.AsyncClient) -> None:
        one = await create_brand(client, name="Firstbrand")
        two = await create_brand(client, name="Secondbrand")
        p = await product(client, "Desk Lamp", brand_id=one["id"])
        r = await client.patch(f"{API}/products/{p['id']}", json={"brand_id": two["id"]})
        assert r.status_code == 200, r.text
        assert await names(client, {"q": "secondbrand"}) == ["Desk Lamp"]
        assert await names(client, {"q": "firstbrand"}) == []

    async def test_updated_name_description_and_attributes(self, client: httpx.AsyncClient) -> None:
        p = await product(client, "Desk Lamp", description="bright")
        r = await client.patch(
            f"{API}/products/{p['id']}",
            json={
                "name": "Floor Lantern",
                "description": "dimmable",
                "attributes": {"tone": "ivory"},
            },
        )
        assert r.status_code == 200, r.text
        assert await names(client, {"q": "lantern"}) == ["Floor Lantern"]
        assert await names(client, {"q": "dimmable"}) == ["Floor Lantern"]
        assert await names(client, {"q": "ivory"}) == ["Floor Lantern"]
        assert await names(client, {"q": "lamp"}) == []
        assert await names(client, {"q": "bright"}) == []

    async def test_restored_product_is_found_again(self, client: httpx.AsyncClient) -> None:
        p = await product(client, "Desk Lamp")
        assert (await client.delete(f"{API}/products/{p['id']}")).status_code == 204
        assert await names(client, {"q": "lamp"}) == []
        r = await client.post(f"{API}/products/{p['id']}/restore")
        assert r.status_code == 200, r.text
        assert await names(client, {"q": "lamp"}) == ["Desk Lamp"]


async def _product_indexes(app: FastAPI, pattern: str) -> dict[str, str]:
    """The definitions of the product table's indexes whose names are LIKE `pattern`."""
    async with app.state.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT indexname, indexdef FROM pg_indexes "
                    "WHERE tablename = 'product' AND indexname LIKE :pattern"
                ),
                {"pattern": pattern},
            )
        ).all()
    return {str(row[0]): str(row[1]) for row in rows}


async def test_browse_facet_indexes(app: FastAPI, profile: str) -> None:
    """Migrations 0015 and 0017: browsing counts facets, attribute facets included, from
    covering indexes of the visible products (index-only scans), by category and by brand."""
    if profile != "production":
        pytest.skip("covering indexes are PostgreSQL's")
    definitions = await _product_indexes(app, "ix_product_live_%_facets")
    shared = (
        "id, price_min, price_max, total_stock, rating_avg, rating_count, popularity, created_at, "
        "attributes"
    )
    live = "WHERE (((status)::text = 'active'::text) AND (deleted_at IS NULL))"
    assert definitions["ix_product_live_category_facets"].endswith(
        f"(category_id) INCLUDE (brand_id, {shared}) {live}"
    )
    assert definitions["ix_product_live_brand_facets"].endswith(
        f"(brand_id) INCLUDE (category_id, {shared}) {live}"
    )


async def test_price_range_count_indexes(app: FastAPI, profile: str) -> None:
    """Migration 0019: the counts of a price range over every visible product (the category
    facet of a category page with a price filter) read a range of a narrow covering index keyed
    on a price bound, not every entry of a wide one."""
    if profile != "production":
        pytest.skip("covering indexes are PostgreSQL's")
    definitions = await _product_indexes(app, "ix_product_live_price_%")
    included = "brand_id, category_id, total_stock, rating_avg"
    live = "WHERE (((status)::text = 'active'::text) AND (deleted_at IS NULL))"
    assert definitions["ix_product_live_price_min"].endswith(
        f"(price_min) INCLUDE (price_max, {included}) {live}"
    )
    assert definitions["ix_product_live_price_max"].endswith(
        f"(price_max) INCLUDE (price_min, {included}) {live}"
    )


async def test_searches_have_a_pool_of_their_own(
    app: FastAPI, profile: str, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    """PostgreSQL: searches run on their own pool, whose connections carry the search settings
    from the start and run each statement on its own (no transaction around a search)."""
    if profile != "production":
        pytest.skip("the embedded profile has one engine")
    assert app.state.search_engine is not app.state.engine
    async with app.state.search_sessionmaker() as session:
        settings = (
            await session.execute(
                text("SELECT current_setting('work_mem'), current_setting('plan_cache_mode')")
            )
        ).one()
        assert tuple(settings) == ("32MB", "force_custom_plan")
        first = (await session.execute(text("SELECT transaction_timestamp()"))).scalar_one()
        await session.execute(text("SELECT pg_sleep(0.01)"))
        second = (await session.execute(text("SELECT transaction_timestamp()"))).scalar_one()
        assert second > first  # each statement its own transaction
    async with app.state.sessionmaker() as session:
        work_mem = (await session.execute(text("SELECT current_setting('work_mem')"))).scalar()
        assert work_mem != "32MB"  # other requests keep the server's settings
    await product(client, "Oak Chair")
    r = await anon.get(SEARCH, params={"q": "oak", "facet": "color"})
    assert r.status_code == 200, r.text
    assert r.json()["total"] == 1
    r = await anon.get(f"{SEARCH}/suggest", params={"q": "oa"})
    assert r.status_code == 200, r.text
    assert r.json()["suggestions"]
