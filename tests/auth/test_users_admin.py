from __future__ import annotations

import uuid
from typing import Any

import httpx
import jwt
from fastapi import FastAPI

from catalog.models import Role
from tests.auth.helpers import (
    AUTH,
    KEYS,
    USERS,
    assert_problem,
    assert_unauthorized,
    bearer,
    login_ok,
)
from tests.conftest import Account, make_account, make_client
from tests.factories import API, create_product

USER_FIELDS = {"id", "email", "full_name", "role", "is_active", "created_at", "updated_at"}


async def all_pages(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = await client.get(USERS, params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= params.get("limit", 20)
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


class TestListUsers:
    async def test_cursor_pagination_and_filters(
        self, app: FastAPI, admin: Account, client: httpx.AsyncClient
    ) -> None:
        sellers = [await make_account(app, Role.seller) for _ in range(3)]
        buyers = [await make_account(app, Role.buyer) for _ in range(2)]
        everyone = {str(a.id) for a in [admin, *sellers, *buyers]}

        items = await all_pages(client, limit=2)
        assert [u["id"] for u in items] == sorted(u["id"] for u in items)  # stable order
        assert {u["id"] for u in items} == everyone
        assert len(items) == len(everyone)
        for user in items:
            assert set(user) == USER_FIELDS
        assert "password" not in str(items)

        items = await all_pages(client, limit=2, role="seller")
        assert {u["id"] for u in items} == {str(a.id) for a in sellers}
        assert {u["role"] for u in items} == {"seller"}

        r = await client.patch(f"{USERS}/{buyers[0].id}", json={"is_active": False})
        assert r.status_code == 200
        inactive = await all_pages(client, is_active="false")
        assert [u["id"] for u in inactive] == [str(buyers[0].id)]
        active_buyers = await all_pages(client, role="buyer", is_active="true")
        assert [u["id"] for u in active_buyers] == [str(buyers[1].id)]

    async def test_bad_parameters_are_422(self, client: httpx.AsyncClient) -> None:
        r = await client.get(USERS, params={"cursor": "garbage!!"})
        assert assert_problem(r, 422)["errors"][0]["loc"] == ["query", "cursor"]
        r = await client.get(USERS, params={"role": "root"})
        assert assert_problem(r, 422)["errors"][0]["loc"] == ["query", "role"]


class TestGetUser:
    async def test_get_and_missing(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        seller = await make_account(app, Role.seller)
        r = await client.get(f"{USERS}/{seller.id}")
        assert r.status_code == 200
        body = r.json()
        assert set(body) == USER_FIELDS
        assert body["email"] == seller.email
        assert body["role"] == "seller"
        r = await client.get(f"{USERS}/{uuid.uuid4()}")
        assert "not found" in assert_problem(r, 404)["detail"]


class TestUpdateUser:
    async def test_change_name_keeps_sessions(
        self, app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
    ) -> None:
        buyer = await make_account(app, Role.buyer)
        r = await client.patch(f"{USERS}/{buyer.id}", json={"full_name": "  Renamed "})
        assert r.status_code == 200, r.text
        assert r.json()["full_name"] == "Renamed"
        me = await anon.get(f"{AUTH}/me", headers=buyer.headers)
        assert me.status_code == 200
        assert me.json()["full_name"] == "Renamed"

    async def test_change_role_ends_sessions_and_applies_at_next_login(
        self, app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
    ) -> None:
        buyer = await make_account(app, Role.buyer)
        r = await client.patch(f"{USERS}/{buyer.id}", json={"role": "seller"})
        assert r.status_code == 200, r.text
        assert r.json()["role"] == "seller"
        # the old token carries the old role: refused
        assert_unauthorized(await anon.get(f"{AUTH}/me", headers=buyer.headers))
        # a fresh login (possibly within the same second) carries the new role
        pair = await login_ok(anon, buyer.email, buyer.password)
        claims = jwt.decode(pair["access_token"], options={"verify_signature": False})
        assert claims["role"] == "seller"
        async with make_client(app, bearer(pair["access_token"])) as seller:
            product = await create_product(seller)
        assert product["owner_id"] == str(buyer.id)

    async def test_invalid_updates(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        buyer = await make_account(app, Role.buyer)
        for body in ({"role": "root"}, {"role": None}, {"is_active": None}, {"email": "x@y.z"}):
            assert_problem(await client.patch(f"{USERS}/{buyer.id}", json=body), 422)
        r = await client.patch(f"{USERS}/{uuid.uuid4()}", json={"full_name": "Ghost"})
        assert_problem(r, 404)


class TestSelfProtection:
    async def test_admin_cannot_demote_or_deactivate_themselves(
        self, app: FastAPI, admin: Account, client: httpx.AsyncClient
    ) -> None:
        for body in ({"role": "seller"}, {"role": "buyer"}, {"is_active": False}):
            r = await client.patch(f"{USERS}/{admin.id}", json=body)
            assert "themselves" in assert_problem(r, 409)["detail"], body
        r = await client.get(f"{USERS}/{admin.id}")
        assert r.json()["role"] == "admin"
        assert r.json()["is_active"] is True
        # harmless self-updates are fine, and the session survives them
        r = await client.patch(f"{USERS}/{admin.id}", json={"full_name": "Boss", "role": "admin"})
        assert r.status_code == 200
        assert r.json()["full_name"] == "Boss"
        assert (await client.get(f"{AUTH}/me")).status_code == 200
        # another administrator can be demoted
        other = await make_account(app, Role.admin)
        r = await client.patch(f"{USERS}/{other.id}", json={"role": "buyer"})
        assert r.status_code == 200
        assert r.json()["role"] == "buyer"


class TestUsersAccessControl:
    async def test_sellers_and_buyers_get_403_everywhere(self, app: FastAPI) -> None:
        target = await make_account(app, Role.buyer)
        for role in (Role.seller, Role.buyer):
            account = await make_account(app, role)
            async with make_client(app, account.headers) as c:
                responses = [
                    await c.get(USERS),
                    await c.get(f"{USERS}/{target.id}"),
                    await c.get(f"{USERS}/{account.id}"),  # not even themselves
                    await c.patch(f"{USERS}/{target.id}", json={"full_name": "x"}),
                    await c.patch(f"{USERS}/{account.id}", json={"role": "admin"}),
                ]
                for r in responses:
                    assert "administrators" in assert_problem(r, 403)["detail"]
                me = await c.get(f"{AUTH}/me")
                assert me.json()["role"] == role.value

    async def test_anonymous_gets_401_with_challenge(
        self, app: FastAPI, anon: httpx.AsyncClient
    ) -> None:
        target = await make_account(app, Role.buyer)
        for r in [
            await anon.get(USERS),
            await anon.get(f"{USERS}/{target.id}"),
            await anon.patch(f"{USERS}/{target.id}", json={"role": "admin"}),
        ]:
            assert_unauthorized(r)
            assert r.headers["www-authenticate"] == 'Bearer realm="catalog"'

    async def test_api_keys_cannot_administer_users(
        self, app: FastAPI, admin: Account, client: httpx.AsyncClient, anon: httpx.AsyncClient
    ) -> None:
        """An admin's API key acts within its scopes, and no scope covers user management."""
        target = await make_account(app, Role.seller)
        r = await client.post(KEYS, json={"name": "reports", "scopes": ["catalog:read"]})
        assert r.status_code == 201, r.text
        key = {"X-API-Key": r.json()["key"]}
        assert_problem(await anon.get(USERS, headers=key), 403)
        r = await anon.patch(f"{USERS}/{target.id}", json={"is_active": False}, headers=key)
        assert_problem(r, 403)
        assert (await client.get(f"{USERS}/{target.id}")).json()["is_active"] is True
        # the same key still reads the catalog
        assert (await anon.get(f"{API}/products", headers=key)).status_code == 200
