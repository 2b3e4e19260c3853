"""Import workers: claiming, leases, a killed worker's job resumed, cancellation."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from catalog.app import create_app
from catalog.imports.service import ImportRun
from catalog.imports.worker import ImportWorker
from catalog.models import ImportJob, Product, ProductVariant
from tests.conftest import Backend, _flush_redis, _truncate
from tests.factories import API
from tests.imports.conftest import import_settings
from tests.imports.helpers import HEADER, to_csv, upload, wait_for

PRODUCTS = 12


def catalog_file() -> bytes:
    """12 products of 2 variants each (batches of 4 rows: 6 transactions)."""
    rows = []
    for i in range(PRODUCTS):
        for size in ("S", "M"):
            rows.append(
                [f"W{i:02d}", f"Worker product {i}", "", "", "active", "", "", "USD",
                 f"W{i:02d}-{size}", "10.00", "1", size]
            )  # fmt: skip
    return to_csv(rows, header=[*HEADER, "option:size"])


@pytest.fixture
async def app(backend: Backend, tmp_path: Path) -> AsyncIterator[FastAPI]:
    """No worker in the API process: the tests drive the workers themselves."""
    application = create_app(import_settings(backend, tmp_path, import_in_process=False))
    async with application.router.lifespan_context(application):
        try:
            yield application
        finally:
            await _truncate(application.state.engine)
            await _flush_redis(backend.settings)


def worker(app: FastAPI, name: str) -> ImportWorker:
    return ImportWorker(app.state.settings, app.state.engine, app.state.cache, name=name)


async def counts(app: FastAPI) -> tuple[int, int]:
    async with app.state.sessionmaker() as session:
        products = (await session.execute(select(func.count()).select_from(Product))).scalar()
        variants = (
            await session.execute(select(func.count()).select_from(ProductVariant))
        ).scalar()
    return int(products or 0), int(variants or 0)


async def expire_lease(app: FastAPI, job_id: str) -> None:
    async with app.state.sessionmaker() as session:
        await session.execute(
            update(ImportJob)
            .where(ImportJob.id == uuid.UUID(job_id))
            .values(lease_expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
        await session.commit()


async def test_queued_jobs_wait_for_a_worker(app: FastAPI, client: httpx.AsyncClient) -> None:
    r = await upload(client, catalog_file())
    assert r.status_code == 202
    job = (await client.get(f"{API}/imports/{r.json()['id']}")).json()
    assert job["status"] == "queued"
    assert job["progress"]["rows_total"] is None
    assert await worker(app, "w1").run_once() is True
    job = await wait_for(client, job["id"])
    assert job["status"] == "succeeded"
    assert job["counts"]["created"] == 2 * PRODUCTS
    assert job["attempts"] == 1
    assert job["elapsed_seconds"] is not None
    assert await worker(app, "w1").run_once() is False  # nothing left


async def test_two_workers_never_take_the_same_job(app: FastAPI, client: httpx.AsyncClient) -> None:
    first = (await upload(client, catalog_file())).json()["id"]
    second = (
        await upload(client, to_csv([["Z", "Zed", "", "", "", "", "", "USD", "Z", "1", "1"]]))
    ).json()["id"]
    a, b = worker(app, "a"), worker(app, "b")
    claimed = await asyncio.gather(a.claim(), b.claim())
    assert {str(c) for c in claimed} == {first, second}
    assert await worker(app, "c").claim() is None  # both leased


async def test_a_killed_workers_job_is_resumed(app: FastAPI, client: httpx.AsyncClient) -> None:
    job_id = (await upload(client, catalog_file())).json()["id"]
    dying = worker(app, "dying")
    assert str(await dying.claim()) == job_id

    # The worker dies in the middle of the file: after two committed batches, its process is
    # gone (the task is cancelled mid-flight, no clean-up runs, the lease stays).
    batches: list[int] = []
    committed = asyncio.Event()

    def progress(job: ImportJob) -> None:
        batches.append(job.rows_done)
        if job.rows_done >= 8:
            committed.set()

    run = ImportRun(
        app.state.settings, app.state.engine, None, uuid.UUID(job_id), "dying",
        on_progress=progress,
    )  # fmt: skip
    task = asyncio.create_task(run.execute())
    await asyncio.wait_for(committed.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    job = (await client.get(f"{API}/imports/{job_id}")).json()
    assert job["status"] == "running"
    done = job["progress"]["rows_done"]
    assert 8 <= done < 2 * PRODUCTS
    products, variants = await counts(app)
    assert variants == job["counts"]["created"] == done  # committed batches only, whole products
    assert products * 2 == variants

    # While the lease runs, nobody else takes the job.
    rescuer = worker(app, "rescuer")
    assert await rescuer.claim() is None
    await expire_lease(app, job_id)
    assert await rescuer.run_once() is True
    job = await wait_for(client, job_id)
    assert job["status"] == "succeeded"
    assert job["attempts"] == 2
    assert job["counts"] == {"created": 2 * PRODUCTS, "updated": 0, "unchanged": 0, "failed": 0}
    assert job["progress"]["rows_done"] == 2 * PRODUCTS
    assert await counts(app) == (PRODUCTS, 2 * PRODUCTS)


async def test_a_job_that_keeps_killing_workers_is_failed(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    job_id = (await upload(client, catalog_file())).json()["id"]
    attempts = app.state.settings.import_max_attempts
    for n in range(attempts):
        assert str(await worker(app, f"w{n}").claim()) == job_id
        await expire_lease(app, job_id)
    assert await worker(app, "last").claim() is None
    job = (await client.get(f"{API}/imports/{job_id}")).json()
    assert job["status"] == "failed"
    assert f"stopped {attempts} times" in job["error"]


async def test_a_worker_that_lost_its_lease_stops(app: FastAPI, client: httpx.AsyncClient) -> None:
    job_id = (await upload(client, catalog_file())).json()["id"]
    assert str(await worker(app, "slow").claim()) == job_id
    await expire_lease(app, job_id)
    assert str(await worker(app, "fast").claim()) == job_id  # took over
    run = ImportRun(app.state.settings, app.state.engine, None, uuid.UUID(job_id), "slow")
    assert await run.execute() == "lease-lost"
    assert await counts(app) == (0, 0)  # the slow worker wrote nothing


async def test_cancel_a_queued_job(app: FastAPI, client: httpx.AsyncClient) -> None:
    job_id = (await upload(client, catalog_file())).json()["id"]
    r = await client.post(f"{API}/imports/{job_id}/cancel")
    assert r.status_code == 202
    assert r.json()["status"] == "cancelled"
    assert await worker(app, "w").run_once() is False
    assert await counts(app) == (0, 0)
    r = await client.post(f"{API}/imports/{job_id}/cancel")
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"


async def test_cancel_a_running_job_between_batches(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    job_id = (await upload(client, catalog_file())).json()["id"]
    assert str(await worker(app, "w").claim()) == job_id
    first_batch = asyncio.Event()

    def progress(job: ImportJob) -> None:
        if job.rows_done > 0:
            first_batch.set()

    run = ImportRun(
        app.state.settings, app.state.engine, None, uuid.UUID(job_id), "w", on_progress=progress
    )
    task = asyncio.create_task(run.execute())
    await asyncio.wait_for(first_batch.wait(), 30)
    r = await client.post(f"{API}/imports/{job_id}/cancel")
    assert r.status_code == 202
    assert r.json()["cancel_requested"] is True
    assert await task == "cancelled"
    job = (await client.get(f"{API}/imports/{job_id}")).json()
    assert job["status"] == "cancelled"
    assert 0 < job["progress"]["rows_done"] < 2 * PRODUCTS
    products, variants = await counts(app)
    assert variants == job["counts"]["created"] == job["progress"]["rows_done"]
    assert products * 2 == variants


async def test_a_stopping_worker_hands_its_job_back(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    job_id = (await upload(client, catalog_file())).json()["id"]
    leaving = worker(app, "leaving")
    assert str(await leaving.claim()) == job_id
    leaving.stop.set()  # shutdown requested: finish the current batch, then release
    run = ImportRun(
        app.state.settings, app.state.engine, None, uuid.UUID(job_id), "leaving",
        stop=leaving.stop,
    )  # fmt: skip
    assert await run.execute() == "released"
    job = (await client.get(f"{API}/imports/{job_id}")).json()
    assert job["status"] == "queued"
    assert job["progress"]["rows_done"] == 4
    assert await worker(app, "next").run_once() is True
    job = await wait_for(client, job_id)
    assert job["status"] == "succeeded"
    assert job["attempts"] == 1
    assert await counts(app) == (PRODUCTS, 2 * PRODUCTS)


def overlapping_file(first: int, last: int, label: str, price: str, *, reverse: bool) -> bytes:
    """Products W<first>..W<last> of 2 variants each, named and priced after `label`."""
    numbers = range(first, last + 1)
    rows = [
        [f"W{i:02d}", f"{label} product {i}", "", "", "active", "", "", "USD",
         f"W{i:02d}-{size}", price, stock, size]
        for i in (reversed(numbers) if reverse else numbers)
        for size, stock in (("S", "3"), ("M", "4"))
    ]  # fmt: skip
    return to_csv(rows, header=[*HEADER, "option:size"])


async def test_concurrent_imports_of_overlapping_skus_end_consistent(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient, backend: Backend
) -> None:
    """Two workers import two files at once that share half their SKUs, one in the reverse
    order of the other (their batches lock the shared rows in opposite orders): both jobs
    succeed, every SKU exists once, each shared product is wholly one file's version (name,
    prices and stock of the same file, aggregates matching its variants), and the search index
    and the cache agree with the database."""
    if backend.profile != "production":
        pytest.skip("the embedded profile runs one import at a time (one in-process worker)")
    first = await upload(client, overlapping_file(0, 19, "Alpha", "10.00", reverse=False))
    second = await upload(client, overlapping_file(10, 29, "Beta", "20.00", reverse=True))
    ids = [first.json()["id"], second.json()["id"]]
    # Cached reads of the catalog before: the imports must invalidate them.
    for _ in range(2):
        assert (await anon.get(f"{API}/products", params={"limit": 100})).json()["items"] == []
        r = await anon.get(f"{API}/search", params={"q": "beta"})
        assert r.json()["total"] == 0

    await asyncio.gather(worker(app, "a").run_once(), worker(app, "b").run_once())
    jobs = [await wait_for(client, job_id) for job_id in ids]
    assert [j["status"] for j in jobs] == ["succeeded", "succeeded"], jobs
    assert [j["counts"]["failed"] for j in jobs] == [0, 0]
    # 60 distinct variant SKUs, each created by exactly one of the jobs; the shared ones were
    # updated (or found unchanged) by the other.
    assert sum(j["counts"]["created"] for j in jobs) == 60
    assert sum(j["counts"]["created"] + j["counts"]["updated"] + j["counts"]["unchanged"]
               for j in jobs) == 80  # fmt: skip
    assert await counts(app) == (30, 60)

    async with app.state.sessionmaker() as session:
        products = (await session.execute(select(Product))).scalars().all()
        variants = (await session.execute(select(ProductVariant))).scalars().all()
    by_product: dict[uuid.UUID, list[ProductVariant]] = {}
    for v in variants:
        by_product.setdefault(v.product_id, []).append(v)
    for product in products:
        own = by_product[product.id]
        assert sorted(v.sku for v in own) == [f"{product.sku}-M", f"{product.sku}-S"]
        n = int(product.sku[1:])
        label = product.name.split()[0]
        assert label in ({"Alpha"} if n < 10 else {"Beta"} if n > 19 else {"Alpha", "Beta"})
        price = {"Alpha": Decimal("10.00"), "Beta": Decimal("20.00")}[label]
        assert {v.price for v in own} == {price}, (product.sku, label)
        assert product.total_stock == sum(v.stock for v in own) == 7
        assert product.price_min == product.price_max == price

    # Search and the (previously cached) list see the final state.
    r = await anon.get(f"{API}/search", params={"q": "beta", "page_size": 100})
    assert r.status_code == 200, r.text
    beta = {p.sku for p in products if p.name.startswith("Beta")}
    assert {item["sku"] for item in r.json()["items"]} == beta
    assert r.json()["total"] == len(beta)
    listed = (await anon.get(f"{API}/products", params={"limit": 100})).json()["items"]
    assert {(p["sku"], p["name"]) for p in listed} == {(p.sku, p.name) for p in products}
