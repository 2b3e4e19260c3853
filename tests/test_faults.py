"""Fault injection: a Redis server of the test's own is stopped and started again while the
app serves, PostgreSQL terminates the app's connections (production profile), and the database
cannot be reached or holds a row past the statement timeout.

Reads keep working from the database while Redis is away (cache bypassed, a warning logged,
readiness reporting Redis down, no stale answers), general rate limits fail open or closed as
configured, and everything recovers by itself; terminated database connections are replaced
without a restart and no request fails once they are. A database that cannot be reached, or
that makes a statement wait past its timeout, is a 503 with Retry-After, never a 500.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import sqlite3
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from structlog.testing import capture_logs

from catalog.app import create_app
from catalog.config import Settings
from catalog.db import create_engine
from catalog.errors import database_unavailable
from catalog.kit.cache import RedisCache
from catalog.models import Role
from tests.conftest import PG_HOST, PG_PORT, PG_USER, Backend, make_account, make_client
from tests.factories import API, create_product


class RedisServer:
    """A throw-away redis-server on a free loopback port, which tests stop and start."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        self.proc = subprocess.Popen(  # noqa: S603 - a fixed local binary
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def redis_server(backend: Backend) -> Iterator[RedisServer]:
    if backend.profile != "production":
        pytest.skip("fault injection needs the production profile")
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed")
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


