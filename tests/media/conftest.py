"""Media tests run on both profiles and on both storage backends: local disk, and S3 against
moto's S3-compatible server started here on a random loopback port."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi import FastAPI
from moto.server import ThreadedMotoServer
from pydantic import SecretStr

from catalog.app import create_app
from catalog.config import Settings
from catalog.media.storage import MediaStorage
from tests.conftest import Backend, _flush_redis, _truncate

BUCKET = "catalog-media-test"
PUBLIC_READ = orjson.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{BUCKET}/*",
            }
        ],
    }
)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        r = httpx.put(f"{endpoint}/{BUCKET}", timeout=10)
        assert r.status_code == 200, r.text
        # Files are public, as behind a CDN: anyone may read, only the service writes.
        r = httpx.put(f"{endpoint}/{BUCKET}?policy", content=PUBLIC_READ, timeout=10)
        assert r.status_code in (200, 204), r.text
        yield endpoint
    finally:
        server.stop()


@pytest.fixture(params=["local", "s3"])
def storage_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


def media_settings(
    backend: Backend, kind: str, tmp_path: Path, endpoint: str | None, **overrides: object
) -> Settings:
    values: dict[str, object] = {"media_root": tmp_path / "media", "media_backend": kind}
    if kind == "s3":
        assert endpoint is not None
        values.update(
            s3_bucket=BUCKET,
            s3_prefix=f"run-{uuid.uuid4().hex[:10]}",
            s3_endpoint_url=endpoint,
            s3_access_key_id="testing",
            s3_secret_access_key=SecretStr("testing"),
        )
    values.update(overrides)
    # model_copy does not validate: values must already have their field types.
    return backend.settings.model_copy(update=values)


@pytest.fixture
def media_overrides() -> dict[str, object]:
    """Settings a test module changes for its app (e.g. the cache)."""
    return {}


@pytest.fixture
async def app(
    backend: Backend,
    storage_kind: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    media_overrides: dict[str, object],
) -> AsyncIterator[FastAPI]:
    endpoint = request.getfixturevalue("s3_endpoint") if storage_kind == "s3" else None
    settings = media_settings(backend, storage_kind, tmp_path, endpoint, **media_overrides)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        try:
            yield application
        finally:
            await _truncate(application.state.engine)
            await _flush_redis(settings)


@pytest.fixture
def storage(app: FastAPI) -> MediaStorage:
    media: MediaStorage = app.state.media_storage
    return media
