from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from catalog.config import Settings
from catalog.models import Role
from tests.auth.helpers import (
    PROBLEM,
    assert_problem,
    assert_unauthorized,
    client_for,
    login,
    running_app,
    settings_for,
)
from tests.conftest import Account, Backend, make_account
from tests.factories import API, create_product

PRODUCTION_SECRET = "a-production-secret-that-is-long-enough-0123456789"
HSTS = "strict-transport-security"


def assert_security_headers(r: httpx.Response) -> None:
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert r.headers["x-frame-options"] == "DENY"


class TestSecurityHeaders:
    async def test_on_every_kind_of_response(
        self, app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
    ) -> None:
        responses = [
            await anon.get(f"{API}/brands"),
            await anon.get(f"{API}/brands/not-a-uuid"),  # 422
            await anon.get(f"{API}/no-such-route"),  # 404
            await anon.post(f"{API}/brands", json={"name": "x"}),  # 401
            await client.post(f"{API}/brands", json={"name": "Headers"}),  # 201
        ]
        assert [r.status_code for r in responses] == [200, 422, 404, 401, 201]
        for r in responses:
            assert_security_headers(r)
            assert HSTS not in r.headers  # not in the test environment
        assert responses[2].headers["content-type"] == PROBLEM
        async with client_for(app, base_url="https://test") as https:
            r = await https.get(f"{API}/brands")
            assert r.status_code == 200
            assert HSTS not in r.headers  # https, but not the production environment

    async def test_hsts_only_over_https_in_production(self, backend: Backend) -> None:
        settings = settings_for(backend, environment="production", secret_key=PRODUCTION_SECRET)
        async with running_app(settings) as app:
            async with client_for(app, base_url="https://test") as https:
                r = await https.get(f"{API}/brands")
                assert r.status_code == 200
                assert r.headers[HSTS] == "max-age=31536000; includeSubDomains"
                assert_security_headers(r)
                r = await https.get(f"{API}/no-such-route")
                assert r.headers[HSTS].startswith("max-age=")
            async with client_for(app) as http:
                r = await http.get(f"{API}/brands")
                assert r.status_code == 200
                assert HSTS not in r.headers
                assert_security_headers(r)

    def test_production_refuses_a_short_secret(self) -> None:
        with pytest.raises(ValidationError, match="32 characters"):
            Settings(environment="production", secret_key="too-short")  # type: ignore[arg-type]


@pytest.fixture
async def cors_app(backend: Backend) -> AsyncIterator[FastAPI]:
    async with running_app(settings_for(backend, cors_origins=["https://shop.example"])) as a:
        yield a


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }


class TestCors:
    async def test_preflight_from_an_allowed_origin(self, cors_app: FastAPI) -> None:
        async with client_for(cors_app) as c:
            r = await c.options(f"{API}/products", headers=preflight("https://shop.example"))
            assert r.status_code == 200
            assert r.headers["access-control-allow-origin"] == "https://shop.example"
            assert "POST" in r.headers["access-control-allow-methods"]
            allowed = r.headers["access-control-allow-headers"].lower()
            assert "authorization" in allowed
            assert "content-type" in allowed
            assert "access-control-allow-credentials" not in r.headers
            assert int(r.headers["access-control-max-age"]) > 0

            r = await c.get(f"{API}/brands", headers={"Origin": "https://shop.example"})
            assert r.status_code == 200
            assert r.headers["access-control-allow-origin"] == "https://shop.example"
            exposed = r.headers["access-control-expose-headers"].lower()
            assert "etag" in exposed
            assert "ratelimit-remaining" in exposed

    async def test_other_origins_are_not_allowed(self, cors_app: FastAPI) -> None:
        async with client_for(cors_app) as c:
            for origin in ["https://evil.example", "https://shop.example.evil.com", "null"]:
                r = await c.options(f"{API}/products", headers=preflight(origin))
                assert r.status_code == 400, origin
                assert "access-control-allow-origin" not in r.headers
                r = await c.get(f"{API}/brands", headers={"Origin": origin})
                assert r.status_code == 200
                assert "access-control-allow-origin" not in r.headers

    async def test_no_cors_unless_configured(self, anon: httpx.AsyncClient) -> None:
        r = await anon.get(f"{API}/brands", headers={"Origin": "https://shop.example"})
        assert "access-control-allow-origin" not in r.headers
        r = await anon.options(f"{API}/products", headers=preflight("https://shop.example"))
        assert "access-control-allow-origin" not in r.headers

    def test_wildcard_with_credentials_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="CORS"):
            Settings(cors_origins=["*"], cors_allow_credentials=True)
        Settings(cors_origins=["*"])  # wildcard alone is allowed
        Settings(cors_origins=["https://shop.example"], cors_allow_credentials=True)


