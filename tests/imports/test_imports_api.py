"""Bulk import and export through the API, on both profiles."""

from __future__ import annotations

import asyncio
import codecs
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text, update

from catalog.app import create_app
from catalog.imports.formats import Format
from catalog.models import ImportJob, Product, ProductVariant, Role
from tests.conftest import Backend, make_account, make_client
from tests.factories import API, create_brand, create_category, create_product
from tests.imports.conftest import import_settings
from tests.imports.helpers import (
    HEADER,
    errors_of,
    export,
    parse_csv,
    run_import,
    to_csv,
    upload,
    wait_for,
)


def row(
    product_sku: str,
    sku: str,
    price: str = "10.00",
    stock: str = "1",
    *,
    name: str | None = None,
    currency: str = "USD",
    brand: str = "",
    category: str = "",
    status: str = "active",
    slug: str = "",
    description: str = "",
) -> list[str]:
    return [
        product_sku, f"Product {product_sku}" if name is None else name, slug, description,
        status, brand,
        category, currency, sku, price, stock,
    ]  # fmt: skip


async def count(app: FastAPI, model: Any) -> int:
    async with app.state.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def product_by_sku(client: httpx.AsyncClient, sku: str) -> dict[str, Any]:
    r = await client.get(f"{API}/products", params={"limit": 100})
    for item in r.json()["items"]:
        if item["sku"] == sku:
            full = await client.get(f"{API}/products/{item['id']}")
            data: dict[str, Any] = full.json()
            return data
    raise AssertionError(f"no product {sku}")


