"""`catalog analytics rollup`: folds the raw product views and search clicks of complete days
into `product_daily_stat`, deletes raw views older than the retention, and recomputes product
popularity (used by search and list sorting) from these numbers.

Days up to `analytics_rollup.through_day` are read from the daily table, later days from the raw
events, so the analytics API counts every view once, before and after a rollup. Running it again
is harmless: days already folded are left as they are.

Popularity over the last `POPULARITY_DAYS` days: views + 5 * search clicks + 2 * the sum of the
product's rating scores (rating_avg * rating_count).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from catalog.analytics.days import day_of, day_start
from catalog.db import utcnow
from catalog.kit.cache import Cache
from catalog.kit.invalidation import PRODUCTS, SEARCH
from catalog.models import AnalyticsRollup, Product, ProductDailyStat, ProductView, SearchClick

ROLLUP = "daily"
POPULARITY_DAYS = 30
CLICK_WEIGHT = 5.0
RATING_WEIGHT = 2.0


@dataclass
class RollupResult:
    days: int
    through_day: dt.date | None
    views: int
    deleted_views: int
    popularity_changed: int


async def through_day(conn: AsyncConnection) -> dt.date | None:
    value = await conn.scalar(
        select(AnalyticsRollup.through_day).where(AnalyticsRollup.name == ROLLUP)
    )
    return value if isinstance(value, dt.date) else None


async def rollup(
    engine: AsyncEngine,
    *,
    keep_days: int = 30,
    today: dt.date | None = None,
    cache: Cache | None = None,
) -> RollupResult:
    today = today or utcnow().date()
    target = today - dt.timedelta(days=1)  # only complete days
    async with engine.begin() as conn:
        done = await through_day(conn)
        if done is None:
            first = await conn.scalar(select(func.min(ProductView.created_at)))
            first_click = await conn.scalar(select(func.min(SearchClick.created_at)))
            starts = [d.date() for d in (first, first_click) if d is not None]
            start = min(starts) if starts else today
        else:
            start = done + dt.timedelta(days=1)
        days = 0
        views_total = 0
        if start <= target:
            days = (target - start).days + 1
            views_total = await _fold(conn, start, target)
            await _set_through(conn, target, done is None)
            done = target
        deleted = 0
        if done is not None:
            horizon = min(today - dt.timedelta(days=keep_days), done + dt.timedelta(days=1))
            result = await conn.execute(
                delete(ProductView).where(ProductView.created_at < day_start(horizon))
            )
            deleted = int(result.rowcount or 0)
        changed = await _popularity(conn, today, done)
    if cache is not None and changed:
        await cache.bump(PRODUCTS, SEARCH)
    return RollupResult(days, done, views_total, deleted, changed)


async def _fold(conn: AsyncConnection, start: dt.date, end: dt.date) -> int:
    low, high = day_start(start), day_start(end + dt.timedelta(days=1))
    view_day = day_of(conn, ProductView.created_at)
    visitor = func.coalesce(ProductView.session_id, func.cast(ProductView.user_id, String()))
    views = await conn.execute(
        select(
            view_day.label("day"),
            ProductView.product_id,
            func.sum(ProductView.views).label("views"),
            func.count(visitor.distinct()).label("sessions"),
        )
        .where(ProductView.created_at >= low, ProductView.created_at < high)
        .group_by(view_day, ProductView.product_id)
    )
    rows: dict[tuple[str, uuid.UUID], dict[str, Any]] = {}
    total = 0
    for day, product_id, count, sessions in views.all():
        rows[(str(day)[:10], product_id)] = {"views": int(count), "sessions": int(sessions)}
        total += int(count)
    click_day = day_of(conn, SearchClick.created_at)
    clicks = await conn.execute(
        select(click_day, SearchClick.product_id, func.count())
        .where(SearchClick.created_at >= low, SearchClick.created_at < high)
        .group_by(click_day, SearchClick.product_id)
    )
    for day, product_id, count in clicks.all():
        rows.setdefault((str(day)[:10], product_id), {"views": 0, "sessions": 0})["clicks"] = int(
            count
        )
    await conn.execute(
        delete(ProductDailyStat).where(ProductDailyStat.day >= start, ProductDailyStat.day <= end)
    )
    if rows:
        await conn.execute(
            ProductDailyStat.__table__.insert(),  # type: ignore[attr-defined]
            [
                {
                    "day": dt.date.fromisoformat(day),
                    "product_id": product_id,
                    "views": v["views"],
                    "sessions": v["sessions"],
                    "clicks": v.get("clicks", 0),
                }
                for (day, product_id), v in rows.items()
            ],
        )
    return total


async def _set_through(conn: AsyncConnection, day: dt.date, new: bool) -> None:
    if new:
        await conn.execute(
            AnalyticsRollup.__table__.insert().values(  # type: ignore[attr-defined]
                name=ROLLUP, through_day=day, updated_at=utcnow()
            )
        )
    else:
        await conn.execute(
            update(AnalyticsRollup)
            .where(AnalyticsRollup.name == ROLLUP)
            .values(through_day=day, updated_at=utcnow())
        )


async def product_counts(
    conn: AsyncConnection, start: dt.date, end: dt.date, done: dt.date | None
) -> dict[uuid.UUID, dict[str, int]]:
    """Views, sessions and clicks per product over [start, end]: folded days from the daily
    table, the others from the raw events."""
    out: dict[uuid.UUID, dict[str, int]] = defaultdict(lambda: {"views": 0, "clicks": 0})
    raw_from = start
    if done is not None and done >= start:
        folded = await conn.execute(
            select(
                ProductDailyStat.product_id,
                func.sum(ProductDailyStat.views),
                func.sum(ProductDailyStat.clicks),
            )
            .where(ProductDailyStat.day >= start, ProductDailyStat.day <= min(done, end))
            .group_by(ProductDailyStat.product_id)
        )
        for product_id, views, clicks in folded.all():
            out[product_id]["views"] += int(views or 0)
            out[product_id]["clicks"] += int(clicks or 0)
        raw_from = done + dt.timedelta(days=1)
    if raw_from <= end:
        low, high = day_start(raw_from), day_start(end + dt.timedelta(days=1))
        for product_id, count in (
            await conn.execute(
                select(ProductView.product_id, func.sum(ProductView.views))
                .where(ProductView.created_at >= low, ProductView.created_at < high)
                .group_by(ProductView.product_id)
            )
        ).all():
            out[product_id]["views"] += int(count)
        for product_id, count in (
            await conn.execute(
                select(SearchClick.product_id, func.count())
                .where(SearchClick.created_at >= low, SearchClick.created_at < high)
                .group_by(SearchClick.product_id)
            )
        ).all():
            out[product_id]["clicks"] += int(count)
    return out


async def _popularity(conn: AsyncConnection, today: dt.date, done: dt.date | None) -> int:
    start = today - dt.timedelta(days=POPULARITY_DAYS - 1)
    counts = await product_counts(conn, start, today, done)
    products = await conn.execute(
        select(Product.id, Product.popularity, Product.rating_avg, Product.rating_count)
    )
    changes = []
    for product_id, current, rating_avg, rating_count in products.all():
        c = counts.get(product_id)
        value = float(
            (c["views"] if c else 0)
            + CLICK_WEIGHT * (c["clicks"] if c else 0)
            + RATING_WEIGHT * float(rating_avg or 0) * int(rating_count or 0)
        )
        value = round(value, 4)
        if abs(value - float(current or 0)) > 1e-9:
            changes.append({"pid": product_id, "value": value})
    if changes:
        table: Any = Product.__table__
        await conn.execute(
            table.update()
            .where(table.c.id == bindparam("pid"))
            .values(popularity=bindparam("value")),
            changes,
        )
    return len(changes)
