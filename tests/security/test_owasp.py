"""The OWASP API Security Top 10 (2023) items that no other test module covers: each class names
its item. docs/security.md maps every item to its tests, here and elsewhere.

The accounts and the app are shared by the module (one set per profile); each test creates the
objects it acts on.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts

from catalog.app import create_app
from catalog.auth import dependencies as auth_deps
from catalog.config import Settings
from catalog.models import Role
from tests.auth.helpers import assert_problem, assert_unauthorized, running_app, settings_for
from tests.conftest import Account, Backend, _flush_redis, _truncate, make_account, make_client
from tests.factories import API, create_brand, create_product, unique
from tests.imports.helpers import to_csv, upload
from tests.media.images import png

PROBLEM = "application/problem+json"


@dataclass
class World:
    app: FastAPI
    accounts: dict[str, Account]
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    def __getitem__(self, role: str) -> httpx.AsyncClient:
        return self.clients[role]


@pytest.fixture(scope="module")
async def world(backend: Backend) -> AsyncIterator[World]:
    app = create_app(backend.settings)
    async with app.router.lifespan_context(app):
        try:
            accounts = {
                "admin": await make_account(app, Role.admin),
                "seller_a": await make_account(app, Role.seller),
                "seller_b": await make_account(app, Role.seller),
                "buyer": await make_account(app, Role.buyer),
                "buyer_2": await make_account(app, Role.buyer),
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


# --------------------------------------------------------------------------- API1


@dataclass
class Owned:
    """Objects of seller A: a draft product with two variants and an image, an import job and
    an API key."""

    product: dict[str, Any]
    image_id: str
    job_id: str
    key_id: str

    @property
    def url(self) -> str:
        return f"{API}/products/{self.product['id']}"

    @property
    def variant_url(self) -> str:
        return f"{self.url}/variants/{self.product['variants'][0]['id']}"


async def seller_a_objects(w: World) -> Owned:
    a = w["seller_a"]
    sku = unique("BOLA")
    product = await create_product(
        a,
        sku=sku,
        status="draft",
        options=[{"name": "size", "values": ["S", "L"]}],
        variants=[
            {"sku": f"{sku}-{s}", "price": "5.00", "stock": 2, "option_values": {"size": s}}
            for s in ("S", "L")
        ],
    )
    r = await a.post(
        f"{API}/products/{product['id']}/images",
        files=[("files", ("a.png", png(32, 32), "image/png"))],
    )
    assert r.status_code == 201, r.text
    image_id = r.json()[0]["id"]
    r = await upload(a, to_csv([]), filename="a.csv")
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    r = await a.post(f"{API}/api-keys", json={"name": unique("k"), "scopes": ["catalog:read"]})
    assert r.status_code == 201, r.text
    return Owned(product, image_id, job_id, r.json()["id"])


# Every route that addresses one object of seller A, as seller B would call it.
BOLA_CALLS: list[tuple[str, str, Callable[[Owned], str], Any]] = [
    ("product-get", "GET", lambda o: o.url, None),
    ("product-put", "PUT", lambda o: o.url, "replace"),
    ("product-patch", "PATCH", lambda o: o.url, {"name": "Stolen"}),
    ("product-delete", "DELETE", lambda o: o.url, None),
    ("product-restore", "POST", lambda o: f"{o.url}/restore", None),
    ("variants-list", "GET", lambda o: f"{o.url}/variants", None),
    (
        "variant-post",
        "POST",
        lambda o: f"{o.url}/variants",
        {"sku": "STOLEN-1", "price": "1.00", "option_values": {"size": "S"}},
    ),
    ("variant-get", "GET", lambda o: o.variant_url, None),
    (
        "variant-put",
        "PUT",
        lambda o: o.variant_url,
        {"sku": "STOLEN-2", "price": "1.00", "stock": 0, "option_values": {"size": "S"}},
    ),
    ("variant-patch", "PATCH", lambda o: o.variant_url, {"stock": 0}),
    ("variant-delete", "DELETE", lambda o: o.variant_url, None),
    ("stock-adjustment", "POST", lambda o: f"{o.variant_url}/stock-adjustments", {"delta": -1}),
    ("images-list", "GET", lambda o: f"{o.url}/images", None),
    ("image-upload", "POST", lambda o: f"{o.url}/images", "image"),
    ("image-get", "GET", lambda o: f"{API}/images/{o.image_id}", None),
    ("image-patch", "PATCH", lambda o: f"{API}/images/{o.image_id}", {"alt_text": "stolen"}),
    ("image-delete", "DELETE", lambda o: f"{API}/images/{o.image_id}", None),
    ("import-get", "GET", lambda o: f"{API}/imports/{o.job_id}", None),
    ("import-errors", "GET", lambda o: f"{API}/imports/{o.job_id}/errors", None),
    ("import-cancel", "POST", lambda o: f"{API}/imports/{o.job_id}/cancel", None),
    ("key-get", "GET", lambda o: f"{API}/api-keys/{o.key_id}", None),
    ("key-rotate", "POST", lambda o: f"{API}/api-keys/{o.key_id}/rotate", None),
    ("key-delete", "DELETE", lambda o: f"{API}/api-keys/{o.key_id}", None),
]


async def state_of(w: World, o: Owned) -> dict[str, Any]:
    """Everything seller A owns, as seller A sees it."""
    a = w["seller_a"]
    out: dict[str, Any] = {}
    for name, url in {
        "product": o.url,
        "images": f"{o.url}/images",
        "job": f"{API}/imports/{o.job_id}",
        "key": f"{API}/api-keys/{o.key_id}",
    }.items():
        r = await a.get(url)
        assert r.status_code == 200, (name, r.text)
        out[name] = r.json()
    # The job may progress in the background; its owner and identity must not change.
    out["job"] = {k: out["job"][k] for k in ("id", "filename", "cancel_requested")}
    return out


class TestObjectLevelAuthorisation:
    """API1:2023 Broken Object Level Authorization: seller B addresses each of seller A's
    objects by its identifier and gets 404 (the object does not exist for B), changing nothing."""

    @pytest.mark.parametrize(
        ("name", "method", "url", "body"), BOLA_CALLS, ids=[c[0] for c in BOLA_CALLS]
    )
    async def test_another_sellers_object(
        self, world: World, name: str, method: str, url: Callable[[Owned], str], body: Any
    ) -> None:
        o = await seller_a_objects(world)
        before = await state_of(world, o)
        b = world["seller_b"]
        if body == "image":
            r = await b.post(url(o), files=[("files", ("b.png", png(16, 16), "image/png"))])
        elif body == "replace":
            payload = {"sku": unique("ST"), "slug": unique("st"), "name": "Stolen"}
            payload |= {"currency": "USD", "price": "1.00"}
            r = await b.put(url(o), json=payload)
        else:
            r = await b.request(method, url(o), json=body)
        assert "not found" in assert_problem(r, 404)["detail"].lower(), (name, r.text)
        assert await state_of(world, o) == before

    def test_every_object_route_is_covered(self, world: World) -> None:
        """Each route that addresses a product, variant, image, import job or API key by its
        identifier is in BOLA_CALLS: a new object route fails here until it is added."""
        placeholders = Owned(
            {"id": "{product_id}", "variants": [{"id": "{variant_id}"}]},
            "{image_id}",
            "{job_id}",
            "{key_id}",
        )
        covered = {(method, url(placeholders)) for _, method, url, _ in BOLA_CALLS}
        params = ("{product_id}", "{variant_id}", "{image_id}", "{job_id}", "{key_id}")
        # Not owned objects: buyers rate any active product (a rating is the buyer's own, see
        # test_a_rating_belongs_to_its_buyer); administrator routes are refused to sellers.
        exempt = {("POST", f"{API}/products/{{product_id}}/ratings"), *admin_routes(world.app)}
        served = {
            (method, route.path)
            for route in iter_route_contexts(world.app.routes)
            if route.path is not None and any(p in route.path for p in params)
            for method in route.methods or ()
            if method != "HEAD"
        }
        assert served - exempt - covered == set()
        assert covered <= served

    async def test_lists_and_exports_show_only_ones_own(self, world: World) -> None:
        o = await seller_a_objects(world)
        b = world["seller_b"]
        r = await b.get(f"{API}/imports")
        assert o.job_id not in {j["id"] for j in r.json()}
        r = await b.get(f"{API}/api-keys")
        assert o.key_id not in {k["id"] for k in r.json()}
        r = await b.get(f"{API}/exports/products", params={"format": "jsonl"})
        assert r.status_code == 200, r.text
        assert o.product["sku"] not in r.text
        r = await b.get(f"{API}/products", params={"status": "draft", "limit": 100})
        assert o.product["id"] not in {p["id"] for p in r.json()["items"]}
        # ...while seller A sees them all
        a = world["seller_a"]
        assert o.job_id in {j["id"] for j in (await a.get(f"{API}/imports")).json()}
        assert o.key_id in {k["id"] for k in (await a.get(f"{API}/api-keys")).json()}

    async def test_users_are_not_objects_of_other_users(self, world: World) -> None:
        a_id = world.accounts["seller_a"].id
        for role in ("seller_b", "buyer"):
            c = world[role]
            assert_problem(await c.get(f"{API}/users/{a_id}"), 403)
            r = await c.patch(f"{API}/users/{a_id}", json={"role": "admin"})
            assert_problem(r, 403)
        r = await world["admin"].get(f"{API}/users/{a_id}")
        assert r.json()["role"] == "seller"

    async def test_a_rating_belongs_to_its_buyer(self, world: World) -> None:
        p = await create_product(world["seller_a"], status="active")
        url = f"{API}/products/{p['id']}/ratings"
        r1 = await world["buyer"].post(url, json={"score": 5})
        r2 = await world["buyer_2"].post(url, json={"score": 1})
        assert (r1.status_code, r2.status_code) == (201, 201), (r1.text, r2.text)
        # the second buyer's rating did not replace the first one's
        assert r2.json()["product"] == {"rating_avg": 3.0, "rating_count": 2}
        assert r1.json()["user_id"] != r2.json()["user_id"]
        # sellers cannot rate, so they cannot rate their own products up
        assert_problem(await world["seller_a"].post(url, json={"score": 5}), 403)


# --------------------------------------------------------------------------- API3

# Properties the server maintains; none may be set through the API.
SERVER_PROPERTIES: dict[str, Any] = {
    "rating_avg": 5.0,
    "rating_count": 1000,
    "owner_id": str(uuid.UUID(int=1)),
    "version": 99,
    "popularity": 1e9,
    "thumbnail_url": "https://evil.example/x.png",
    "deleted_at": None,
    "id": str(uuid.UUID(int=2)),
}


def assert_extra_forbidden(r: httpx.Response, prop: str) -> None:
    body = assert_problem(r, 422)
    assert any(e["loc"][-1] == prop and e["type"] == "extra_forbidden" for e in body["errors"]), (
        body
    )


class TestPropertyLevelAuthorisation:
    """API3:2023 Broken Object Property Level Authorization (mass assignment): request bodies
    refuse unknown fields, so a seller cannot set what the server maintains; and responses do
    not expose secrets."""

    @pytest.mark.parametrize("prop", list(SERVER_PROPERTIES))
    async def test_product_writes_refuse_server_properties(self, world: World, prop: str) -> None:
        seller = world["seller_a"]
        p = await create_product(seller)
        value = SERVER_PROPERTIES[prop]
        new = {"sku": unique("MA"), "name": "Mass", "currency": "USD", "price": "1.00"}
        calls = [
            ("POST", f"{API}/products", new | {prop: value}),
            ("PUT", f"{API}/products/{p['id']}", new | {"slug": unique("ma"), prop: value}),
            ("PATCH", f"{API}/products/{p['id']}", {"name": "Renamed", prop: value}),
            ("POST", f"{API}/products/{p['id']}/variants", {"sku": unique("MV"), prop: value}),
            (
                "PATCH",
                f"{API}/products/{p['id']}/variants/{p['variants'][0]['id']}",
                {"stock": 1, prop: value},
            ),
        ]
        for method, url, body in calls:
            r = await seller.request(method, url, json=body)
            assert_extra_forbidden(r, prop)
        after = (await seller.get(f"{API}/products/{p['id']}")).json()
        assert after == p | {k: after[k] for k in ("updated_at",) if k in after}
        assert after["version"] == p["version"]
        assert after["owner_id"] == str(world.accounts["seller_a"].id)

    async def test_account_writes_refuse_role_and_status(self, world: World) -> None:
        for prop, value in (("role", "admin"), ("is_active", True), ("email", "x@example.com")):
            r = await world["buyer"].patch(f"{API}/auth/me", json={prop: value})
            assert_extra_forbidden(r, prop)
        r = await world["anonymous"].post(
            f"{API}/auth/register",
            json={
                "email": f"{unique('m')}@example.com",
                "password": "a-long-enough-passphrase",
                "full_name": "M",
                "role": "admin",
            },
        )
        assert_extra_forbidden(r, "role")
        r = await world["seller_a"].post(
            f"{API}/api-keys",
            json={"name": "k", "scopes": ["catalog:read"], "owner_id": str(uuid.UUID(int=3))},
        )
        assert_extra_forbidden(r, "owner_id")
        assert (await world["buyer"].get(f"{API}/auth/me")).json()["role"] == "buyer"

    async def test_image_writes_refuse_server_properties(self, world: World) -> None:
        o = await seller_a_objects(world)
        for prop, value in (("url", "https://evil.example/"), ("product_id", o.product["id"])):
            r = await world["seller_a"].patch(f"{API}/images/{o.image_id}", json={prop: value})
            assert_extra_forbidden(r, prop)

    async def test_responses_expose_no_secrets(self, world: World) -> None:
        me = (await world["seller_a"].get(f"{API}/auth/me")).json()
        assert not {"password", "password_hash", "hashed_password"} & set(me)
        keys = (await world["seller_a"].get(f"{API}/api-keys")).json()
        assert keys
        assert all("key" not in k and "key_hash" not in k for k in keys)


# --------------------------------------------------------------------------- API4


class TestResourceConsumption:
    """API4:2023 Unrestricted Resource Consumption: every list has a page-size ceiling, bodies,
    uploads, imports and search queries have size limits, and rate limits answer 429 (those
    have their own tests, listed in docs/security.md)."""

    @pytest.mark.parametrize(
        ("url", "param"),
        [
            (f"{API}/products", "limit"),
            (f"{API}/brands", "limit"),
            (f"{API}/categories", "limit"),
            (f"{API}/search", "page_size"),
            (f"{API}/search/suggest?q=a", "limit"),
            (f"{API}/users", "limit"),
            (f"{API}/imports", "limit"),
            (f"{API}/analytics/products", "limit"),
        ],
    )
    async def test_page_size_has_a_ceiling(self, world: World, url: str, param: str) -> None:
        sep = "&" if "?" in url else "?"
        r = await world["admin"].get(f"{url}{sep}{param}=100000")
        body = assert_problem(r, 422)
        assert body["errors"][0]["loc"] == ["query", param]

    async def test_search_query_length_is_bounded(self, world: World) -> None:
        anon = world["anonymous"]
        assert (await anon.get(f"{API}/search", params={"q": "a" * 200})).status_code == 200
        body = assert_problem(await anon.get(f"{API}/search", params={"q": "a" * 201}), 422)
        assert body["errors"][0]["loc"] == ["query", "q"]
        r = await anon.get(f"{API}/search/suggest", params={"q": "a" * 101})
        assert_problem(r, 422)

    async def test_json_body_over_the_limit_is_413(self, world: World) -> None:
        limit = world.app.state.settings.max_body_bytes
        body = b'{"name": "' + b"x" * limit + b'"}'
        r = await world["admin"].post(
            f"{API}/brands", content=body, headers={"Content-Type": "application/json"}
        )
        assert_problem(r, 413)
        r = await world["admin"].get(f"{API}/brands", params={"limit": 100})
        assert all(len(b["name"]) < 1000 for b in r.json()["items"])

    async def test_string_fields_and_lists_are_bounded(self, world: World) -> None:
        seller = world["seller_a"]
        too_long = {"sku": unique("L"), "name": "n" * 10_000, "currency": "USD", "price": "1"}
        assert_problem(await seller.post(f"{API}/products", json=too_long), 422)
        r = await world["admin"].post(
            f"{API}/search/synonyms", json={"terms": [f"t{i}" for i in range(21)]}
        )
        assert_problem(r, 422)


# --------------------------------------------------------------------------- API5

# Dependencies that only administrators pass.
ADMIN_DEPENDENCIES = {auth_deps.admin, auth_deps.catalog_admin, auth_deps.analytics_reader}
# Dependencies that refuse anonymous callers (401), and but for the first also others (403).
AUTHENTICATED_DEPENDENCIES = {
    auth_deps.authenticated,
    auth_deps.product_creator,
    auth_deps.catalog_writer,
    *ADMIN_DEPENDENCIES,
}


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def admin_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route of the app that requires an administrator."""
    out: list[tuple[str, str]] = []
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        path = route.path
        if path is None or dependant is None or not ADMIN_DEPENDENCIES & set(_calls(dependant)):
            continue
        out.extend((method, path) for method in sorted(route.methods or ()))
    return out


