"""Analytics queries: product performance, views over time, user behaviour and inventory. Search
trends come from the search domain's own analytics (`catalog.search.service`), plus rising
queries computed here from the same events.

Date ranges are inclusive UTC days. Views of days already rolled up come from
`product_daily_stat`, later ones from the raw events (see `catalog.analytics.rollup`)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import String, and_, exists, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from catalog.analytics.days import day_of, day_start
from catalog.analytics.rollup import product_counts, through_day
from catalog.kit.money import format_money
from catalog.models import (
    Brand,
    Category,
    Product,
    ProductDailyStat,
    ProductImage,
    ProductRating,
    ProductVariant,
    ProductView,
    SearchClick,
    SearchEvent,
)


@dataclass(frozen=True)
class DateRange:
    start: dt.date
    end: dt.date

    @property
    def low(self) -> dt.datetime:
        return day_start(self.start)

    @property
    def high(self) -> dt.datetime:
        return day_start(self.end + dt.timedelta(days=1))

    def days(self) -> list[str]:
        count = (self.end - self.start).days + 1
        return [(self.start + dt.timedelta(days=i)).isoformat() for i in range(count)]


class GroupBy(StrEnum):
    product = "product"
    category = "category"
    brand = "brand"


class PerformanceSort(StrEnum):
    views = "views"
    clicks = "clicks"
    click_through = "click_through"
    rating = "rating"


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


async def _connection(session: AsyncSession) -> AsyncConnection:
    return await session.connection()


# --------------------------------------------------------------------------- products


async def product_performance(
    session: AsyncSession,
    period: DateRange,
    *,
    group_by: GroupBy,
    sort: PerformanceSort,
    limit: int,
    category_id: uuid.UUID | None = None,
    brand_id: uuid.UUID | None = None,
) -> list[dict[str, Any]]:
    """Views, clicks (search results opened), click-through and rating per product, or summed
    per category or brand, over the period; the top `limit` by `sort`."""
    conn = await _connection(session)
    counts = await product_counts(conn, period.start, period.end, await through_day(conn))
    stmt = (
        select(
            Product.id,
            Product.sku,
            Product.name,
            Product.rating_avg,
            Product.rating_count,
            Product.category_id,
            Category.name.label("category_name"),
            Product.brand_id,
            Brand.name.label("brand_name"),
        )
        .outerjoin(Category, Category.id == Product.category_id)
        .outerjoin(Brand, Brand.id == Product.brand_id)
        .where(Product.deleted_at.is_(None))
    )
    if category_id is not None:
        stmt = stmt.where(Product.category_id == category_id)
    if brand_id is not None:
        stmt = stmt.where(Product.brand_id == brand_id)
    rows = (await conn.execute(stmt)).all()
    items: list[dict[str, Any]] = []
    if group_by == GroupBy.product:
        for r in rows:
            c = counts.get(r.id, {"views": 0, "clicks": 0})
            items.append(
                {
                    "product_id": r.id,
                    "sku": r.sku,
                    "name": r.name,
                    "category_id": r.category_id,
                    "brand_id": r.brand_id,
                    "views": c["views"],
                    "clicks": c["clicks"],
                    "click_through": _ratio(c["clicks"], c["views"]),
                    "rating_avg": round(float(r.rating_avg), 4),
                    "rating_count": int(r.rating_count),
                }
            )
    else:
        groups: dict[Any, dict[str, Any]] = {}
        for r in rows:
            key, name = (
                (r.category_id, r.category_name)
                if group_by == GroupBy.category
                else (r.brand_id, r.brand_name)
            )
            g = groups.setdefault(
                key,
                {
                    "id": key,
                    "name": name,
                    "products": 0,
                    "views": 0,
                    "clicks": 0,
                    "score_sum": 0.0,
                    "rating_count": 0,
                },
            )
            c = counts.get(r.id, {"views": 0, "clicks": 0})
            g["products"] += 1
            g["views"] += c["views"]
            g["clicks"] += c["clicks"]
            g["score_sum"] += float(r.rating_avg) * int(r.rating_count)
            g["rating_count"] += int(r.rating_count)
        for g in groups.values():
            score_sum = g.pop("score_sum")
            g["click_through"] = _ratio(g["clicks"], g["views"])
            g["rating_avg"] = round(score_sum / g["rating_count"], 4) if g["rating_count"] else 0.0
            items.append(g)
    key_of: dict[PerformanceSort, Callable[[dict[str, Any]], tuple[Any, Any]]] = {
        PerformanceSort.views: lambda i: (i["views"], i["clicks"]),
        PerformanceSort.clicks: lambda i: (i["clicks"], i["views"]),
        PerformanceSort.click_through: lambda i: (i["click_through"], i["views"]),
        PerformanceSort.rating: lambda i: (i["rating_avg"], i["rating_count"]),
    }
    by = key_of[sort]
    items.sort(key=lambda i: (by(i), str(i.get("name") or "")), reverse=True)
    return items[:limit]


async def views_per_day(session: AsyncSession, period: DateRange) -> list[dict[str, Any]]:
    """Product views per day over the period (every day present, zero when none)."""
    conn = await _connection(session)
    done = await through_day(conn)
    by_day = dict.fromkeys(period.days(), 0)
    raw_from = period.start
    if done is not None and done >= period.start:
        folded = await conn.execute(
            select(ProductDailyStat.day, func.sum(ProductDailyStat.views))
            .where(
                ProductDailyStat.day >= period.start,
                ProductDailyStat.day <= min(done, period.end),
            )
            .group_by(ProductDailyStat.day)
        )
        for day, views in folded.all():
            by_day[str(day)[:10]] = int(views or 0)
        raw_from = done + dt.timedelta(days=1)
    if raw_from <= period.end:
        day = day_of(conn, ProductView.created_at)
        raw = await conn.execute(
            select(day, func.sum(ProductView.views))
            .where(
                ProductView.created_at >= day_start(raw_from),
                ProductView.created_at < period.high,
            )
            .group_by(day)
        )
        for d, views in raw.all():
            by_day[str(d)[:10]] = int(views)
    return [{"day": d, "views": v} for d, v in by_day.items()]


# --------------------------------------------------------------------------- search


async def rising_queries(
    session: AsyncSession, period: DateRange, *, limit: int
) -> list[dict[str, Any]]:
    """Queries searched more in the period than in the equally long period before it, by
    growth."""
    length = period.high - period.low
    previous = period.low - length
    recent = func.count().filter(SearchEvent.created_at >= period.low)
    earlier = func.count().filter(SearchEvent.created_at < period.low)
    stmt = (
        select(SearchEvent.query, recent.label("recent"), earlier.label("earlier"))
        .where(
            SearchEvent.created_at >= previous,
            SearchEvent.created_at < period.high,
            SearchEvent.query != "",
        )
        .group_by(SearchEvent.query)
        .having(recent > earlier)
    )
    rows = [
        {
            "query": r.query,
            "recent": int(r.recent),
            "earlier": int(r.earlier),
            "growth": int(r.recent) - int(r.earlier),
        }
        for r in (await session.execute(stmt)).all()
    ]
    rows.sort(key=lambda r: (-r["growth"], -r["recent"], r["query"]))
    return rows[:limit]


# --------------------------------------------------------------------------- users


def _visitor(user_id: Any, session_id: Any) -> Any:
    """A user, else an anonymous session: 'u:<id>' or 's:<id>'."""
    return func.coalesce(
        literal("u:") + func.cast(user_id, String()),
        literal("s:") + session_id,
    )


async def user_behaviour(session: AsyncSession, period: DateRange) -> dict[str, Any]:
    """Active users per day (signed-in users and anonymous sessions that viewed or searched),
    views per session, and the share of searches followed by a click. Raw events only: days
    older than the retention of raw views count searches alone."""
    conn = await _connection(session)
    view_day = day_of(conn, ProductView.created_at)
    search_day = day_of(conn, SearchEvent.created_at)
    in_views = (ProductView.created_at >= period.low, ProductView.created_at < period.high)
    in_searches = (SearchEvent.created_at >= period.low, SearchEvent.created_at < period.high)
    activity = (
        select(
            view_day.label("day"),
            _visitor(ProductView.user_id, ProductView.session_id).label("who"),
            ProductView.user_id.is_not(None).label("signed_in"),
        )
        .where(*in_views)
        .union(
            select(
                search_day.label("day"),
                _visitor(SearchEvent.user_id, SearchEvent.session_id).label("who"),
                SearchEvent.user_id.is_not(None).label("signed_in"),
            ).where(*in_searches)
        )
        .subquery()
    )
    per_day = await conn.execute(
        select(
            activity.c.day,
            func.count(activity.c.who.distinct()),
            func.count(activity.c.who.distinct()).filter(activity.c.signed_in.is_(True)),
        )
        .where(activity.c.who.is_not(None))
        .group_by(activity.c.day)
    )
    days = {d: {"day": d, "active": 0, "signed_in": 0} for d in period.days()}
    for day, active, signed_in in per_day.all():
        days[str(day)[:10]] = {
            "day": str(day)[:10],
            "active": int(active),
            "signed_in": int(signed_in),
        }
    who = _visitor(ProductView.user_id, ProductView.session_id)
    views, visitors = (
        await conn.execute(
            select(func.sum(ProductView.views), func.count(who.distinct())).where(
                *in_views, who.is_not(None)
            )
        )
    ).one()
    clicked = exists().where(SearchClick.search_id == SearchEvent.id)
    searches, with_click = (
        await conn.execute(select(func.count(), func.count().filter(clicked)).where(*in_searches))
    ).one()
    return {
        "active_per_day": list(days.values()),
        "views_per_session": round(int(views or 0) / int(visitors), 4) if visitors else 0.0,
        "sessions": int(visitors),
        "searches": int(searches),
        "searches_with_click": int(with_click),
        "search_to_click_rate": _ratio(int(with_click), int(searches)),
    }


async def user_detail(
    session: AsyncSession, user_id: uuid.UUID, period: DateRange, *, limit: int
) -> dict[str, Any]:
    conn = await _connection(session)
    views = await conn.execute(
        select(ProductView.product_id, Product.name, func.sum(ProductView.views).label("views"))
        .join(Product, Product.id == ProductView.product_id, isouter=True)
        .where(
            ProductView.user_id == user_id,
            ProductView.created_at >= period.low,
            ProductView.created_at < period.high,
        )
        .group_by(ProductView.product_id, Product.name)
        .order_by(func.sum(ProductView.views).desc(), ProductView.product_id)
    )
    viewed = [
        {"product_id": r.product_id, "name": r.name, "views": int(r.views)} for r in views.all()
    ]
    searches = await conn.execute(
        select(SearchEvent.query, func.count().label("searches"))
        .where(
            SearchEvent.user_id == user_id,
            SearchEvent.created_at >= period.low,
            SearchEvent.created_at < period.high,
        )
        .group_by(SearchEvent.query)
        .order_by(func.count().desc(), SearchEvent.query)
    )
    searched = [{"query": r.query, "searches": int(r.searches)} for r in searches.all()]
    clicks = await conn.scalar(
        select(func.count()).where(
            SearchClick.user_id == user_id,
            SearchClick.created_at >= period.low,
            SearchClick.created_at < period.high,
        )
    )
    ratings = await conn.execute(
        select(ProductRating.product_id, ProductRating.score, ProductRating.updated_at)
        .where(ProductRating.user_id == user_id)
        .order_by(ProductRating.updated_at.desc())
        .limit(limit)
    )
    last = [
        await conn.scalar(
            select(func.max(ProductView.created_at)).where(ProductView.user_id == user_id)
        ),
        await conn.scalar(
            select(func.max(SearchEvent.created_at)).where(SearchEvent.user_id == user_id)
        ),
    ]
    seen = [t for t in last if t is not None]
    return {
        "user_id": user_id,
        "views": sum(v["views"] for v in viewed),
        "searches": sum(s["searches"] for s in searched),
        "clicks": int(clicks or 0),
        "top_products": viewed[:limit],
        "top_queries": searched[:limit],
        "ratings": [
            {"product_id": r.product_id, "score": int(r.score), "updated_at": r.updated_at}
            for r in ratings.all()
        ],
        "last_seen_at": max(seen) if seen else None,
    }


# --------------------------------------------------------------------------- inventory


async def inventory(session: AsyncSession, *, limit: int) -> dict[str, Any]:
    """Stock alerts and stock value of the catalog's products that are not deleted."""
    conn = await _connection(session)
    live = Product.deleted_at.is_(None)
    variant_cols = (
        ProductVariant.id.label("variant_id"),
        ProductVariant.sku,
        ProductVariant.stock,
        ProductVariant.low_stock_threshold,
        Product.id.label("product_id"),
        Product.name,
        Product.status,
    )
    base = select(*variant_cols).join(Product, Product.id == ProductVariant.product_id).where(live)
    out_rows = await conn.execute(
        base.where(ProductVariant.stock == 0)
        .order_by(Product.name, ProductVariant.sku)
        .limit(limit)
    )
    low = and_(ProductVariant.stock > 0, ProductVariant.stock <= ProductVariant.low_stock_threshold)
    low_rows = await conn.execute(
        base.where(low).order_by(ProductVariant.stock, ProductVariant.sku).limit(limit)
    )
    counts = (
        await conn.execute(
            select(
                func.count().filter(ProductVariant.stock == 0),
                func.count().filter(low),
            )
            .select_from(ProductVariant)
            .join(Product, Product.id == ProductVariant.product_id)
            .where(live)
        )
    ).one()

    def variant(r: Any) -> dict[str, Any]:
        return {
            "variant_id": r.variant_id,
            "sku": r.sku,
            "stock": int(r.stock),
            "low_stock_threshold": int(r.low_stock_threshold),
            "product_id": r.product_id,
            "name": r.name,
            "status": r.status,
        }

    async def stock_value(key: Any, name: Any, join_model: Any) -> list[dict[str, Any]]:
        stmt = (
            select(
                key.label("id"),
                name.label("name"),
                Product.currency,
                func.sum(ProductVariant.stock).label("units"),
                func.sum(ProductVariant.stock * ProductVariant.price).label("value"),
            )
            .join(Product, Product.id == ProductVariant.product_id)
            .outerjoin(join_model, join_model.id == key)
            .where(live)
            .group_by(key, name, Product.currency)
        )
        rows: list[dict[str, Any]] = []
        for r in (await conn.execute(stmt)).all():
            value = Decimal(r.value or 0)
            rows.append(
                {
                    "id": r.id,
                    "name": r.name,
                    "currency": r.currency,
                    "units": int(r.units or 0),
                    "value": format_money(value, r.currency),
                    "_sort": value,
                }
            )
        rows.sort(key=lambda r: (-r["_sort"], str(r["name"] or ""), r["currency"]))
        for item in rows:
            del item["_sort"]
        return rows

    no_image = ~exists().where(ProductImage.product_id == Product.id)
    no_description = or_(Product.description.is_(None), func.trim(Product.description) == "")
    product_cols = (Product.id.label("product_id"), Product.sku, Product.name, Product.status)
    missing_images = await conn.execute(
        select(*product_cols).where(live, no_image).order_by(Product.name).limit(limit)
    )
    missing_descriptions = await conn.execute(
        select(*product_cols).where(live, no_description).order_by(Product.name).limit(limit)
    )
    missing_counts = (
        await conn.execute(
            select(func.count().filter(no_image), func.count().filter(no_description)).where(live)
        )
    ).one()
    return {
        "out_of_stock_count": int(counts[0]),
        "low_stock_count": int(counts[1]),
        "out_of_stock": [variant(r) for r in out_rows.all()],
        "low_stock": [variant(r) for r in low_rows.all()],
        "stock_value_by_category": await stock_value(Product.category_id, Category.name, Category),
        "stock_value_by_brand": await stock_value(Product.brand_id, Brand.name, Brand),
        "without_images_count": int(missing_counts[0]),
        "without_description_count": int(missing_counts[1]),
        "without_images": [dict(r._mapping) for r in missing_images.all()],
        "without_description": [dict(r._mapping) for r in missing_descriptions.all()],
    }
