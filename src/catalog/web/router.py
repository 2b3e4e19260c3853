"""`GET /dashboard`: the analytics dashboard. The page signs in with the token endpoint and
reads the analytics and search APIs; its script and styles are built from `frontend/dashboard`
(npm: uPlot, esbuild) into `static/`, served by the app itself (no CDN)."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"

router = APIRouter(tags=["dashboard"], include_in_schema=False)

# The page loads nothing from elsewhere; scripts and styles only from files of this origin.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@cache
def page() -> bytes:
    digest = hashlib.sha256()
    for name in ("dashboard.js", "dashboard.css"):
        digest.update((STATIC_DIR / name).read_bytes())
    template = (HERE / "templates" / "dashboard.html").read_text(encoding="utf-8")
    return template.replace("{version}", digest.hexdigest()[:12]).encode()


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard() -> HTMLResponse:
    return HTMLResponse(
        page(),
        headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-cache"},
    )


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC_DIR)
