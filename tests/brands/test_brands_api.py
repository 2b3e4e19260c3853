from __future__ import annotations

import uuid

import httpx

from tests.factories import API, create_brand, create_product


class TestCreateBrand:
    async def test_creates_with_generated_slug_and_location(
        self, client: httpx.AsyncClient
    ) -> None:
        r = await client.post(
            f"{API}/brands",
            json={"name": "  Nordic Oak ", "logo_url": "https://cdn.example.com/n.png"},
        )
        assert r.status_code == 201
        body = r.json()
        assert body["name"] == "Nordic Oak"
        assert body["slug"] == "nordic-oak"
        assert body["version"] == 1
        assert r.headers["location"] == f"{API}/brands/{body['id']}"
        assert r.headers["etag"]
        assert uuid.UUID(body["id"]).version == 7

    async def test_duplicate_name_is_409_naming_the_field(self, client: httpx.AsyncClient) -> None:
        await create_brand(client, name="Acme")
        r = await client.post(f"{API}/brands", json={"name": "Acme"})
        assert r.status_code == 409
        assert r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert problem["status"] == 409
        assert problem["errors"][0]["loc"] == ["body", "name"]

    async def test_duplicate_slug_is_409(self, client: httpx.AsyncClient) -> None:
        await create_brand(client, name="One", slug="same")
        r = await client.post(f"{API}/brands", json={"name": "Two", "slug": "same"})
        assert r.status_code == 409
        assert r.json()["errors"][0]["loc"] == ["body", "slug"]

    async def test_generated_slug_is_made_unique(self, client: httpx.AsyncClient) -> None:
        await create_brand(client, name="Acme!", slug="acme")
        b = await create_brand(client, name="ACME")
        assert b["slug"] == "acme-2"

    async def test_invalid_input_is_422_with_field_path(self, client: httpx.AsyncClient) -> None:
        r = await client.post(f"{API}/brands", json={"name": "x" * 121})
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["body", "name"]
        r = await client.post(f"{API}/brands", json={"name": "ok", "logo_url": "javascript:x"})
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["body", "logo_url"]
        r = await client.post(f"{API}/brands", json={"name": "ok", "unknown": 1})
        assert r.status_code == 422
        r = await client.post(f"{API}/brands", json={"name": "ok", "slug": "Not A Slug"})
        assert r.status_code == 422

    async def test_url_too_long_once_normalized_is_422(self, client: httpx.AsyncClient) -> None:
        """2,048 characters without a path: normalizing adds "/", one more than the column
        holds. The client gets a 422, not a database error."""
        host = ("a" * 63 + ".") * 31 + "a" * 56
        url = f"https://{host}"
        assert len(url) == 2048
        r = await client.post(f"{API}/brands", json={"name": "long", "logo_url": url})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["loc"] == ["body", "logo_url"]
        r = await client.post(f"{API}/brands", json={"name": "long", "logo_url": url[:-1]})
        assert r.status_code == 201, r.text
        assert r.json()["logo_url"] == url[:-1] + "/"


class TestGetBrand:
    async def test_get_with_etag_and_304(self, client: httpx.AsyncClient) -> None:
        b = await create_brand(client)
        r = await client.get(f"{API}/brands/{b['id']}")
        assert r.status_code == 200
        etag = r.headers["etag"]
        r2 = await client.get(f"{API}/brands/{b['id']}", headers={"If-None-Match": etag})
        assert r2.status_code == 304
        assert r2.content == b""

    async def test_missing_is_404_problem(self, client: httpx.AsyncClient) -> None:
        r = await client.get(f"{API}/brands/{uuid.uuid4()}")
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
        assert "not found" in r.json()["detail"]

    async def test_malformed_uuid_is_422(self, client: httpx.AsyncClient) -> None:
        r = await client.get(f"{API}/brands/not-a-uuid")
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["path", "brand_id"]


class TestListBrands:
    async def test_cursor_pagination_sorted_by_name(self, client: httpx.AsyncClient) -> None:
        for name in ["Delta", "alpha", "Charlie", "Bravo", "Echo"]:
            await create_brand(client, name=name)
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            r = await client.get(f"{API}/brands", params=params)
            assert r.status_code == 200
            page = r.json()
            assert len(page["items"]) <= 2
            seen += [b["name"] for b in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(["Delta", "alpha", "Charlie", "Bravo", "Echo"])
        assert len(seen) == 5

    async def test_bad_cursor_is_422(self, client: httpx.AsyncClient) -> None:
        r = await client.get(f"{API}/brands", params={"cursor": "garbage!!"})
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["query", "cursor"]

    async def test_name_filter(self, client: httpx.AsyncClient) -> None:
        await create_brand(client, name="Samsung")
        await create_brand(client, name="Sony")
        r = await client.get(f"{API}/brands", params={"q": "sam"})
        assert [b["name"] for b in r.json()["items"]] == ["Samsung"]


class TestUpdateBrand:
    async def test_patch_bumps_version_and_etag(self, client: httpx.AsyncClient) -> None:
        b = await create_brand(client, name="Old")
        r = await client.get(f"{API}/brands/{b['id']}")
        etag = r.headers["etag"]
        r = await client.patch(
            f"{API}/brands/{b['id']}", json={"name": "New"}, headers={"If-Match": etag}
        )
        assert r.status_code == 200
        assert r.json()["name"] == "New"
        assert r.json()["version"] == 2
        assert r.headers["etag"] != etag
        # the old ETag is now stale
        r = await client.patch(
            f"{API}/brands/{b['id']}", json={"name": "Newer"}, headers={"If-Match": etag}
        )
        assert r.status_code == 412
        assert (await client.get(f"{API}/brands/{b['id']}")).json()["name"] == "New"

    async def test_put_replaces(self, client: httpx.AsyncClient) -> None:
        b = await create_brand(client, name="Old", description="d")
        r = await client.put(f"{API}/brands/{b['id']}", json={"name": "Fresh", "slug": "fresh"})
        assert r.status_code == 200
        assert r.json()["description"] is None
        assert r.json()["slug"] == "fresh"

    async def test_patch_null_name_is_422(self, client: httpx.AsyncClient) -> None:
        b = await create_brand(client)
        r = await client.patch(f"{API}/brands/{b['id']}", json={"name": None})
        assert r.status_code == 422

    async def test_patch_to_taken_name_is_409(self, client: httpx.AsyncClient) -> None:
        await create_brand(client, name="Taken")
        b = await create_brand(client, name="Mine")
        r = await client.patch(f"{API}/brands/{b['id']}", json={"name": "Taken"})
        assert r.status_code == 409


class TestDeleteBrand:
    async def test_delete(self, client: httpx.AsyncClient) -> None:
        b = await create_brand(client)
        r = await client.delete(f"{API}/brands/{b['id']}")
        assert r.status_code == 204
        assert (await client.get(f"{API}/brands/{b['id']}")).status_code == 404

    async def test_delete_with_products_is_409(self, client: httpx.AsyncClient) -> None:
        b = await create_brand(client)
        await create_product(client, brand_id=b["id"])
        r = await client.delete(f"{API}/brands/{b['id']}")
        assert r.status_code == 409
        assert (await client.get(f"{API}/brands/{b['id']}")).status_code == 200
