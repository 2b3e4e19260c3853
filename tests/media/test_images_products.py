"""Images seen through products: cached product reads follow every image write, summaries
carry the thumbnail, readiness reports the media storage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from catalog.app import create_app
from catalog.media.storage import InvalidKey, LocalMediaStorage, content_key
from tests.conftest import Backend, make_client
from tests.factories import API, create_product
from tests.media import images
from tests.media.conftest import media_settings
from tests.media.test_images_api import JPEG, rendition, upload_ok


@pytest.fixture
def media_overrides() -> dict[str, object]:
    return {"cache_enabled": True}


async def anonymous_product(app: FastAPI, product_id: str) -> dict[str, Any]:
    async with make_client(app) as anon:
        r = await anon.get(f"{API}/products/{product_id}")
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


class TestCachedProductReads:
    async def test_every_image_write_refreshes_cached_product_reads(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        assert app.state.cache is not None
        product = await create_product(client)
        pid = product["id"]
        assert (await anonymous_product(app, pid))["thumbnail_url"] is None
        assert (await anonymous_product(app, pid))["thumbnail_url"] is None  # from the cache

        a, b = await upload_ok(client, pid, JPEG, ("b.png", images.png(), "image/png"))
        thumb_a = rendition(a, "480", "webp")["url"]
        thumb_b = rendition(b, "480", "webp")["url"]
        assert (await anonymous_product(app, pid))["thumbnail_url"] == thumb_a

        r = await client.patch(f"{API}/images/{b['id']}", json={"is_primary": True})
        assert r.status_code == 200, r.text
        assert (await anonymous_product(app, pid))["thumbnail_url"] == thumb_b
        async with make_client(app) as anon:
            by_slug = await anon.get(f"{API}/products/by-slug/{product['slug']}")
            assert by_slug.json()["thumbnail_url"] == thumb_b
            listed = await anon.get(f"{API}/products")
            assert listed.json()["items"][0]["thumbnail_url"] == thumb_b

        r = await client.delete(f"{API}/images/{b['id']}")
        assert r.status_code == 204
        assert (await anonymous_product(app, pid))["thumbnail_url"] == thumb_a
        async with make_client(app) as anon:
            listed = await anon.get(f"{API}/products")
            assert listed.json()["items"][0]["thumbnail_url"] == thumb_a

        r = await client.delete(f"{API}/images/{a['id']}")
        assert r.status_code == 204
        assert (await anonymous_product(app, pid))["thumbnail_url"] is None

        await upload_ok(client, pid, JPEG)
        assert (await anonymous_product(app, pid))["thumbnail_url"] == thumb_a
        r = await client.delete(f"{API}/products/{pid}", params={"purge": "true"})
        assert r.status_code == 204
        async with make_client(app) as anon:
            assert (await anon.get(f"{API}/products/{pid}")).status_code == 404

    async def test_search_results_carry_the_thumbnail(self, client: httpx.AsyncClient) -> None:
        product = await create_product(client, name="Walnut side table")
        r = await client.get(f"{API}/search", params={"q": "walnut"})
        assert r.status_code == 200, r.text
        [item] = r.json()["items"]
        assert item["thumbnail_url"] is None
        [image] = await upload_ok(client, product["id"], JPEG)
        r = await client.get(f"{API}/search", params={"q": "walnut"})
        [item] = r.json()["items"]
        assert item["thumbnail_url"] == rendition(image, "480", "webp")["url"]


class TestReadiness:
    async def test_media_storage_is_checked(
        self, backend: Backend, storage_kind: str, tmp_path: Path
    ) -> None:
        endpoint = "http://127.0.0.1:9" if storage_kind == "s3" else None
        settings = media_settings(backend, storage_kind, tmp_path, endpoint)
        app = create_app(settings)
        async with app.router.lifespan_context(app), make_client(app) as anon:
            r = await anon.get("/health/ready")
        media = r.json()["checks"]["media"]
        if storage_kind == "s3":  # nothing listens on port 9
            assert r.status_code == 503
            assert media["status"] == "down"
        else:
            assert r.status_code == 200
            assert media["status"] == "up"


class TestKeys:
    @pytest.mark.parametrize(
        "key",
        [
            "../x",
            "images/../../etc/passwd",
            "images/ab/" + "a" * 64 + ".webp",  # the folder is not the hash's first two digits
            "images/aa/" + "a" * 63 + ".webp",
            "images/aa/" + "A" * 64 + ".webp",
            "images/aa/" + "a" * 64 + ".svg",
            "/images/aa/" + "a" * 64 + ".webp",
            "images/aa/" + "a" * 64 + ".webp/..",
            "",
        ],
    )
    def test_only_content_keys_are_paths(self, tmp_path: Path, key: str) -> None:
        storage = LocalMediaStorage(tmp_path)
        with pytest.raises(InvalidKey):
            storage.path(key)
        with pytest.raises(InvalidKey):
            storage.url(key)

    def test_content_key_is_the_hash(self, tmp_path: Path) -> None:
        key = content_key(b"abc", "webp")
        digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        assert key == f"images/ba/{digest}.webp"
        assert LocalMediaStorage(tmp_path).path(key) == (tmp_path / key).resolve()