def concrete(path: str) -> str:
    """The path with a fresh identifier for each parameter (authorisation comes first)."""
    parts = [str(uuid.uuid4()) if p.startswith("{") else p for p in path.split("/")]
    return "/".join(parts)


class TestFunctionLevelAuthorisation:
    """API5:2023 Broken Function Level Authorization: the administrator routes are found in the
    app itself (a new one is covered without editing this test); sellers, buyers and
    non-admin API keys get 403, anonymous callers 401."""

    def test_the_route_list_is_complete(self, world: World) -> None:
        routes = admin_routes(world.app)
        paths = {p for _, p in routes}
        for expected in (
            f"{API}/users",
            f"{API}/users/{{user_id}}",
            f"{API}/brands",
            f"{API}/categories/{{category_id}}",
            f"{API}/search/synonyms",
            f"{API}/analytics/products",
            f"{API}/search/analytics/volume",
            f"{API}/analytics/inventory/variants/{{variant_id}}/threshold",
        ):
            assert expected in paths, expected
        # public reads are not in it
        assert ("GET", f"{API}/brands") not in routes
        assert ("GET", f"{API}/products/{{product_id}}") not in routes
        assert len(routes) >= 25

    async def test_non_admins_are_refused_everywhere(self, world: World) -> None:
        r = await world["seller_a"].post(
            f"{API}/api-keys",
            json={"name": "all", "scopes": ["catalog:read", "catalog:write", "analytics:read"]},
        )
        assert r.status_code == 201, r.text
        key_client = make_client(world.app, {"X-API-Key": r.json()["key"]})
        callers = {
            "seller": world["seller_a"],
            "buyer": world["buyer"],
            "seller-api-key": key_client,
        }
        try:
            for method, path in admin_routes(world.app):
                url = concrete(path)
                body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
                for name, c in callers.items():
                    r = await c.request(method, url, json=body)
                    assert r.status_code == 403, (name, method, path, r.text)
                    assert_problem(r, 403)
                assert_unauthorized(await world["anonymous"].request(method, url, json=body))
        finally:
            await key_client.aclose()

    async def test_admins_pass(self, world: World) -> None:
        """The same routes are not refused to an administrator (the list is not vacuous)."""
        for method, path in admin_routes(world.app):
            body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
            r = await world["admin"].request(method, concrete(path), json=body)
            assert r.status_code not in (401, 403), (method, path, r.text)


