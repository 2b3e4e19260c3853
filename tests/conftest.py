"""Test fixtures: every API test runs on both storage profiles.

* ``embedded``: a throw-away SQLite file, no Redis;
* ``production``: a throw-away PostgreSQL database on 127.0.0.1 and the Redis server on
  127.0.0.1 (keys under a unique prefix). When they cannot be reached the production tests are
  skipped, unless ``CATALOG_TEST_REQUIRE_PRODUCTION=1`` (CI), where that is a failure.

Each test starts from empty tables (truncation after every test).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
import structlog
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from catalog.app import create_app
from catalog.auth import service as auth_service
from catalog.auth.service import Auth
from catalog.cli import run_migrations
from catalog.config import Settings
from catalog.db import Base
from catalog.models import Role

PG_HOST = os.environ.get("CATALOG_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("CATALOG_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("CATALOG_TEST_PG_USER", "postgres")
REDIS_URL = os.environ.get("CATALOG_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_PRODUCTION = os.environ.get("CATALOG_TEST_REQUIRE_PRODUCTION") == "1"
PROFILES = os.environ.get("CATALOG_TEST_PROFILES", "embedded,production").split(",")

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"

# structlog's default development renderer formats exceptions with rich, locals included, which
# takes seconds per logged error; tests keep the defaults with plain tracebacks.
structlog.configure(
    processors=[
        *structlog.get_config()["processors"][:-1],
        structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback),
    ]
)


@dataclass
class Backend:
    """A migrated database (and Redis prefix) for one profile, shared by the whole run."""

    profile: str
    settings: Settings
    cleanup: list[Any] = field(default_factory=list)


async def _pg_admin() -> asyncpg.Connection:
    return await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres", timeout=5
    )


async def _production_available() -> str | None:
    try:
        conn = await _pg_admin()
        await conn.close()
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"PostgreSQL at {PG_HOST}:{PG_PORT} unreachable: {exc}"
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        await client.ping()
    except Exception as exc:
        return f"Redis at {REDIS_URL} unreachable: {exc}"
    finally:
        await client.aclose()
    return None


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "secret_key": TEST_SECRET,
        "log_json": True,
        "log_level": "WARNING",
        # Cheap hashing keeps the suite fast; production keeps the library's defaults.
        "argon2_time_cost": 1,
        "argon2_memory_cost_kib": 1024,
        # Response caching is exercised by its own tests (tests/test_caching.py), so the other
        # tests may change rows directly in the database without going stale.
        "cache_enabled": False,
        # Generous limits; the rate-limit tests set their own.
        "rate_limit_anonymous": "100000/minute",
        "rate_limit_authenticated": "100000/minute",
        "rate_limit_auth": "100000/minute",
        "rate_limit_login_per_account": "100000/minute",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session", params=PROFILES)
async def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Backend]:
    profile: str = request.param
    run_id = uuid.uuid4().hex[:12]
    if profile == "embedded":
        path: Path = tmp_path_factory.mktemp("db") / "catalog.db"
        url = f"sqlite+aiosqlite:///{path}"
        await asyncio.to_thread(run_migrations, url)
        yield Backend(profile, make_settings(database_url=url, media_root=path.parent / "media"))
        return

    problem = await _production_available()
    if problem:
        if REQUIRE_PRODUCTION:
            pytest.fail(f"production profile required but {problem}")
        pytest.skip(f"production profile skipped: {problem}")
    db_name = f"catalog_test_{run_id}"
    admin = await _pg_admin()
    try:
        await admin.execute(f'CREATE DATABASE "{db_name}"')
    finally:
        await admin.close()
    url = f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{db_name}"
    await asyncio.to_thread(run_migrations, url)
    settings = make_settings(
        database_url=url,
        redis_url=REDIS_URL,
        redis_prefix=f"catalog-test-{run_id}:",
        media_root=tmp_path_factory.mktemp("media"),
    )
    try:
        yield Backend(profile, settings)
    finally:
        admin = await _pg_admin()
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        finally:
            await admin.close()
        client = aioredis.Redis.from_url(REDIS_URL)
        try:
            keys = [k async for k in client.scan_iter(match=f"{settings.redis_prefix}*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()


@pytest.fixture(scope="session")
def profile(backend: Backend) -> str:
    return backend.profile


async def _truncate(engine: AsyncEngine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # search_term is the vocabulary the database maintains itself (not an ORM table).
            names = ", ".join([*tables, "search_term"])
            # A list item still being stored in the background (catalog.products.reads) takes
            # its locks in another order; the database ends one of the two, and this retries.
            for attempt in range(5):
                try:
                    async with conn.begin_nested():
                        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
                    break
                except DBAPIError as exc:
                    if attempt == 4 or "deadlock" not in str(exc):
                        raise
                    await asyncio.sleep(0.1)
        else:
            # Distinct slugs first: two children may share one, and roots must not.
            await conn.execute(text("UPDATE category SET parent_id = NULL, slug = lower(hex(id))"))
            for table in tables:
                await conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - our table names


async def _flush_redis(settings: Settings) -> None:
    if not settings.redis_url:
        return
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{settings.redis_prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def app(backend: Backend) -> AsyncIterator[FastAPI]:
    application = create_app(backend.settings)
    async with application.router.lifespan_context(application):
        try:
            yield application
        finally:
            # List items still being stored in the background would hold locks TRUNCATE waits on.
            items = getattr(application.state.product_reads, "items", None)
            if items is not None:
                await items.idle()
            # Events the test left queued are written now, then removed: written by the
            # shutdown's flush instead, after the truncation, they would be the next test's.
            await application.state.recorder.flush()
            await _truncate(application.state.engine)
            await _flush_redis(backend.settings)


@dataclass
class Account:
    id: uuid.UUID
    email: str
    password: str
    role: Role
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


ACCOUNT_PASSWORD = "correct-horse-battery-staple"


async def make_account(app: FastAPI, role: Role, email: str | None = None) -> Account:
    """A user created directly through the service, with a fresh access token."""
    auth: Auth = app.state.auth
    email = email or f"{role.value}-{uuid.uuid4().hex[:8]}@example.com"
    async with app.state.sessionmaker() as session:
        user = await auth_service.create_user(
            session, auth, email=email, password=ACCOUNT_PASSWORD, full_name=role.value, role=role
        )
        tokens = await auth_service.issue_session(session, auth, user)
        await session.commit()
    return Account(user.id, email, ACCOUNT_PASSWORD, role, tokens["access_token"])


def make_client(app: FastAPI, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers)


@pytest.fixture
async def admin(app: FastAPI) -> Account:
    return await make_account(app, Role.admin)


@pytest.fixture
async def client(app: FastAPI, admin: Account) -> AsyncIterator[httpx.AsyncClient]:
    """A client authenticated as an administrator."""
    async with make_client(app, admin.headers) as c:
        yield c


@pytest.fixture
async def anon(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An anonymous client."""
    async with make_client(app) as c:
        yield c


class QueryCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.statements)

    def reset(self) -> None:
        self.statements.clear()


@pytest.fixture
def queries(app: FastAPI) -> Iterator[QueryCounter]:
    """Counts the SQL statements the app sends (excluding connection pings)."""
    counter = QueryCounter()
    engines: set[AsyncEngine] = {app.state.engine, app.state.search_engine}

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        counter.statements.append(statement)

    for engine in engines:
        event.listen(engine.sync_engine, "before_cursor_execute", before)
    # The product reads of PostgreSQL run on asyncpg directly and report their statements.
    listeners: list[Any] = getattr(app.state.product_reads, "statement_listeners", [])

    def raw(statement: str, _params: Any) -> None:
        counter.statements.append(statement)

    listeners.append(raw)
    try:
        yield counter
    finally:
        for engine in engines:
            event.remove(engine.sync_engine, "before_cursor_execute", before)
        listeners.remove(raw)
