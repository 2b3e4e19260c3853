"""Shared helpers of the authentication tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt
import redis.asyncio as aioredis
from fastapi import FastAPI

from catalog.app import create_app
from catalog.config import Settings
from tests.conftest import TEST_SECRET, Backend, _truncate, make_settings
from tests.factories import API

AUTH = f"{API}/auth"
USERS = f"{API}/users"
KEYS = f"{API}/api-keys"
PROBLEM = "application/problem+json"
STRONG_PASSWORD = "a-long-enough-passphrase"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(
    client: httpx.AsyncClient, email: str, password: str, **kwargs: Any
) -> httpx.Response:
    return await client.post(
        f"{AUTH}/token", data={"username": email, "password": password}, **kwargs
    )


async def login_ok(client: httpx.AsyncClient, email: str, password: str) -> dict[str, Any]:
    r = await login(client, email, password)
    assert r.status_code == 200, r.text
    pair: dict[str, Any] = r.json()
    return pair


async def register(
    client: httpx.AsyncClient, email: str, password: str = STRONG_PASSWORD
) -> dict[str, Any]:
    r = await client.post(
        f"{AUTH}/register", json={"email": email, "password": password, "full_name": "Someone"}
    )
    assert r.status_code == 201, r.text
    user: dict[str, Any] = r.json()
    return user


def assert_unauthorized(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["status"] == 401


def assert_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    return body


def access_claims(**overrides: Any) -> dict[str, Any]:
    """Claims of a well-formed access token of the test settings (override to break them)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": str(uuid.uuid4()),
        "role": "admin",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "iss": "catalog",
        "aud": "catalog-api",
        "typ": "access",
    }
    claims.update(overrides)
    return claims


def sign(claims: dict[str, Any], key: str = TEST_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def client_for(
    app: FastAPI,
    headers: dict[str, str] | None = None,
    *,
    peer: str = "127.0.0.1",
    base_url: str = "http://test",
) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 1234))
    return httpx.AsyncClient(transport=transport, base_url=base_url, headers=headers)


def settings_for(backend: Backend, **overrides: Any) -> Settings:
    """Settings on the test backend's database, with a Redis prefix of their own."""
    values: dict[str, Any] = {
        "database_url": backend.settings.database_url,
        "redis_url": backend.settings.redis_url,
        "redis_prefix": f"{backend.settings.redis_prefix}{uuid.uuid4().hex[:8]}:",
        "media_root": backend.settings.media_root,
    }
    values.update(overrides)
    return make_settings(**values)


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """An app with its lifespan entered. Afterwards the database is emptied and the app's
    Redis keys are removed, as the `app` fixture does."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        try:
            yield app
        finally:
            await _truncate(app.state.engine)
            if settings.redis_url:
                client = aioredis.Redis.from_url(settings.redis_url)
                try:
                    keys = [k async for k in client.scan_iter(match=f"{settings.redis_prefix}*")]
                    if keys:
                        await client.delete(*keys)
                finally:
                    await client.aclose()