@pytest.fixture
async def small_body_app(backend: Backend) -> AsyncIterator[FastAPI]:
    async with running_app(settings_for(backend, max_body_bytes=2048)) as a:
        yield a


class TestBodySizeLimit:
    async def test_declared_length_over_the_limit_is_413(self, small_body_app: FastAPI) -> None:
        admin = await make_account(small_body_app, Role.admin)
        async with client_for(small_body_app, admin.headers) as c:
            r = await c.post(f"{API}/brands", json={"name": "Big", "description": "x" * 3000})
            problem = assert_problem(r, 413)
            assert "2048" in problem["detail"]
            # just under the limit is fine
            r = await c.post(f"{API}/brands", json={"name": "Small", "description": "x" * 1900})
            assert r.status_code == 201, r.text
            names = [b["name"] for b in (await c.get(f"{API}/brands")).json()["items"]]
            assert names == ["Small"]

    async def test_streamed_body_over_the_limit_is_413(self, small_body_app: FastAPI) -> None:
        admin = await make_account(small_body_app, Role.admin)

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"name": "Streamed", "description": "'
            for _ in range(4):
                yield b"y" * 1000
            yield b'"}'

        async with client_for(small_body_app, admin.headers) as c:
            r = await c.post(
                f"{API}/brands", content=chunks(), headers={"Content-Type": "application/json"}
            )
            assert "content-length" not in r.request.headers
            assert r.request.headers["transfer-encoding"] == "chunked"
            problem = assert_problem(r, 413)
            assert "2048" in problem["detail"]
            assert (await c.get(f"{API}/brands")).json()["items"] == []

            async def small() -> AsyncIterator[bytes]:
                yield b'{"name": '
                yield b'"Streamed small"}'

            r = await c.post(
                f"{API}/brands", content=small(), headers={"Content-Type": "application/json"}
            )
            assert r.status_code == 201, r.text


class TestInputHandling:
    async def test_strings_are_trimmed(self, client: httpx.AsyncClient) -> None:
        product = await create_product(client, name="  Desk lamp  ", sku="  LAMP-1 ")
        assert product["name"] == "Desk lamp"
        assert product["sku"] == "LAMP-1"
        r = await client.post(f"{API}/brands", json={"name": "\t Trimmed \n"})
        assert r.json()["name"] == "Trimmed"

    async def test_html_is_stored_as_given_and_served_as_json(
        self, client: httpx.AsyncClient, anon: httpx.AsyncClient
    ) -> None:
        html = '<script>alert("x")</script><img src=x onerror=alert(1)> & <b>bold</b>'
        product = await create_product(client, description=html)
        assert product["description"] == html
        r = await anon.get(f"{API}/products/{product['id']}")
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        assert "text/html" not in r.headers["content-type"]
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.json()["description"] == html
        assert '\\"x\\"' in r.text  # a JSON string, quotes escaped
        assert not r.text.lstrip().startswith("<")

    async def test_errors_never_answer_html_or_echo_input(self, client: httpx.AsyncClient) -> None:
        payload = "<script>alert(1)</script>"
        responses = [
            await client.get(f"{API}/products/by-slug/{payload}"),
            await client.post(
                f"{API}/products",
                json={"sku": payload, "name": "x", "currency": "USD", "price": "1"},
            ),
            await client.get(f"{API}/{payload}"),
        ]
        for r in responses:
            assert r.status_code in (404, 422), r.text
            assert r.headers["content-type"] == PROBLEM
            assert payload not in r.text


class TestLoginTiming:
    async def test_unknown_email_costs_as_much_as_a_wrong_password(self, backend: Backend) -> None:
        # Realistic hashing cost, so the password hash dominates the request time.
        settings = settings_for(backend, argon2_time_cost=2, argon2_memory_cost_kib=19_456)
        async with running_app(settings) as timed:
            account: Account = await make_account(timed, Role.buyer)
            async with client_for(timed) as c:
                await login(c, account.email, "warm-up-attempt")  # warm the pool
                wrong: list[float] = []
                unknown: list[float] = []
                for i in range(5):
                    start = time.perf_counter()
                    assert_unauthorized(await login(c, account.email, f"wrong-guess-{i}"))
                    wrong.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    assert_unauthorized(await login(c, f"nobody{i}@example.com", "wrong-guess"))
                    unknown.append(time.perf_counter() - start)
        w, u = statistics.median(wrong), statistics.median(unknown)
        assert max(w, u) / min(w, u) < 3, (wrong, unknown)
