"""Prometheus metrics (prometheus-client).

Every metric lives in the default registry. With several worker processes, `catalog serve`
points `PROMETHEUS_MULTIPROC_DIR` at a fresh directory before the workers start; each worker
then writes its values to memory-mapped files there and `GET /metrics` merges them
(`MultiProcessCollector`). Files of workers that died are marked dead so that their live gauges
stop counting.

Hot paths use label children bound once (`_Children`), so an observation costs a dictionary
lookup and the observation itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prom_multiprocess
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catalog.logging import _route_template

log = structlog.get_logger("catalog.slow_query")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

HTTP_REQUESTS = Counter(
    "catalog_http_requests_total",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "catalog_http_request_duration_seconds",
    "Time to answer an HTTP request, by method, route template and status",
    ["method", "route", "status"],
    buckets=_LATENCY_BUCKETS,
)
HTTP_IN_FLIGHT = Gauge(
    "catalog_http_requests_in_flight",
    "HTTP requests being answered",
    multiprocess_mode="livesum",
)
DB_POOL = Gauge(
    "catalog_db_pool_connections",
    "Database connections by pool (orm: SQLAlchemy, reads: the asyncpg product reads, search: "
    "searches and suggestions) and state",
    ["pool", "state"],
    multiprocess_mode="livesum",
)
DB_QUERY_LATENCY = Histogram(
    "catalog_db_query_duration_seconds",
    "Time of one database statement, by pool",
    ["pool"],
    buckets=_LATENCY_BUCKETS,
)
DB_SLOW_QUERIES = Counter(
    "catalog_db_slow_queries_total", "Statements slower than the slow-query threshold"
)
CACHE_REQUESTS = Counter(
    "catalog_cache_requests_total",
    "Lookups of prepared responses, by cache name and result (hit or miss)",
    ["cache", "result"],
)
RATE_LIMITED = Counter(
    "catalog_rate_limit_rejections_total",
    "Requests refused with 429, by what was limited (ip, user, key, auth, login)",
    ["limit"],
)
SEARCH_LATENCY = Histogram(
    "catalog_search_duration_seconds",
    "Time to answer a search (cached answers included)",
    buckets=_LATENCY_BUCKETS,
)
SEARCH_ZERO_RESULTS = Counter("catalog_search_zero_results_total", "Searches that found no product")
IMPORT_ROWS = Counter(
    "catalog_import_rows_total", "Rows of import files processed (written or refused)"
)
IMAGE_PROCESSING = Histogram(
    "catalog_image_processing_seconds",
    "Time to decode an uploaded image and encode its renditions",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)

M = TypeVar("M")


class _Children(Generic[M]):
    """Label children bound on first use: `labels()` takes a lock and builds a tuple on each
    call, this is one dictionary lookup."""

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._children: dict[Any, M] = {}

    def get(self, *labels: str) -> M:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self._metric.labels(*labels)
        return child


_cache_hits: _Children[Counter] = _Children(CACHE_REQUESTS)
_rate_limited: _Children[Counter] = _Children(RATE_LIMITED)


def cache_hit(name: str) -> None:
    _cache_hits.get(name, "hit").inc()


def cache_miss(name: str) -> None:
    _cache_hits.get(name, "miss").inc()


def rate_limited(limit: str) -> None:
    _rate_limited.get(limit).inc()


def search_answered(latency_ms: float, result_count: int) -> None:
    SEARCH_LATENCY.observe(latency_ms / 1000)
    if result_count == 0:
        SEARCH_ZERO_RESULTS.inc()


def import_rows(count: int) -> None:
    if count:
        IMPORT_ROWS.inc(count)


@contextlib.contextmanager
def image_processing() -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        IMAGE_PROCESSING.observe(time.perf_counter() - start)


_reads_latency = DB_QUERY_LATENCY.labels("reads")
# Seconds; set from `db_slow_query_ms` by `instrument_engine` (None: slow reads not logged).
_slow_read_seconds: float | None = None


@contextlib.asynccontextmanager
async def read_query(statement: str = "") -> AsyncIterator[None]:
    """Times one statement of the asyncpg product reads (outside SQLAlchemy, so not seen by
    its events); logs it when slow, like the engine's statements."""
    start = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - start
        _reads_latency.observe(elapsed)
        if _slow_read_seconds is not None and elapsed >= _slow_read_seconds:
            _slow(elapsed, statement, executemany=False)


def _slow(elapsed: float, statement: str, *, executemany: bool) -> None:
    DB_SLOW_QUERIES.inc()
    log.warning(
        "slow_query",
        duration_ms=round(elapsed * 1000, 2),
        statement=redact_statement(statement),
        executemany=executemany,
    )


# --------------------------------------------------------------------------- HTTP requests


