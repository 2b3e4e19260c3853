"""Application factory: `create_app(settings)` wires the engine, Redis and the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import APIRouter, FastAPI
from redis.asyncio import Redis

from catalog import models  # noqa: F401 - registers every table
from catalog.brands.router import router as brands_router
from catalog.categories.router import router as categories_router
from catalog.config import Settings
from catalog.db import create_engine, create_sessionmaker
from catalog.errors import install_error_handlers
from catalog.logging import RequestContextMiddleware, configure_logging
from catalog.ops.router import router as ops_router
from catalog.products.router import router as products_router

log = structlog.get_logger(__name__)

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.redis = (
            Redis.from_url(settings.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
            if settings.redis_url
            else None
        )
        log.info("startup", profile=settings.profile, environment=settings.environment.value)
        try:
            yield
        finally:
            if app.state.redis is not None:
                await app.state.redis.aclose()
            await engine.dispose()
            log.info("shutdown")

    app = FastAPI(
        title="Product Catalog Service",
        version="0.1.0",
        description="Products with variants, hierarchical categories and brands.",
        lifespan=lifespan,
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
    )
    app.state.settings = settings
    install_error_handlers(app)

    api = APIRouter(prefix=API_PREFIX)
    api.include_router(products_router)
    api.include_router(categories_router)
    api.include_router(brands_router)
    app.include_router(api)
    app.include_router(ops_router)

    app.add_middleware(RequestContextMiddleware)
    return app


def app_from_env() -> FastAPI:
    """Entry point for `uvicorn --factory catalog.app:app_from_env`."""
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    return create_app(settings)
