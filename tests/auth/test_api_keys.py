from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text, update

from catalog.app import create_app
from catalog.models import ApiKey, Role
from tests.auth.helpers import (
    AUTH,
    KEYS,
    assert_problem,
    assert_unauthorized,
    bearer,
    login_ok,
)
from tests.conftest import Account, Backend, make_account, make_client
from tests.factories import API, create_product

KEY_FIELDS = {
    "id",
    "name",
    "prefix",
    "owner_id",
    "scopes",
    "expires_at",
    "last_used_at",
    "revoked_at",
    "created_at",
}


async def new_key(
    app: FastAPI, account: Account, scopes: list[str] | None = None, **fields: Any
) -> dict[str, Any]:
    async with make_client(app, account.headers) as c:
        r = await c.post(
            KEYS, json={"name": "integration", "scopes": scopes or ["catalog:write"], **fields}
        )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def key_header(key: dict[str, Any] | str) -> dict[str, str]:
    return {"X-API-Key": key if isinstance(key, str) else key["key"]}


class TestCreateApiKey:
    async def test_secret_is_shown_once_and_only_a_hash_is_stored(
        self, app: FastAPI, anon: httpx.AsyncClient
    ) -> None:
        seller = await make_account(app, Role.seller)
        expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
        r = await anon.post(
            KEYS,
            json={
                "name": "  CI pipeline ",
                "scopes": ["catalog:write", "catalog:read", "catalog:write"],
                "expires_at": expires,
            },
            headers=seller.headers,
        )
        assert r.status_code == 201, r.text
        assert r.headers["cache-control"] == "no-store"
        body = r.json()
        assert set(body) == KEY_FIELDS | {"key"}
        secret = body["key"]
        assert secret.startswith("ck_")
        assert len(secret) >= 40
        assert body["prefix"] == secret[:9]
        assert body["name"] == "CI pipeline"
        assert body["owner_id"] == str(seller.id)
        assert body["scopes"] == ["catalog:read", "catalog:write"]
        assert body["expires_at"] is not None
        assert body["last_used_at"] is None
        assert body["revoked_at"] is None
        assert r.headers["location"] == f"{KEYS}/{body['id']}"

        r = await anon.get(f"{KEYS}/{body['id']}", headers=seller.headers)
        assert r.status_code == 200
        assert set(r.json()) == KEY_FIELDS
        assert secret not in r.text
        r = await anon.get(KEYS, headers=seller.headers)
        assert [k["id"] for k in r.json()] == [body["id"]]
        assert secret not in r.text

        async with app.state.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT * FROM api_key"))).mappings().all()
        assert len(rows) == 1
        stored = {name: str(value) for name, value in rows[0].items()}
        for name, value in stored.items():
            assert secret not in value, name
            assert secret[9:] not in value, name
        assert hashlib.sha256(secret.encode()).hexdigest() in stored.values()

    async def test_who_may_create(self, app: FastAPI, anon: httpx.AsyncClient) -> None:
        buyer = await make_account(app, Role.buyer)
        body = {"name": "mine", "scopes": ["catalog:read"]}
        r = await anon.post(KEYS, json=body, headers=buyer.headers)
        assert "sellers and administrators" in assert_problem(r, 403)["detail"]
        assert_unauthorized(await anon.post(KEYS, json=body))
        admin = await make_account(app, Role.admin)
        assert (await anon.post(KEYS, json=body, headers=admin.headers)).status_code == 201
        # a key cannot mint keys
        key = await new_key(app, admin)
        r = await anon.post(KEYS, json=body, headers=key_header(key))
        assert_problem(r, 403)
        async with make_client(app, buyer.headers) as c:
            assert (await c.get(KEYS)).json() == []

    async def test_invalid_input_is_422(self, app: FastAPI, anon: httpx.AsyncClient) -> None:
        seller = await make_account(app, Role.seller)
        past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
        naive_past = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(tzinfo=None)
        cases: list[tuple[dict[str, Any], list[str]]] = [
            ({"name": "k", "scopes": ["catalog:read"], "expires_at": past}, ["body", "expires_at"]),
            (
                {"name": "k", "scopes": ["catalog:read"], "expires_at": naive_past.isoformat()},
                ["body", "expires_at"],
            ),
            ({"name": "k", "scopes": []}, ["body", "scopes"]),
            ({"name": "k", "scopes": ["admin:everything"]}, ["body", "scopes", "0"]),
            ({"name": "", "scopes": ["catalog:read"]}, ["body", "name"]),
            ({"name": "k", "scopes": ["catalog:read"], "owner_id": str(uuid.uuid4())}, []),
        ]
        for body, loc in cases:
            r = await anon.post(KEYS, json=body, headers=seller.headers)
            problem = assert_problem(r, 422)
            if loc:
                assert [str(p) for p in problem["errors"][0]["loc"]] == loc, body
        assert (await anon.get(KEYS, headers=seller.headers)).json() == []