class TestRoundTrip:
    async def test_export_then_import_changes_nothing(self, client: httpx.AsyncClient) -> None:
        brand = await create_brand(client, name="Nordic Home", slug="nordic-home")
        root = await create_category(client, name="Furniture", slug="furniture")
        chairs = await create_category(client, name="Chairs", slug="chairs", parent_id=root["id"])
        await create_product(
            client,
            sku="CHAIR",
            name="Oak Chair",
            description='A "sturdy", comfortable chair,\nwith two lines',
            brand_id=brand["id"],
            category_id=chairs["id"],
            attributes={
                "material": "oak",
                "weight_kg": 7.5,
                "seats": 1,
                "stackable": True,
                "colors": ["red", "blue"],
                "code": "42",
                "note": "[draft]",
            },
            options=[
                {"name": "size", "values": ["S", "M", "L"]},
                {"name": "color", "values": ["red", "blue"]},
            ],
            variants=[
                {"sku": "CHAIR-S-RED", "price": "99.90", "stock": 3,
                 "option_values": {"size": "S", "color": "red"}},
                {"sku": "CHAIR-L-BLUE", "price": "109.00", "stock": 0,
                 "option_values": {"size": "L", "color": "blue"}},
            ],
        )  # fmt: skip
        await create_product(client, sku="YEN", name="Teapot", currency="JPY", price="1500")
        await create_product(client, sku="DRAFT", name="Draft lamp", status="draft")
        await create_product(
            client,
            sku="TEE",
            name="T-shirt",
            currency="BHD",
            options=[{"name": "color", "values": ['Blue, "navy"', "Red"]}],
            variants=[
                {"sku": "TEE-B", "price": "4.5", "option_values": {"color": 'Blue, "navy"'}},
                {"sku": "TEE-R", "price": "4.125", "option_values": {"color": "Red"}},
            ],
        )

        csv_body = await export(client, "csv")
        rows = parse_csv(csv_body)
        assert len(rows) == 6
        # Cells with separators or quotes are quoted; prices have the currency's decimals.
        assert b"TEE-B,4.500,0," in csv_body
        tee_b = next(line for line in csv_body.split(b"\n") if b",TEE-B," in line)
        assert tee_b.endswith(b',"Blue, ""navy""",')  # option:color, then option:size
        assert next(r for r in rows if r["sku"] == "TEE-B")["option:color"] == 'Blue, "navy"'
        chair = next(r for r in rows if r["sku"] == "CHAIR-S-RED")
        assert chair["product_sku"] == "CHAIR"
        assert chair["brand"] == "nordic-home"
        assert chair["category"] == "furniture/chairs"
        assert chair["price"] == "99.90"
        assert chair["option:size"] == "S"
        assert chair["attr:weight_kg"] == "7.5"
        assert chair["attr:code"] == '"42"'  # a string that would read as a number
        assert chair["attr:colors"] == '["red","blue"]'
        assert next(r for r in rows if r["sku"] == "YEN")["price"] == "1500"

        before = await client.get(f"{API}/products", params={"limit": 100})
        job = await run_import(client, csv_body)
        assert job["status"] == "succeeded", job
        assert job["counts"] == {"created": 0, "updated": 0, "unchanged": 6, "failed": 0}
        assert job["progress"] == {"rows_done": 6, "rows_total": 6, "percent": 100.0}
        after = await client.get(f"{API}/products", params={"limit": 100})
        assert after.json() == before.json()  # not even updated_at or version moved

        jsonl_body = await export(client, "jsonl")
        lines = [orjson.loads(line) for line in jsonl_body.splitlines()]
        assert {line["sku"] for line in lines} == {"CHAIR", "YEN", "DRAFT", "TEE"}
        tee = next(line for line in lines if line["sku"] == "TEE")
        assert [v["price"] for v in tee["variants"]] == ["4.500", "4.125"]
        job = await run_import(client, jsonl_body, "products.jsonl")
        assert job["format"] == "jsonl"
        assert job["counts"] == {"created": 0, "updated": 0, "unchanged": 4, "failed": 0}

    async def test_import_creates_then_updates(self, client: httpx.AsyncClient) -> None:
        body = to_csv(
            [row("P1", "P1-A", "10.00", "2"), row("P1", "P1-B", "12.50", "3"),
             row("P2", "P2", "5", "0", name="Desk lamp")],
            header=[*HEADER, "option:size"],
        )  # fmt: skip
        rows = body.decode().splitlines()
        body = "\n".join([rows[0], rows[1] + ",S", rows[2] + ",M", rows[3] + ","]).encode()
        job = await run_import(client, body)
        assert job["counts"] == {"created": 3, "updated": 0, "unchanged": 0, "failed": 0}
        p1 = await product_by_sku(client, "P1")
        assert p1["options"] == [{"name": "size", "values": ["S", "M"]}]
        assert (p1["price_min"], p1["price_max"]) == ("10.00", "12.50")
        assert p1["total_stock"] == 5
        assert p1["slug"] == "product-p1"
        assert p1["status"] == "active"

        # A file of only some columns changes only those fields.
        partial = to_csv(
            [["P1", "P1-B", "11.00", "7"]], header=["product_sku", "sku", "price", "stock"]
        )
        job = await run_import(client, partial)
        assert job["counts"] == {"created": 0, "updated": 1, "unchanged": 0, "failed": 0}
        p1_after = await product_by_sku(client, "P1")
        assert p1_after["price_max"] == "11.00"
        assert p1_after["total_stock"] == 9
        assert p1_after["name"] == p1["name"]
        assert p1_after["version"] == p1["version"] + 1
        assert [v["sku"] for v in p1_after["variants"]] == ["P1-A", "P1-B"]

    async def test_jsonl_rows_and_errors(self, client: httpx.AsyncClient) -> None:
        good = {
            "sku": "J1", "name": "Kettle", "currency": "EUR", "status": "active",
            "attributes": {"litres": 1.7},
            "variants": [{"sku": "J1", "price": "29.99", "stock": 4}],
        }  # fmt: skip
        lines = [
            orjson.dumps(good),
            b"{not json",
            orjson.dumps({"sku": "J2", "name": "No variants", "currency": "EUR"}),
            orjson.dumps({**good, "sku": "J3", "variants": [{"sku": "J3", "price": "-1"}]}),
        ]
        job = await run_import(client, b"\n".join(lines) + b"\n", "catalog.ndjson")
        assert job["format"] == "jsonl"
        assert job["counts"] == {"created": 1, "updated": 0, "unchanged": 0, "failed": 3}
        errors = {e["error_row"]: e for e in await errors_of(client, job["id"])}
        assert set(errors) == {"2", "3", "4"}
        assert "Not valid JSON" in errors["2"]["error_message"]
        assert errors["2"]["line"] == "{not json"
        assert errors["3"]["error_field"] == "variants"
        assert errors["4"]["error_field"] == "price"
        assert (await product_by_sku(client, "J1"))["attributes"] == {"litres": 1.7}


