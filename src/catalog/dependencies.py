"""Typed dependency aliases shared by the routers.

The small lookups are `async def` on purpose: FastAPI runs plain `def` dependencies in its
thread pool, a hop that costs more than the lookup on every request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.analytics.recorder import EventRecorder
from catalog.config import Settings
from catalog.db import session_scope
from catalog.kit.cache import ReadCache
from catalog.products.reads import ProductReads


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async for session in session_scope(request.app.state.sessionmaker):
        # Services register cache invalidations that run after the commit.
        session.info["cache"] = request.app.state.cache
        yield session


async def get_search_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session of the search pool (see `catalog.db.create_search_engine`): reads only."""
    async for session in session_scope(request.app.state.search_sessionmaker):
        yield session


async def get_product_reads(request: Request) -> ProductReads:
    reads: ProductReads = request.app.state.product_reads
    return reads


async def get_read_cache(request: Request) -> ReadCache | None:
    read_cache: ReadCache | None = request.app.state.read_cache
    return read_cache


async def get_recorder(request: Request) -> EventRecorder | None:
    recorder: EventRecorder | None = request.app.state.recorder
    return recorder


SettingsDep = Annotated[Settings, Depends(get_settings)]
RecorderDep = Annotated[EventRecorder | None, Depends(get_recorder)]
ProductReadsDep = Annotated[ProductReads, Depends(get_product_reads)]
ReadCacheDep = Annotated[ReadCache | None, Depends(get_read_cache)]
# scope="function": the commit runs before the response is sent, so a failed commit is an error
# response rather than a lost write behind a 2xx.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
SearchSessionDep = Annotated[AsyncSession, Depends(get_search_session, scope="function")]
