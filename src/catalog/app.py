"""Application factory: `create_app(settings)` wires the engine, Redis and the routers."""

from __future__ import annotations

import gc
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.telemetry import TelemetryConfig
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from catalog import models  # noqa: F401 - registers every table
from catalog.analytics.ratings import router as ratings_router
from catalog.analytics.recorder import EventRecorder
from catalog.analytics.router import router as analytics_router
from catalog.auth.dependencies import rate_limit
from catalog.auth.passwords import Passwords
from catalog.auth.revocation import MemoryRevocationStore, RedisRevocationStore, RevocationStore
from catalog.auth.router import api_keys_router, auth_router, users_router
from catalog.auth.service import Auth
from catalog.auth.tokens import TokenService
from catalog.brands.router import router as brands_router
from catalog.categories.router import router as categories_router
from catalog.config import Environment, Settings
from catalog.db import create_engine, create_search_engine, create_sessionmaker
from catalog.errors import install_error_handlers, responses
from catalog.imports.router import exports_router
from catalog.imports.router import router as imports_router
from catalog.imports.worker import ImportWorker
from catalog.kit import metrics
from catalog.kit.cache import Cache, MemoryCache, ReadCache, RedisCache
from catalog.kit.clientip import parse_networks
from catalog.kit.fastpath import FastReadMiddleware
from catalog.kit.ratelimit import RateLimiter, RateLimitHeadersMiddleware
from catalog.kit.security import BodySizeLimitMiddleware, SecurityHeadersMiddleware
from catalog.logging import RequestContextMiddleware, configure_logging
from catalog.media.processing import ImageProcessor
from catalog.media.router import files_router, images_router, product_images_router
from catalog.media.storage import MediaStorage, storage_from_settings
from catalog.ops.router import metrics_router
from catalog.ops.router import router as ops_router
from catalog.products.reads import product_reads_for
from catalog.products.router import router as products_router
from catalog.search.backend import backend_for
from catalog.search.router import router as search_router
from catalog.search.service import SearchMemo
from catalog.web.router import router as dashboard_router
from catalog.web.router import static_files

log = structlog.get_logger(__name__)

