"""Synonym rules: admin CRUD and their effect on search, at once and on both engines."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from catalog.models import Role
from tests.conftest import make_account, make_client
from tests.factories import API, create_product
from tests.search.test_search_api import names, search

SYNONYMS = f"{API}/search/synonyms"


async def create_rule(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(SYNONYMS, json=body)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def etag_of(client: httpx.AsyncClient, rule_id: str) -> str:
    r = await client.get(f"{SYNONYMS}/{rule_id}")
    assert r.status_code == 200, r.text
    return r.headers["etag"]


@pytest.fixture
async def furniture(client: httpx.AsyncClient) -> None:
    await create_product(client, name="Leather Sofa")
    await create_product(client, name="Velvet Couch")
    await create_product(client, name="Television Stand")
    await create_product(client, name="TV Wall Mount")
    await create_product(client, name="Oak Table")


class TestEffectOnSearch:
    async def test_group_is_two_way(self, client: httpx.AsyncClient, furniture: None) -> None:
        assert await names(client, {"q": "couch"}) == ["Velvet Couch"]
        assert await names(client, {"q": "sofa"}) == ["Leather Sofa"]
        await create_rule(client, {"terms": ["sofa", "couch"]})
        assert sorted(await names(client, {"q": "couch"})) == ["Leather Sofa", "Velvet Couch"]
        assert sorted(await names(client, {"q": "sofa"})) == ["Leather Sofa", "Velvet Couch"]
        assert await names(client, {"q": "table"}) == ["Oak Table"]

    async def test_group_with_three_terms(self, client: httpx.AsyncClient, furniture: None) -> None:
        await create_rule(client, {"terms": ["Settee", "SOFA", "couch"]})
        assert sorted(await names(client, {"q": "settee"})) == ["Leather Sofa", "Velvet Couch"]

    async def test_one_way_rule(self, client: httpx.AsyncClient, furniture: None) -> None:
        await create_rule(client, {"input": "tv", "synonyms": ["television"]})
        assert sorted(await names(client, {"q": "tv"})) == ["TV Wall Mount", "Television Stand"]
        assert await names(client, {"q": "television"}) == ["Television Stand"]

    async def test_multi_word_synonym_is_a_phrase(self, client: httpx.AsyncClient) -> None:
        await create_product(client, name="Flat Screen Monitor")
        await create_product(client, name="Flat Pack Screen Cover")
        await create_rule(client, {"input": "display", "synonyms": ["flat screen"]})
        body = await search(client, {"q": "display"})
        assert [i["name"] for i in body["items"]] == ["Flat Screen Monitor"]

    async def test_synonym_combines_with_other_words(
        self, client: httpx.AsyncClient, furniture: None
    ) -> None:
        await create_product(client, name="Leather Armchair")
        await create_rule(client, {"terms": ["sofa", "couch"]})
        assert await names(client, {"q": "leather couch"}) == ["Leather Sofa"]

    async def test_a_word_known_through_a_synonym_is_not_corrected(
        self, client: httpx.AsyncClient
    ) -> None:
        await create_product(client, name="Leather Sofa")
        await create_product(client, name="Coach Bag")
        body = await search(client, {"q": "couch"})
        assert [i["name"] for i in body["items"]] == ["Coach Bag"]
        assert body["did_you_mean"] == "coach"
        await create_rule(client, {"terms": ["sofa", "couch"]})
        body = await search(client, {"q": "couch"})
        assert [i["name"] for i in body["items"]] == ["Leather Sofa"]
        assert body["did_you_mean"] is None

    async def test_changes_apply_at_once(self, client: httpx.AsyncClient, furniture: None) -> None:
        rule = await create_rule(client, {"terms": ["sofa", "couch"]})
        assert len(await names(client, {"q": "couch"})) == 2
        r = await client.put(f"{SYNONYMS}/{rule['id']}", json={"terms": ["sofa", "divan"]})
        assert r.status_code == 200, r.text
        assert await names(client, {"q": "couch"}) == ["Velvet Couch"]
        assert await names(client, {"q": "divan"}) == ["Leather Sofa"]
        r = await client.put(
            f"{SYNONYMS}/{rule['id']}", json={"input": "divan", "synonyms": ["couch"]}
        )
        assert r.status_code == 200, r.text
        assert await names(client, {"q": "divan"}) == ["Velvet Couch"]
        assert await names(client, {"q": "sofa"}) == ["Leather Sofa"]
        r = await client.delete(f"{SYNONYMS}/{rule['id']}")
        assert r.status_code == 204
        assert await names(client, {"q": "divan"}) == []
        assert await names(client, {"q": "couch"}) == ["Velvet Couch"]


class TestCrud:
    async def test_create_group_and_one_way(self, client: httpx.AsyncClient) -> None:
        r = await client.post(SYNONYMS, json={"terms": ["Sofa", "couch"]})
        assert r.status_code == 201
        group = r.json()
        assert group["kind"] == "group"
        assert group["terms"] == ["sofa", "couch"]
        assert group["input"] is None
        assert group["synonyms"] is None
        assert group["version"] == 1
        assert r.headers["location"] == f"{SYNONYMS}/{group['id']}"
        assert r.headers["etag"]
        r = await client.post(SYNONYMS, json={"input": "TV", "synonyms": ["Television", "telly"]})
        assert r.status_code == 201
        oneway = r.json()
        assert oneway["kind"] == "oneway"
        assert oneway["input"] == "tv"
        assert oneway["synonyms"] == ["television", "telly"]
        assert oneway["terms"] is None
        r = await client.get(SYNONYMS)
        assert r.status_code == 200
        assert [rule["id"] for rule in r.json()] == [group["id"], oneway["id"]]

    async def test_invalid_bodies_are_422(self, client: httpx.AsyncClient) -> None:
        invalid: list[Any] = [
            {},
            {"terms": ["sofa"]},
            {"terms": []},
            {"terms": ["sofa", "couch"], "input": "tv", "synonyms": ["television"]},
            {"terms": ["sofa", "couch"], "input": "tv"},
            {"input": "tv"},
            {"synonyms": ["television"]},
            {"input": "tv", "synonyms": []},
            {"terms": ["sofa", "!!!"]},
            {"input": "...", "synonyms": ["television"]},
            {"terms": ["sofa", "x" * 101]},
            {"terms": ["sofa", ""]},
            {"terms": [f"t{i}" for i in range(21)]},
            {"terms": ["sofa", "couch"], "unknown": 1},
            {"terms": "sofa couch"},
        ]
        for body in invalid:
            r = await client.post(SYNONYMS, json=body)
            assert r.status_code == 422, (body, r.text)
            assert r.headers["content-type"] == "application/problem+json"
        assert (await client.get(SYNONYMS)).json() == []

    async def test_invalid_replacement_is_422(self, client: httpx.AsyncClient) -> None:
        rule = await create_rule(client, {"terms": ["sofa", "couch"]})
        r = await client.put(f"{SYNONYMS}/{rule['id']}", json={"terms": ["sofa"]})
        assert r.status_code == 422
        r = await client.get(f"{SYNONYMS}/{rule['id']}")
        assert r.json()["terms"] == ["sofa", "couch"]

    async def test_get_put_delete_with_etags(self, client: httpx.AsyncClient) -> None:
        rule = await create_rule(client, {"terms": ["sofa", "couch"]})
        url = f"{SYNONYMS}/{rule['id']}"
        r = await client.get(url)
        assert r.status_code == 200
        assert r.json() == rule
        etag = r.headers["etag"]
        r = await client.get(url, headers={"If-None-Match": etag})
        assert r.status_code == 304

        r = await client.put(url, json={"terms": ["sofa", "settee"]}, headers={"If-Match": etag})
        assert r.status_code == 200, r.text
        assert r.json()["terms"] == ["sofa", "settee"]
        assert r.json()["version"] == 2
        new_etag = r.headers["etag"]
        assert new_etag != etag
        assert await etag_of(client, rule["id"]) == new_etag

        # The old ETag is stale for both writes.
        r = await client.put(url, json={"terms": ["a1", "b1"]}, headers={"If-Match": etag})
        assert r.status_code == 412
        r = await client.delete(url, headers={"If-Match": etag})
        assert r.status_code == 412
        assert (await client.get(url)).json()["terms"] == ["sofa", "settee"]

        r = await client.delete(url, headers={"If-Match": new_etag})
        assert r.status_code == 204
        assert (await client.get(url)).status_code == 404
        assert (await client.put(url, json={"terms": ["a1", "b1"]})).status_code == 404
        assert (await client.delete(url)).status_code == 404
        assert (await client.get(SYNONYMS)).json() == []

    async def test_missing_and_malformed_ids(self, client: httpx.AsyncClient) -> None:
        r = await client.get(f"{SYNONYMS}/{uuid.uuid4()}")
        assert r.status_code == 404
        r = await client.get(f"{SYNONYMS}/not-a-uuid")
        assert r.status_code == 422


class TestAccess:
    async def test_non_admins_are_refused(
        self, app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
    ) -> None:
        rule = await create_rule(client, {"terms": ["sofa", "couch"]})
        url = f"{SYNONYMS}/{rule['id']}"
        body = {"terms": ["a1", "b1"]}
        seller = await make_account(app, Role.seller)
        buyer = await make_account(app, Role.buyer)
        for headers, status in ((seller.headers, 403), (buyer.headers, 403), (None, 401)):
            async with make_client(app, headers) as other:
                assert (await other.get(SYNONYMS)).status_code == status
                assert (await other.post(SYNONYMS, json=body)).status_code == status
                assert (await other.get(url)).status_code == status
                assert (await other.put(url, json=body)).status_code == status
                assert (await other.delete(url)).status_code == status
        assert (await anon.get(SYNONYMS)).status_code == 401
        r = await client.get(url)
        assert r.json()["terms"] == ["sofa", "couch"]
        assert len((await client.get(SYNONYMS)).json()) == 1