async def eventually(check: Any, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


async def listening(app: FastAPI) -> bool:
    cache = app.state.cache
    return isinstance(cache, RedisCache) and cache._listening


async def rename_in_database(app: FastAPI, product_id: str, name: str) -> None:
    async with app.state.engine.begin() as conn:
        await conn.execute(
            text("UPDATE product SET name = :name WHERE id = :id"),
            {"name": name, "id": product_id},
        )


async def test_redis_outage_and_recovery(
    backend: Backend, app: FastAPI, redis_server: RedisServer
) -> None:
    settings = backend.settings.model_copy(
        update={"cache_enabled": True, "redis_url": redis_server.url}
    )
    async with running(settings) as served:
        await eventually(lambda: listening(served))
        admin = await make_account(served, Role.admin)
        async with make_client(served, admin.headers) as client, make_client(served) as anon:
            product = await create_product(client, name="Before the outage")
            path = f"{API}/products/{product['id']}"
            assert (await anon.get(path)).json()["name"] == "Before the outage"
            assert (await anon.get(path)).json()["name"] == "Before the outage"  # cached

            redis_server.stop()
            with capture_logs() as logs:
                # Reads go to the database, and a change made meanwhile is seen at once.
                await rename_in_database(served, product["id"], "During the outage")
                for _ in range(3):
                    r = await anon.get(path)
                    assert r.status_code == 200
                    assert r.json()["name"] == "During the outage"
                listed = await anon.get(f"{API}/products")
                assert listed.status_code == 200
                assert [p["name"] for p in listed.json()["items"]] == ["During the outage"]
                # Searching and browsing (whose counts are cached) answer from the database.
                for params in ({"q": "outage"}, {"sort": "newest"}, {"q": "outgae"}):
                    r = await anon.get(f"{API}/search", params=params)
                    assert r.status_code == 200, r.text
                    assert [i["name"] for i in r.json()["items"]] == ["During the outage"]
            assert any(e["event"].startswith("cache_") for e in logs)
            ready = await anon.get("/health/ready")
            assert ready.status_code == 503
            assert ready.json()["checks"]["redis"]["status"] == "down"

            redis_server.start()
            await eventually(lambda: listening(served))
            ready = await anon.get("/health/ready")
            assert ready.status_code == 200, ready.text
            # The cache works again, and a write through the API invalidates it.
            assert (await anon.get(path)).json()["name"] == "During the outage"
            r = await client.patch(path, json={"name": "After the outage"})
            assert r.status_code == 200, r.text
            assert (await anon.get(path)).json()["name"] == "After the outage"
            assert (await anon.get(path)).json()["name"] == "After the outage"


@pytest.mark.parametrize("fail_open", [True, False])
async def test_rate_limits_fail_open_or_closed(
    backend: Backend, app: FastAPI, redis_server: RedisServer, fail_open: bool
) -> None:
    settings = backend.settings.model_copy(
        update={
            "redis_url": redis_server.url,
            "rate_limit_fail_open": fail_open,
            "rate_limit_anonymous": "1000/minute",
        }
    )
    async with running(settings) as served, make_client(served) as anon:
        assert (await anon.get(f"{API}/products")).status_code == 200
        redis_server.stop()
        # A worker admits what its current lease still holds; past it, the configured
        # behaviour applies: 200 when failing open, 503 when failing closed.
        statuses = [(await anon.get(f"{API}/products")).status_code for _ in range(60)]
        if fail_open:
            assert set(statuses) == {200}
        else:
            assert statuses[-1] == 503
            assert set(statuses) <= {200, 503}
        redis_server.start()

        async def admitted() -> bool:
            return (await anon.get(f"{API}/products")).status_code == 200

        await eventually(admitted)


async def _terminate_connections(database: str) -> int:
    admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        rows = await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await admin.close()
    return len(rows)


async def test_terminated_database_connections_are_replaced(
    backend: Backend, app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    if backend.profile != "production":
        pytest.skip("needs PostgreSQL")
    database = make_url(backend.settings.database_url).database
    assert database is not None
    products = [await create_product(client, name=f"Survivor {n}") for n in range(3)]

    async def traffic() -> list[int]:
        statuses: list[int] = []
        for product in products:
            statuses.append((await anon.get(f"{API}/products/{product['id']}")).status_code)
            statuses.append((await anon.get(f"{API}/products", params={"limit": 2})).status_code)
            statuses.append((await anon.get(f"{API}/search", params={"q": "survivor"})).status_code)
            r = await client.patch(
                f"{API}/products/{product['id']}", json={"description": "still here"}
            )
            statuses.append(r.status_code)
        return statuses

    assert set(await traffic()) == {200}
    for _ in range(2):
        assert await _terminate_connections(database) > 0
        # Every pooled connection is dead now: reads retry on a fresh connection, the main
        # pool replaces them on checkout; nothing answers 500.
        assert set(await traffic()) == {200}


async def _backend_pid(engine: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(pid: int) -> None:
    admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


@pytest.mark.parametrize("idle_ping", [True, False])
async def test_pooled_connection_cut_unnoticed_is_pinged_when_idle(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, idle_ping: bool
) -> None:
    """A pooled connection whose end the driver has not seen (a silent network cut) is pinged
    before use once it has been idle longer than the threshold, and replaced when the ping
    fails; below the threshold it is handed out as is (no round trip per checkout)."""
    if backend.profile != "production":
        pytest.skip("needs PostgreSQL")
    threshold = 0.1 if idle_ping else 3600.0
    engine = create_engine(backend.settings.model_copy(update={"db_ping_idle_after_s": threshold}))
    try:
        pid = await _backend_pid(engine)
        await _terminate(pid)
        await asyncio.sleep(0.3)
        # The driver would know the connection is gone; pretend it does not.
        monkeypatch.setattr(asyncpg.Connection, "is_closed", lambda _self: False)
        if idle_ping:
            assert await _backend_pid(engine) != pid
        else:
            with pytest.raises(DBAPIError):
                await _backend_pid(engine)
    finally:
        await engine.dispose()


async def test_connection_closed_by_the_server_is_replaced_without_a_ping(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend.profile != "production":
        pytest.skip("needs PostgreSQL")
    engine = create_engine(backend.settings)
    pings: list[object] = []
    original = engine.dialect.do_ping

    def counting_ping(dbapi_conn: Any) -> bool:
        pings.append(dbapi_conn)
        return original(dbapi_conn)

    monkeypatch.setattr(engine.dialect, "do_ping", counting_ping)
    try:
        pid = await _backend_pid(engine)
        assert await _backend_pid(engine) == pid  # reused, not pinged: it was not idle
        await _terminate(pid)
        await asyncio.sleep(0.2)
        assert await _backend_pid(engine) != pid
        assert pings == []
    finally:
        await engine.dispose()


async def test_the_most_recently_returned_connection_is_handed_out_first(
    backend: Backend,
) -> None:
    """The pool hands out the connection returned last (LIFO): under light load the same few
    connections serve every request, their prepared statements at hand."""
    if backend.profile != "production":
        pytest.skip("needs PostgreSQL")
    engine = create_engine(backend.settings)
    try:
        async with engine.connect() as first, engine.connect() as second:
            pids = [
                (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                for conn in (first, second)
            ]
            await first.close()  # returned first
        # `second` was returned last (on leaving the block): it is handed out again, twice.
        assert await _backend_pid(engine) == pids[1]
        assert await _backend_pid(engine) == pids[1]
    finally:
        await engine.dispose()


class _DriverError(Exception):
    """A driver error carrying a SQLSTATE, as asyncpg's (and SQLAlchemy's adapter of it) do."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"error {sqlstate}")
        self.sqlstate = sqlstate


def _wrapped(orig: BaseException) -> OperationalError:
    return OperationalError("UPDATE product SET name = ?", {}, orig)


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (_wrapped(sqlite3.OperationalError("database is locked")), "being changed"),
        (_wrapped(sqlite3.OperationalError("unable to open database file")), "unavailable"),
        (_wrapped(_DriverError("57014")), "in time"),  # statement timeout
        (_wrapped(_DriverError("55P03")), "being changed"),  # lock timeout
        (_wrapped(_DriverError("40P01")), "being changed"),  # deadlock
        (_wrapped(_DriverError("53300")), "unavailable"),  # too many connections
        (_wrapped(_DriverError("57P01")), "unavailable"),  # the server is shutting down
        (_wrapped(_DriverError("08006")), "unavailable"),  # connection failure
        (PoolTimeoutError("QueuePool limit reached"), "in use"),
        (ConnectionRefusedError(111, "Connect call failed"), "cannot be reached"),
        (_wrapped(sqlite3.OperationalError("no such table: product")), None),
        (_wrapped(_DriverError("42P01")), None),  # undefined table: a bug, not an outage
        (ValueError("bad"), None),
    ],
)
def test_which_failures_are_the_database_being_unavailable(
    failure: BaseException, expected: str | None
) -> None:
    """Passing states of the database (down, starting, stopping, full, locked, slow) are a
    503 the caller may retry; anything else stays an unexpected error (500)."""
    found = database_unavailable(failure)
    if expected is None:
        assert found is None
    else:
        assert found is not None
        assert expected in found[0]
        assert found[1] > 0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there once the socket is closed


def _assert_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert int(r.headers["retry-after"]) > 0
    body = r.json()
    assert body["status"] == 503
    assert body["detail"].endswith("retry shortly"), body


async def test_an_unreachable_database_answers_503(
    backend: Backend, admin: Any, tmp_path: Any
) -> None:
    """Reads, searches, sign-ins and writes answer 503 with Retry-After while the database
    cannot be reached (nothing listening on PostgreSQL's port; a SQLite file that cannot be
    opened), never a 500, and readiness says so."""
    if backend.profile == "production":
        url = f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{_closed_port()}/catalog"
    else:
        unopenable = tmp_path / "catalog.db"
        unopenable.mkdir()  # a directory: SQLite cannot open it as a database
        url = f"sqlite+aiosqlite:///{unopenable}"
    settings = backend.settings.model_copy(update={"database_url": url})
    async with (
        running(settings) as served,
        make_client(served) as anon,
        make_client(served, admin.headers) as signed_in,
    ):
        some_id = "0190a0b0-0000-7000-8000-000000000000"
        for r in [
            await anon.get(f"{API}/search", params={"q": "lamp", "facet": "color"}),
            await anon.get(f"{API}/search", params={"sort": "newest"}),
            await anon.get(f"{API}/search/suggest", params={"q": "la"}),
            await anon.get(f"{API}/products"),
            await anon.get(f"{API}/products/{some_id}"),
            await anon.get(f"{API}/categories"),
            await anon.get(f"{API}/brands"),
            await anon.post(
                f"{API}/auth/token", data={"username": "a@example.com", "password": "x" * 12}
            ),
            await signed_in.post(f"{API}/brands", json={"name": "Unwritten"}),
        ]:
            _assert_unavailable(r)
            assert r.json()["detail"] == "The database is unavailable; retry shortly"
        ready = await anon.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"]["status"] == "down"


async def test_a_statement_past_its_timeout_answers_503(
    backend: Backend, app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A write that waits on a row another transaction holds longer than the statement timeout
    is ended by PostgreSQL and answered 503 with Retry-After; once the row is free it works."""
    if backend.profile != "production":
        pytest.skip("statement timeouts are PostgreSQL's")
    product = await create_product(client, name="Held")
    settings = backend.settings.model_copy(update={"db_statement_timeout_ms": 300})
    database = make_url(backend.settings.database_url).database
    holder = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=database)
    try:
        async with running(settings) as served:
            admin = await make_account(served, Role.admin)
            async with make_client(served, admin.headers) as c:
                path = f"{API}/products/{product['id']}"
                async with holder.transaction():
                    await holder.execute(
                        "SELECT 1 FROM product WHERE id = $1 FOR UPDATE", uuid.UUID(product["id"])
                    )
                    r = await c.patch(path, json={"description": "waited"})
                    _assert_unavailable(r)
                    assert "in time" in r.json()["detail"]
                r = await c.patch(path, json={"description": "free again"})
                assert r.status_code == 200, r.text
    finally:
        await holder.close()
