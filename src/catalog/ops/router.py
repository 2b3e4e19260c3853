from __future__ import annotations

import asyncio
import hmac
import ipaddress
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import text

from catalog.errors import problem_response
from catalog.kit import metrics
from catalog.kit.clientip import client_ip, parse_networks
from catalog.kit.http import dumps

router = APIRouter(tags=["health"])
metrics_router = APIRouter(tags=["monitoring"])


class Live(BaseModel):
    status: str


class Check(BaseModel):
    status: str
    latency_ms: float | None = None
    error: str | None = None


class Ready(BaseModel):
    status: str
    profile: str
    checks: dict[str, Check]


@router.get("/health/live", response_model=Live)
async def live() -> Response:
    """The process is up; touches no dependency."""
    return Response(b'{"status":"ok"}', media_type="application/json")


async def _timed(check: Any) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        await asyncio.wait_for(check(), timeout=2.0)
    except Exception as exc:  # any failure of a dependency is reported, not raised
        return {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"status": "up", "latency_ms": round((time.perf_counter() - start) * 1000, 2)}


@router.get("/health/ready", response_model=Ready, responses={503: {"model": Ready}})
async def ready(request: Request) -> Response:
    """Checks the database, media storage and, in the production profile, Redis; 503 naming
    what is down."""
    state = request.app.state

    async def database() -> None:
        async with state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    checks = {"database": await _timed(database)}
    if state.redis is not None:

        async def redis() -> None:
            await state.redis.ping()

        checks["redis"] = await _timed(redis)
    checks["media"] = await _timed(state.media_storage.check)
    ok = all(c["status"] == "up" for c in checks.values())
    body = {
        "status": "ok" if ok else "unavailable",
        "profile": state.settings.profile,
        "checks": checks,
    }
    return Response(
        dumps(body),
        status_code=200 if ok else 503,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def _metrics_access(request: Request) -> Response | None:
    """None when the caller may read the metrics, else the refusal. A valid bearer token or an
    address in `metrics_allow` grants access; a wrong token is refused even from there."""
    settings = request.app.state.settings
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if header and scheme.lower() == "bearer" and token is not None:
        if hmac.compare_digest(given.strip().encode(), token.encode()):
            return None
        return problem_response(
            401,
            title="Unauthorized",
            detail="Invalid metrics token",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    allowed = getattr(request.app.state, "metrics_allow", None)
    if allowed is None:
        allowed = request.app.state.metrics_allow = parse_networks(settings.metrics_allow)
    try:
        ip = ipaddress.ip_address(client_ip(request.scope, request.app.state.trusted_proxies))
    except ValueError:
        ip = None
    if ip is not None and any(ip in network for network in allowed):
        return None
    if token is not None:
        return problem_response(
            401,
            title="Unauthorized",
            detail="The metrics token is required",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    return problem_response(403, title="Forbidden", detail="Metrics are not served to this address")


@metrics_router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, 401: {}, 403: {}},
)
async def metrics_endpoint(request: Request) -> Response:
    """Prometheus metrics of every worker (text exposition format). Served to the networks of
    `CATALOG_METRICS_ALLOW` (default: this machine) or with `Authorization: Bearer
    <CATALOG_METRICS_TOKEN>`."""
    refusal = _metrics_access(request)
    if refusal is not None:
        return refusal
    state = request.app.state
    metrics.sample_pools(state.engine, state.product_reads, state.search_engine)
    body = await asyncio.to_thread(metrics.exposition)
    return Response(body, media_type=metrics.CONTENT_TYPE, headers={"Cache-Control": "no-store"})
