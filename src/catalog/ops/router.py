from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import text

from catalog.kit.http import dumps

router = APIRouter(tags=["health"])


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
