from __future__ import annotations

import io
import zipfile
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image

from catalog.media.storage import LocalMediaStorage, MediaStorage
from catalog.models import Role
from tests.conftest import make_account, make_client
from tests.factories import API, create_product
from tests.media import images

File = tuple[str, bytes, str]


def files(*items: File) -> list[tuple[str, File]]:
    return [("files", item) for item in items]


async def upload(client: httpx.AsyncClient, product_id: str, *items: File) -> httpx.Response:
    return await client.post(f"{API}/products/{product_id}/images", files=files(*items))


async def upload_ok(
    client: httpx.AsyncClient, product_id: str, *items: File
) -> list[dict[str, Any]]:
    r = await upload(client, product_id, *items)
    assert r.status_code == 201, r.text
    body: list[dict[str, Any]] = r.json()
    return body


async def list_images(client: httpx.AsyncClient, product_id: str) -> list[dict[str, Any]]:
    r = await client.get(f"{API}/products/{product_id}/images")
    assert r.status_code == 200, r.text
    body: list[dict[str, Any]] = r.json()
    return body


async def fetch(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """A stored file by its public URL: served by the app (local) or by the S3 server."""
    if url.startswith("/media/"):
        return await client.get(url)
    async with httpx.AsyncClient() as outside:
        return await outside.get(url)


async def fetch_image(client: httpx.AsyncClient, url: str) -> tuple[Image.Image, bytes]:
    r = await fetch(client, url)
    assert r.status_code == 200, url
    image = Image.open(io.BytesIO(r.content))
    image.load()
    return image, r.content


def rendition(image: dict[str, Any], name: str, fmt: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        r for r in image["renditions"] if r["name"] == name and r["format"] == fmt
    ]
    assert len(found) == 1, image["renditions"]
    return found[0]


def assert_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    return body


JPEG: File = ("photo.jpg", images.jpeg(), "image/jpeg")


class TestUpload:
    @pytest.mark.parametrize(
        ("name", "data", "fmt", "original"),
        [
            ("a.jpg", images.jpeg(), "jpeg", "jpeg"),
            ("a.png", images.png(), "png", "png"),
            ("a.webp", images.webp(), "webp", "webp"),
            ("a.gif", images.animated_gif(1200, 800), "gif", "png"),
        ],
    )
    async def test_each_accepted_format(
        self,
        client: httpx.AsyncClient,
        storage: MediaStorage,
        name: str,
        data: bytes,
        fmt: str,
        original: str,
    ) -> None:
        product = await create_product(client)
        r = await upload(client, product["id"], (name, data, "application/octet-stream"))
        assert r.status_code == 201, r.text
        assert r.headers["location"] == f"{API}/products/{product['id']}/images"
        [image] = r.json()
        assert image["format"] == fmt
        assert (image["width"], image["height"]) == (1200, 800)
        assert image["is_primary"] is True
        assert image["position"] == 0
        assert image["placeholder"].startswith("data:image/webp;base64,")
        assert len(image["placeholder"]) < 1000
        names = sorted((x["name"], x["format"]) for x in image["renditions"])
        assert names == sorted(
            [("original", original)]
            + [(size, f) for size in ("160", "480", "1024") for f in ("webp", "jpeg")]
        )
        for item in image["renditions"]:
            decoded, raw = await fetch_image(client, item["url"])
            assert decoded.format == {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}[item["format"]]
            assert decoded.size == (item["width"], item["height"])
            assert len(raw) == item["bytes"]
        assert len(await storage.keys()) == 7

    async def test_renditions_sizes_keep_the_aspect_ratio_and_never_enlarge(
        self, client: httpx.AsyncClient
    ) -> None:
        product = await create_product(client)
        big, small = await upload_ok(
            client,
            product["id"],
            ("big.jpg", images.jpeg(1200, 800), "image/jpeg"),
            ("small.jpg", images.jpeg(300, 100), "image/jpeg"),
        )
        sizes = {(x["name"], x["format"]): (x["width"], x["height"]) for x in big["renditions"]}
        assert sizes[("original", "jpeg")] == (1200, 800)
        for fmt in ("webp", "jpeg"):
            assert sizes[("1024", fmt)] == (1024, 683)
            assert sizes[("480", fmt)] == (480, 320)
            assert sizes[("160", fmt)] == (160, 107)
        small_sizes = {(x["width"], x["height"]) for x in small["renditions"]}
        assert small_sizes == {(300, 100), (160, 53)}

    async def test_animated_gif_keeps_its_first_frame(self, client: httpx.AsyncClient) -> None:
        product = await create_product(client)
        [image] = await upload_ok(
            client, product["id"], ("anim.gif", images.animated_gif(), "image/gif")
        )
        decoded, _ = await fetch_image(client, rendition(image, "original", "png")["url"])
        assert getattr(decoded, "n_frames", 1) == 1
        red, _green, blue = decoded.convert("RGB").getpixel((10, 10))  # type: ignore[misc]
        assert red > 200
        assert blue < 50

    async def test_exif_orientation_applied_and_metadata_stripped(
        self, client: httpx.AsyncClient
    ) -> None:
        product = await create_product(client)
        data = images.jpeg_rotated_with_gps()
        assert b"CameraMaker" in data
        [image] = await upload_ok(client, product["id"], ("gps.jpg", data, "image/jpeg"))
        # 600x400 stored sideways, displayed upright as 400x600 with the red half on top.
        assert (image["width"], image["height"]) == (400, 600)
        for item in image["renditions"]:
            decoded, raw = await fetch_image(client, item["url"])
            assert decoded.height > decoded.width
            assert not decoded.getexif()
            assert "icc_profile" not in decoded.info
            assert b"Exif" not in raw
            assert b"CameraMaker" not in raw
            rgb = decoded.convert("RGB")
            top = rgb.getpixel((rgb.width // 2, rgb.height // 8))
            bottom = rgb.getpixel((rgb.width // 2, rgb.height * 7 // 8))
            assert isinstance(top, tuple)
            assert isinstance(bottom, tuple)
            assert (top[0] > 180, top[2] < 80) == (True, True), top
            assert (bottom[2] > 180, bottom[0] < 80) == (True, True), bottom

    async def test_colours_are_converted_to_srgb_from_the_embedded_profile(
        self, client: httpx.AsyncClient
    ) -> None:
        tagged = images.encode(
            images.solid(64, 64, (255, 0, 0)), "PNG", icc_profile=images.swapped_primaries_icc()
        )
        broken = images.encode(images.solid(64, 64, (255, 0, 0)), "PNG", icc_profile=b"junk")
        product = await create_product(client)
        converted, as_is = await upload_ok(
            client,
            product["id"],
            ("tagged.png", tagged, "image/png"),
            ("broken.png", broken, "image/png"),
        )
        for item in converted["renditions"]:
            decoded, _ = await fetch_image(client, item["url"])
            assert "icc_profile" not in decoded.info
            red, green, blue = decoded.convert("RGB").getpixel((5, 5))  # type: ignore[misc]
            assert (red < 60, green > 200, blue < 60) == (True, True, True), (red, green, blue)
        # An unusable profile is dropped and the values taken as sRGB.
        decoded, _ = await fetch_image(client, rendition(as_is, "original", "png")["url"])
        assert decoded.convert("RGB").getpixel((5, 5)) == (255, 0, 0)
        assert "icc_profile" not in decoded.info

    async def test_a_file_name_or_content_type_that_lies_does_not_matter(
        self, client: httpx.AsyncClient
    ) -> None:
        product = await create_product(client)
        [image] = await upload_ok(client, product["id"], ("photo.jpg", images.png(), "image/jpeg"))
        assert image["format"] == "png"

    async def test_several_files_keep_their_order_and_the_first_is_primary(
        self, client: httpx.AsyncClient
    ) -> None:
        product = await create_product(client)
        first = await upload_ok(
            client,
            product["id"],
            ("1.jpg", images.jpeg(), "image/jpeg"),
            ("2.png", images.png(), "image/png"),
        )
        second = await upload_ok(client, product["id"], ("3.webp", images.webp(), "image/webp"))
        listed = await list_images(client, product["id"])
        assert [i["id"] for i in listed] == [i["id"] for i in [*first, *second]]
        assert [i["position"] for i in listed] == [0, 1, 2]
        assert [i["is_primary"] for i in listed] == [True, False, False]
        assert [i["format"] for i in listed] == ["jpeg", "png", "webp"]

    async def test_identical_uploads_share_their_files(
        self, client: httpx.AsyncClient, storage: MediaStorage
    ) -> None:
        product = await create_product(client)
        a, b = await upload_ok(client, product["id"], JPEG, JPEG)
        assert a["id"] != b["id"]
        assert [x["url"] for x in a["renditions"]] == [x["url"] for x in b["renditions"]]
        assert len(await storage.keys()) == 7

    async def test_missing_files_field_is_422(self, client: httpx.AsyncClient) -> None:
        product = await create_product(client)
        r = await client.post(f"{API}/products/{product['id']}/images", files={"other": JPEG})
        assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "files"]
        r = await client.post(f"{API}/products/{product['id']}/images", data={"files": "x"})
        assert_problem(r, 422)

    async def test_unknown_product_is_404(self, client: httpx.AsyncClient) -> None:
        r = await upload(client, "0190b2c4-0000-7000-8000-000000000000", JPEG)
        assert_problem(r, 404)


def too_big() -> bytes:
    return images.jpeg(64, 64) + b"\x00" * (10 * 1024 * 1024)


def jpeg_and_html() -> bytes:
    return images.jpeg(640, 480) + images.HTML


def jpeg_and_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("payload.html", images.HTML)
    return images.jpeg(640, 480) + buf.getvalue()


REFUSED = [
    pytest.param("bomb.png", images.png_bomb(), 422, "megapixels", id="png-decompression-bomb"),
    pytest.param("a.gif", images.gif_with_script(), 422, "markup", id="polyglot-gif-html"),
    pytest.param("a.jpg", jpeg_and_html(), 422, "after the end", id="polyglot-jpeg-html"),
    pytest.param("a.jpg", jpeg_and_zip(), 422, "after the end", id="polyglot-jpeg-zip"),
    pytest.param("photo.png", images.HTML, 415, "HTML", id="lying-extension"),
    pytest.param("empty.jpg", b"", 422, "empty", id="zero-bytes"),
    pytest.param("big.jpg", too_big(), 413, "larger than", id="over-size"),
    pytest.param("a.svg", images.SVG, 415, "SVG", id="svg"),
    pytest.param("a.html", images.HTML, 415, "HTML", id="html"),
    pytest.param("a.pdf", images.PDF, 415, "PDF", id="pdf"),
    pytest.param("cut.jpg", images.jpeg()[:3000], 422, "truncated", id="truncated-jpeg"),
    pytest.param(
        "bad.png", images.png()[:40] + b"\x00" * 200 + images.png()[240:], 422, "", id="corrupt"
    ),
    pytest.param("a.bmp", images.encode(images.solid(8, 8), "BMP"), 415, "", id="bmp"),
]


class TestRefused:
    @pytest.mark.parametrize(("name", "data", "status", "message"), REFUSED)
    async def test_refused_and_nothing_stored(
        self,
        client: httpx.AsyncClient,
        storage: MediaStorage,
        name: str,
        data: bytes,
        status: int,
        message: str,
    ) -> None:
        product = await create_product(client)
        # A good file first: one refused file refuses the whole request.
        r = await upload(client, product["id"], JPEG, (name, data, "image/png"))
        problem = assert_problem(r, status)
        assert problem["detail"].startswith(f"{name}: ")
        assert message in problem["detail"]
        assert problem["errors"][0]["loc"] == ["body", "files", 1]
        assert await storage.keys() == []
        assert await list_images(client, product["id"]) == []
        r = await client.get(f"{API}/products/{product['id']}")
        assert r.json()["thumbnail_url"] is None

    async def test_too_many_files_is_400(self, client: httpx.AsyncClient) -> None:
        product = await create_product(client)
        r = await upload(client, product["id"], *[JPEG] * 11)
        assert_problem(r, 400)


class TestPermissions:
    async def test_sellers_manage_only_their_own_products_images(
        self, app: FastAPI, storage: MediaStorage
    ) -> None:
        owner = await make_account(app, Role.seller)
        other = await make_account(app, Role.seller)
        buyer = await make_account(app, Role.buyer)
        async with (
            make_client(app, owner.headers) as owner_c,
            make_client(app, other.headers) as other_c,
            make_client(app, buyer.headers) as buyer_c,
            make_client(app) as anon_c,
        ):
            product = await create_product(owner_c, status="draft")
            [image] = await upload_ok(owner_c, product["id"], JPEG)
            url = f"{API}/images/{image['id']}"

            assert_problem(await upload(other_c, product["id"], JPEG), 404)
            assert_problem(await other_c.patch(url, json={"alt_text": "x"}), 404)
            assert_problem(await other_c.delete(url), 404)
            assert_problem(await upload(buyer_c, product["id"], JPEG), 403)
            assert_problem(await buyer_c.patch(url, json={"alt_text": "x"}), 403)
            assert_problem(await buyer_c.delete(url), 403)
            assert_problem(await upload(anon_c, product["id"], JPEG), 401)
            assert_problem(await anon_c.patch(url, json={"alt_text": "x"}), 401)
            assert_problem(await anon_c.delete(url), 401)
            # A draft's images are as invisible as the draft.
            assert_problem(await anon_c.get(f"{API}/products/{product['id']}/images"), 404)
            assert_problem(await other_c.get(url), 404)

            assert len(await list_images(owner_c, product["id"])) == 1
            assert len(await storage.keys()) == 7
            r = await owner_c.patch(url, json={"alt_text": "Front"})
            assert r.status_code == 200, r.text

            r = await owner_c.patch(f"{API}/products/{product['id']}", json={"status": "active"})
            assert r.status_code == 200, r.text
            assert len(await list_images(anon_c, product["id"])) == 1
            r = await anon_c.get(url)
            assert r.status_code == 200
            assert r.json()["alt_text"] == "Front"

            r = await owner_c.delete(url)
            assert r.status_code == 204, r.text

    async def test_admin_manages_every_product(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        seller = await make_account(app, Role.seller)
        async with make_client(app, seller.headers) as seller_c:
            product = await create_product(seller_c)
        [image] = await upload_ok(client, product["id"], JPEG)
        r = await client.patch(f"{API}/images/{image['id']}", json={"alt_text": "by admin"})
        assert r.status_code == 200, r.text


class TestUpdate:
    async def test_alt_text_position_and_primary(self, client: httpx.AsyncClient) -> None:
        product = await create_product(client)
        a, b, c = await upload_ok(
            client,
            product["id"],
            ("a.jpg", images.jpeg(), "image/jpeg"),
            ("b.png", images.png(), "image/png"),
            ("c.webp", images.webp(), "image/webp"),
        )
        r = await client.patch(f"{API}/images/{b['id']}", json={"alt_text": "  Side view "})
        assert r.status_code == 200, r.text
        assert r.json()["alt_text"] == "Side view"

        r = await client.patch(f"{API}/images/{c['id']}", json={"position": 0})
        assert r.status_code == 200, r.text
        assert r.json()["position"] == 0
        listed = await list_images(client, product["id"])
        assert [i["id"] for i in listed] == [c["id"], a["id"], b["id"]]
        assert [i["position"] for i in listed] == [0, 1, 2]
        assert [i["is_primary"] for i in listed] == [False, True, False]

        r = await client.patch(f"{API}/images/{b['id']}", json={"is_primary": True})
        assert r.status_code == 200, r.text
        listed = await list_images(client, product["id"])
        assert [i["is_primary"] for i in listed] == [False, False, True]
        detail = (await client.get(f"{API}/products/{product['id']}")).json()
        assert detail["thumbnail_url"] == rendition(listed[2], "480", "webp")["url"]

        r = await client.patch(f"{API}/images/{b['id']}", json={"position": 99})
        assert r.status_code == 200
        assert r.json()["position"] == 2

        r = await client.patch(f"{API}/images/{b['id']}", json={"is_primary": False})
        assert_problem(r, 422)
        r = await client.patch(f"{API}/images/{b['id']}", json={"position": None})
        assert_problem(r, 422)
        r = await client.patch(f"{API}/images/{b['id']}", json={"alt_text": "x" * 501})
        assert_problem(r, 422)
        r = await client.patch(f"{API}/images/{b['id']}", json={"unknown": 1})
        assert_problem(r, 422)

    async def test_images_attached_to_variants(self, client: httpx.AsyncClient) -> None:
        product = await create_product(
            client,
            options=[{"name": "color", "values": ["red", "blue"]}],
            variants=[
                {"sku": "TEE-RED", "price": "10", "option_values": {"color": "red"}},
                {"sku": "TEE-BLUE", "price": "10", "option_values": {"color": "blue"}},
            ],
        )
        red, blue = (v["id"] for v in product["variants"])
        [image] = await upload_ok(client, product["id"], JPEG)
        assert image["variant_ids"] == []
        url = f"{API}/images/{image['id']}"

        r = await client.patch(url, json={"variant_ids": [red, blue, red]})
        assert r.status_code == 200, r.text
        assert r.json()["variant_ids"] == sorted([red, blue])
        r = await client.patch(url, json={"variant_ids": [blue]})
        assert r.json()["variant_ids"] == [blue]
        assert (await list_images(client, product["id"]))[0]["variant_ids"] == [blue]

        other = await create_product(client)
        r = await client.patch(url, json={"variant_ids": [other["variants"][0]["id"]]})
        assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "variant_ids", 0]

        # Deleting a variant detaches it.
        r = await client.delete(f"{API}/products/{product['id']}/variants/{blue}")
        assert r.status_code == 204, r.text
        assert (await list_images(client, product["id"]))[0]["variant_ids"] == []

        r = await client.patch(url, json={"variant_ids": [red]})
        assert r.json()["variant_ids"] == [red]
        r = await client.patch(url, json={"variant_ids": []})
        assert r.json()["variant_ids"] == []

    async def test_unknown_image_is_404(self, client: httpx.AsyncClient) -> None:
        url = f"{API}/images/0190b2c4-0000-7000-8000-000000000000"
        assert_problem(await client.patch(url, json={"alt_text": "x"}), 404)
        assert_problem(await client.delete(url), 404)
        assert_problem(await client.get(url), 404)


class TestDelete:
    async def test_deleting_removes_every_file_and_moves_the_primary(
        self, client: httpx.AsyncClient, storage: MediaStorage
    ) -> None:
        product = await create_product(client)
        a, b = await upload_ok(
            client,
            product["id"],
            ("a.jpg", images.jpeg(), "image/jpeg"),
            ("b.png", images.png(), "image/png"),
        )
        assert len(await storage.keys()) == 14
        r = await client.delete(f"{API}/images/{a['id']}")
        assert r.status_code == 204, r.text
        [left] = await list_images(client, product["id"])
        assert left["id"] == b["id"]
        assert left["is_primary"] is True
        assert left["position"] == 0
        assert len(await storage.keys()) == 7
        for item in a["renditions"]:
            assert (await fetch(client, item["url"])).status_code in (403, 404)
        detail = (await client.get(f"{API}/products/{product['id']}")).json()
        assert detail["thumbnail_url"] == rendition(left, "480", "webp")["url"]

        r = await client.delete(f"{API}/images/{b['id']}")
        assert r.status_code == 204, r.text
        assert await storage.keys() == []
        detail = (await client.get(f"{API}/products/{product['id']}")).json()
        assert detail["thumbnail_url"] is None
        assert_problem(await client.delete(f"{API}/images/{b['id']}"), 404)

    async def test_a_file_shared_with_another_image_stays(
        self, client: httpx.AsyncClient, storage: MediaStorage
    ) -> None:
        one = await create_product(client)
        two = await create_product(client)
        [a] = await upload_ok(client, one["id"], JPEG)
        [b] = await upload_ok(client, two["id"], JPEG)
        r = await client.delete(f"{API}/images/{a['id']}")
        assert r.status_code == 204
        assert len(await storage.keys()) == 7
        for item in b["renditions"]:
            assert (await fetch(client, item["url"])).status_code == 200
        r = await client.delete(f"{API}/images/{b['id']}")
        assert r.status_code == 204
        assert await storage.keys() == []


class TestProductIntegration:
    async def test_product_detail_carries_the_thumbnail(self, client: httpx.AsyncClient) -> None:
        product = await create_product(client)
        assert product["thumbnail_url"] is None
        [image] = await upload_ok(client, product["id"], JPEG)
        thumbnail = rendition(image, "480", "webp")["url"]
        detail = (await client.get(f"{API}/products/{product['id']}")).json()
        assert detail["thumbnail_url"] == thumbnail
        assert detail["version"] > product["version"]
        by_slug = (await client.get(f"{API}/products/by-slug/{product['slug']}")).json()
        assert by_slug["thumbnail_url"] == thumbnail
        page = (await client.get(f"{API}/products")).json()
        assert page["items"][0]["thumbnail_url"] == thumbnail

    async def test_soft_delete_keeps_the_images_and_purge_removes_them(
        self, client: httpx.AsyncClient, storage: MediaStorage
    ) -> None:
        product = await create_product(client)
        await upload_ok(client, product["id"], JPEG, ("b.png", images.png(), "image/png"))
        other = await create_product(client)
        await upload_ok(client, other["id"], ("c.webp", images.webp(), "image/webp"))
        assert len(await storage.keys()) == 21

        r = await client.delete(f"{API}/products/{product['id']}")
        assert r.status_code == 204
        assert_problem(await client.get(f"{API}/products/{product['id']}/images"), 404)
        assert len(await storage.keys()) == 21
        r = await client.post(f"{API}/products/{product['id']}/restore")
        assert r.status_code == 200, r.text
        assert len(await list_images(client, product["id"])) == 2
        assert r.json()["thumbnail_url"] is not None

        r = await client.delete(f"{API}/products/{product['id']}")
        assert r.status_code == 204
        r = await client.delete(f"{API}/products/{product['id']}", params={"purge": "true"})
        assert r.status_code == 204, r.text
        assert len(await storage.keys()) == 7
        assert_problem(await client.post(f"{API}/products/{product['id']}/restore"), 404)
        assert_problem(await client.delete(f"{API}/products/{product['id']}"), 404)
        assert len(await list_images(client, other["id"])) == 1

        r = await client.delete(f"{API}/products/{other['id']}", params={"purge": "true"})
        assert r.status_code == 204, r.text
        assert await storage.keys() == []

    async def test_only_the_owner_or_an_admin_purges(self, app: FastAPI) -> None:
        owner = await make_account(app, Role.seller)
        other = await make_account(app, Role.seller)
        async with (
            make_client(app, owner.headers) as owner_c,
            make_client(app, other.headers) as other_c,
        ):
            product = await create_product(owner_c)
            r = await other_c.delete(f"{API}/products/{product['id']}", params={"purge": "true"})
            assert_problem(r, 404)
            r = await owner_c.delete(f"{API}/products/{product['id']}", params={"purge": "true"})
            assert r.status_code == 204


class TestLocalFiles:
    async def test_served_with_immutable_cache_headers(
        self, client: httpx.AsyncClient, anon: httpx.AsyncClient, storage: MediaStorage
    ) -> None:
        product = await create_product(client)
        [image] = await upload_ok(client, product["id"], JPEG)
        item = rendition(image, "480", "webp")
        if not isinstance(storage, LocalMediaStorage):
            assert item["url"].startswith("http://127.0.0.1:")
            assert "/catalog-media-test/run-" in item["url"]
            r = await fetch(anon, item["url"])
            assert r.status_code == 200
            assert r.headers["content-type"] == "image/webp"
            assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert (
                await anon.get("/media/" + item["url"].split("/images/", 1)[1])
            ).status_code == 404
            return
        assert item["url"].startswith("/media/images/")
        r = await anon.get(item["url"])
        assert r.status_code == 200
        assert r.headers["content-type"] == "image/webp"
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert len(r.content) == item["bytes"]
        assert (await anon.head(item["url"])).status_code == 200

    @pytest.mark.parametrize(
        "path",
        [
            "/media/../catalog.db",
            "/media/images/../../catalog.db",
            "/media/%2e%2e/%2e%2e/etc/passwd",
            "/media/images/ab/" + "a" * 64 + ".webp",
            "/media/images/aa/" + "a" * 64 + ".webp",
            "/media/images/aa/" + "a" * 64 + ".html",
            "/media//etc/passwd",
            "/media/images",
        ],
    )
    async def test_nothing_else_is_served(self, anon: httpx.AsyncClient, path: str) -> None:
        r = await anon.get(path)
        assert r.status_code == 404
