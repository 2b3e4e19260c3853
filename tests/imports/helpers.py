"""Uploading files and waiting for their import jobs."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

import httpx

from tests.factories import API

FINISHED = ("succeeded", "failed", "cancelled")
HEADER = [
    "product_sku", "name", "slug", "description", "status", "brand", "category", "currency",
    "sku", "price", "stock",
]  # fmt: skip


def to_csv(rows: list[list[Any]], header: list[str] | None = None) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header or HEADER)
    writer.writerows(rows)
    return out.getvalue().encode()


def parse_csv(body: bytes | str) -> list[dict[str, str]]:
    text = body.decode() if isinstance(body, bytes) else body
    return list(csv.DictReader(io.StringIO(text)))


async def upload(
    client: httpx.AsyncClient,
    content: bytes,
    filename: str = "products.csv",
    **form: Any,
) -> httpx.Response:
    data = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in form.items()}
    return await client.post(
        f"{API}/imports", files={"file": (filename, content, "text/csv")}, data=data
    )


async def wait_for(client: httpx.AsyncClient, job_id: str, limit_s: float = 30.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + limit_s
    while True:
        r = await client.get(f"{API}/imports/{job_id}")
        assert r.status_code == 200, r.text
        job: dict[str, Any] = r.json()
        if job["status"] in FINISHED:
            return job
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"import {job_id} did not finish: {job}")
        await asyncio.sleep(0.02)


async def run_import(
    client: httpx.AsyncClient, content: bytes, filename: str = "products.csv", **form: Any
) -> dict[str, Any]:
    r = await upload(client, content, filename, **form)
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"{API}/imports/{r.json()['id']}"
    return await wait_for(client, r.json()["id"])


async def errors_of(client: httpx.AsyncClient, job_id: str) -> list[dict[str, str]]:
    r = await client.get(f"{API}/imports/{job_id}/errors")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    return parse_csv(r.content)


async def export(client: httpx.AsyncClient, fmt: str = "csv", **params: Any) -> bytes:
    r = await client.get(f"{API}/exports/products", params={"format": fmt, **params})
    assert r.status_code == 200, r.text
    return r.content
