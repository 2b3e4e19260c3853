"""Ratings: `POST /api/v1/products/{id}/ratings`. One rating per buyer and product (a second one
replaces the first); the product's `rating_avg` / `rating_count` (shown with the product and
used to sort) are recomputed in the same transaction, and its cached reads invalidated."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import Field
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.auth import policy
from catalog.auth.dependencies import AuthenticatedDep
from catalog.auth.principal import Principal
from catalog.db import utcnow
from catalog.dependencies import SessionDep
from catalog.errors import responses
from catalog.kit.http import dumps, json_response
from catalog.kit.invalidation import invalidate_product
from catalog.kit.schemas import InputModel, OutputModel
from catalog.models import Product, ProductRating, ProductStatus, Role
from catalog.products.service import ProductNotFound

router = APIRouter(prefix="/products", tags=["ratings"])


class RatingIn(InputModel):
    score: Annotated[int, Field(ge=1, le=5, description="1 (poor) to 5 (excellent)")]
    comment: Annotated[str | None, Field(max_length=2000)] = None


class ProductRatingSummary(OutputModel):
    rating_avg: float
    rating_count: int


class RatingOut(OutputModel):
    id: uuid.UUID
    product_id: uuid.UUID
    user_id: uuid.UUID
    score: int
    comment: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    product: ProductRatingSummary


async def rate(
    session: AsyncSession, principal: Principal, product_id: uuid.UUID, data: RatingIn
) -> tuple[dict[str, Any], bool]:
    """The rating and whether it is new (else it replaced the buyer's previous one)."""
    policy.require_authenticated(principal)
    if principal.role != Role.buyer or principal.user_id is None:
        raise policy.Forbidden("Only buyers rate products")
    # The product row is locked so that concurrent ratings recompute the average in turn.
    stmt = (
        select(Product.id, Product.slug)
        .where(
            Product.id == product_id,
            Product.deleted_at.is_(None),
            Product.status == ProductStatus.active.value,
        )
        .with_for_update()
    )
    product = (await session.execute(stmt)).one_or_none()
    if product is None:
        raise ProductNotFound(product_id)
    rating = await session.scalar(
        select(ProductRating).where(
            ProductRating.product_id == product_id, ProductRating.user_id == principal.user_id
        )
    )
    created = rating is None
    now = utcnow()
    if rating is None:
        rating = ProductRating(
            product_id=product_id,
            user_id=principal.user_id,
            score=data.score,
            comment=data.comment,
            created_at=now,
            updated_at=now,
        )
        session.add(rating)
    else:
        rating.score, rating.comment, rating.updated_at = data.score, data.comment, now
    await session.flush()
    average, count = (
        await session.execute(
            select(func.avg(ProductRating.score), func.count()).where(
                ProductRating.product_id == product_id
            )
        )
    ).one()
    rating_avg = round(float(average), 4)
    await session.execute(
        update(Product)
        .where(Product.id == product_id)
        .values(rating_avg=rating_avg, rating_count=int(count))
        .execution_options(synchronize_session=False)
    )
    invalidate_product(session, product_id, product.slug)
    body = {
        "id": rating.id,
        "product_id": product_id,
        "user_id": rating.user_id,
        "score": rating.score,
        "comment": rating.comment,
        "created_at": rating.created_at,
        "updated_at": rating.updated_at,
        "product": {"rating_avg": rating_avg, "rating_count": int(count)},
    }
    return body, created


@router.post(
    "/{product_id}/ratings",
    status_code=201,
    response_model=RatingOut,
    responses={
        **responses(401, 403, 404, 422),
        200: {"model": RatingOut, "description": "Replaced the buyer's rating"},
    },
)
async def rate_product(
    session: SessionDep,
    principal: AuthenticatedDep,
    data: RatingIn,
    product_id: Annotated[uuid.UUID, Path(description="Product id")],
) -> Response:
    """Rate an active product (buyers). 201 for a first rating, 200 when it replaces the
    buyer's previous rating of the product."""
    body, created = await rate(session, principal, product_id, data)
    return json_response(dumps(body), status_code=201 if created else 200)
