"""Every write endpoint of the catalog against every kind of caller, and product visibility.

The accounts and the app are shared by the whole module (one set per profile): each case
creates the resources it acts on, so the cases stay independent while the run stays fast.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from catalog.app import create_app
from catalog.models import Role
from tests.auth.helpers import assert_problem, assert_unauthorized
from tests.conftest import Account, Backend, _flush_redis, _truncate, make_account, make_client
from tests.factories import API, create_brand, create_category, create_product, unique

ROLES = ["anonymous", "buyer", "owner", "other_seller", "admin"]
SIZES = [{"name": "size", "values": ["S", "M", "L"]}]


@dataclass
class World:
    app: FastAPI
    accounts: dict[str, Account]
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    @property
    def admin(self) -> httpx.AsyncClient:
        return self.clients["admin"]

    @property
    def owner(self) -> httpx.AsyncClient:
        return self.clients["owner"]


@pytest.fixture(scope="module")
async def world(backend: Backend) -> AsyncIterator[World]:
    app = create_app(backend.settings)
    async with app.router.lifespan_context(app):
        try:
            accounts = {
                "admin": await make_account(app, Role.admin),
                "owner": await make_account(app, Role.seller),
                "other_seller": await make_account(app, Role.seller),
                "buyer": await make_account(app, Role.buyer),
            }
            w = World(app, accounts)
            w.clients["anonymous"] = make_client(app)
            for role, account in accounts.items():
                w.clients[role] = make_client(app, account.headers)
            yield w
            for c in w.clients.values():
                await c.aclose()
        finally:
            await _truncate(app.state.engine)
            await _flush_redis(backend.settings)


@dataclass
class Call:
    method: str
    url: str
    body: Any = None
    probe: str = ""  # read by an admin before and after: a refused call changes nothing


Setup = Callable[[World], Awaitable[Call]]


# --------------------------------------------------------------------------- setups


async def brand_post(w: World) -> Call:
    name = unique("MatrixBrand")
    return Call("POST", f"{API}/brands", {"name": name}, f"{API}/brands?q={name}")


async def brand_put(w: World) -> Call:
    b = await create_brand(w.admin)
    body = {"name": unique("Replaced"), "slug": unique("replaced")}
    return Call("PUT", f"{API}/brands/{b['id']}", body, f"{API}/brands/{b['id']}")


async def brand_patch(w: World) -> Call:
    b = await create_brand(w.admin)
    url = f"{API}/brands/{b['id']}"
    return Call("PATCH", url, {"name": unique("Renamed")}, url)


async def brand_delete(w: World) -> Call:
    b = await create_brand(w.admin)
    url = f"{API}/brands/{b['id']}"
    return Call("DELETE", url, None, url)


async def category_post(w: World) -> Call:
    return Call(
        "POST", f"{API}/categories", {"name": unique("MatrixCat")}, f"{API}/categories/tree"
    )


async def category_put(w: World) -> Call:
    c = await create_category(w.admin)
    url = f"{API}/categories/{c['id']}"
    return Call("PUT", url, {"name": unique("Replaced"), "slug": unique("replaced-cat")}, url)


async def category_patch(w: World) -> Call:
    c = await create_category(w.admin)
    url = f"{API}/categories/{c['id']}"
    return Call("PATCH", url, {"name": unique("Renamed")}, url)


async def category_delete(w: World) -> Call:
    c = await create_category(w.admin)
    url = f"{API}/categories/{c['id']}"
    return Call("DELETE", url, None, url)


def product_body() -> dict[str, Any]:
    return {
        "sku": unique("MX"),
        "name": unique("Matrix product"),
        "currency": "USD",
        "price": "10.00",
        "stock": 2,
        "status": "active",
    }


async def owned_product(w: World, **fields: Any) -> dict[str, Any]:
    """An active product of the seller 'owner', so visibility is not what refuses others."""
    return await create_product(w.owner, status="active", **fields)


async def sized_product(w: World, sizes: tuple[str, ...] = ("S", "L")) -> dict[str, Any]:
    sku = unique("MXV")
    variants = [
        {"sku": f"{sku}-{s}", "price": "10.00", "stock": 1, "option_values": {"size": s}}
        for s in sizes
    ]
    return await owned_product(w, sku=sku, options=SIZES, variants=variants)


async def product_post(w: World) -> Call:
    return Call("POST", f"{API}/products", product_body(), f"{API}/products?limit=3")


async def product_put(w: World) -> Call:
    p = await owned_product(w)
    url = f"{API}/products/{p['id']}"
    body = product_body() | {"slug": unique("replaced-product"), "price": "20.00"}
    return Call("PUT", url, body, url)


async def product_patch(w: World) -> Call:
    p = await owned_product(w)
    url = f"{API}/products/{p['id']}"
    return Call("PATCH", url, {"name": unique("Renamed product"), "stock": 7}, url)


async def product_delete(w: World) -> Call:
    p = await owned_product(w)
    url = f"{API}/products/{p['id']}"
    return Call("DELETE", url, None, url)


async def product_restore(w: World) -> Call:
    p = await owned_product(w)
    url = f"{API}/products/{p['id']}"
    r = await w.owner.delete(url)
    assert r.status_code == 204, r.text
    return Call("POST", f"{url}/restore", None, url)


async def variant_post(w: World) -> Call:
    p = await sized_product(w)
    body = {"sku": unique("MXV-M"), "price": "11.00", "stock": 4, "option_values": {"size": "M"}}
    return Call("POST", f"{API}/products/{p['id']}/variants", body, f"{API}/products/{p['id']}")


async def variant_put(w: World) -> Call:
    p = await sized_product(w)
    v = p["variants"][0]
    body = {"sku": unique("MXV-S2"), "price": "13.00", "stock": 3, "option_values": {"size": "S"}}
    url = f"{API}/products/{p['id']}/variants/{v['id']}"
    return Call("PUT", url, body, f"{API}/products/{p['id']}")


async def variant_patch(w: World) -> Call:
    p = await sized_product(w)
    url = f"{API}/products/{p['id']}/variants/{p['variants'][0]['id']}"
    return Call("PATCH", url, {"stock": 9}, f"{API}/products/{p['id']}")


async def variant_delete(w: World) -> Call:
    p = await sized_product(w)
    url = f"{API}/products/{p['id']}/variants/{p['variants'][0]['id']}"
    return Call("DELETE", url, None, f"{API}/products/{p['id']}")


ADMIN_ONLY = {"anonymous": 401, "buyer": 403, "owner": 403, "other_seller": 403}
OWNED = {"anonymous": 401, "buyer": 403, "other_seller": 404}
CREATE_PRODUCT = {"anonymous": 401, "buyer": 403, "other_seller": 201}

# (id, setup, refused statuses by role; every role not listed succeeds with `ok`)
ENDPOINTS: list[tuple[str, Setup, dict[str, int], int]] = [
    ("brand-post", brand_post, ADMIN_ONLY, 201),
    ("brand-put", brand_put, ADMIN_ONLY, 200),
    ("brand-patch", brand_patch, ADMIN_ONLY, 200),
    ("brand-delete", brand_delete, ADMIN_ONLY, 204),
    ("category-post", category_post, ADMIN_ONLY, 201),
    ("category-put", category_put, ADMIN_ONLY, 200),
    ("category-patch", category_patch, ADMIN_ONLY, 200),
    ("category-delete", category_delete, ADMIN_ONLY, 204),
    ("product-post", product_post, CREATE_PRODUCT, 201),
    ("product-put", product_put, OWNED, 200),
    ("product-patch", product_patch, OWNED, 200),
    ("product-delete", product_delete, OWNED, 204),
    ("product-restore", product_restore, OWNED, 200),
    ("variant-post", variant_post, OWNED, 201),
    ("variant-put", variant_put, OWNED, 200),
    ("variant-patch", variant_patch, OWNED, 200),
    ("variant-delete", variant_delete, OWNED, 204),
]


async def snapshot(w: World, url: str) -> tuple[int, Any]:
    r = await w.admin.get(url)
    return r.status_code, (r.json() if r.content else None)


async def check_success(w: World, role: str, name: str, call: Call, r: httpx.Response) -> None:
    if r.status_code == 204:
        assert r.content == b""
        after = await w.admin.get(call.probe)
        if name.startswith("variant"):
            ids = [v["id"] for v in after.json()["variants"]]
            assert call.url.rsplit("/", 1)[1] not in ids
        else:
            assert after.status_code == 404, after.text
        return
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    if r.status_code == 201:
        assert r.headers["location"].endswith(f"/{body['id']}")
    if name == "product-post":
        assert body["owner_id"] == str(w.accounts[role].id)
    elif name == "product-restore":
        assert body["deleted_at"] is None
        assert (await w.admin.get(call.probe)).status_code == 200
    elif name.startswith("product"):
        # a manager's change does not take the product away from its seller
        assert body["owner_id"] == str(w.accounts["owner"].id)
    if isinstance(call.body, dict):
        for key in ("name", "sku", "stock"):
            if key in call.body:
                shown = "total_stock" if name.startswith("product") and key == "stock" else key
                assert body[shown] == call.body[key], key


class TestWriteMatrix:
    @pytest.mark.parametrize("role", ROLES)
    @pytest.mark.parametrize(
        ("name", "setup", "refused", "ok"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS]
    )
    async def test_write(
        self,
        world: World,
        role: str,
        name: str,
        setup: Setup,
        refused: dict[str, int],
        ok: int,
    ) -> None:
        call = await setup(world)
        expected = refused.get(role, ok)
        before = await snapshot(world, call.probe)
        r = await world.clients[role].request(call.method, call.url, json=call.body)
        assert r.status_code == expected, (role, name, r.status_code, r.text)
        if expected == 401:
            assert_unauthorized(r)
        elif expected == 403:
            assert_problem(r, 403)
        elif expected == 404:
            # another seller's product looks exactly like a missing one
            assert "not found" in assert_problem(r, 404)["detail"]
        else:
            await check_success(world, role, name, call, r)
        if expected >= 400:
            assert await snapshot(world, call.probe) == before, "a refused call changed state"


class TestProductVisibility:
    async def test_get_by_id_and_slug(self, world: World) -> None:
        products = {
            status: await create_product(world.owner, status=status)
            for status in ("draft", "active", "archived")
        }
        for role in ROLES:
            c = world.clients[role]
            privileged = role in ("owner", "admin")
            for status, p in products.items():
                visible = status == "active" or privileged
                urls = [
                    f"{API}/products/{p['id']}",
                    f"{API}/products/by-slug/{p['slug']}",
                    f"{API}/products/{p['id']}/variants",
                    f"{API}/products/{p['id']}/variants/{p['variants'][0]['id']}",
                ]
                for url in urls:
                    r = await c.get(url)
                    if visible:
                        assert r.status_code == 200, (role, status, url, r.text)
                    else:
                        assert r.status_code == 404, (role, status, url, r.text)
                        assert r.headers["content-type"] == "application/problem+json"
                        assert p["name"] not in r.text

    async def test_lists(self, world: World) -> None:
        brand = await create_brand(world.admin)
        mine = {
            status: (await create_product(world.owner, status=status, brand_id=brand["id"]))["id"]
            for status in ("draft", "active", "archived")
        }
        theirs = {
            status: (
                await create_product(
                    world.clients["other_seller"], status=status, brand_id=brand["id"]
                )
            )["id"]
            for status in ("draft", "active")
        }
        expected = {
            "anonymous": {mine["active"], theirs["active"]},
            "buyer": {mine["active"], theirs["active"]},
            "owner": {*mine.values(), theirs["active"]},
            "other_seller": {mine["active"], *theirs.values()},
            "admin": {*mine.values(), *theirs.values()},
        }
        for role, ids in expected.items():
            c = world.clients[role]
            r = await c.get(f"{API}/products", params={"brand_id": brand["id"], "limit": 50})
            assert r.status_code == 200
            assert {p["id"] for p in r.json()["items"]} == ids, role
            # asking for drafts explicitly does not reveal anyone else's
            r = await c.get(f"{API}/products", params={"brand_id": brand["id"], "status": "draft"})
            drafts = {p["id"] for p in r.json()["items"]}
            assert drafts == ids & {mine["draft"], theirs["draft"]}, role

    async def test_draft_of_another_seller_is_invisible_and_untouchable(self, world: World) -> None:
        p = await create_product(world.owner, status="draft")
        other = world.clients["other_seller"]
        url = f"{API}/products/{p['id']}"
        variant_url = f"{url}/variants/{p['variants'][0]['id']}"
        responses = [
            await other.get(url),
            await other.patch(url, json={"status": "active"}),
            await other.put(url, json=product_body() | {"slug": unique("steal")}),
            await other.delete(url),
            await other.post(f"{url}/restore"),
            await other.post(f"{url}/variants", json={"sku": unique("X"), "price": "1.00"}),
            await other.patch(variant_url, json={"stock": 0}),
            await other.delete(variant_url),
        ]
        for r in responses:
            assert "not found" in assert_problem(r, 404)["detail"]
        after = await world.owner.get(url)
        assert after.json()["status"] == "draft"
        assert after.json()["version"] == p["version"]

    async def test_deleted_products_are_hidden_from_everyone(self, world: World) -> None:
        p = await create_product(world.owner, status="active")
        r = await world.owner.delete(f"{API}/products/{p['id']}")
        assert r.status_code == 204
        for role in ROLES:
            r = await world.clients[role].get(f"{API}/products/{p['id']}")
            assert r.status_code == 404, role
