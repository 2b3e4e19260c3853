from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import API, create_category, create_product


@pytest.fixture(autouse=True)
async def _distinct_slugs_before_truncation(app: FastAPI) -> AsyncIterator[None]:
    """On SQLite the shared truncation first turns every category into a root; sibling-unique
    slugs that repeat under different parents would then collide, so make them distinct."""
    yield
    engine: AsyncEngine = app.state.engine
    if engine.dialect.name == "sqlite":
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE category SET slug = lower(hex(id))"))


async def get_category(client: httpx.AsyncClient, category_id: str) -> dict[str, Any]:
    r = await client.get(f"{API}/categories/{category_id}")
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


async def get_product(client: httpx.AsyncClient, product_id: str) -> dict[str, Any]:
    r = await client.get(f"{API}/products/{product_id}")
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


async def list_all(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = await client.get(f"{API}/categories", params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


class TestCreateCategory:
    async def test_root_with_generated_slug_and_location(self, client: httpx.AsyncClient) -> None:
        r = await client.post(
            f"{API}/categories", json={"name": "  Garden & Outdoor ", "description": "Plants"}
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["name"] == "Garden & Outdoor"
        assert body["slug"] == "garden-outdoor"
        assert body["parent_id"] is None
        assert body["description"] == "Plants"
        assert body["version"] == 1
        assert uuid.UUID(body["id"]).version == 7
        assert r.headers["location"] == f"{API}/categories/{body['id']}"
        assert r.headers["etag"]
        assert await get_category(client, body["id"]) == body

    async def test_child_of_a_parent(self, client: httpx.AsyncClient) -> None:
        root = await create_category(client, name="Furniture")
        r = await client.post(f"{API}/categories", json={"name": "Chairs", "parent_id": root["id"]})
        assert r.status_code == 201, r.text
        child = r.json()
        assert child["parent_id"] == root["id"]
        assert child["slug"] == "chairs"

    async def test_explicit_slug_is_kept(self, client: httpx.AsyncClient) -> None:
        c = await create_category(client, name="Lamps", slug="desk-lamps")
        assert c["slug"] == "desk-lamps"
        assert c["name"] == "Lamps"

    async def test_same_slug_under_different_parents_is_allowed(
        self, client: httpx.AsyncClient
    ) -> None:
        men = await create_category(client, name="Men")
        women = await create_category(client, name="Women")
        r1 = await client.post(
            f"{API}/categories", json={"name": "Shoes", "slug": "shoes", "parent_id": men["id"]}
        )
        r2 = await client.post(
            f"{API}/categories", json={"name": "Shoes", "slug": "shoes", "parent_id": women["id"]}
        )
        assert (r1.status_code, r2.status_code) == (201, 201)
        assert r1.json()["slug"] == r2.json()["slug"] == "shoes"
        r3 = await client.post(f"{API}/categories", json={"name": "Shoes", "slug": "shoes"})
        assert r3.status_code == 201
        assert r3.json()["parent_id"] is None

    async def test_duplicate_slug_among_siblings_is_409(self, client: httpx.AsyncClient) -> None:
        root = await create_category(client)
        await create_category(client, name="Tables", slug="tables", parent_id=root["id"])
        r = await client.post(
            f"{API}/categories",
            json={"name": "Other tables", "slug": "tables", "parent_id": root["id"]},
        )
        assert r.status_code == 409
        assert r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert problem["status"] == 409
        assert problem["errors"][0]["loc"] == ["body", "slug"]

    async def test_duplicate_root_slug_is_409(self, client: httpx.AsyncClient) -> None:
        await create_category(client, name="Toys", slug="toys")
        r = await client.post(f"{API}/categories", json={"name": "Toys 2", "slug": "toys"})
        assert r.status_code == 409
        assert r.json()["errors"][0]["loc"] == ["body", "slug"]

    async def test_generated_slug_is_unique_among_siblings_only(
        self, client: httpx.AsyncClient
    ) -> None:
        a = await create_category(client, name="A")
        b = await create_category(client, name="B")
        first = await create_category(client, name="Rugs", parent_id=a["id"])
        second = await create_category(client, name="RUGS!", parent_id=a["id"])
        third = await create_category(client, name="rugs", parent_id=a["id"])
        elsewhere = await create_category(client, name="Rugs", parent_id=b["id"])
        assert [first["slug"], second["slug"], third["slug"]] == ["rugs", "rugs-2", "rugs-3"]
        assert elsewhere["slug"] == "rugs"

    async def test_generated_slug_of_a_long_name_stays_within_limits(
        self, client: httpx.AsyncClient
    ) -> None:
        name = "щ" * 120
        first = await create_category(client, name=name)
        second = await create_category(client, name=name)
        assert first["slug"] != second["slug"]
        assert len(first["slug"]) <= 140
        assert len(second["slug"]) <= 140
        assert (await get_category(client, second["id"]))["slug"] == second["slug"]

    async def test_missing_parent_is_422(self, client: httpx.AsyncClient) -> None:
        r = await client.post(
            f"{API}/categories", json={"name": "Orphan", "parent_id": str(uuid.uuid4())}
        )
        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["errors"][0]["loc"] == ["body", "parent_id"]

    @pytest.mark.parametrize(
        ("body", "loc"),
        [
            ({"name": "x" * 121}, ["body", "name"]),
            ({"name": ""}, ["body", "name"]),
            ({"name": "   "}, ["body", "name"]),
            ({}, ["body", "name"]),
            ({"name": "ok", "slug": "Not A Slug"}, ["body", "slug"]),
            ({"name": "ok", "slug": "a" * 141}, ["body", "slug"]),
            ({"name": "ok", "parent_id": "nope"}, ["body", "parent_id"]),
            ({"name": "ok", "description": "d" * 10_001}, ["body", "description"]),
            ({"name": "ok", "unknown": 1}, ["body", "unknown"]),
            ({"name": "a\x00b"}, ["body", "name"]),
            ({"name": "ok", "description": "nul \x00"}, ["body", "description"]),
        ],
    )
    async def test_invalid_input_is_422_with_field_path(
        self, client: httpx.AsyncClient, body: dict[str, Any], loc: list[str]
    ) -> None:
        r = await client.post(f"{API}/categories", json=body)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["loc"] == loc

    async def test_non_object_body_is_422(self, client: httpx.AsyncClient) -> None:
        r = await client.post(
            f"{API}/categories", content=b"[1, 2]", headers={"content-type": "application/json"}
        )
        assert r.status_code == 422


class TestGetCategory:
    async def test_get_with_etag_and_304(self, client: httpx.AsyncClient) -> None:
        c = await create_category(client, name="Kitchen")
        r = await client.get(f"{API}/categories/{c['id']}")
        assert r.status_code == 200
        assert r.json()["name"] == "Kitchen"
        etag = r.headers["etag"]
        r2 = await client.get(f"{API}/categories/{c['id']}", headers={"If-None-Match": etag})
        assert r2.status_code == 304
        assert r2.content == b""
        assert r2.headers["etag"] == etag
        r3 = await client.get(f"{API}/categories/{c['id']}", headers={"If-None-Match": '"x"'})
        assert r3.status_code == 200

    async def test_missing_is_404_problem(self, client: httpx.AsyncClient) -> None:
        missing = uuid.uuid4()
        r = await client.get(f"{API}/categories/{missing}")
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
        assert str(missing) in r.json()["detail"]

    async def test_malformed_uuid_is_422(self, client: httpx.AsyncClient) -> None:
        r = await client.get(f"{API}/categories/not-a-uuid")
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["path", "category_id"]


class TestListCategories:
    async def test_cursor_pagination_without_duplicates_or_gaps(
        self, client: httpx.AsyncClient
    ) -> None:
        created = [await create_category(client) for _ in range(7)]
        r = await client.get(f"{API}/categories", params={"limit": 3})
        page = r.json()
        assert len(page["items"]) == 3
        assert page["next_cursor"]
        seen = await list_all(client, limit=3)
        assert [c["id"] for c in seen] == [c["id"] for c in created]
        assert seen[0] == created[0]

    async def test_last_page_has_no_cursor(self, client: httpx.AsyncClient) -> None:
        await create_category(client)
        await create_category(client)
        r = await client.get(f"{API}/categories", params={"limit": 2})
        assert len(r.json()["items"]) == 2
        assert r.json()["next_cursor"] is None

    async def test_empty(self, client: httpx.AsyncClient) -> None:
        r = await client.get(f"{API}/categories")
        assert r.json() == {"items": [], "next_cursor": None}

    async def test_parent_filter_gives_direct_children(self, client: httpx.AsyncClient) -> None:
        root = await create_category(client)
        other = await create_category(client)
        kids = [await create_category(client, parent_id=root["id"]) for _ in range(3)]
        grandchild = await create_category(client, parent_id=kids[0]["id"])
        await create_category(client, parent_id=other["id"])
        items = await list_all(client, parent_id=root["id"], limit=2)
        assert [c["id"] for c in items] == [k["id"] for k in kids]
        assert grandchild["id"] not in {c["id"] for c in items}
        r = await client.get(f"{API}/categories", params={"parent_id": str(uuid.uuid4())})
        assert r.json()["items"] == []

    @pytest.mark.parametrize(
        ("params", "loc"),
        [
            ({"cursor": "garbage!!"}, ["query", "cursor"]),
            ({"cursor": "W10"}, ["query", "cursor"]),
            ({"cursor": "x" * 513}, ["query", "cursor"]),
            ({"limit": 0}, ["query", "limit"]),
            ({"limit": 1001}, ["query", "limit"]),
            ({"parent_id": "nope"}, ["query", "parent_id"]),
        ],
    )
    async def test_bad_query_is_422(
        self, client: httpx.AsyncClient, params: dict[str, Any], loc: list[str]
    ) -> None:
        r = await client.get(f"{API}/categories", params=params)
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == loc

    async def test_limit_over_page_size_is_capped(self, client: httpx.AsyncClient) -> None:
        await create_category(client)
        r = await client.get(f"{API}/categories", params={"limit": 1000})
        assert r.status_code == 200
        assert len(r.json()["items"]) == 1


class TestCategoryTree:
    async def test_nested_tree_with_paths(self, client: httpx.AsyncClient) -> None:
        home = await create_category(client, name="Home")
        garden = await create_category(client, name="Garden")
        kitchen = await create_category(client, name="Kitchen", parent_id=home["id"])
        bath = await create_category(client, name="Bath", parent_id=home["id"])
        knives = await create_category(client, name="Knives", parent_id=kitchen["id"])
        r = await client.get(f"{API}/categories/tree")
        assert r.status_code == 200
        tree = r.json()
        assert [n["name"] for n in tree] == ["Garden", "Home"]
        assert tree[0] == {
            "id": garden["id"],
            "parent_id": None,
            "name": "Garden",
            "slug": "garden",
            "path": "garden",
            "children": [],
        }
        home_node = tree[1]
        assert home_node["path"] == "home"
        assert [n["id"] for n in home_node["children"]] == [bath["id"], kitchen["id"]]
        kitchen_node = home_node["children"][1]
        assert kitchen_node["parent_id"] == home["id"]
        assert kitchen_node["path"] == "home/kitchen"
        assert kitchen_node["children"] == [
            {
                "id": knives["id"],
                "parent_id": kitchen["id"],
                "name": "Knives",
                "slug": "knives",
                "path": "home/kitchen/knives",
                "children": [],
            }
        ]

    async def test_empty_tree(self, client: httpx.AsyncClient) -> None:
        r = await client.get(f"{API}/categories/tree")
        assert r.status_code == 200
        assert r.json() == []

    async def test_etag_and_304_until_the_tree_changes(self, client: httpx.AsyncClient) -> None:
        root = await create_category(client, name="Root")
        r = await client.get(f"{API}/categories/tree")
        etag = r.headers["etag"]
        r2 = await client.get(f"{API}/categories/tree", headers={"If-None-Match": etag})
        assert r2.status_code == 304
        assert r2.content == b""
        await create_category(client, name="Leaf", parent_id=root["id"])
        r3 = await client.get(f"{API}/categories/tree", headers={"If-None-Match": etag})
        assert r3.status_code == 200
        assert r3.headers["etag"] != etag
        assert r3.json()[0]["children"][0]["path"] == "root/leaf"


class TestUpdateCategory:
    async def test_patch_bumps_version_and_etag(self, client: httpx.AsyncClient) -> None:
        c = await create_category(client, name="Old", description="keep")
        r = await client.get(f"{API}/categories/{c['id']}")
        etag = r.headers["etag"]
        r = await client.patch(
            f"{API}/categories/{c['id']}", json={"name": "New"}, headers={"If-Match": etag}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["name"] == "New"
        assert body["slug"] == c["slug"]
        assert body["description"] == "keep"
        assert body["version"] == 2
        assert r.headers["etag"] != etag
        assert await get_category(client, c["id"]) == body

    async def test_stale_if_match_is_412_and_nothing_changes(
        self, client: httpx.AsyncClient
    ) -> None:
        c = await create_category(client, name="Before")
        etag = (await client.get(f"{API}/categories/{c['id']}")).headers["etag"]
        await client.patch(f"{API}/categories/{c['id']}", json={"description": "x"})
        r = await client.patch(
            f"{API}/categories/{c['id']}", json={"name": "After"}, headers={"If-Match": etag}
        )
        assert r.status_code == 412
        assert r.headers["content-type"] == "application/problem+json"
        r = await client.put(
            f"{API}/categories/{c['id']}",
            json={"name": "After", "slug": "after"},
            headers={"If-Match": etag},
        )
        assert r.status_code == 412
        current = await get_category(client, c["id"])
        assert current["name"] == "Before"
        assert current["version"] == 2

    async def test_move_under_another_parent(self, client: httpx.AsyncClient) -> None:
        a = await create_category(client)
        b = await create_category(client)
        c = await create_category(client, parent_id=a["id"])
        r = await client.patch(f"{API}/categories/{c['id']}", json={"parent_id": b["id"]})
        assert r.status_code == 200, r.text
        assert r.json()["parent_id"] == b["id"]
        items = await list_all(client, parent_id=b["id"])
        assert [i["id"] for i in items] == [c["id"]]
        assert await list_all(client, parent_id=a["id"]) == []

    async def test_move_to_root_with_null(self, client: httpx.AsyncClient) -> None:
        a = await create_category(client)
        c = await create_category(client, parent_id=a["id"])
        r = await client.patch(f"{API}/categories/{c['id']}", json={"parent_id": None})
        assert r.status_code == 200
        assert r.json()["parent_id"] is None

    async def test_move_to_itself_is_422(self, client: httpx.AsyncClient) -> None:
        c = await create_category(client)
        r = await client.patch(f"{API}/categories/{c['id']}", json={"parent_id": c["id"]})
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["body", "parent_id"]
        assert (await get_category(client, c["id"]))["parent_id"] is None

    async def test_move_under_own_descendant_is_422(self, client: httpx.AsyncClient) -> None:
        top = await create_category(client)
        mid = await create_category(client, parent_id=top["id"])
        low = await create_category(client, parent_id=mid["id"])
        for target in (mid, low):
            r = await client.patch(
                f"{API}/categories/{top['id']}", json={"parent_id": target["id"]}
            )
            assert r.status_code == 422
            assert "cycle" in r.json()["detail"]
            assert r.json()["errors"][0]["loc"] == ["body", "parent_id"]
        assert (await get_category(client, top["id"]))["parent_id"] is None
        assert (await get_category(client, top["id"]))["version"] == 1

    async def test_move_under_missing_parent_is_422(self, client: httpx.AsyncClient) -> None:
        c = await create_category(client)
        r = await client.patch(f"{API}/categories/{c['id']}", json={"parent_id": str(uuid.uuid4())})
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["body", "parent_id"]

    async def test_move_next_to_a_sibling_with_the_same_slug_is_409(
        self, client: httpx.AsyncClient
    ) -> None:
        a = await create_category(client)
        b = await create_category(client)
        await create_category(client, name="Sale", parent_id=a["id"])
        moving = await create_category(client, name="Sale", parent_id=b["id"])
        r = await client.patch(f"{API}/categories/{moving['id']}", json={"parent_id": a["id"]})
        assert r.status_code == 409
        assert r.json()["errors"][0]["loc"] == ["body", "slug"]
        assert (await get_category(client, moving["id"]))["parent_id"] == b["id"]

    async def test_patch_slug_taken_by_sibling_is_409(self, client: httpx.AsyncClient) -> None:
        await create_category(client, slug="taken")
        c = await create_category(client, slug="mine")
        r = await client.patch(f"{API}/categories/{c['id']}", json={"slug": "taken"})
        assert r.status_code == 409
        assert r.json()["errors"][0]["loc"] == ["body", "slug"]

    async def test_patch_null_for_required_field_is_422(self, client: httpx.AsyncClient) -> None:
        c = await create_category(client)
        for field in ("name", "slug"):
            r = await client.patch(f"{API}/categories/{c['id']}", json={field: None})
            assert r.status_code == 422, field
        assert (await get_category(client, c["id"]))["version"] == 1

    async def test_put_replaces_every_field(self, client: httpx.AsyncClient) -> None:
        parent = await create_category(client)
        c = await create_category(client, name="Old", description="gone", parent_id=parent["id"])
        r = await client.put(f"{API}/categories/{c['id']}", json={"name": "Fresh", "slug": "fresh"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["name"] == "Fresh"
        assert body["slug"] == "fresh"
        assert body["description"] is None
        assert body["parent_id"] is None
        assert body["version"] == 2

    async def test_put_requires_slug(self, client: httpx.AsyncClient) -> None:
        c = await create_category(client)
        r = await client.put(f"{API}/categories/{c['id']}", json={"name": "Fresh"})
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["body", "slug"]

    async def test_update_missing_is_404(self, client: httpx.AsyncClient) -> None:
        r = await client.patch(f"{API}/categories/{uuid.uuid4()}", json={"name": "x"})
        assert r.status_code == 404


class TestDeleteCategory:
    async def test_delete_leaf(self, client: httpx.AsyncClient) -> None:
        root = await create_category(client)
        leaf = await create_category(client, parent_id=root["id"])
        r = await client.delete(f"{API}/categories/{leaf['id']}")
        assert r.status_code == 204
        assert r.content == b""
        assert (await client.get(f"{API}/categories/{leaf['id']}")).status_code == 404
        assert (await client.get(f"{API}/categories/tree")).json()[0]["children"] == []

    async def test_delete_missing_is_404(self, client: httpx.AsyncClient) -> None:
        r = await client.delete(f"{API}/categories/{uuid.uuid4()}")
        assert r.status_code == 404

    async def test_with_children_is_409(self, client: httpx.AsyncClient) -> None:
        root = await create_category(client)
        await create_category(client, parent_id=root["id"])
        r = await client.delete(f"{API}/categories/{root['id']}")
        assert r.status_code == 409
        assert "reparent" in r.json()["detail"]
        assert (await client.get(f"{API}/categories/{root['id']}")).status_code == 200

    async def test_with_products_is_409(self, client: httpx.AsyncClient) -> None:
        c = await create_category(client)
        await create_product(client, category_id=c["id"])
        r = await client.delete(f"{API}/categories/{c['id']}")
        assert r.status_code == 409
        assert (await client.get(f"{API}/categories/{c['id']}")).status_code == 200

    async def test_with_only_soft_deleted_products_is_409(self, client: httpx.AsyncClient) -> None:
        c = await create_category(client)
        p = await create_product(client, category_id=c["id"])
        assert (await client.delete(f"{API}/products/{p['id']}")).status_code == 204
        r = await client.delete(f"{API}/categories/{c['id']}")
        assert r.status_code == 409

    async def test_reparent_moves_children_and_products_to_the_parent(
        self, client: httpx.AsyncClient
    ) -> None:
        top = await create_category(client)
        mid = await create_category(client, parent_id=top["id"])
        kids = [await create_category(client, parent_id=mid["id"]) for _ in range(2)]
        product = await create_product(client, category_id=mid["id"])
        r = await client.delete(f"{API}/categories/{mid['id']}", params={"reparent": True})
        assert r.status_code == 204, r.text
        assert (await client.get(f"{API}/categories/{mid['id']}")).status_code == 404
        for kid in kids:
            assert (await get_category(client, kid["id"]))["parent_id"] == top["id"]
        moved = await get_product(client, product["id"])
        assert moved["category_id"] == top["id"]
        assert moved["category"]["id"] == top["id"]
        assert moved["version"] == product["version"] + 1
        tree = (await client.get(f"{API}/categories/tree")).json()
        assert {n["id"] for n in tree[0]["children"]} == {k["id"] for k in kids}

    async def test_reparent_a_root_makes_children_roots(self, client: httpx.AsyncClient) -> None:
        root = await create_category(client, name="Audio")
        kid = await create_category(client, name="Audio", parent_id=root["id"])
        other = await create_category(client, name="Speakers", parent_id=root["id"])
        product = await create_product(client, category_id=root["id"])
        r = await client.delete(f"{API}/categories/{root['id']}", params={"reparent": "true"})
        assert r.status_code == 204, r.text
        assert (await get_category(client, kid["id"]))["parent_id"] is None
        assert (await get_category(client, kid["id"]))["slug"] == "audio"
        assert (await get_category(client, other["id"]))["parent_id"] is None
        moved = await get_product(client, product["id"])
        assert moved["category_id"] is None
        assert moved["category"] is None
        tree = (await client.get(f"{API}/categories/tree")).json()
        assert sorted(n["path"] for n in tree) == ["audio", "speakers"]

    async def test_reparent_a_leaf_is_a_plain_delete(self, client: httpx.AsyncClient) -> None:
        c = await create_category(client)
        r = await client.delete(f"{API}/categories/{c['id']}", params={"reparent": True})
        assert r.status_code == 204
        assert (await client.get(f"{API}/categories/{c['id']}")).status_code == 404

    async def test_reparent_with_a_slug_clash_is_409_and_changes_nothing(
        self, client: httpx.AsyncClient
    ) -> None:
        top = await create_category(client)
        await create_category(client, name="Lighting", parent_id=top["id"])
        mid = await create_category(client, name="Mid", parent_id=top["id"])
        clash = await create_category(client, name="Lighting", parent_id=mid["id"])
        r = await client.delete(f"{API}/categories/{mid['id']}", params={"reparent": True})
        assert r.status_code == 409
        assert r.json()["errors"][0]["loc"] == ["body", "slug"]
        assert (await get_category(client, mid["id"]))["slug"] == "mid"
        assert (await get_category(client, clash["id"]))["parent_id"] == mid["id"]

    async def test_stale_if_match_is_412(self, client: httpx.AsyncClient) -> None:
        c = await create_category(client)
        etag = (await client.get(f"{API}/categories/{c['id']}")).headers["etag"]
        await client.patch(f"{API}/categories/{c['id']}", json={"name": "Renamed"})
        r = await client.delete(f"{API}/categories/{c['id']}", headers={"If-Match": etag})
        assert r.status_code == 412
        assert (await client.get(f"{API}/categories/{c['id']}")).status_code == 200
        fresh = (await client.get(f"{API}/categories/{c['id']}")).headers["etag"]
        r = await client.delete(f"{API}/categories/{c['id']}", headers={"If-Match": fresh})
        assert r.status_code == 204

    async def test_bad_reparent_value_is_422(self, client: httpx.AsyncClient) -> None:
        c = await create_category(client)
        r = await client.delete(f"{API}/categories/{c['id']}", params={"reparent": "maybe"})
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["query", "reparent"]
