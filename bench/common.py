"""What the benchmarks share: where PostgreSQL and Redis are, throw-away databases, and
settings that keep rate limits out of a measurement's way."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from catalog.config import Settings

PG_HOST = os.environ.get("CATALOG_BENCH_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("CATALOG_BENCH_PG_PORT", "5432"))
PG_USER = os.environ.get("CATALOG_BENCH_PG_USER", "postgres")
REDIS_URL = os.environ.get("CATALOG_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

UNLIMITED = "1000000000/minute"


async def pg_admin() -> asyncpg.Connection:
    """A connection to the `postgres` maintenance database."""
    return await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres", timeout=10
    )


def pg_url(database: str) -> str:
    return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


@contextlib.asynccontextmanager
async def throwaway_database(prefix: str) -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database (its SQLAlchemy URL), dropped on the way out."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    admin = await pg_admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield pg_url(name)
    finally:
        # Shielded: a cancellation (time limit, Ctrl-C) must not leave the database behind.
        await asyncio.shield(_drop_database(name))


async def _drop_database(name: str) -> None:
    admin = await pg_admin()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def delete_redis_keys(url: str, prefix: str) -> int:
    """Delete every key under `prefix`; returns how many there were."""
    client = aioredis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start : start + 1000])
        return len(keys)
    finally:
        await client.aclose()


def unlimited_settings(**values: Any) -> Settings:
    """Settings whose rate limits a benchmark cannot reach, logging at WARNING."""
    values = {
        "rate_limit_anonymous": UNLIMITED,
        "rate_limit_authenticated": UNLIMITED,
        "rate_limit_auth": UNLIMITED,
        "rate_limit_login_per_account": UNLIMITED,
        "log_level": "WARNING",
        **values,
    }
    return Settings(**values)