class TestApiKeyAuthentication:
    async def test_write_key_acts_for_its_seller(
        self, app: FastAPI, anon: httpx.AsyncClient
    ) -> None:
        seller = await make_account(app, Role.seller)
        key = await new_key(app, seller, ["catalog:write"])
        async with make_client(app, key_header(key)) as c:
            product = await create_product(c, status="draft")
            assert product["owner_id"] == str(seller.id)
            r = await c.patch(f"{API}/products/{product['id']}", json={"name": "Via key"})
            assert r.status_code == 200
            assert r.json()["name"] == "Via key"
            # the owner's drafts are visible through the key
            assert (await c.get(f"{API}/products/{product['id']}")).status_code == 200
            me = await c.get(f"{AUTH}/me")
            assert me.json()["id"] == str(seller.id)
            # but a key does not manage the account
            r = await c.patch(f"{AUTH}/me", json={"full_name": "Hijacked"})
            assert_problem(r, 403)
            r = await c.post(f"{KEYS}/{key['id']}/rotate")
            assert_problem(r, 403)

    async def test_read_only_key_cannot_write(self, app: FastAPI) -> None:
        seller = await make_account(app, Role.seller)
        async with make_client(app, seller.headers) as c:
            product = await create_product(c)
        key = await new_key(app, seller, ["catalog:read"])
        async with make_client(app, key_header(key)) as c:
            r = await c.post(
                f"{API}/products",
                json={"sku": "RO-1", "name": "Nope", "currency": "USD", "price": "1.00"},
            )
            assert "catalog:write" in assert_problem(r, 403)["detail"]
            r = await c.patch(f"{API}/products/{product['id']}", json={"name": "Nope"})
            assert "catalog:write" in assert_problem(r, 403)["detail"]
            r = await c.delete(f"{API}/products/{product['id']}")
            assert_problem(r, 403)
            assert (await c.get(f"{API}/products/{product['id']}")).json()["name"] == product[
                "name"
            ]
        admin = await make_account(app, Role.admin)
        admin_key = await new_key(app, admin, ["catalog:read"])
        async with make_client(app, key_header(admin_key)) as c:
            assert_problem(await c.post(f"{API}/brands", json={"name": "Nope"}), 403)

    async def test_invalid_keys_are_401(self, app: FastAPI, anon: httpx.AsyncClient) -> None:
        seller = await make_account(app, Role.seller)
        key = await new_key(app, seller)
        for bad in ["ck_" + "x" * 43, key["key"][:-1], "not-a-key", "ck_" + "y" * 300]:
            r = await anon.get(f"{API}/products", headers=key_header(bad))
            assert_unauthorized(r)
            assert "API key" in r.json()["detail"]

    async def test_bearer_and_key_together_are_401(
        self, app: FastAPI, anon: httpx.AsyncClient
    ) -> None:
        seller = await make_account(app, Role.seller)
        key = await new_key(app, seller)
        r = await anon.get(f"{AUTH}/me", headers={**seller.headers, **key_header(key)})
        assert_unauthorized(r)
        assert "either" in r.json()["detail"]

    async def test_last_used_at_is_recorded(self, app: FastAPI, anon: httpx.AsyncClient) -> None:
        seller = await make_account(app, Role.seller)
        key = await new_key(app, seller)
        before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        assert (await anon.get(f"{API}/products", headers=key_header(key))).status_code == 200
        r = await anon.get(f"{KEYS}/{key['id']}", headers=seller.headers)
        used = r.json()["last_used_at"]
        assert used is not None
        assert dt.datetime.fromisoformat(used) >= before


class TestListAndOwnership:
    async def test_list_shows_own_keys_and_admin_sees_all(
        self, app: FastAPI, admin: Account, client: httpx.AsyncClient, anon: httpx.AsyncClient
    ) -> None:
        alice = await make_account(app, Role.seller)
        bob = await make_account(app, Role.seller)
        a1 = await new_key(app, alice)
        a2 = await new_key(app, alice, ["catalog:read"])
        b1 = await new_key(app, bob)
        own = await new_key(app, admin)

        r = await anon.get(KEYS, headers=alice.headers)
        assert r.status_code == 200
        assert {k["id"] for k in r.json()} == {a1["id"], a2["id"]}
        # all_owners is an admin privilege: ignored for sellers
        r = await anon.get(KEYS, params={"all_owners": "true"}, headers=bob.headers)
        assert [k["id"] for k in r.json()] == [b1["id"]]

        assert [k["id"] for k in (await client.get(KEYS)).json()] == [own["id"]]
        r = await client.get(KEYS, params={"all_owners": "true"})
        assert {k["id"] for k in r.json()} == {a1["id"], a2["id"], b1["id"], own["id"]}
        for key in r.json():
            assert "key" not in key
        assert (await client.get(f"{KEYS}/{a1['id']}")).json()["owner_id"] == str(alice.id)

    async def test_another_sellers_key_is_404(self, app: FastAPI, anon: httpx.AsyncClient) -> None:
        alice = await make_account(app, Role.seller)
        bob = await make_account(app, Role.seller)
        key = await new_key(app, alice)
        url = f"{KEYS}/{key['id']}"
        for r in [
            await anon.get(url, headers=bob.headers),
            await anon.delete(url, headers=bob.headers),
            await anon.post(f"{url}/rotate", headers=bob.headers),
        ]:
            assert "not found" in assert_problem(r, 404)["detail"]
        # untouched: still works
        assert (await anon.get(f"{AUTH}/me", headers=key_header(key))).status_code == 200
        r = await anon.get(f"{KEYS}/{uuid.uuid4()}", headers=alice.headers)
        assert_problem(r, 404)
        assert_unauthorized(await anon.get(url))


