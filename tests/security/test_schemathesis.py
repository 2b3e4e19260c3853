"""Property-based tests of the whole API against its own OpenAPI schema (Schemathesis).

Every operation of the schema is called in process with generated requests: boundary and invalid
values as an administrator, random requests as an administrator, a seller, an anonymous caller
and a caller with a forged token. Each response must not be a server error, must have a status
code the operation documents, must match the documented media type, headers and schema, and an
API error must be a problem (RFC 9457).

The run is bounded and reproducible: a fixed seed, derandomized generation and a fixed number of
examples per operation. Generated path identifiers are often replaced by the identifiers of real
objects (the seller's own, another seller's), so the checks reach past "404 Not Found".
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import jwt
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.core.transport import Response
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from catalog.app import create_app
from catalog.config import Settings
from catalog.models import Role
from tests.conftest import (
    ACCOUNT_PASSWORD,
    Account,
    Backend,
    _flush_redis,
    _truncate,
    make_account,
    make_client,
    make_settings,
)
from tests.factories import API, create_brand, create_category, create_product, unique
from tests.imports.helpers import to_csv, upload
from tests.media.images import png

FuzzCase = schemathesis.Case[Any]
PROBLEM = "application/problem+json"
SEED = 20231
EXAMPLES = 6
ROLES = ("admin", "seller", "anonymous", "forged")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@dataclass
class FuzzWorld:
    settings: Settings
    accounts: dict[str, Account]
    # Real identifiers by path parameter name: the seller's object first, then another's.
    ids: dict[str, list[str]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
async def fuzz_world(backend: Backend) -> AsyncIterator[FuzzWorld]:
    """The objects the calls reach, made by an app whose lifespan has ended before the tests
    run. The tests are synchronous: they block this event loop, and a background task of a
    running app (its import worker, its event recorder) paused there inside a transaction
    would hold the SQLite database's write lock against the app under test, whose shutdown
    then waits on it for good."""
    setup_app = create_app(backend.settings)
    try:
        async with setup_app.router.lifespan_context(setup_app):
            accounts = {
                "admin": await make_account(setup_app, Role.admin),
                "seller": await make_account(setup_app, Role.seller),
                "other": await make_account(setup_app, Role.seller),
                "buyer": await make_account(setup_app, Role.buyer),
            }
            world = FuzzWorld(backend.settings, accounts)
            async with (
                make_client(setup_app, accounts["admin"].headers) as admin,
                make_client(setup_app, accounts["seller"].headers) as seller,
                make_client(setup_app, accounts["other"].headers) as other,
                make_client(setup_app, accounts["buyer"].headers) as buyer,
            ):
                await _populate(world, admin, seller, other, buyer)
        yield world
    finally:
        async with setup_app.router.lifespan_context(setup_app):
            await _truncate(setup_app.state.engine)
        await _flush_redis(backend.settings)


async def _populate(
    world: FuzzWorld,
    admin: httpx.AsyncClient,
    seller: httpx.AsyncClient,
    other: httpx.AsyncClient,
    buyer: httpx.AsyncClient,
) -> None:
    brand = await create_brand(admin)
    category = await create_category(admin)
    products: list[dict[str, Any]] = []
    for client in (seller, other):
        sku = unique("FZ")
        variants = [
            {"sku": f"{sku}-{s}", "price": "9.50", "stock": 3, "option_values": {"size": s}}
            for s in ("S", "L")
        ]
        products.append(
            await create_product(
                client,
                sku=sku,
                brand_id=brand["id"],
                category_id=category["id"],
                options=[{"name": "size", "values": ["S", "M", "L"]}],
                variants=variants,
            )
        )
    images, jobs, keys = [], [], []
    for client, product in zip((seller, other), products, strict=True):
        r = await client.post(
            f"{API}/products/{product['id']}/images",
            files=[("files", ("p.png", png(64, 48), "image/png"))],
        )
        assert r.status_code == 201, r.text
        images.append(r.json()[0]["id"])
        r = await upload(client, to_csv([]), filename="empty.csv")
        assert r.status_code == 202, r.text
        jobs.append(r.json()["id"])
        r = await client.post(
            f"{API}/api-keys", json={"name": unique("key"), "scopes": ["catalog:read"]}
        )
        assert r.status_code == 201, r.text
        keys.append(r.json()["id"])
        r = await buyer.post(f"{API}/products/{product['id']}/ratings", json={"score": 4})
        assert r.status_code in (200, 201), r.text
    r = await admin.post(f"{API}/search/synonyms", json={"terms": ["tee", "t-shirt"]})
    assert r.status_code == 201, r.text
    world.ids = {
        "product_id": [p["id"] for p in products],
        "variant_id": [p["variants"][0]["id"] for p in products],
        "image_id": images,
        "job_id": jobs,
        "key_id": keys,
        # Users other than the callers: a role change or deactivation must not end the run.
        "user_id": [str(world.accounts["other"].id), str(world.accounts["buyer"].id)],
        "brand_id": [brand["id"]],
        "category_id": [category["id"]],
        "synonym_id": [r.json()["id"]],
        "slug": [p["slug"] for p in products],
    }


def _load_schema(phases: list[str]) -> schemathesis.BaseSchema:
    """The schema of an app that is never started: each test sends its calls to the app of its
    storage profile (`case.call(app=...)`)."""
    config = schemathesis.Config()
    config.update(seed=SEED, max_failures=None)
    config.projects.default.phases.update(phases=phases)
    config.projects.default.generation.update(
        max_examples=EXAMPLES, deterministic=True, with_security_parameters=False
    )
    loaded = schemathesis.openapi.from_dict(OPENAPI, config=config)
    loaded.app = SCHEMA_APP
    return loaded


SCHEMA_APP = create_app(make_settings(database_url="sqlite+aiosqlite:///:memory:"))
OPENAPI = SCHEMA_APP.openapi()
# The schema's examples, then boundary and invalid values of every parameter and body field.
coverage = _load_schema(["examples", "coverage"])
# Random requests from the schema, a fixed number per operation.
fuzzing = _load_schema(["fuzzing"])


@pytest.fixture(scope="module")
def fuzz_app(fuzz_world: FuzzWorld) -> Iterator[FastAPI]:
    app = create_app(fuzz_world.settings)
    fuzz_world.tokens = {role: fuzz_world.accounts[role].token for role in ("admin", "seller")}
    # A well-formed token signed with another key: refused (401) on every API route.
    fuzz_world.tokens["forged"] = jwt.encode(
        {"sub": str(fuzz_world.accounts["admin"].id), "role": "admin", "typ": "access"},
        "another-key-that-is-long-enough-0123456789",
        algorithm="HS256",
    )
    try:
        yield app
    finally:
        # The app's lifespan runs on Schemathesis' event-loop thread until it is stopped here.
        asgi.shutdown_lifespans()


def _login(app: FastAPI, account: Account) -> str:
    with asgi.get_client(cast(Any, app)) as client:
        r = client.post(
            f"{API}/auth/token", data={"username": account.email, "password": ACCOUNT_PASSWORD}
        )
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


def _with_real_ids(case: FuzzCase, world: FuzzWorld) -> None:
    """Replace the generated path identifiers of two cases in three with real objects': all of
    the seller's, or all of another seller's (so that a variant belongs to its product).
    Deletions keep their generated identifiers: they would take the shared objects away from the
    operations after them (deleting real objects is covered by the authorisation tests)."""
    params = case.path_parameters or {}
    if case.method.upper() == "DELETE" or not any(name in world.ids for name in params):
        return
    pick = sum(map(ord, "".join(str(v) for v in params.values()))) % 3
    if pick == 2:
        return
    for name in list(params):
        known = world.ids.get(name)
        if known:
            params[name] = known[min(pick, len(known) - 1)]


def problem_details(ctx: CheckContext, response: Response, case: FuzzCase) -> bool | None:
    """Every API error is an RFC 9457 problem whose status is the response's."""
    if response.status_code < 400 or not case.path.startswith(API):
        return None
    media_type = response.headers.get("content-type", [""])[0]
    assert media_type == PROBLEM, f"error answered as {media_type!r}"
    body = response.json()
    assert body["status"] == response.status_code, body
    assert body["title"], body
    return None


def _check(case: FuzzCase, world: FuzzWorld, app: FastAPI, roles: tuple[str, ...]) -> None:
    _with_real_ids(case, world)
    for role in roles:
        token = world.tokens.get(role)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = case.call(headers=headers, app=app)
        case.validate_response(response, checks=[*CHECKS, problem_details], headers=headers)
        ended = case.path == f"{API}/auth/logout" and response.status_code == 204
        if role in world.accounts and (ended or response.status_code == 401):
            # The call ended this session (logout, password change): log in again.
            world.tokens[role] = _login(app, world.accounts[role])


@coverage.parametrize()
@settings(database=None, deadline=None, suppress_health_check=list(HealthCheck))
def test_boundary_values_as_admin(case: FuzzCase, fuzz_world: FuzzWorld, fuzz_app: FastAPI) -> None:
    """The administrator gets past every authorisation check, so the values reach the most code."""
    _check(case, fuzz_world, fuzz_app, ("admin",))


@fuzzing.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_generated_requests_as_every_role(
    case: FuzzCase, fuzz_world: FuzzWorld, fuzz_app: FastAPI
) -> None:
    _check(case, fuzz_world, fuzz_app, ROLES)
