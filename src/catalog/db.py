"""Database engine, declarative base and the per-request session.

Services only ``flush()``; the session dependency commits once per request and rolls back when the
request fails, so a request's writes land together or not at all.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import orjson
import uuid6
from sqlalchemy import JSON, DateTime, Integer, MetaData, TypeDecorator, Uuid, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column
from sqlalchemy.pool import ConnectionPoolEntry

from catalog.config import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_id() -> uuid.UUID:
    """A time-ordered UUID (version 7): index-friendly and sortable by creation time."""
    value = uuid6.uuid7()
    return uuid.UUID(bytes=value.bytes)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)


class TimestampMixin:
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False
    )


class VersionedMixin:
    """Optimistic concurrency: every UPDATE checks and bumps `version` (412/409 when stale)."""

    version: Mapped[int] = mapped_column(Integer, nullable=False)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        path = settings.sqlite_path()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            settings.database_url,
            echo=settings.db_echo,
            hide_parameters=True,  # statement values (password hashes, tokens) never in logs
            json_deserializer=orjson.loads,
            connect_args={"timeout": 30},
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine

    return _postgres_engine(
        settings,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        server_settings=_server_settings(settings),
    )


# The session settings of the search pool's connections. Searches build and count over
# thousands of matches (hash aggregates, a materialized match list): more memory than the
# default 4 MB keeps them off disk. Their statements switch filters on and off with bound
# flags (`$1 OR brand_id = ...`), which only a plan made for the values folds away: with the
# default plan cache mode, PostgreSQL would move to a generic plan after five runs.
SEARCH_SERVER_SETTINGS = {"work_mem": "32MB", "plan_cache_mode": "force_custom_plan"}


def create_search_engine(settings: Settings, engine: AsyncEngine) -> AsyncEngine:
    """The engine of searches and suggestions: on PostgreSQL a pool of its own, whose
    connections carry `SEARCH_SERVER_SETTINGS` from the start and run without a transaction
    (searches only read, and each of their statements reads what it needs at once), so a
    search sends neither BEGIN, COMMIT nor settings. A burst of searches waits for one of its
    connections instead of taking those of writes. The embedded profile has one engine."""
    if settings.is_sqlite:
        return engine
    return _postgres_engine(
        settings,
        pool_size=settings.db_search_pool_size,
        max_overflow=0,
        server_settings={
            **_server_settings(settings),
            **SEARCH_SERVER_SETTINGS,
            "application_name": "catalog-search",
        },
        isolation_level="AUTOCOMMIT",
    )


def _postgres_engine(
    settings: Settings,
    *,
    pool_size: int,
    max_overflow: int,
    server_settings: dict[str, str],
    **options: Any,
) -> AsyncEngine:
    engine = create_async_engine(
        settings.database_url,
        echo=settings.db_echo,
        hide_parameters=True,  # statement values (password hashes, tokens) never in logs
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=1800,
        # The most recently returned connection first: under light load the same few
        # connections serve every request, with their prepared statements at hand, and the
        # others stay idle (and are pinged before use, see `check_on_checkout`).
        pool_use_lifo=True,
        json_deserializer=orjson.loads,
        connect_args={
            "server_settings": server_settings,
            # Each connection keeps this many prepared statements (asyncpg's default, 100, is
            # fewer than the shapes of search statements a busy catalogue sends: each miss is
            # one more round trip and the server parsing the statement again).
            "prepared_statement_cache_size": 256,
        },
        **options,
    )
    check_on_checkout(engine, settings.db_ping_idle_after_s)
    return engine


def check_on_checkout(engine: AsyncEngine, ping_idle_after: float) -> None:
    """Hand out live connections without a round trip per checkout.

    `pool_pre_ping` pings every connection it hands out: a round trip (about 0.35 ms with its
    overhead) on every request. Instead, a connection the server closed (restart, terminated
    backend) is known to be closed at once, since the driver reads the server's goodbye while
    the connection sits in the pool; it is replaced without a ping. Only connections idle for more
    than `ping_idle_after` seconds, which a firewall or a failover may have cut silently, are
    pinged first. Raising `DisconnectionError` makes the pool replace the connection."""

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _checked_in(_dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _checked_out(dbapi_conn: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        driver = getattr(dbapi_conn, "driver_connection", None)
        if driver is not None and driver.is_closed():
            raise DisconnectionError("the server closed the connection")
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since <= ping_idle_after:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError(f"ping failed: {exc}") from exc
        if not alive:
            raise DisconnectionError("ping failed")


def _server_settings(settings: Settings) -> dict[str, str]:
    # JIT compilation pays off for long analytical queries, not for ours: on tables whose
    # statistics make a page's query look expensive it spent ~30 ms compiling every execution.
    server_settings = {"application_name": "catalog", "jit": "off"}
    if settings.db_statement_timeout_ms:
        server_settings["statement_timeout"] = str(settings.db_statement_timeout_ms)
    return server_settings


T = TypeVar("T")


async def read_retrying(engine: AsyncEngine, read: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run a read-only `read` on a connection of `engine`; once more on a fresh connection
    when the first one was found dead (database restart, terminated backend)."""
    try:
        async with engine.connect() as conn:
            return await read(conn)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    async with engine.connect() as conn:
        return await read(conn)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


AfterCommit = Callable[[], Awaitable[None]]


def after_commit(session: AsyncSession, hook: AfterCommit) -> None:
    """Run `hook` once the request's transaction has committed (e.g. cache invalidation)."""
    session.info.setdefault("after_commit", []).append(hook)


async def session_scope(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One session per request: commit on success, roll back on any error."""
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        if session.in_transaction():
            await session.commit()
        hooks: list[AfterCommit] = session.info.pop("after_commit", [])
        for hook in hooks:
            await hook()
