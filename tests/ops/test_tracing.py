"""Optional OpenTelemetry tracing: with the standard OTLP endpoint setting, every request is
exported as a span over OTLP/HTTP; without it nothing is exported."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator, MutableMapping
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from catalog.app import create_app
from catalog.config import Settings
from tests.conftest import make_client, make_settings


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        return None


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[None]:
    """The app's ASGI lifespan as a server runs it (FastAPI sets telemetry up there)."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send(message: MutableMapping[str, Any]) -> None:
        await outbox.put(dict(message))

    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, send)
    )
    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
        await task


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    received: list[tuple[str, bytes]] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def _settings(tmp_path: Path) -> Settings:
    return make_settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}")


async def test_nothing_is_exported_without_settings(
    collector: tuple[str, list[tuple[str, bytes]]], tmp_path: Path
) -> None:
    _endpoint, received = collector
    app = create_app(_settings(tmp_path))
    async with served(app), make_client(app) as anon:
        assert (await anon.get("/health/live")).status_code == 200
    assert received == []


async def test_spans_are_exported_when_an_endpoint_is_set(
    collector: tuple[str, list[tuple[str, bytes]]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """OpenTelemetry's global providers are set once per process (as in a server, one app per
    process), so this runs once, on its own database, after the test without settings."""
    endpoint, received = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "catalog-test")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    app = create_app(_settings(tmp_path))
    async with served(app), make_client(app) as anon:
        assert (await anon.get("/health/live")).status_code == 200
        assert (await anon.get("/api/v1/nothing-here")).status_code == 404
    # The exporter flushes at shutdown at the latest.
    traces = [body for path, body in received if path == "/v1/traces"]
    assert traces, received
    assert any(b"/health/live" in body for body in traces)
    assert any(b"catalog-test" in body for body in traces)
