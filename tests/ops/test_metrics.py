"""GET /metrics: its protection and what it counts (requests on both read paths, cache, rate
limits, search, slow queries), and multi-process mode with several workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from catalog.cli import run_migrations
from catalog.kit import metrics
from tests.auth.helpers import client_for, running_app, settings_for
from tests.conftest import Backend, make_client
from tests.factories import API, create_product

PRODUCT_ROUTE = "/api/v1/products/{product_id}"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


class TestAccess:
    async def test_loopback_is_allowed_by_default(self, anon: httpx.AsyncClient) -> None:
        r = await anon.get("/metrics")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        assert "catalog_http_requests_total" in r.text
        assert "catalog_db_pool_connections" in r.text

    async def test_other_addresses_are_refused(self, app: FastAPI) -> None:
        async with client_for(app, peer="203.0.113.7") as c:
            r = await c.get("/metrics")
        assert r.status_code == 403
        assert r.headers["content-type"] == "application/problem+json"

    async def test_allow_list_and_token(self, backend: Backend) -> None:
        settings = settings_for(
            backend, metrics_allow=["10.1.0.0/16"], metrics_token="scrape-token-123"
        )
        async with running_app(settings) as app:
            async with client_for(app, peer="10.1.2.3") as allowed:
                assert (await allowed.get("/metrics")).status_code == 200
            async with client_for(app, peer="127.0.0.1") as local:
                r = await local.get("/metrics")
                assert r.status_code == 401
                assert r.headers["www-authenticate"].startswith("Bearer")
                bad = await local.get("/metrics", headers={"Authorization": "Bearer nope"})
                assert bad.status_code == 401
                good = await local.get(
                    "/metrics", headers={"Authorization": "Bearer scrape-token-123"}
                )
                assert good.status_code == 200
            async with client_for(app, peer="10.1.2.3") as allowed:
                wrong = await allowed.get("/metrics", headers={"Authorization": "Bearer nope"})
                assert wrong.status_code == 401

    async def test_can_be_switched_off(self, backend: Backend) -> None:
        settings = settings_for(backend, metrics_enabled=False)
        async with running_app(settings) as app, client_for(app) as c:
            assert (await c.get("/metrics")).status_code == 404


class TestRequests:
    async def test_counted_by_route_template_and_status(
        self, client: httpx.AsyncClient, anon: httpx.AsyncClient
    ) -> None:
        product = await create_product(client)
        ok = {"method": "GET", "route": PRODUCT_ROUTE, "status": "200"}
        missing = {"method": "GET", "route": PRODUCT_ROUTE, "status": "404"}
        before = sample("catalog_http_requests_total", **ok)
        before_404 = sample("catalog_http_requests_total", **missing)
        before_hist = sample("catalog_http_request_duration_seconds_count", **ok)
        for _ in range(3):  # anonymous: answered by the fast read path, before routing
            assert (await anon.get(f"{API}/products/{product['id']}")).status_code == 200
        # with credentials: answered by the router
        assert (await client.get(f"{API}/products/{product['id']}")).status_code == 200
        assert (await anon.get(f"{API}/products/{'0' * 32}")).status_code == 404
        assert sample("catalog_http_requests_total", **ok) == before + 4
        assert sample("catalog_http_request_duration_seconds_count", **ok) == before_hist + 4
        assert sample("catalog_http_requests_total", **missing) == before_404 + 1

        r = await anon.get("/metrics")
        values = parse(r.text)
        key = tuple(sorted(ok.items()))
        assert values[("catalog_http_requests_total", key)] == before + 4
        assert ("catalog_http_requests_in_flight", ()) in values

    async def test_unmatched_paths_share_one_series(self, anon: httpx.AsyncClient) -> None:
        labels = {"method": "GET", "route": "unmatched", "status": "404"}
        before = sample("catalog_http_requests_total", **labels)
        await anon.get("/no/such/path/1")
        await anon.get("/no/such/path/2")
        assert sample("catalog_http_requests_total", **labels) == before + 2

    async def test_in_flight_returns_to_its_level(self, anon: httpx.AsyncClient) -> None:
        before = sample("catalog_http_requests_in_flight")
        await anon.get("/health/live")
        assert sample("catalog_http_requests_in_flight") == before


class TestSubsystems:
    async def test_cache_hits_and_misses_by_cache(self, backend: Backend) -> None:
        settings = settings_for(backend, cache_enabled=True)
        async with running_app(settings) as app:
            admin_headers = await _admin_headers(app)
            async with make_client(app, admin_headers) as admin, client_for(app) as anon:
                product = await create_product(admin)
                hits = sample("catalog_cache_requests_total", cache="product", result="hit")
                misses = sample("catalog_cache_requests_total", cache="product", result="miss")
                for _ in range(3):
                    assert (await anon.get(f"{API}/products/{product['id']}")).status_code == 200
        assert sample("catalog_cache_requests_total", cache="product", result="miss") == misses + 1
        assert sample("catalog_cache_requests_total", cache="product", result="hit") == hits + 2

    async def test_rate_limit_rejections(self, backend: Backend) -> None:
        settings = settings_for(backend, rate_limit_anonymous="2/minute")
        before = sample("catalog_rate_limit_rejections_total", limit="ip")
        async with running_app(settings) as app, client_for(app, peer="198.51.100.9") as c:
            statuses = [(await c.get(f"{API}/categories")).status_code for _ in range(4)]
        assert statuses == [200, 200, 429, 429]
        assert sample("catalog_rate_limit_rejections_total", limit="ip") == before + 2

    async def test_search_latency_and_zero_results(
        self, client: httpx.AsyncClient, anon: httpx.AsyncClient
    ) -> None:
        await create_product(client, name="Walnut desk lamp")
        searches = sample("catalog_search_duration_seconds_count")
        zero = sample("catalog_search_zero_results_total")
        assert (await anon.get(f"{API}/search", params={"q": "lamp"})).json()["total"] == 1
        assert (await anon.get(f"{API}/search", params={"q": "xylophonezz"})).json()["total"] == 0
        assert sample("catalog_search_duration_seconds_count") == searches + 2
        assert sample("catalog_search_zero_results_total") == zero + 1

    async def test_import_rows(self, backend: Backend, tmp_path: Path) -> None:
        from catalog.app import create_app
        from catalog.models import Role
        from tests.conftest import _truncate, make_account
        from tests.imports.conftest import import_settings
        from tests.imports.helpers import run_import, to_csv

        app = create_app(import_settings(backend, tmp_path))
        async with app.router.lifespan_context(app):
            try:
                admin = await make_account(app, Role.admin)
                before = sample("catalog_import_rows_total")
                rows = [
                    [f"M-{i}", "Lamp", "", "", "active", "", "", "USD", f"M-{i}-A", "9.00", 1]
                    for i in range(7)
                ]
                rows.append(["M-BAD", "", "", "", "active", "", "", "USD", "M-BAD-A", "x", 1])
                async with make_client(app, admin.headers) as c:
                    job = await run_import(c, to_csv(rows))
                assert job["status"] == "succeeded", job
                assert sample("catalog_import_rows_total") == before + 8  # failed rows too
            finally:
                await _truncate(app.state.engine)

    async def test_image_processing_time(self, client: httpx.AsyncClient) -> None:
        from tests.media.images import jpeg, png

        product = await create_product(client)
        before = sample("catalog_image_processing_seconds_count")
        before_sum = sample("catalog_image_processing_seconds_sum")
        r = await client.post(
            f"{API}/products/{product['id']}/images",
            files=[
                ("files", ("a.jpg", jpeg(400, 300), "image/jpeg")),
                ("files", ("b.png", png(300, 300), "image/png")),
            ],
        )
        assert r.status_code == 201, r.text
        assert sample("catalog_image_processing_seconds_count") == before + 2
        assert sample("catalog_image_processing_seconds_sum") > before_sum

    async def test_query_latency_and_pools(
        self, backend: Backend, client: httpx.AsyncClient, anon: httpx.AsyncClient
    ) -> None:
        before = sample("catalog_db_query_duration_seconds_count", pool="orm")
        await create_product(client)
        assert sample("catalog_db_query_duration_seconds_count", pool="orm") > before
        values = parse((await anon.get("/metrics")).text)
        in_use = (("pool", "orm"), ("state", "in_use"))
        assert ("catalog_db_pool_connections", in_use) in values
        if backend.profile == "production":
            product = await create_product(client)
            reads = sample("catalog_db_query_duration_seconds_count", pool="reads")
            assert (await anon.get(f"{API}/products/{product['id']}")).status_code == 200
            assert sample("catalog_db_query_duration_seconds_count", pool="reads") == reads + 1
            values = parse((await anon.get("/metrics")).text)
            assert values[("catalog_db_pool_connections", (("pool", "reads"), ("state", "max")))]


async def _admin_headers(app: FastAPI) -> dict[str, str]:
    from catalog.models import Role
    from tests.conftest import make_account

    return (await make_account(app, Role.admin)).headers


class TestSlowQueries:
    def test_statements_lose_their_literals(self) -> None:
        statement = "SELECT * FROM user_account WHERE email = 'a@b.c' AND n > 42 AND x = $1"
        assert metrics.redact_statement(statement) == (
            "SELECT * FROM user_account WHERE email = ? AND n > ? AND x = $1"
        )

    async def test_logged_over_the_threshold_without_values(self, backend: Backend) -> None:
        settings = settings_for(backend, db_slow_query_ms=0.0001)
        async with running_app(settings) as app, client_for(app) as c:
            with structlog.testing.capture_logs() as logs:
                r = await c.get(f"{API}/search", params={"q": "confidentialword"})
                assert r.status_code == 200
        slow = [e for e in logs if e["event"] == "slow_query"]
        assert slow
        assert all(e["duration_ms"] >= 0 and e["statement"] for e in slow)
        assert not any("confidentialword" in repr(e) for e in slow)

    async def test_product_reads_pool_too(self, backend: Backend) -> None:
        settings = settings_for(backend, db_slow_query_ms=0.0001)
        async with running_app(settings) as app:
            admin = await _admin_headers(app)
            async with make_client(app, admin) as c:
                product = await create_product(c)
            async with client_for(app) as anon:
                with structlog.testing.capture_logs() as logs:
                    r = await anon.get(f"{API}/products/{product['id']}")
                    assert r.status_code == 200
        slow = [e for e in logs if e["event"] == "slow_query"]
        assert slow
        assert not any(product["id"] in repr(e) for e in slow)
        if backend.profile == "production":  # the asyncpg pool of the product reads
            assert any("$1" in e["statement"] for e in slow)

    async def test_not_logged_under_the_threshold(self, backend: Backend) -> None:
        async with running_app(settings_for(backend)) as app, client_for(app) as c:
            with structlog.testing.capture_logs() as logs:
                assert (await c.get(f"{API}/categories")).status_code == 200
        assert not [e for e in logs if e["event"] == "slow_query"]


class TestMultiProcess:
    def test_dead_workers_are_marked(self, tmp_path: Path) -> None:
        for name in ("gauge_livesum_111.db", "gauge_livesum_222.db", "counter_111.db"):
            (tmp_path / name).write_bytes(b"")
        dead = metrics.mark_dead_workers(tmp_path, alive=lambda pid: pid == 222)
        assert dead == [111]
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "counter_111.db",  # counters of a dead worker still count
            "gauge_livesum_222.db",
        ]

    def test_serve_prepares_the_directory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from catalog.cli import _multiprocess_metrics_dir

        given = tmp_path / "given"
        monkeypatch.setenv(metrics.MULTIPROC_ENV, str(given))
        assert _multiprocess_metrics_dir() is None  # the operator's directory: kept
        assert given.is_dir()
        (given / "counter_123.db").write_bytes(b"")  # a previous run's file
        assert _multiprocess_metrics_dir() is None
        assert list(given.iterdir()) == []
        monkeypatch.delenv(metrics.MULTIPROC_ENV)
        fresh = _multiprocess_metrics_dir()
        try:
            assert fresh is not None
            assert fresh.is_dir()
            assert os.environ[metrics.MULTIPROC_ENV] == str(fresh)
        finally:
            os.environ.pop(metrics.MULTIPROC_ENV, None)
            if fresh is not None:
                fresh.rmdir()

    def test_serve_with_two_workers_merges_their_metrics(self, tmp_path: Path) -> None:
        db = tmp_path / "catalog.db"
        url = f"sqlite+aiosqlite:///{db}"
        run_migrations(url)
        port = _free_port()
        env: dict[str, Any] = {
            k: v for k, v in os.environ.items() if not k.startswith(("CATALOG_", "PROMETHEUS_"))
        }
        env |= {
            "CATALOG_DATABASE_URL": url,
            "CATALOG_MEDIA_ROOT": str(tmp_path / "media"),
            "CATALOG_LOG_LEVEL": "WARNING",
            "CATALOG_ENVIRONMENT": "test",
        }
        server = subprocess.Popen(  # noqa: S603
            [
                str(Path(sys.executable).parent / "catalog"),
                "serve",
                "--port",
                str(port),
                "--workers",
                "2",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # a process group of its own: nothing of it outlives the test
        )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_ready(base, server)
            key = (("method", "GET"), ("route", "/health/live"), ("status", "200"))
            with httpx.Client(base_url=base, timeout=30) as c:
                # The probes of _wait_ready are counted too (also those it gave up waiting for).
                before = parse(c.get("/metrics").text)[("catalog_http_requests_total", key)]
                for _ in range(40):  # new connections: both workers get some
                    with httpx.Client(base_url=base, timeout=30) as one:
                        assert one.get("/health/live").status_code == 200
                values = parse(c.get("/metrics").text)
            assert values[("catalog_http_requests_total", key)] - before == 40
            pids = {
                dict(labels).get("pid")
                for (name, labels) in values
                if name == "catalog_http_requests_in_flight"
            }
            assert pids == {None}  # live sum over workers: one series
            assert values[("catalog_http_requests_in_flight", ())] == 1  # the scrape itself
        finally:
            server.terminate()
            try:
                _, err = server.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                # A worker still starting when the server was stopped can outlive it, holding
                # the pipe open: the whole group goes.
                os.killpg(server.pid, signal.SIGKILL)
                server.communicate(timeout=30)
                raise
        assert b"Traceback" not in err, err.decode()[-2000:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120  # a loaded machine starts workers slowly
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"server exited: {server.stderr.read().decode() if server.stderr else ''}")
        try:
            if httpx.get(f"{base}/health/live", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail("server did not start within 120 s")
