"""Small async helpers that create catalog objects through the API."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

API = "/api/v1"
_seq = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_seq)}"


async def create_brand(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"name": unique("Brand"), **fields}
    r = await client.post(f"{API}/brands", json=body)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def create_category(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"name": unique("Category"), **fields}
    r = await client.post(f"{API}/categories", json=body)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def create_product(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sku": unique("SKU"),
        "name": unique("Product"),
        "currency": "USD",
        "status": "active",
    }
    if "variants" not in fields:
        body["price"] = "10.00"
        body["stock"] = 5
    body.update(fields)
    r = await client.post(f"{API}/products", json=body)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data