class TestRevokeAndRotate:
    async def test_revoke_takes_effect_at_once(self, app: FastAPI, anon: httpx.AsyncClient) -> None:
        seller = await make_account(app, Role.seller)
        key = await new_key(app, seller)
        assert (await anon.get(f"{AUTH}/me", headers=key_header(key))).status_code == 200
        r = await anon.delete(f"{KEYS}/{key['id']}", headers=seller.headers)
        assert r.status_code == 204
        r = await anon.get(f"{AUTH}/me", headers=key_header(key))
        assert_unauthorized(r)
        assert "revoked" in r.json()["detail"]
        shown = (await anon.get(f"{KEYS}/{key['id']}", headers=seller.headers)).json()
        assert shown["revoked_at"] is not None
        # revoking twice is harmless; a revoked key cannot be brought back by rotation
        assert (await anon.delete(f"{KEYS}/{key['id']}", headers=seller.headers)).status_code == 204
        r = await anon.post(f"{KEYS}/{key['id']}/rotate", headers=seller.headers)
        assert_problem(r, 409)
        assert_unauthorized(await anon.get(f"{AUTH}/me", headers=key_header(key)))

    async def test_rotate_replaces_the_secret(self, app: FastAPI, anon: httpx.AsyncClient) -> None:
        seller = await make_account(app, Role.seller)
        key = await new_key(app, seller, ["catalog:read", "catalog:write"])
        r = await anon.post(f"{KEYS}/{key['id']}/rotate", headers=seller.headers)
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        rotated = r.json()
        assert rotated["id"] == key["id"]
        assert rotated["key"] != key["key"]
        assert rotated["prefix"] == rotated["key"][:9]
        assert rotated["scopes"] == key["scopes"]
        assert_unauthorized(await anon.get(f"{AUTH}/me", headers=key_header(key)))
        r = await anon.get(f"{AUTH}/me", headers=key_header(rotated))
        assert r.status_code == 200
        assert r.json()["id"] == str(seller.id)
        shown = await anon.get(f"{KEYS}/{key['id']}", headers=seller.headers)
        assert rotated["key"] not in shown.text
        assert shown.json()["prefix"] == rotated["prefix"]


class TestExpiry:
    async def test_expired_key_is_401(self, app: FastAPI, anon: httpx.AsyncClient) -> None:
        seller = await make_account(app, Role.seller)
        future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
        key = await new_key(app, seller, expires_at=future)
        assert (await anon.get(f"{AUTH}/me", headers=key_header(key))).status_code == 200
        async with app.state.sessionmaker() as session:
            await session.execute(
                update(ApiKey)
                .where(ApiKey.id == uuid.UUID(key["id"]))
                .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))
            )
            await session.commit()
        r = await anon.get(f"{AUTH}/me", headers=key_header(key))
        assert_unauthorized(r)
        assert "expired" in r.json()["detail"]


class TestSecondInstance:
    """Two app instances (workers) sharing PostgreSQL and Redis."""

    async def test_revocations_are_seen_by_another_instance(
        self, backend: Backend, app: FastAPI
    ) -> None:
        if backend.profile != "production":
            pytest.skip("revoked tokens are shared through Redis (production profile)")
        other = create_app(backend.settings)
        async with (
            other.router.lifespan_context(other),
            make_client(app) as a,
            make_client(other) as b,
        ):
            seller = await make_account(app, Role.seller)
            pair = await login_ok(a, seller.email, seller.password)
            headers = bearer(pair["access_token"])
            assert (await b.get(f"{AUTH}/me", headers=headers)).status_code == 200
            assert (await a.post(f"{AUTH}/logout", headers=headers)).status_code == 204
            assert_unauthorized(await b.get(f"{AUTH}/me", headers=headers))
            assert_unauthorized(
                await b.post(f"{AUTH}/refresh", json={"refresh_token": pair["refresh_token"]})
            )

            key = await new_key(app, seller)
            assert (await b.get(f"{AUTH}/me", headers=key_header(key))).status_code == 200
            r = await a.delete(f"{KEYS}/{key['id']}", headers=seller.headers)
            assert r.status_code == 204
            assert_unauthorized(await b.get(f"{AUTH}/me", headers=key_header(key)))

            # deactivation through B ends the sessions on A too
            fresh = await login_ok(b, seller.email, seller.password)
            admin = await make_account(app, Role.admin)
            r = await b.patch(
                f"{API}/users/{seller.id}", json={"is_active": False}, headers=admin.headers
            )
            assert r.status_code == 200
            assert_unauthorized(await a.get(f"{AUTH}/me", headers=bearer(fresh["access_token"])))
