"""The analytics dashboard: the page and its assets, and a browser test (Playwright driving
Debian's Chromium) that signs in, checks the charts drew data, uses the live search with its
facets, and saves screenshots (laptop and phone) under the test's tmp path."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import insert

from catalog.app import create_app
from catalog.cli import run_migrations
from catalog.db import new_id
from catalog.models import ProductView, Role, SearchEvent
from tests.conftest import ACCOUNT_PASSWORD, make_account, make_client, make_settings
from tests.factories import create_brand, create_category, create_product

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


class TestPage:
    async def test_page_and_assets(self, anon: httpx.AsyncClient) -> None:
        r = await anon.get("/dashboard")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "connect-src 'self'" in csp
        assert 'id="login"' in r.text
        # Every asset comes from the app itself.
        assert "//" not in r.text.replace("http://www.w3.org", "")
        for asset, kind in (("dashboard.js", "javascript"), ("dashboard.css", "text/css")):
            ref = next(
                part for part in r.text.split('"') if part.startswith(f"/dashboard/static/{asset}")
            )
            static = await anon.get(ref)
            assert static.status_code == 200, ref
            assert kind in static.headers["content-type"]
            assert len(static.content) > 1000
        assert (await anon.get("/dashboard/static/nothing.js")).status_code == 404


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, str]]:
    """The app served by uvicorn on a free port (a real browser needs a real socket), on a
    SQLite database of its own."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}"
    await asyncio.to_thread(run_migrations, url)
    app = create_app(make_settings(database_url=url, media_root=tmp_path / "media"))
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = (
        f"Chromium is not installed at {CHROMIUM}: the browser test needs Debian's chromium "
        "package (apt-get install -y chromium; .ci/run installs it)"
    )
    if os.environ.get("CATALOG_TEST_REQUIRE_PRODUCTION") == "1":
        pytest.fail(message)
    pytest.skip(message)


async def _catalog(app: FastAPI) -> str:
    """An administrator, three products, and a week of views and searches; the admin's email."""
    admin = await make_account(app, Role.admin)
    async with make_client(app, admin.headers) as c:
        brand = await create_brand(c, name="Lumen")
        category = await create_category(c, name="Lamps")
        lamps = [
            await create_product(
                c, name=name, brand_id=brand["id"], category_id=category["id"], stock=stock
            )
            for name, stock in (("Brass desk lamp", 0), ("Paper floor lamp", 2))
        ]
        await create_product(c, name="Oak chair", stock=20)
    now = dt.datetime.now(dt.UTC).replace(hour=0, minute=5)
    views = [
        {
            "product_id": uuid.UUID(lamps[i % 2]["id"]),
            "session_id": f"s{i % 5}",
            "created_at": now - dt.timedelta(days=i % 7),
        }
        for i in range(30)
    ]
    searches = [
        {
            "id": new_id(),
            "query": query,
            "filters": {},
            "result_count": count,
            "latency_ms": 3.0,
            "session_id": f"s{i}",
            "created_at": now - dt.timedelta(days=i % 4),
        }
        for i, (query, count) in enumerate(
            [("lamp", 2), ("lamp", 2), ("desk lamp", 1), ("sofa", 0), ("lamp", 2)]
        )
    ]
    async with app.state.engine.begin() as conn:
        await conn.execute(insert(ProductView), views)
        await conn.execute(insert(SearchEvent), searches)
    return admin.email


async def test_dashboard_in_a_browser(served: tuple[FastAPI, str], tmp_path: Path) -> None:
    _require_chromium()
    from playwright.async_api import async_playwright, expect

    app, base = served
    email = await _catalog(app)
    buyer_email = (await make_account(app, Role.buyer)).email
    problems: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = await browser.new_page(viewport={"width": 1366, "height": 900})
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on(
                "console",
                lambda msg: (
                    problems.append(f"console: {msg.text}") if msg.type == "error" else None
                ),
            )
            await page.goto(f"{base}/dashboard")
            await page.fill("#login [name=email]", email)
            await page.fill("#login [name=password]", "wrong-password")
            await page.click("#login button[type=submit]")
            await page.wait_for_selector("#login .error:has-text('Wrong email or password')")
            # A buyer signs in but may not read analytics: back to the form, with the reason.
            await page.fill("#login [name=email]", buyer_email)
            await page.fill("#login [name=password]", ACCOUNT_PASSWORD)
            await page.click("#login button[type=submit]")
            await page.wait_for_selector("#login .error:has-text('Only administrators')")
            assert await page.is_hidden("#app")
            problems.clear()  # the refused requests (401, 403) are logged in the console
            await page.fill("#login [name=email]", email)
            await page.fill("#login [name=password]", ACCOUNT_PASSWORD)
            await page.click("#login button[type=submit]")

            # Charts drew their data.
            await page.wait_for_selector("#views-chart canvas")
            await page.wait_for_selector("#active-chart canvas")
            assert await page.get_attribute("#views-chart", "data-points") == "30"
            assert int(await page.get_attribute("#views-chart", "data-total") or 0) == 30 + 5
            assert await page.locator("#top-products li").count() == 2
            assert await page.locator("#top-products li").first.inner_text() != ""
            assert await page.locator("#top-queries li").count() == 3
            assert "sofa" in await page.locator("#zero-queries").inner_text()
            assert await page.locator("#inventory tbody tr").count() == 2  # out and low
            assert await page.inner_text("#kpi-views") == "30"
            box = await page.locator("#views-chart canvas").bounding_box()
            assert box is not None
            assert box["width"] > 200
            assert box["height"] > 100

            # A shorter range reloads the data.
            await page.click("[data-days='7']")
            # (no wait_for_function: the page's CSP forbids evaluating strings)
            await expect(page.locator("#views-chart")).to_have_attribute("data-points", "7")

            # Live search with facets.
            await page.fill("#q", "lamp")
            await page.wait_for_selector("#results li")
            assert await page.locator("#results li").count() == 2
            await page.wait_for_selector("#facets button.chip")
            assert "Lumen (2)" in await page.inner_text("#facets")
            await page.fill("#q", "oak")
            await expect(page.locator("#results")).to_contain_text("Oak chair")
            await page.screenshot(path=str(tmp_path / "dashboard-laptop.png"), full_page=True)

            # Phone: one column, nothing wider than the screen.
            await page.set_viewport_size({"width": 390, "height": 844})
            await page.wait_for_timeout(200)
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 0
            await page.screenshot(path=str(tmp_path / "dashboard-phone.png"), full_page=True)
        finally:
            await browser.close()
    assert problems == []
    assert (tmp_path / "dashboard-laptop.png").stat().st_size > 10_000
    print(f"dashboard screenshots: {tmp_path}")