API_PREFIX = "/api/v1"
IMAGE_UPLOAD_PATH = re.compile(r"^/api/v1/products/[^/]+/images$")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        metrics.instrument_engine(engine, settings.db_slow_query_ms)
        search_engine = create_search_engine(settings, engine)
        app.state.search_engine = search_engine
        app.state.search_sessionmaker = create_sessionmaker(search_engine)
        if search_engine is not engine:
            metrics.instrument_engine(search_engine, settings.db_slow_query_ms)
        product_reads = await product_reads_for(settings, engine)
        app.state.product_reads = product_reads
        redis = (
            Redis.from_url(
                settings.redis_url,
                socket_timeout=2.0,
                socket_connect_timeout=2.0,
                # A pooled connection that died with a Redis restart is replaced at once: one
                # immediate retry on a fresh connection, no backoff (an outage fails fast).
                retry=Retry(NoBackoff(), 1),
                retry_on_error=[RedisConnectionError, RedisTimeoutError],
            )
            if settings.redis_url
            else None
        )
        app.state.redis = redis
        revocations: RevocationStore = (
            RedisRevocationStore(redis, settings.redis_prefix, settings.access_token_ttl_seconds)
            if redis is not None
            else MemoryRevocationStore(settings.access_token_ttl_seconds)
        )
        app.state.auth = Auth(
            settings=settings,
            passwords=Passwords(settings),
            tokens=TokenService(settings),
            revocations=revocations,
        )
        app.state.ratelimiter = RateLimiter(settings, redis)
        app.state.ratelimiter.start()
        cache: Cache | None = None
        if settings.cache_enabled:
            cache = (
                RedisCache(redis, settings.redis_prefix, l1_ttl=settings.cache_l1_ttl_seconds)
                if redis is not None
                else MemoryCache()
            )
            await cache.start()
        app.state.cache = cache
        app.state.read_cache = ReadCache(cache) if cache is not None else None
        app.state.search_backend = backend_for(engine.dialect.name)
        app.state.search_memo = SearchMemo(cache) if cache is not None else None
        media_storage: MediaStorage = storage_from_settings(settings)
        app.state.media_storage = media_storage
        app.state.image_processor = ImageProcessor(settings)
        recorder = EventRecorder(engine)
        recorder.start()
        app.state.recorder = recorder
        import_worker: ImportWorker | None = None
        if settings.runs_imports_in_process:
            import_worker = ImportWorker(settings, engine, cache)
            import_worker.start()
        app.state.import_worker = import_worker
        sampler = metrics.PoolSampler(
            engine, product_reads, settings.metrics_sample_seconds, search_engine
        )
        sampler.start()
        if settings.environment != Environment.test:
            # What the worker has made so far (modules, models, routes, pools) lives as long as
            # the process: kept out of the garbage collector's sight, a full collection no
            # longer walks all of it, which paused the worker for tens of milliseconds under
            # load (the slowest 1% of cached reads took twice as long). Tests build an app per
            # test and would keep every one.
            gc.collect()
            gc.freeze()
        log.info("startup", profile=settings.profile, environment=settings.environment.value)
        try:
            yield
        finally:
            # Users of Redis and the database stop first, then the connections close.
            await sampler.stop()
            if import_worker is not None:
                await import_worker.close()
            await recorder.stop()
            await media_storage.close()
            if cache is not None:
                await cache.close()
            await app.state.ratelimiter.close()
            if app.state.redis is not None:
                await app.state.redis.aclose()
            await product_reads.close()
            if search_engine is not engine:
                await search_engine.dispose()
            await engine.dispose()
            metrics.worker_stopped()
            log.info("shutdown")

    app = FastAPI(
        title="Product Catalog Service",
        version="0.1.0",
        description="Products with variants, hierarchical categories and brands.",
        lifespan=lifespan,
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        telemetry=_telemetry(),
    )
    app.state.settings = settings
    app.state.trusted_proxies = parse_networks(settings.trusted_proxies)
    install_error_handlers(app)

    api = APIRouter(
        prefix=API_PREFIX,
        dependencies=[Depends(rate_limit)],
        # 401: credentials that are sent are checked on every route, public ones included;
        # 503: the database is down or busy (catalog.errors.database_unavailable).
        responses=responses(401, 413, 429, 503),
    )
    # A request is routed by trying the routes in this order: the most requested first.
    api.include_router(search_router)
    api.include_router(products_router)
    api.include_router(categories_router)
    api.include_router(brands_router)
    api.include_router(auth_router)
    api.include_router(users_router)
    api.include_router(api_keys_router)
    api.include_router(ratings_router)
    api.include_router(analytics_router)
    api.include_router(imports_router)
    api.include_router(exports_router)
    api.include_router(product_images_router)
    api.include_router(images_router)
    app.include_router(api)
    app.include_router(ops_router)
    app.include_router(dashboard_router)
    app.mount("/dashboard/static", static_files(), name="dashboard-static")
    if settings.metrics_enabled:
        app.include_router(metrics_router)
    if settings.media_backend == "local":
        app.include_router(files_router)

    # Pure ASGI middleware, outermost last.
    if settings.fast_reads_enabled:
        app.add_middleware(FastReadMiddleware)
    app.add_middleware(RateLimitHeadersMiddleware)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        overrides={
            # Catalog imports: the file plus room for the multipart envelope and form fields.
            f"{API_PREFIX}/imports": settings.import_max_bytes + 64 * 1024,
            # Image uploads: every file at its limit, plus room for the multipart framing.
            IMAGE_UPLOAD_PATH: settings.media_max_upload_bytes
            * settings.media_max_files_per_request
            + 64 * 1024,
        },
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=settings.cors_allow_credentials,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "If-None-Match",
                "X-API-Key",
                "X-Request-ID",
            ],
            expose_headers=[
                "ETag",
                "Location",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "Retry-After",
                "X-Request-ID",
            ],
            max_age=600,
        )
    app.add_middleware(
        SecurityHeadersMiddleware,
        hsts=settings.environment == Environment.production,
        trusted=app.state.trusted_proxies,
    )
    if settings.metrics_enabled:
        app.add_middleware(metrics.MetricsMiddleware)
    app.add_middleware(RequestContextMiddleware)
    return app


def _telemetry() -> TelemetryConfig:
    """OpenTelemetry tracing when its standard settings are present: with
    `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) FastAPI exports a
    span per request over OTLP/HTTP. Without them it is off, so no request pays for checking the
    global tracer and meter providers. Metrics are Prometheus' (`/metrics`), logs our JSON lines."""
    configured = any(
        os.environ.get(name)
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )
    return {
        "tracing": configured,
        "metrics": False,
        "logs": False,
        "auto_configure": configured,
    }


def app_from_env() -> FastAPI:
    """Entry point for `uvicorn --factory catalog.app:app_from_env`."""
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    return create_app(settings)