class TestBadRows:
    async def test_each_kind_of_bad_row_fails_with_its_reason(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        await create_category(client, name="Garden", slug="garden")
        rows = [
            row("OK1", "OK1", category="garden"),  # 2
            row("NOSKU", ""),  # 3
            row("BADPRICE", "BADPRICE", "abc"),  # 4
            row("DECIMALS", "DECIMALS", "1.005"),  # 5
            row("CUR", "CUR", currency="XYZ"),  # 6
            row("NEG", "NEG", stock="-3"),  # 7
            row("CAT", "CAT", category="garden/tools"),  # 8
            row("BRAND", "BRAND", brand="nobody"),  # 9
            row("DUP1", "OK1"),  # 10: SKU of row 2
            row("OK2", "OK2"),  # 11
            [*row("RAGGED", "RAGGED"), "extra"],  # 12
            row("", "ORPHAN"),  # 13
            row("NONAME", "NONAME", name=""),  # 14
        ]
        body = to_csv(rows)
        # A missing name: the cell is empty and the product does not exist yet.
        job = await run_import(client, body)
        assert job["status"] == "succeeded"
        assert job["counts"] == {"created": 2, "updated": 0, "unchanged": 0, "failed": 11}
        errors = {e["error_row"]: e for e in await errors_of(client, job["id"])}
        expected = {
            "3": ("sku", "required"),
            "4": ("price", "decimal"),
            "5": ("price", "more decimals than USD allows"),
            "6": ("currency", "ISO 4217"),
            "7": ("stock", "greater than or equal to 0"),
            "8": ("category", "Unknown category 'garden/tools'"),
            "9": ("brand", "Unknown brand 'nobody'"),
            "10": ("sku", "already appears at row 2"),
            "12": ("", "12 cells but the header has 11 columns"),
            "13": ("product_sku", "required"),
            "14": ("name", "Field required"),
        }
        assert set(errors) == set(expected)
        for number, (field, message) in expected.items():
            assert errors[number]["error_field"] == field, errors[number]
            assert message in errors[number]["error_message"], errors[number]
        # The original row follows, ready to be corrected and uploaded again.
        assert errors["4"]["product_sku"] == "BADPRICE"
        assert errors["4"]["price"] == "abc"
        assert await count(app, Product) == 2

        # The corrected errors file imports as it is (its error_* columns are ignored).
        r = await client.get(f"{API}/imports/{job['id']}/errors")
        fixed = r.content.replace(b"BADPRICE,abc", b"BADPRICE,1.50")
        fixed = fixed.replace(b",abc,", b",1.50,")
        again = await run_import(client, fixed)
        assert again["counts"]["created"] == 1  # BADPRICE; the others still fail
        assert again["counts"]["failed"] == 10

    async def test_a_bad_variant_fails_its_whole_product(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        body = to_csv(
            [row("MULTI", "MULTI-1"), row("MULTI", "MULTI-2", "oops"), row("SOLO", "SOLO")],
            header=HEADER,
        )
        job = await run_import(client, body)
        assert job["counts"] == {"created": 1, "updated": 0, "unchanged": 0, "failed": 2}
        errors = {e["error_row"]: e for e in await errors_of(client, job["id"])}
        assert "row 3 of product MULTI has errors" in errors["2"]["error_message"]
        # Two variants of one product without options cannot be told apart either.
        body = to_csv([row("TWIN", "TWIN-1"), row("TWIN", "TWIN-2")])
        job = await run_import(client, body)
        assert job["counts"]["failed"] == 2
        assert await count(app, Product) == 1

    async def test_conflicting_product_columns_and_scattered_rows(
        self, client: httpx.AsyncClient
    ) -> None:
        body = to_csv(
            [
                row("A", "A-1", name="Same"),
                row("A", "A-2", name="Different"),
                row("B", "B"),
                row("A", "A-3", name="Same"),
            ]
        )
        job = await run_import(client, body)
        assert job["counts"]["failed"] == 3
        errors = {e["error_row"]: e["error_message"] for e in await errors_of(client, job["id"])}
        assert "differs from row 2" in errors["3"]
        assert "must be adjacent" in errors["5"]

    async def test_byte_order_mark_and_utf16_are_read(self, client: httpx.AsyncClient) -> None:
        text = to_csv([row("BOM", "BOM", name="Café crème")]).decode()
        job = await run_import(client, codecs.BOM_UTF8 + text.encode())
        assert job["counts"]["created"] == 1, await errors_of(client, job["id"])
        assert (await product_by_sku(client, "BOM"))["name"] == "Café crème"
        text16 = to_csv([row("U16", "U16", name="Thé vert")]).decode().encode("utf-16")
        job = await run_import(client, text16)
        assert job["counts"]["created"] == 1

    async def test_wrong_encoding_fails_the_file_cleanly(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        latin1 = to_csv([row("L1", "L1"), row("L2", "L2", name="Crème brûlée")]).decode()
        job = await run_import(client, latin1.encode("latin-1"))
        assert job["status"] == "failed"
        assert "not valid UTF-8" in job["error"]
        assert await count(app, Product) == 0  # nothing imported, not even the first row

    async def test_bad_headers_fail_the_file(self, client: httpx.AsyncClient) -> None:
        job = await run_import(client, b"product_sku,sku,prce\nA,A,1\n")
        assert job["status"] == "failed"
        assert "Unknown column(s): 'prce'" in job["error"]
        job = await run_import(client, b"product_sku,sku\nA,A\n")
        assert "Missing required column(s): price" in job["error"]

    async def test_empty_upload_is_refused(self, client: httpx.AsyncClient) -> None:
        r = await upload(client, b"")
        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"


class TestOptions:
    async def test_dry_run_writes_nothing(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        await create_product(client, sku="KEEP", name="Keep", price="3.00")
        body = to_csv(
            [row("KEEP", "KEEP", "4.00", name="Keep"), row("NEW", "NEW", brand="made-up")]
        )
        job = await run_import(client, body, dry_run=True, create_missing=True)
        assert job["dry_run"] is True
        assert job["counts"] == {"created": 1, "updated": 1, "unchanged": 0, "failed": 0}
        assert await count(app, Product) == 1
        assert (await product_by_sku(client, "KEEP"))["price_min"] == "3.00"
        r = await client.get(f"{API}/brands")
        assert r.json()["items"] == []

    async def test_create_missing_brands_and_categories(self, client: httpx.AsyncClient) -> None:
        body = to_csv(
            [
                row("C1", "C1", brand="blue-sky", category="outdoor/tents/dome"),
                row("C2", "C2", brand="blue-sky", category="outdoor/tents"),
            ]
        )
        job = await run_import(client, body, create_missing=True)
        assert job["counts"]["created"] == 2, await errors_of(client, job["id"])
        brands = (await client.get(f"{API}/brands")).json()["items"]
        assert [(b["name"], b["slug"]) for b in brands] == [("Blue Sky", "blue-sky")]
        tree = (await client.get(f"{API}/categories/tree")).json()
        assert tree[0]["path"] == "outdoor"
        assert tree[0]["children"][0]["children"][0]["path"] == "outdoor/tents/dome"
        c1 = await product_by_sku(client, "C1")
        assert c1["brand"]["slug"] == "blue-sky"
        assert c1["category"]["slug"] == "dome"

    async def test_too_large_upload_is_refused_without_being_stored(
        self, backend: Backend, tmp_path: Path
    ) -> None:
        settings = import_settings(backend, tmp_path, import_max_bytes=4096)
        application = create_app(settings)
        async with application.router.lifespan_context(application):
            admin = await make_account(application, Role.admin)
            async with make_client(application, admin.headers) as client:
                big = to_csv([row(f"S{i}", f"S{i}") for i in range(400)])
                assert len(big) > 4096 + 64 * 1024 or len(big) > 4096
                r = await upload(client, big)
                assert r.status_code == 413, r.text
                assert r.headers["content-type"] == "application/problem+json"
                assert "4096" in r.json()["detail"]
                # Far over the limit: refused by the declared length, before reading the body.
                huge = b"x" * (4096 + 70 * 1024)
                r = await upload(client, huge)
                assert r.status_code == 413
                assert await count(application, ImportJob) == 0
                directory = settings.import_dir
                assert not directory.exists() or list(directory.iterdir()) == []
                small = await upload(client, to_csv([row("S", "S")]))
                assert small.status_code == 202
                await wait_for(client, small.json()["id"])
            await _cleanup(application)


async def _cleanup(application: FastAPI) -> None:
    from tests.conftest import _flush_redis, _truncate

    await _truncate(application.state.engine)
    await _flush_redis(application.state.settings)


class TestPermissions:
    async def test_sellers_own_their_rows(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        alice = await make_account(app, Role.seller)
        bob = await make_account(app, Role.seller)
        async with make_client(app, alice.headers) as a, make_client(app, bob.headers) as b:
            job_a = await run_import(a, to_csv([row("ALICE", "ALICE")]))
            assert job_a["counts"]["created"] == 1
            job_b = await run_import(
                b,
                to_csv([row("ALICE", "ALICE", "1.00"), row("BOB", "BOB")]),
            )
            assert job_b["counts"] == {"created": 1, "updated": 0, "unchanged": 0, "failed": 1}
            errors = await errors_of(b, job_b["id"])
            assert "belongs to another seller" in errors[0]["error_message"]
            # A variant SKU of someone else's product cannot be moved into one's own product.
            job_b2 = await run_import(b, to_csv([row("BOB2", "ALICE")]))
            assert (
                "variant of another product"
                in (await errors_of(b, job_b2["id"]))[0]["error_message"]
            )

            # Jobs are private to their owner (and administrators).
            assert (await b.get(f"{API}/imports/{job_a['id']}")).status_code == 404
            assert (await b.get(f"{API}/imports/{job_a['id']}/errors")).status_code == 404
            assert (await b.post(f"{API}/imports/{job_a['id']}/cancel")).status_code == 404
            assert (await client.get(f"{API}/imports/{job_a['id']}")).status_code == 200
            listed = (await b.get(f"{API}/imports")).json()
            assert {j["id"] for j in listed} == {job_b["id"], job_b2["id"]}

            # Sellers export their own products.
            rows_b = parse_csv(await export(b))
            assert [r["product_sku"] for r in rows_b] == ["BOB"]
        owners = await client.get(f"{API}/products", params={"limit": 10})
        by_sku = {p["sku"]: p["owner_id"] for p in owners.json()["items"]}
        assert by_sku == {"ALICE": str(alice.id), "BOB": str(bob.id)}

    async def test_buyers_and_anonymous_callers_are_refused(
        self, app: FastAPI, anon: httpx.AsyncClient
    ) -> None:
        buyer = await make_account(app, Role.buyer)
        async with make_client(app, buyer.headers) as c:
            r = await upload(c, to_csv([row("X", "X")]))
            assert r.status_code == 403
            assert r.headers["content-type"] == "application/problem+json"
            assert (await c.get(f"{API}/exports/products")).status_code == 403
        r = await upload(anon, to_csv([row("X", "X")]))
        assert r.status_code == 401
        assert (await anon.get(f"{API}/exports/products")).status_code == 401
        assert (
            await anon.get(f"{API}/imports/{'0' * 8}-0000-0000-0000-{'0' * 12}")
        ).status_code == 401
        assert await count(app, ImportJob) == 0


class TestConsistency:
    async def test_search_and_cached_reads_see_the_import(
        self, app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
    ) -> None:
        await create_product(client, sku="OLD", name="Plain mug", price="4.00")
        listing = await anon.get(f"{API}/products")
        assert [p["name"] for p in listing.json()["items"]] == ["Plain mug"]
        product_id = listing.json()["items"][0]["id"]
        assert (await anon.get(f"{API}/products/{product_id}")).json()["name"] == "Plain mug"

        body = to_csv(
            [
                row("OLD", "OLD", "4.00", "1", name="Speckled stoneware mug"),
                row("NEW", "NEW", "9.00", "1", name="Walnut serving board"),
            ]
        )
        job = await run_import(client, body)
        assert job["counts"] == {"created": 1, "updated": 1, "unchanged": 0, "failed": 0}

        listing = await anon.get(f"{API}/products")
        assert sorted(p["name"] for p in listing.json()["items"]) == [
            "Speckled stoneware mug",
            "Walnut serving board",
        ]
        detail = await anon.get(f"{API}/products/{product_id}")
        assert detail.json()["name"] == "Speckled stoneware mug"
        for query, expected in (("stoneware", "OLD"), ("walnut", "NEW"), ("board", "NEW")):
            r = await anon.get(f"{API}/search", params={"q": query})
            assert r.status_code == 200, r.text
            assert [p["sku"] for p in r.json()["items"]] == [expected], (query, r.json())
        r = await anon.get(f"{API}/search", params={"q": "plain"})
        assert r.json()["items"] == []
        assert await count(app, ProductVariant) == 2
        if app.state.engine.dialect.name == "postgresql":
            # The vocabulary of spelling suggestions has the words of the inserted product's
            # name (kept once per statement) and of the renamed one's (row by row).
            async with app.state.engine.connect() as conn:
                terms = set(
                    (await conn.execute(text("SELECT term FROM search_term"))).scalars().all()
                )
            assert {"speckled", "stoneware", "walnut", "serving", "board"} <= terms


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
async def test_export_filters(client: httpx.AsyncClient, fmt: str) -> None:
    brand = await create_brand(client)
    await create_product(client, sku="F1", name="Filtered one", brand_id=brand["id"])
    await create_product(client, sku="F2", name="Other", price="500.00")
    r = await client.get(f"{API}/exports/products", params={"format": fmt, "brand_id": brand["id"]})
    assert r.status_code == 200
    assert r.headers["content-disposition"] == f'attachment; filename="products.{fmt}"'
    assert b"F1" in r.content
    assert b"F2" not in r.content
    r = await client.get(f"{API}/exports/products", params={"format": fmt, "price_min": "100"})
    assert b"F2" in r.content
    assert b"F1" not in r.content
    r = await client.get(f"{API}/exports/products", params={"format": "xml"})
    assert r.status_code == 422


async def test_a_batch_the_database_refuses_is_written_product_by_product(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL writes a batch with COPY; when the database refuses it (a row written by
    someone else meanwhile, say), each product is written on its own with an upsert."""
    if app.state.engine.dialect.name != "postgresql":
        pytest.skip("COPY is the PostgreSQL path")
    from asyncpg.exceptions import UniqueViolationError

    from catalog.imports import service

    attempts: list[int] = []
    copy_plans = service._copy_plans

    async def refused_once(conn: Any, plans: list[service.Plan]) -> set[str]:
        attempts.append(len(plans))
        if len(attempts) == 1:
            raise UniqueViolationError("duplicate key value violates unique constraint")
        return await copy_plans(conn, plans)

    monkeypatch.setattr(service, "_copy_plans", refused_once)
    job = await run_import(client, to_csv([row("FB1", "FB1"), row("FB2", "FB2", "3.50")]))
    assert job["counts"] == {"created": 2, "updated": 0, "unchanged": 0, "failed": 0}
    assert attempts == [2]  # one refused COPY, then the products one by one
    assert await count(app, Product) == 2
    assert (await product_by_sku(client, "FB2"))["price_min"] == "3.50"


# Attribute values whose cells the export must write so that they read back as themselves.
TRICKY_ATTRIBUTES: dict[str, Any] = {
    "plain": "oak",
    "number_like": "42",
    "bracketed": "[draft]",
    "percent": "100% cotton",
    "pack": "2-pack",
    "spaced_number": "12 ",
    "dash": "-",
    "word_true": "true",
    "quoted": '"q"',
    "commas": 'x, "y"',
    "lines": "two\nlines",
    "unicode": "héllo wörld",
    "leading_space": " 12",
    "exponent": "1e5",
    "int": 7,
    "float": 7.5,
    "bool": False,
    "list": ["red", "2", 'a, "b"'],
    "empty_list": [],
}


async def test_export_cells_read_back_as_their_values(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Each attribute's cell is `format_attribute` of its value (on PostgreSQL the database
    writes it, on SQLite Python does) and a price with more decimals than its currency
    allows is rounded half to even, as `format_money` does."""
    from catalog.imports.formats import format_attribute
    from catalog.kit.money import format_money

    await create_product(
        client, sku="ATTRS", name="Attribute sampler", attributes=TRICKY_ATTRIBUTES
    )
    await create_product(
        client,
        sku="YEN",
        name="Yen prices",
        currency="JPY",
        options=[{"name": "size", "values": [str(n) for n in range(1, 6)]}],
        variants=[
            {"sku": f"YEN-{n}", "price": str(n), "stock": 1, "option_values": {"size": str(n)}}
            for n in range(1, 6)
        ],
    )
    # Prices stored with more decimals than the currency has (written before a currency
    # change, say): 0.5, 1.5, 2.5, 3.5 and 4.51 yen.
    prices = {"YEN-1": "0.5", "YEN-2": "1.5", "YEN-3": "2.5", "YEN-4": "3.5", "YEN-5": "4.51"}
    async with app.state.engine.begin() as conn:
        for sku, price in prices.items():
            await conn.execute(
                update(ProductVariant).where(ProductVariant.sku == sku).values(price=Decimal(price))
            )
    rows = {r["sku"]: r for r in parse_csv(await export(client, "csv"))}
    sampler = rows["ATTRS"]
    stored = (await product_by_sku(client, "ATTRS"))["attributes"]  # as the API kept them
    assert set(stored) == set(TRICKY_ATTRIBUTES)
    for key, value in stored.items():
        assert sampler[f"attr:{key}"] == format_attribute(value), key
    assert sampler["description"] == ""
    assert sampler["brand"] == ""
    for sku, price in prices.items():
        assert rows[sku]["price"] == format_money(Decimal(price), "JPY"), sku
    assert [rows[f"YEN-{n}"]["price"] for n in range(1, 6)] == ["0", "2", "2", "4", "5"]

    # The export of the sampler reads back unchanged.
    job = await run_import(client, to_csv([list(sampler.values())], header=list(sampler)))
    assert job["counts"] == {"created": 0, "updated": 0, "unchanged": 1, "failed": 0}, job


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
async def test_an_export_stopped_midway_hands_its_connection_back(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, fmt: Format
) -> None:
    """A download the client stops after its first chunk ends the export's statement (the COPY
    on PostgreSQL) and returns its connection, usable by the next export."""
    from catalog.imports import service
    from catalog.products.service import ProductFilters

    # Small chunks and a queue of one: the export is stopped while the COPY waits for room.
    monkeypatch.setattr(service, "COPY_CHUNK", 64)
    monkeypatch.setattr(service, "COPY_QUEUE", 1)
    monkeypatch.setattr(service, "EXPORT_BATCH", 2)
    for n in range(12):
        await create_product(
            client, sku=f"STOP{n:02}", name=f"Stopped export {n}", description="word " * 2000
        )
    engine = app.state.engine
    chunks = service.export_products(engine, fmt, ProductFilters())
    first = await anext(chunks)
    assert first
    await chunks.aclose()
    await pool_idle(engine)

    counter = [0, 0]
    whole = b"".join(
        [c async for c in service.export_products(engine, fmt, ProductFilters(), counter=counter)]
    )
    assert counter == [12, 12]
    assert all(f"STOP{n:02}".encode() in whole for n in range(12))
    await pool_idle(engine)


async def pool_idle(engine: Any) -> None:
    """No connection of `engine` stays checked out (the app's background writers take one
    now and then, briefly)."""
    for _ in range(100):
        if engine.pool.checkedout() == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{engine.pool.checkedout()} connection(s) still checked out")