# --------------------------------------------------------------------------- API7


@pytest.fixture
def outbound() -> Iterator[list[Any]]:
    """Records every connection (and name lookup) to a non-loopback address, and stops it."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def loopback(address: Any) -> bool:
        host = address[0] if isinstance(address, tuple) else address
        return isinstance(host, str) and (
            host in ("localhost", "::1") or host.startswith(("127.", "/"))
        )

    def connect(self: socket.socket, address: Any) -> None:
        if self.family == socket.AF_UNIX or loopback(address):
            return real_connect(self, address)
        attempts.append(address)
        raise ConnectionRefusedError("outbound connections are not allowed in this test")

    def connect_ex(self: socket.socket, address: Any) -> int:
        if self.family == socket.AF_UNIX or loopback(address):
            return real_connect_ex(self, address)
        attempts.append(address)
        return 111

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not loopback((host,)):
            attempts.append(host)
        return real_getaddrinfo(host, *args, **kwargs)

    mp = pytest.MonkeyPatch()
    mp.setattr(socket.socket, "connect", connect)
    mp.setattr(socket.socket, "connect_ex", connect_ex)
    mp.setattr(socket, "getaddrinfo", getaddrinfo)
    try:
        yield attempts
    finally:
        mp.undo()


class TestServerSideRequestForgery:
    """API7:2023 Server Side Request Forgery: no endpoint fetches a URL a caller gives. Brand
    logos are stored as given and never fetched; images are uploaded, not fetched by URL."""

    async def test_urls_in_bodies_are_stored_never_fetched(
        self, world: World, outbound: list[Any]
    ) -> None:
        targets = [
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "http://10.0.0.1:6379/",
            "https://metadata.google.internal/computeMetadata/v1/",
        ]
        admin = world["admin"]
        for url in targets:
            brand = await create_brand(admin, logo_url=url)
            assert brand["logo_url"] == url
            r = await admin.patch(f"{API}/brands/{brand['id']}", json={"logo_url": url})
            assert r.status_code == 200, r.text
            p = await create_product(world["seller_a"], description=url, attributes={"src": url})
            r = await world["seller_a"].patch(
                f"{API}/products/{p['id']}", json={"attributes": {"image": url}}
            )
            assert r.status_code == 200, r.text
        # give any background work (analytics, imports) a moment to run too
        await asyncio.sleep(0.05)
        assert outbound == []

    def test_the_guard_catches_a_connection(self, outbound: list[Any]) -> None:
        """The guard above is live: a connection to a non-loopback address is recorded."""
        with socket.socket() as s, pytest.raises(ConnectionRefusedError):
            s.connect(("192.0.2.1", 80))
        assert outbound == [("192.0.2.1", 80)]


# --------------------------------------------------------------------------- API8


class TestSecurityMisconfiguration:
    """API8:2023 Security Misconfiguration: debug off, interactive docs can be switched off,
    no stack traces in answers (CORS and security headers: tests/auth/test_hardening.py)."""

    def test_debug_is_off(self) -> None:
        app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))
        assert app.debug is False

    def test_docs_switch_is_read_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("CATALOG_DOCS_ENABLED", "false")
        settings = Settings(database_url="sqlite+aiosqlite:///:memory:")
        assert settings.docs_enabled is False

    async def test_docs_can_be_switched_off(self, backend: Backend) -> None:
        settings = settings_for(backend, docs_enabled=False)
        async with running_app(settings) as app, make_client(app) as c:
            for path in ("/docs", "/openapi.json", "/redoc", "/docs/oauth2-redirect"):
                assert (await c.get(path)).status_code == 404, path
            assert (await c.get(f"{API}/products")).status_code == 200

    async def test_docs_are_on_by_default(self, world: World) -> None:
        assert (await world["anonymous"].get("/openapi.json")).status_code == 200
        assert (await world["anonymous"].get("/redoc")).status_code == 404

    async def test_an_unexpected_error_reveals_nothing(
        self, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from catalog.brands import service as brand_service

        async def boom(*_args: Any, **_kwargs: Any) -> Any:
            raise RuntimeError("secret-internal-detail /etc/passwd")

        monkeypatch.setattr(brand_service, "create", boom)
        # As a server would: the error is answered, not raised into the client.
        transport = httpx.ASGITransport(app=world.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=world.accounts["admin"].headers
        ) as c:
            r = await c.post(f"{API}/brands", json={"name": unique("Boom")})
        body = assert_problem(r, 500)
        assert body["detail"] == "An unexpected error occurred"
        assert "secret-internal-detail" not in r.text
        assert "Traceback" not in r.text


class TestMalformedRequests:
    """Requests that cannot be parsed are refused with a documented problem, never a 500 or an
    undocumented status (findings of tests/security/test_schemathesis.py)."""

    @pytest.mark.parametrize("body", [b"\xff\xfe{", b'{"name": "\xe9t\xe9"}', b"\x80"])
    async def test_json_that_is_not_utf8_is_422(self, world: World, body: bytes) -> None:
        r = await world["admin"].post(
            f"{API}/brands", content=body, headers={"Content-Type": "application/json"}
        )
        problem = assert_problem(r, 422)
        assert problem["errors"] == [
            {"loc": ["body"], "msg": "JSON decode error", "type": "json_invalid"}
        ]

    async def test_invalid_json_is_422_too(self, world: World) -> None:
        r = await world["admin"].post(
            f"{API}/brands", content=b"{nope", headers={"Content-Type": "application/json"}
        )
        assert assert_problem(r, 422)["errors"][0]["type"] == "json_invalid"

    @pytest.mark.parametrize("url", [f"{API}/auth/token", f"{API}/imports"])
    async def test_multipart_without_boundary_is_400(self, world: World, url: str) -> None:
        r = await world["admin"].post(
            url, content=b"x", headers={"Content-Type": "multipart/form-data"}
        )
        assert_problem(r, 400)
        method = world.app.openapi()["paths"][url]["post"]
        assert "400" in method["responses"]

    @pytest.mark.parametrize(
        "url", [f"{API}/products", f"{API}/brands", f"{API}/search?q=a", f"{API}/categories/tree"]
    )
    async def test_bad_credentials_on_a_public_read_are_401(self, world: World, url: str) -> None:
        async with make_client(world.app, {"Authorization": "Bearer not-a-token"}) as c:
            assert_unauthorized(await c.get(url))
        path = url.split("?")[0]
        assert "401" in world.app.openapi()["paths"][path]["get"]["responses"]

    async def test_click_is_answered_without_a_body(self, world: World) -> None:
        body = {"search_id": str(uuid.uuid4()), "product_id": str(uuid.uuid4()), "position": 1}
        r = await world["anonymous"].post(f"{API}/search/click", json=body)
        assert r.status_code == 202
        assert r.content == b""
        assert "content-type" not in r.headers
        documented = world.app.openapi()["paths"][f"{API}/search/click"]["post"]["responses"]
        assert "content" not in documented["202"]


# --------------------------------------------------------------------------- API9

# Routes deliberately left out of the OpenAPI document, with the reason.
UNDOCUMENTED = {
    "/openapi.json": "the document itself",
    "/docs": "the interactive documentation page",
    "/docs/oauth2-redirect": "part of the interactive documentation page",
    "/media/{key:path}": "static image files (local media backend), not an API",
    "/dashboard": "the analytics dashboard page (HTML for people; it calls the documented API)",
    "/dashboard/static": "the dashboard's script and styles",
}


class TestInventory:
    """API9:2023 Improper Inventory Management: every route the app serves is in the OpenAPI
    document (except the documented exceptions above), and nothing in the document is missing
    from the app; /metrics is documented and guarded (tests/ops/test_metrics.py)."""

    def test_every_route_is_documented(self, world: World) -> None:
        document = world.app.openapi()["paths"]
        documented = {(m.upper(), p) for p, ops in document.items() for m in ops}
        served: set[tuple[str, str]] = set()
        for route in iter_route_contexts(world.app.routes):
            path = route.path
            assert path is not None
            if path in UNDOCUMENTED:
                assert not getattr(route, "include_in_schema", False), path
                continue
            for method in route.methods or ():
                if method != "HEAD":
                    served.add((method, path))
        assert served - documented == set(), "served but not documented"
        assert documented - served == set(), "documented but not served"
        assert ("GET", "/metrics") in served

    def test_every_api_operation_documents_its_errors(self, world: World) -> None:
        document = world.app.openapi()["paths"]
        for route in iter_route_contexts(world.app.routes):
            path = route.path
            if path is None or not path.startswith(API):
                continue
            calls = set(_calls(route.dependant))
            for method in route.methods or ():
                op = document[path][method.lower()]
                codes = set(op["responses"])
                assert {"413", "429"} <= codes, (method, path)
                if op.get("parameters") or op.get("requestBody"):
                    assert PROBLEM in op["responses"]["422"]["content"], (method, path)
                # Credentials that are sent are checked everywhere (rate_limit needs the caller).
                assert auth_deps.get_principal in calls, (method, path)
                assert "401" in codes, (method, path)
                if calls & (AUTHENTICATED_DEPENDENCIES - {auth_deps.authenticated}):
                    assert "403" in codes, (method, path)
