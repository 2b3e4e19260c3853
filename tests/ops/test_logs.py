"""Logs: one JSON line per request with who asked, errors with their stack trace as structured
fields, and never a password, token or API key, whatever the level."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI

import catalog.app as catalog_app
import catalog.errors as catalog_errors
import catalog.logging as catalog_logging
from catalog.kit import metrics
from catalog.models import Role
from tests.auth.helpers import (
    AUTH,
    KEYS,
    STRONG_PASSWORD,
    bearer,
    client_for,
    login_ok,
    register,
    running_app,
    settings_for,
)
from tests.conftest import ACCOUNT_PASSWORD, Account, Backend, make_account
from tests.factories import API, create_product


class Logs:
    """JSON logs at DEBUG level on the captured stdout, from `start()` on. Configured in the
    test itself: pytest swaps `sys.stdout` between a fixture's setup and the test."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def start(self) -> None:
        catalog_logging.configure_logging("DEBUG", json=True)
        # Loggers must not keep the captured stdout of this test once it ends (the app's
        # background tasks of later tests log through them).
        structlog.configure(cache_logger_on_first_use=False)
        self.capsys.readouterr()

    def text(self) -> str:
        return self.capsys.readouterr().out

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text().splitlines() if line.strip()]


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Logs]:
    """Restores the logging setup afterwards. Listed after `app`, it is torn down before the
    app's shutdown logs."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_levels = {name: logging.getLogger(name).level for name in ("aiosqlite", "asyncio")}
    uvicorn_access = logging.getLogger("uvicorn.access")
    saved_uvicorn_disabled = uvicorn_access.disabled
    saved_structlog: dict[str, Any] = structlog.get_config()
    try:
        yield Logs(capsys)
    finally:
        structlog.configure(**saved_structlog)
        for logger in (
            catalog_logging.access_log,
            catalog_app.log,
            catalog_errors.log,
            metrics.log,
        ):
            vars(logger).pop("bind", None)  # unpin loggers cached on the captured stdout
        root.handlers = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)
        uvicorn_access.disabled = saved_uvicorn_disabled


def requests(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if e.get("event") == "request"]


class TestAccessLog:
    async def test_user_route_and_client_ip(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin: Account,
        json_logs: Logs,
    ) -> None:
        json_logs.start()
        r = await client.get(f"{API}/categories", headers={"X-Request-ID": "req-42"})
        assert r.status_code == 200
        (entry,) = requests(json_logs.entries())
        assert entry["method"] == "GET"
        assert entry["route"] == "/api/v1/categories"
        assert entry["status"] == 200
        assert entry["duration_ms"] >= 0
        assert entry["request_id"] == "req-42"
        assert entry["user_id"] == str(admin.id)
        assert entry["api_key_id"] is None
        assert entry["client_ip"] == "127.0.0.1"

    async def test_api_key_and_anonymous_fast_read(
        self, app: FastAPI, client: httpx.AsyncClient, json_logs: Logs
    ) -> None:
        product = await create_product(client)
        created = await client.post(KEYS, json={"name": "logs", "scopes": ["catalog:read"]})
        assert created.status_code == 201, created.text
        key = created.json()
        json_logs.start()
        async with client_for(app, {"X-API-Key": key["key"]}, peer="192.0.2.10") as c:
            assert (await c.get(f"{API}/products/{product['id']}")).status_code == 200
        async with client_for(app, peer="192.0.2.11") as anon:
            assert (await anon.get(f"{API}/products/{product['id']}")).status_code == 200
        with_key, anonymous = requests(json_logs.entries())
        assert with_key["api_key_id"] == key["id"]
        assert with_key["user_id"] == key["owner_id"]
        assert with_key["client_ip"] == "192.0.2.10"
        assert anonymous["route"] == "/api/v1/products/{product_id}"
        assert anonymous["user_id"] is None
        assert anonymous["api_key_id"] is None
        assert anonymous["client_ip"] == "192.0.2.11"

    async def test_forwarded_address_from_a_trusted_proxy(
        self, backend: Backend, json_logs: Logs
    ) -> None:
        settings = settings_for(backend, trusted_proxies=["10.0.0.0/8"])
        json_logs.start()
        async with running_app(settings) as app, client_for(app, peer="10.0.0.5") as c:
            await c.get("/health/live", headers={"X-Forwarded-For": "198.51.100.20"})
        (entry,) = requests(json_logs.entries())
        assert entry["client_ip"] == "198.51.100.20"


class TestErrors:
    async def test_stack_trace_as_structured_fields(self, app: FastAPI, json_logs: Logs) -> None:
        async def explode() -> None:
            raise RuntimeError("the disk is on fire")

        app.add_api_route("/explode", explode)
        json_logs.start()
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            r = await c.get("/explode", headers={"X-Request-ID": "boom-1"})
        assert r.status_code == 500
        assert "fire" not in r.text  # the client gets no internals
        entries = json_logs.entries()
        (error,) = [e for e in entries if e.get("event") == "unhandled_error"]
        assert error["level"] == "error"
        assert error["request_id"] == "boom-1"
        (raised,) = error["exception"]
        assert raised["exc_type"] == "RuntimeError"
        assert raised["exc_value"] == "the disk is on fire"
        assert raised["frames"][-1]["name"] == "explode"
        assert all("locals" not in frame or not frame["locals"] for frame in raised["frames"])
        (entry,) = requests(entries)
        assert entry["status"] == 500


class TestNoSecrets:
    async def test_credentials_never_reach_the_logs(
        self, backend: Backend, json_logs: Logs
    ) -> None:
        # Every statement counts as slow here, so statements are logged too.
        settings = settings_for(backend, db_slow_query_ms=0.0001)
        secrets: list[str] = [STRONG_PASSWORD]
        json_logs.start()
        async with running_app(settings) as app, client_for(app) as c:
            await register(c, "logged@example.com")
            failed = await c.post(
                f"{AUTH}/token",
                data={"username": "logged@example.com", "password": "wrong-" + STRONG_PASSWORD},
            )
            assert failed.status_code == 401
            secrets.append("wrong-" + STRONG_PASSWORD)
            pair = await login_ok(c, "logged@example.com", STRONG_PASSWORD)
            secrets += [pair["access_token"], pair["refresh_token"]]
            refreshed = await c.post(
                f"{AUTH}/refresh", json={"refresh_token": pair["refresh_token"]}
            )
            assert refreshed.status_code == 200, refreshed.text
            secrets += [refreshed.json()["access_token"], refreshed.json()["refresh_token"]]
            access = refreshed.json()["access_token"]
            seller = await make_account(app, Role.seller)
            secrets += [ACCOUNT_PASSWORD, seller.token]
            seller_pair = await login_ok(c, seller.email, ACCOUNT_PASSWORD)
            secrets += [seller_pair["access_token"], seller_pair["refresh_token"]]
            key = await c.post(
                KEYS,
                json={"name": "ci", "scopes": ["catalog:read"]},
                headers=bearer(seller_pair["access_token"]),
            )
            assert key.status_code == 201, key.text
            secrets.append(key.json()["key"])
            listed = await c.get(f"{API}/products", headers={"X-API-Key": key.json()["key"]})
            assert listed.status_code == 200
            changed = await c.patch(
                f"{AUTH}/me",
                json={"password": "another-" + STRONG_PASSWORD, "old_password": STRONG_PASSWORD},
                headers=bearer(access),
            )
            assert changed.status_code == 200, changed.text
            secrets.append("another-" + STRONG_PASSWORD)
            await c.get(f"{AUTH}/me", headers=bearer("not-a-jwt-but-a-secret-looking-value"))
            secrets.append("not-a-jwt-but-a-secret-looking-value")
        out = json_logs.text()
        entries = [json.loads(line) for line in out.splitlines() if line.strip()]
        assert len(requests(entries)) >= 7
        assert [e for e in entries if e.get("event") == "slow_query"]
        for secret in secrets:
            assert secret not in out, f"a secret was logged: {secret[:6]}..."
        assert "argon2" not in out  # no password hash either
