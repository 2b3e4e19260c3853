"""Import tests run the job worker inside the app on both profiles, with small batches (so
that several transactions, progress updates and cancellation points happen on small files)
and the response cache on (to check that imports invalidate it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from catalog.app import create_app
from catalog.config import Settings
from tests.conftest import Backend, _flush_redis, _truncate


def import_settings(backend: Backend, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "import_in_process": True,
        "import_dir": tmp_path / "imports",
        "import_batch_rows": 4,
        "import_poll_seconds": 0.05,
        "import_lease_seconds": 30.0,
        "cache_enabled": True,
        **overrides,
    }
    return backend.settings.model_copy(update=values)


@pytest.fixture
async def app(backend: Backend, tmp_path: Path) -> AsyncIterator[FastAPI]:
    application = create_app(import_settings(backend, tmp_path))
    async with application.router.lifespan_context(application):
        try:
            yield application
        finally:
            await _truncate(application.state.engine)
            await _flush_redis(backend.settings)
