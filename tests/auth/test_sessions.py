"""Sessions end when the password changes; API keys cannot manage keys; guessing credentials
is throttled."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI

from catalog.models import Role
from tests.auth.helpers import AUTH, KEYS, bearer, login_ok, register, running_app
from tests.conftest import Backend, make_account, make_client, make_settings


class TestPasswordChange:
    async def test_a_new_password_ends_every_session(self, anon: httpx.AsyncClient) -> None:
        await register(anon, "pw@example.com", "first-password-123")
        one = await login_ok(anon, "pw@example.com", "first-password-123")
        two = await login_ok(anon, "pw@example.com", "first-password-123")
        r = await anon.patch(
            f"{AUTH}/me",
            json={"password": "second-password-456", "old_password": "first-password-123"},
            headers=bearer(one["access_token"]),
        )
        assert r.status_code == 200
        for pair in (one, two):
            assert (
                await anon.get(f"{AUTH}/me", headers=bearer(pair["access_token"]))
            ).status_code == 401
            refreshed = await anon.post(
                f"{AUTH}/refresh", json={"refresh_token": pair["refresh_token"]}
            )
            assert refreshed.status_code == 401
        fresh = await login_ok(anon, "pw@example.com", "second-password-456")
        assert (
            await anon.get(f"{AUTH}/me", headers=bearer(fresh["access_token"]))
        ).status_code == 200


class TestApiKeysCannotManageKeys:
    async def test_every_key_route_refuses_api_keys(self, app: FastAPI) -> None:
        seller = await make_account(app, Role.seller)
        async with make_client(app, seller.headers) as c:
            created = await c.post(f"{KEYS}", json={"name": "k", "scopes": ["catalog:write"]})
            assert created.status_code == 201
            key = created.json()
        async with make_client(app, {"X-API-Key": key["key"]}) as by_key:
            assert (await by_key.get(KEYS)).status_code == 403
            assert (await by_key.get(f"{KEYS}/{key['id']}")).status_code == 403
            assert (await by_key.delete(f"{KEYS}/{key['id']}")).status_code == 403
            assert (await by_key.post(f"{KEYS}/{key['id']}/rotate")).status_code == 403
            # The key still works for what it is for.
            r = await by_key.post(
                "/api/v1/products",
                json={"sku": "K-1", "name": "Keyed", "currency": "EUR", "price": "1.00"},
            )
            assert r.status_code == 201


class TestGuessingIsThrottled:
    async def test_bad_tokens_and_keys_count_against_the_auth_limit(self, backend: Backend) -> None:
        settings = make_settings(
            database_url=backend.settings.database_url,
            redis_url=backend.settings.redis_url,
            redis_prefix=f"catalog-test-guess-{uuid.uuid4().hex[:8]}:",
            rate_limit_auth="3/minute",
        )
        async with running_app(settings) as app, make_client(app) as c:
            statuses = []
            for i in range(5):
                headers = (
                    {"X-API-Key": f"ck_guess{i}"} if i % 2 else {"Authorization": "Bearer nope"}
                )
                statuses.append((await c.get("/api/v1/products", headers=headers)).status_code)
            assert statuses == [401, 401, 401, 429, 429]
