"""Health probes, request ids, JSON access logs and problem+json for routing errors."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI

import catalog.app as catalog_app
import catalog.errors as catalog_errors
import catalog.logging as catalog_logging
from catalog.app import create_app
from catalog.config import Settings
from tests.conftest import Backend
from tests.conftest import make_settings as make_settings

UNREACHABLE_PG = "postgresql+asyncpg://postgres@127.0.0.1:1/catalog"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client on a fresh app built from `settings`, with its lifespan entered."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


class TestLive:
    async def test_live_is_200(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/health/live")
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {"status": "ok"}

    async def test_live_touches_no_dependency(self) -> None:
        settings = make_settings(database_url=UNREACHABLE_PG, redis_url=UNREACHABLE_REDIS)
        async with running(settings) as client:
            r = await client.get("/health/live")
        assert r.status_code == 200
        assert r.json() == {"status": "ok"}


class TestReady:
    async def test_ready_checks_every_dependency_of_the_profile(
        self, client: httpx.AsyncClient, backend: Backend
    ) -> None:
        r = await client.get("/health/ready")
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        body = r.json()
        assert body["status"] == "ok"
        assert body["profile"] == backend.profile
        database = body["checks"]["database"]
        assert database["status"] == "up"
        assert database["latency_ms"] >= 0
        if backend.profile == "production":
            assert set(body["checks"]) == {"database", "redis", "media"}
            assert body["checks"]["redis"]["status"] == "up"
            assert body["checks"]["redis"]["latency_ms"] >= 0
        else:
            assert set(body["checks"]) == {"database", "media"}
        assert body["checks"]["media"]["status"] == "up"

    async def test_unreachable_redis_is_503_naming_redis(self, backend: Backend) -> None:
        settings = make_settings(
            database_url=backend.settings.database_url, redis_url=UNREACHABLE_REDIS
        )
        async with running(settings) as client:
            r = await client.get("/health/ready")
        assert r.status_code == 503
        assert r.headers["cache-control"] == "no-store"
        body = r.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["database"]["status"] == "up"
        redis = body["checks"]["redis"]
        assert redis["status"] == "down"
        assert redis["error"]
        assert "latency_ms" not in redis or redis["latency_ms"] is None

    async def test_unreachable_database_is_503_naming_the_database(self, backend: Backend) -> None:
        settings = make_settings(database_url=UNREACHABLE_PG, redis_url=backend.settings.redis_url)
        async with running(settings) as client:
            r = await client.get("/health/ready")
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "unavailable"
        database = body["checks"]["database"]
        assert database["status"] == "down"
        assert database["error"]
        if backend.settings.redis_url:
            assert body["profile"] == "production"
            assert body["checks"]["redis"]["status"] == "up"
        else:
            assert body["profile"] == "embedded"
            assert set(body["checks"]) == {"database", "media"}


class TestRequestId:
    async def test_valid_id_is_echoed(self, client: httpx.AsyncClient) -> None:
        request_id = "req-42_abc.DEF"
        r = await client.get("/health/live", headers={"X-Request-ID": request_id})
        assert r.status_code == 200
        assert r.headers["x-request-id"] == request_id
        assert r.headers.get_list("x-request-id") == [request_id]

    async def test_missing_id_is_generated(self, client: httpx.AsyncClient) -> None:
        first = await client.get("/health/live")
        second = await client.get("/health/live")
        assert GENERATED_ID.match(first.headers["x-request-id"])
        assert GENERATED_ID.match(second.headers["x-request-id"])
        assert first.headers["x-request-id"] != second.headers["x-request-id"]

    @pytest.mark.parametrize(
        "bad",
        [
            pytest.param(b"x" * 129, id="too-long"),
            pytest.param(b"has spaces in it", id="spaces"),
            pytest.param(b"line\nbreak", id="newline"),
            pytest.param(b"tab\there", id="tab"),
            pytest.param(b"", id="empty"),
        ],
    )
    async def test_invalid_id_is_replaced(self, client: httpx.AsyncClient, bad: bytes) -> None:
        # Raw headers, so httpx does not refuse the invalid values before they reach the app.
        request = client.build_request("GET", "/health/live")
        request.headers = httpx.Headers([*request.headers.raw, (b"x-request-id", bad)])
        r = await client.send(request)
        assert r.status_code == 200
        echoed = r.headers["x-request-id"]
        assert echoed.encode() != bad
        assert GENERATED_ID.match(echoed)

    async def test_id_is_on_error_responses_too(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/no/such/route", headers={"X-Request-ID": "trace-404"})
        assert r.status_code == 404
        assert r.headers["x-request-id"] == "trace-404"


@pytest.fixture
def restore_logging(app: FastAPI) -> Iterator[None]:
    """Puts the logging setup back after a test that calls `configure_logging`.

    The test must call it itself: pytest swaps `sys.stdout` between the setup and call phases,
    and the loggers write to the stream that was `sys.stdout` when they were configured.
    Depends on `app` so that the app's shutdown (which logs) comes after the restore."""
    del app
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    uvicorn_access = logging.getLogger("uvicorn.access")
    saved_uvicorn_disabled = uvicorn_access.disabled
    saved_structlog: dict[str, Any] = structlog.get_config()
    try:
        yield
    finally:
        structlog.configure(**saved_structlog)
        # cache_logger_on_first_use pinned these loggers to the captured stdout: unpin them.
        for logger in (catalog_logging.access_log, catalog_app.log, catalog_errors.log):
            vars(logger).pop("bind", None)
        root.handlers = saved_handlers
        root.setLevel(saved_level)
        uvicorn_access.disabled = saved_uvicorn_disabled


