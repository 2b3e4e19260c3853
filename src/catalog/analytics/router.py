"""Analytics API (administrators, or API keys with the `analytics:read` scope)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field
from sqlalchemy import update

from catalog.analytics import service
from catalog.analytics.service import DateRange, GroupBy, PerformanceSort
from catalog.auth.dependencies import AnalyticsReaderDep, CatalogAdminDep
from catalog.db import utcnow
from catalog.dependencies import SessionDep
from catalog.errors import NotFound, Unprocessable, responses
from catalog.kit.http import dumps, json_response
from catalog.kit.schemas import InputModel
from catalog.models import ProductVariant
from catalog.search import service as search

router = APIRouter(prefix="/analytics", tags=["analytics"])

MAX_RANGE_DAYS = 366
From = Annotated[
    dt.date | None, Query(alias="from", description="First UTC day (default: 29 days before `to`)")
]
To = Annotated[
    dt.date | None, Query(alias="to", description="Last UTC day, included (default: today)")
]
Limit = Annotated[int, Query(ge=1, le=500)]
READ = responses(401, 403, 422)


def period_of(start: dt.date | None, end: dt.date | None) -> DateRange:
    end = end or utcnow().date()
    start = start or end - dt.timedelta(days=29)
    if start > end:
        raise Unprocessable("`from` must not be after `to`", loc=["query", "from"])
    if (end - start).days >= MAX_RANGE_DAYS:
        raise Unprocessable(f"At most {MAX_RANGE_DAYS} days at once", loc=["query", "from"])
    return DateRange(start, end)


def _json(body: Any) -> Response:
    return json_response(dumps(body), headers={"Cache-Control": "no-store"})


@router.get("/products", responses=READ)
async def product_performance(
    session: SessionDep,
    _reader: AnalyticsReaderDep,
    start: From = None,
    end: To = None,
    group_by: GroupBy = GroupBy.product,
    sort: PerformanceSort = PerformanceSort.views,
    limit: Limit = 20,
    category_id: uuid.UUID | None = None,
    brand_id: uuid.UUID | None = None,
) -> Response:
    """Top products (or categories, brands) by views, search clicks, click-through (clicks per
    view) or rating over the period."""
    period = period_of(start, end)
    items = await service.product_performance(
        session,
        period,
        group_by=group_by,
        sort=sort,
        limit=limit,
        category_id=category_id,
        brand_id=brand_id,
    )
    return _json({"from": period.start, "to": period.end, "items": items})


@router.get("/views", responses=READ)
async def views_per_day(
    session: SessionDep, _reader: AnalyticsReaderDep, start: From = None, end: To = None
) -> Response:
    """Product views per UTC day."""
    period = period_of(start, end)
    days = await service.views_per_day(session, period)
    return _json({"from": period.start, "to": period.end, "days": days})


@router.get("/search", responses=READ)
async def search_trends(
    session: SessionDep,
    _reader: AnalyticsReaderDep,
    start: From = None,
    end: To = None,
    limit: Limit = 10,
) -> Response:
    """Top queries, rising queries, zero-result queries and search volume per day over the
    period (the figures of `/search/analytics/*`, for exactly these days)."""
    period = period_of(start, end)
    window = (period.low, period.high)
    days = len(period.days())
    top = await search.top_queries(session, days=days, limit=limit, period=window)
    zero = await search.zero_result_queries(session, days=days, limit=limit, period=window)
    volume = await search.volume(session, days=days, period=window)
    rising = await service.rising_queries(session, period, limit=limit)
    body = {
        "from": period.start,
        "to": period.end,
        "top_queries": top,
        "rising_queries": rising,
        "zero_result_queries": zero,
        "volume": volume,
    }
    return _json(body)


@router.get("/users", responses=READ)
async def user_behaviour(
    session: SessionDep, _reader: AnalyticsReaderDep, start: From = None, end: To = None
) -> Response:
    """Active users and sessions per day, views per session, search-to-click rate."""
    period = period_of(start, end)
    body = await service.user_behaviour(session, period)
    return _json({"from": period.start, "to": period.end, **body})


@router.get("/users/{user_id}", responses=READ)
async def user_detail(
    session: SessionDep,
    _reader: AnalyticsReaderDep,
    user_id: Annotated[uuid.UUID, Path()],
    start: From = None,
    end: To = None,
    limit: Limit = 10,
) -> Response:
    """One user's views, searches, clicks and ratings over the period."""
    period = period_of(start, end)
    body = await service.user_detail(session, user_id, period, limit=limit)
    return _json({"from": period.start, "to": period.end, **body})


@router.get("/inventory", responses=READ)
async def inventory(
    session: SessionDep, _reader: AnalyticsReaderDep, limit: Limit = 50
) -> Response:
    """Out-of-stock and low-stock variants (stock at or below their `low_stock_threshold`),
    stock value by category and brand (per currency), products without images or
    descriptions."""
    return _json(await service.inventory(session, limit=limit))


class ThresholdIn(InputModel):
    low_stock_threshold: Annotated[int, Field(ge=0, le=1_000_000)]


@router.put(
    "/inventory/variants/{variant_id}/threshold",
    status_code=204,
    responses=responses(401, 403, 404, 422),
)
async def set_low_stock_threshold(
    session: SessionDep,
    _admin: CatalogAdminDep,
    variant_id: Annotated[uuid.UUID, Path()],
    data: ThresholdIn,
) -> Response:
    """Set the stock at or below which a variant is reported as low (default 5)."""
    result = await session.execute(
        update(ProductVariant)
        .where(ProductVariant.id == variant_id)
        .values(low_stock_threshold=data.low_stock_threshold)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"Variant {variant_id} not found")
    return Response(status_code=204)
