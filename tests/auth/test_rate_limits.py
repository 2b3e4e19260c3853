"""Rate limits, each test on an app of its own with tight limits (and its own Redis keys)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from catalog.models import Role
from tests.auth.helpers import (
    AUTH,
    assert_problem,
    assert_unauthorized,
    client_for,
    login,
    running_app,
    settings_for,
)
from tests.conftest import Backend, make_account
from tests.factories import API

LimitedApp = Callable[..., AbstractAsyncContextManager[FastAPI]]
BEHIND_PROXY: dict[str, Any] = {"rate_limit_auth": "3/minute", "trusted_proxies": ["127.0.0.1/32"]}


@pytest.fixture
def limited(backend: Backend) -> LimitedApp:
    """`limited(**settings)`: an app on the test database with the given limits."""

    def build(**overrides: Any) -> AbstractAsyncContextManager[FastAPI]:
        return running_app(settings_for(backend, **overrides))

    return build


def assert_429(r: httpx.Response) -> dict[str, Any]:
    problem = assert_problem(r, 429)
    assert int(r.headers["retry-after"]) >= 1
    assert r.headers["ratelimit-remaining"] == "0"
    assert "exceeded" in problem["detail"]
    return problem


class TestRateLimitHeaders:
    async def test_headers_count_down_then_429(self, limited: LimitedApp) -> None:
        async with limited(rate_limit_anonymous="5/minute") as app:
            async with client_for(app) as c:
                remaining = []
                for _ in range(5):
                    r = await c.get(f"{API}/brands")
                    assert r.status_code == 200
                    assert r.headers["ratelimit-limit"] == "5"
                    assert 0 < int(r.headers["ratelimit-reset"]) <= 60
                    remaining.append(int(r.headers["ratelimit-remaining"]))
                assert remaining == [4, 3, 2, 1, 0]
                r = await c.get(f"{API}/brands")
                assert_429(r)
                assert r.headers["ratelimit-limit"] == "5"
                assert int(r.headers["retry-after"]) <= 60
                # every endpoint of the API shares the caller's budget
                assert_429(await c.get(f"{API}/products"))
            # another client address has a budget of its own
            async with client_for(app, peer="10.0.0.9") as other:
                r = await other.get(f"{API}/brands")
                assert r.status_code == 200
                assert r.headers["ratelimit-remaining"] == "4"

    async def test_limits_are_per_user_for_authenticated_callers(self, limited: LimitedApp) -> None:
        async with limited(
            rate_limit_authenticated="3/minute", rate_limit_anonymous="100/minute"
        ) as app:
            alice = await make_account(app, Role.buyer)
            bob = await make_account(app, Role.buyer)
            async with client_for(app, alice.headers) as a, client_for(app, bob.headers) as b:
                for expected in ("2", "1", "0"):
                    r = await a.get(f"{AUTH}/me")
                    assert r.status_code == 200
                    assert r.headers["ratelimit-limit"] == "3"
                    assert r.headers["ratelimit-remaining"] == expected
                assert_429(await a.get(f"{AUTH}/me"))
                # same address, another user: unaffected
                r = await b.get(f"{AUTH}/me")
                assert r.status_code == 200
                assert r.headers["ratelimit-remaining"] == "2"
            # and anonymous callers from that address have their own (per-IP) budget
            async with client_for(app) as anon:
                r = await anon.get(f"{API}/brands")
                assert r.status_code == 200
                assert r.headers["ratelimit-limit"] == "100"


class TestLoginBruteForce:
    async def test_repeated_failures_from_one_address(self, limited: LimitedApp) -> None:
        async with limited(rate_limit_auth="3/minute") as app:
            victim = await make_account(app, Role.buyer)
            async with client_for(app) as c:
                for expected in ("2", "1", "0"):
                    r = await login(c, victim.email, "wrong-password-guess")
                    assert_unauthorized(r)
                    assert r.headers["ratelimit-limit"] == "3"
                    assert r.headers["ratelimit-remaining"] == expected
                # the address is blocked: even the right password is not tried
                r = await login(c, victim.email, victim.password)
                assert_429(r)
                assert "access_token" not in r.text
                # registration shares the same budget
                r = await c.post(
                    f"{AUTH}/register",
                    json={"email": "new@example.com", "password": "x" * 20, "full_name": "N"},
                )
                assert_429(r)
            # the account itself is not locked for other addresses
            async with client_for(app, peer="10.0.0.2") as other:
                r = await login(other, victim.email, victim.password)
                assert r.status_code == 200, r.text

    async def test_per_account_limit_spans_addresses(self, limited: LimitedApp) -> None:
        async with limited(
            rate_limit_auth="3/minute",
            rate_limit_login_per_account="4/hour",
            trusted_proxies=["127.0.0.1/32"],
        ) as app:
            victim = await make_account(app, Role.buyer)
            bystander = await make_account(app, Role.buyer)
            async with client_for(app) as proxy:
                for i in range(4):
                    r = await login(
                        proxy,
                        victim.email.upper(),  # case does not make another account
                        f"guess-number-{i}",
                        headers={"X-Forwarded-For": f"203.0.113.{i + 1}"},
                    )
                    assert_unauthorized(r)
                fresh_ip = {"X-Forwarded-For": "203.0.113.200"}
                r = await login(proxy, victim.email, victim.password, headers=fresh_ip)
                assert_429(r)
                assert r.headers["ratelimit-limit"] == "4"
                # other accounts are not affected
                r = await login(
                    proxy,
                    bystander.email,
                    bystander.password,
                    headers={"X-Forwarded-For": "203.0.113.201"},
                )
                assert r.status_code == 200, r.text


class TestForwardedFor:
    async def test_ignored_from_untrusted_peers(self, limited: LimitedApp) -> None:
        async with limited(**BEHIND_PROXY) as app, client_for(app, peer="10.0.0.1") as c:
            for i in range(3):
                r = await login(
                    c,
                    f"user{i}@example.com",
                    "wrong-password-guess",
                    headers={"X-Forwarded-For": f"198.51.100.{i}"},
                )
                assert_unauthorized(r)
            r = await login(
                c,
                "user9@example.com",
                "wrong-password-guess",
                headers={"X-Forwarded-For": "198.51.100.99"},
            )
            assert_429(r)

    async def test_honoured_from_trusted_proxies(self, limited: LimitedApp) -> None:
        async with limited(**BEHIND_PROXY) as app, client_for(app) as proxy:
            for i in range(6):
                r = await login(
                    proxy,
                    f"user{i}@example.com",
                    "wrong-password-guess",
                    headers={"X-Forwarded-For": f"198.51.100.{i}"},
                )
                assert_unauthorized(r)
                assert r.headers["ratelimit-remaining"] == "2"

    async def test_spoofed_left_part_of_the_chain_does_not_reset(self, limited: LimitedApp) -> None:
        """Behind a trusted proxy the client is the right-most untrusted address; whatever the
        client itself prepends is ignored."""
        async with limited(**BEHIND_PROXY) as app, client_for(app) as proxy:
            for i in range(3):
                r = await login(
                    proxy,
                    f"user{i}@example.com",
                    "wrong-password-guess",
                    headers={"X-Forwarded-For": f"10.{i}.{i}.{i}, 198.51.100.7"},
                )
                assert_unauthorized(r)
            r = await login(
                proxy,
                "user9@example.com",
                "wrong-password-guess",
                headers={"X-Forwarded-For": "10.9.9.9, 198.51.100.7"},
            )
            assert_429(r)

    async def test_without_trusted_proxies_the_header_is_ignored(self, limited: LimitedApp) -> None:
        async with limited(rate_limit_anonymous="2/minute") as app, client_for(app) as c:
            for i in range(2):
                r = await c.get(f"{API}/brands", headers={"X-Forwarded-For": f"192.0.2.{i}"})
                assert r.status_code == 200
            r = await c.get(f"{API}/brands", headers={"X-Forwarded-For": "192.0.2.77"})
            assert_429(r)