def _json_logs(capsys: pytest.CaptureFixture[str]) -> None:
    """Switches to JSON logs on the current (captured) stdout and drops what was captured."""
    catalog_logging.configure_logging("INFO", json=True)
    capsys.readouterr()


def _log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    out = capsys.readouterr().out
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.mark.usefixtures("restore_logging")
class TestAccessLog:
    async def test_one_json_line_per_request(
        self, client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
    ) -> None:
        _json_logs(capsys)
        r = await client.get("/health/live", headers={"X-Request-ID": "log-check-1"})
        assert r.status_code == 200
        lines = _log_lines(capsys)
        access = [line for line in lines if line.get("event") == "request"]
        assert len(access) == 1, lines
        entry = access[0]
        assert entry["method"] == "GET"
        assert entry["path"] == "/health/live"
        assert entry["route"] == "/health/live"
        assert entry["status"] == 200
        assert isinstance(entry["duration_ms"], int | float)
        assert entry["duration_ms"] >= 0
        assert entry["request_id"] == r.headers["x-request-id"] == "log-check-1"
        assert entry["level"] == "info"
        assert entry["timestamp"]

    async def test_route_is_the_template_and_generated_id_matches(
        self, client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
    ) -> None:
        _json_logs(capsys)
        path = "/api/v1/brands/00000000-0000-0000-0000-000000000000"
        r = await client.get(path)
        assert r.status_code == 404
        access = [line for line in _log_lines(capsys) if line.get("event") == "request"]
        assert len(access) == 1
        entry = access[0]
        assert entry["path"] == path
        assert entry["route"] == "/api/v1/brands/{brand_id}"
        assert entry["status"] == 404
        assert GENERATED_ID.match(entry["request_id"])
        assert entry["request_id"] == r.headers["x-request-id"]

    async def test_unknown_route_has_no_route_template(
        self, client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
    ) -> None:
        _json_logs(capsys)
        r = await client.get("/nowhere")
        assert r.status_code == 404
        access = [line for line in _log_lines(capsys) if line.get("event") == "request"]
        assert len(access) == 1
        assert access[0]["route"] is None
        assert access[0]["status"] == 404
        assert access[0]["request_id"] == r.headers["x-request-id"]


class TestProblemResponses:
    async def test_unknown_route_is_404_problem(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/api/v1/does-not-exist")
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert problem["status"] == 404
        assert problem["title"] == "Not Found"
        assert problem["type"] == "about:blank"

    async def test_wrong_method_is_405_problem(self, client: httpx.AsyncClient) -> None:
        r = await client.post("/health/live")
        assert r.status_code == 405
        assert r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert problem["status"] == 405
        assert problem["title"] == "Method Not Allowed"
        assert "GET" in r.headers["allow"]