class MetricsMiddleware:
    """Request count, latency and in-flight requests. Pure ASGI and outside the fast read path,
    so requests answered before routing are counted too (under the template it sets)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, str | None, int], tuple[Any, Any]] = {}
        self._in_flight_inc = HTTP_IN_FLIGHT.inc
        self._in_flight_dec = HTTP_IN_FLIGHT.dec

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self._in_flight_inc()
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - start
            self._in_flight_dec()
            key = (scope["method"], _route_template(scope), status)
            children = self._children.get(key)
            if children is None:
                children = self._bind(key)
            children[0].inc()
            children[1].observe(elapsed)

    def _bind(self, key: tuple[str, str | None, int]) -> tuple[Any, Any]:
        method, route, status = key
        # Paths that matched no route share one label, so scanners cannot grow the series.
        labels = (method if method in _METHODS else "OTHER", route or "unmatched", str(status))
        children = (HTTP_REQUESTS.labels(*labels), HTTP_LATENCY.labels(*labels))
        if len(self._children) < 10_000:
            self._children[key] = children
        return children


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


# --------------------------------------------------------------------------- database

_LITERAL = re.compile(r"'(?:[^']|'')*'|(?<![\w$:])\d+(?:\.\d+)?\b")
_SPACE = re.compile(r"\s+")


def redact_statement(statement: str) -> str:
    """The statement without its literal values (bound parameters never appear in it)."""
    return _SPACE.sub(" ", _LITERAL.sub("?", statement)).strip()[:2000]


def instrument_engine(engine: AsyncEngine, slow_query_ms: float) -> None:
    """Times every statement of the SQLAlchemy engine; logs those over `slow_query_ms` (0: off)
    with their statement, literals and parameters left out."""
    global _slow_read_seconds  # one threshold per process, like the setting
    latency = DB_QUERY_LATENCY.labels("orm")
    threshold = slow_query_ms / 1000 if slow_query_ms > 0 else None
    _slow_read_seconds = threshold
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _before(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        conn.info.setdefault("query_start", []).append(time.perf_counter())

    @event.listens_for(sync_engine, "after_cursor_execute")
    def _after(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        starts = conn.info.get("query_start")
        if not starts:
            return
        elapsed = time.perf_counter() - starts.pop()
        latency.observe(elapsed)
        if threshold is not None and elapsed >= threshold:
            _slow(elapsed, statement, executemany=executemany)

    @event.listens_for(sync_engine, "handle_error")
    def _error(context: Any) -> None:
        conn = context.connection
        if conn is not None:
            starts = conn.info.get("query_start")
            if starts:
                starts.pop()


def sample_pools(
    engine: AsyncEngine, product_reads: Any, search_engine: AsyncEngine | None = None
) -> None:
    """Current connection counts of the pools into the pool gauge."""
    engines = {"orm": engine}
    if search_engine is not None and search_engine is not engine:
        engines["search"] = search_engine
    for name, each in engines.items():
        pool: Any = each.sync_engine.pool
        if hasattr(pool, "checkedout"):
            DB_POOL.labels(name, "in_use").set(pool.checkedout())
            DB_POOL.labels(name, "idle").set(pool.checkedin())
            DB_POOL.labels(name, "max").set(pool.size() + max(0, pool._max_overflow))
    reads_pool = getattr(product_reads, "pool", None)
    if reads_pool is not None:
        size, idle = reads_pool.get_size(), reads_pool.get_idle_size()
        DB_POOL.labels("reads", "in_use").set(size - idle)
        DB_POOL.labels("reads", "idle").set(idle)
        DB_POOL.labels("reads", "max").set(reads_pool.get_max_size())


# --------------------------------------------------------------------------- exposition


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


_PID_FILE = re.compile(r"_(\d+)\.db$")


def mark_dead_workers(directory: Path, alive: Callable[[int], bool] | None = None) -> list[int]:
    """Marks the workers whose process is gone as dead (their live gauges stop counting);
    returns their pids."""
    is_alive = alive or _pid_alive
    dead: set[int] = set()
    for path in directory.glob("gauge_live*.db"):
        match = _PID_FILE.search(path.name)
        if match is not None and not is_alive(int(match.group(1))):
            dead.add(int(match.group(1)))
    for pid in sorted(dead):
        prom_multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
    return sorted(dead)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_stopped() -> None:
    directory = multiprocess_dir()
    if directory is not None:
        prom_multiprocess.mark_process_dead(os.getpid(), str(directory))  # type: ignore[no-untyped-call]


def exposition() -> bytes:
    """The metrics of this process, or of every worker in multi-process mode."""
    directory = multiprocess_dir()
    if directory is None:
        return generate_latest(REGISTRY)
    mark_dead_workers(directory)
    registry = CollectorRegistry()
    prom_multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return generate_latest(registry)


class PoolSampler:
    """Samples the pools of this worker every `interval` seconds (each worker its own, so the
    live sum over workers is right in multi-process mode)."""

    def __init__(
        self,
        engine: AsyncEngine,
        product_reads: Any,
        interval: float,
        search_engine: AsyncEngine | None = None,
    ) -> None:
        self._engine = engine
        self._search_engine = search_engine
        self._reads = product_reads
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="metrics-pool-sampler")

    async def _run(self) -> None:
        while True:
            try:
                sample_pools(self._engine, self._reads, self._search_engine)
            except Exception as exc:  # a metric is never worth a crash
                structlog.get_logger(__name__).warning("pool_sample_failed", error=str(exc))
            await asyncio.sleep(self._interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
