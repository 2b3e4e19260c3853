"""Autocomplete: product names, brands, categories and popular past searches."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from tests.factories import API, create_brand, create_category, create_product
from tests.search.test_search_api import search, set_columns

SUGGEST = f"{API}/search/suggest"


async def suggest(client: httpx.AsyncClient, q: str, **params: Any) -> list[tuple[str, str]]:
    r = await client.get(SUGGEST, params={"q": q, **params})
    assert r.status_code == 200, r.text
    return [(s["text"], s["kind"]) for s in r.json()["suggestions"]]


async def shop(client: httpx.AsyncClient, app: FastAPI) -> dict[str, dict[str, Any]]:
    champion = await create_brand(client, name="Champion")
    await create_brand(client, name="Bosch")
    chairs = await create_category(client, name="Chairs")
    await create_category(client, name="Lighting")
    out: dict[str, dict[str, Any]] = {"champion": champion, "chairs": chairs}
    for name, popularity in [
        ("Oak Chair", 3.0),
        ("Charcoal Grill", 5.0),
        ("Garden Chairs", 1.0),
        ("Pine Table", 9.0),
        ("Samsung Galaxy Phone", 2.0),
    ]:
        p = await create_product(client, name=name)
        await set_columns(app, p["id"], popularity=popularity)
        out[name] = p
    await create_product(client, name="Chandelier Draft", status="draft")
    return out


class TestSuggest:
    async def test_mixes_brands_categories_and_products(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        catalog = await shop(client, app)
        r = await client.get(SUGGEST, params={"q": "cha"})
        assert r.status_code == 200
        suggestions = r.json()["suggestions"]
        assert [(s["text"], s["kind"]) for s in suggestions] == [
            ("Champion", "brand"),
            ("Chairs", "category"),
            ("Charcoal Grill", "product"),
            ("Oak Chair", "product"),
            ("Garden Chairs", "product"),
        ]
        assert suggestions[0]["id"] == catalog["champion"]["id"]
        assert suggestions[1]["id"] == catalog["chairs"]["id"]
        assert suggestions[3]["id"] == catalog["Oak Chair"]["id"]

    async def test_prefix_of_any_word_of_the_name(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        await shop(client, app)
        assert await suggest(client, "gal") == [("Samsung Galaxy Phone", "product")]
        assert await suggest(client, "samsung ph") == [("Samsung Galaxy Phone", "product")]
        assert await suggest(client, "oak ch") == [("Oak Chair", "product")]
        assert await suggest(client, "CHAIRS") == [
            ("Chairs", "category"),
            ("Oak Chair", "product"),
            ("Garden Chairs", "product"),
        ]
        assert await suggest(client, "bos") == [("Bosch", "brand")]
        assert await suggest(client, "zzz") == []

    async def test_stop_word_prefixes(self, client: httpx.AsyncClient) -> None:
        await create_product(client, name="Theater Speaker")
        await create_product(client, name="Ontario Map")
        assert await suggest(client, "the") == [("Theater Speaker", "product")]
        assert await suggest(client, "on") == [("Ontario Map", "product")]
        assert await suggest(client, "the spe") == [("Theater Speaker", "product")]

    async def test_only_names_suggest_products(self, client: httpx.AsyncClient) -> None:
        lamp = await create_product(
            client,
            name="Harbor Lamp",
            description="A marigold glow for reading",
            attributes={"finish": "mahogany"},
        )
        assert await suggest(client, "marig") == []
        assert await suggest(client, "mahog") == []
        assert await suggest(client, "harbor la") == [("Harbor Lamp", "product")]
        r = await client.patch(f"{API}/products/{lamp['id']}", json={"name": "Marigold Lamps"})
        assert r.status_code == 200
        assert await suggest(client, "marig") == [("Marigold Lamps", "product")]
        assert await suggest(client, "marigold lamp") == [("Marigold Lamps", "product")]
        assert await suggest(client, "harb") == []

    async def test_hidden_products_are_never_suggested(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        await shop(client, app)
        archived = await create_product(client, name="Chandelier Archived", status="archived")
        deleted = await create_product(client, name="Chandelier Deleted")
        assert (await client.delete(f"{API}/products/{deleted['id']}")).status_code == 204
        assert await suggest(client, "chand") == []
        r = await client.patch(f"{API}/products/{archived['id']}", json={"status": "active"})
        assert r.status_code == 200
        assert await suggest(client, "chand") == [("Chandelier Archived", "product")]

    async def test_typo_tolerant_prefix(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        await shop(client, app)
        assert await suggest(client, "chiar") == [
            ("Oak Chair", "product"),
            ("Garden Chairs", "product"),
        ]
        assert await suggest(client, "samsn") == [("Samsung Galaxy Phone", "product")]

    async def test_typo_prefix_between_equally_close_words_is_the_same_every_time(
        self, client: httpx.AsyncClient
    ) -> None:
        # "bie" is one letter from both "bee" (beech) and "bir" (birch): the first in
        # alphabetical order is taken, on every call.
        await create_product(client, name="Birch Desk")
        await create_product(client, name="Beech Stool")
        for _ in range(3):
            assert await suggest(client, "bie") == [("Beech Stool", "product")]

    async def test_popular_past_queries(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        await shop(client, app)
        for q in ("chair", "Chair!", "charcoal grill", "charcoal grill", "chalk"):
            await search(client, {"q": q})
        for q in ("chameleon", "chameleon"):  # finds nothing: not worth suggesting
            assert (await search(client, {"q": q}))["total"] == 0
        await search(client, {"q": "charcoal"})  # only once
        await app.state.recorder.flush()
        assert await suggest(client, "cha") == [
            ("Champion", "brand"),
            ("Chairs", "category"),
            ("chair", "query"),
            ("charcoal grill", "query"),  # the product of the same name is not repeated
            ("Oak Chair", "product"),
            ("Garden Chairs", "product"),
        ]
        assert await suggest(client, "charcoal g") == [("charcoal grill", "query")]

    async def test_past_queries_are_counted_across_writes(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        """The counts of past queries add up over the recorder's writes (one row per query,
        updated), and only searches that found something count."""
        await shop(client, app)
        await search(client, {"q": "charcoal grill"})
        assert (await search(client, {"q": "chameleon"}))["total"] == 0
        await app.state.recorder.flush()
        # Searched once so far: the product alone.
        assert await suggest(client, "charcoal g") == [("Charcoal Grill", "product")]
        await search(client, {"q": "Charcoal  grill"})
        assert (await search(client, {"q": "chameleon"}))["total"] == 0
        await app.state.recorder.flush()
        assert await suggest(client, "charcoal g") == [("charcoal grill", "query")]
        assert await suggest(client, "chame") == []
        async with app.state.engine.connect() as conn:
            rows = (
                await conn.execute(text("SELECT query, searches FROM search_query ORDER BY query"))
            ).all()
        assert [tuple(r) for r in rows] == [("charcoal grill", 2)]

    async def test_at_most_limit(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        for i in range(12):
            p = await create_product(client, name=f"Lantern {i:02d}")
            await set_columns(app, p["id"], popularity=float(i))
        got = await suggest(client, "lan")
        assert got == [(f"Lantern {i:02d}", "product") for i in range(11, 1, -1)]
        assert await suggest(client, "lan", limit=3) == [
            ("Lantern 11", "product"),
            ("Lantern 10", "product"),
            ("Lantern 09", "product"),
        ]

    async def test_bad_input(self, client: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
        await create_product(client, name="Oak Chair")
        invalid: list[dict[str, Any]] = [
            {},
            {"q": ""},
            {"q": "x" * 101},
            {"q": "cha", "limit": 11},
            {"q": "cha", "limit": 0},
            {"q": "cha", "limit": "many"},
        ]
        for params in invalid:
            r = await client.get(SUGGEST, params=params)
            assert r.status_code == 422, params
        for q in ("'&|!:*()", '"', "NEAR", "*", "-", "^", "日本", "a:*", "cha*", "\\"):
            r = await anon.get(SUGGEST, params={"q": q})
            assert r.status_code == 200, (q, r.text)
        assert await suggest(client, "x" * 100) == []
        assert await suggest(client, "%") == []
        assert await suggest(client, "_") == []
