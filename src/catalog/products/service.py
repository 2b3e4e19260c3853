"""Products and their variants: business rules, loading and serialization."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from catalog.categories.service import descendant_ids_select
from catalog.db import utcnow
from catalog.errors import Conflict, DuplicateField, NotFound, Unprocessable
from catalog.kit.crud import ensure_unique, unique_slug
from catalog.kit.invalidation import invalidate_product
from catalog.kit.money import fits_currency, format_money
from catalog.kit.pagination import CursorError, decode_cursor, encode_cursor
from catalog.models import Brand, Category, Product, ProductStatus, ProductVariant
from catalog.products.schemas import (
    ProductCreate,
    ProductOption,
    ProductReplace,
    ProductUpdate,
    VariantCreate,
    VariantReplace,
    VariantUpdate,
)


class ProductNotFound(NotFound):
    def __init__(self, product_id: uuid.UUID | str) -> None:
        super().__init__(f"Product {product_id} not found")


class VariantNotFound(NotFound):
    def __init__(self, variant_id: uuid.UUID) -> None:
        super().__init__(f"Variant {variant_id} not found")


class ProductSort(StrEnum):
    created_at = "created_at"
    created_at_desc = "-created_at"
    price = "price"
    price_desc = "-price"
    name = "name"
    name_desc = "-name"


# `product.total_stock` is a 32-bit integer column.
MAX_TOTAL_STOCK = 2**31 - 1
# The most a variant holds (the API's `stock` limit).
MAX_VARIANT_STOCK = 1_000_000_000

_SORT_COLUMNS: dict[str, tuple[Any, type]] = {
    "created_at": (Product.created_at, dt.datetime),
    "price": (Product.price_min, Decimal),
    "name": (Product.name, str),
}


@dataclass(frozen=True, slots=True)
class ProductFilters:
    category_id: uuid.UUID | None = None
    brand_id: uuid.UUID | None = None
    status: ProductStatus | None = None
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    in_stock: bool | None = None


# --------------------------------------------------------------------------- loading


def _with_relations(stmt: Select[Product]) -> Select[Product]:
    return stmt.options(
        joinedload(Product.brand),
        joinedload(Product.category),
        selectinload(Product.variants),
    )


async def load(
    session: AsyncSession,
    product_id: uuid.UUID,
    *,
    include_deleted: bool = False,
    for_update: bool = False,
) -> Product:
    """The product with its brand, category and variants as stored, also after a write in this
    session (a changed `brand_id` must not leave the previous `brand` loaded).

    `for_update` locks the product row until the transaction ends (PostgreSQL): writers of one
    product take turns, so a write without `If-Match` never fails because another one (a stock
    adjustment, say) changed the version between this read and its flush, and a write with
    `If-Match` compares against the version no one else can change any more."""
    stmt = _with_relations(select(Product).where(Product.id == product_id)).execution_options(
        populate_existing=True
    )
    if for_update:
        stmt = stmt.with_for_update(of=Product)
    if not include_deleted:
        stmt = stmt.where(Product.deleted_at.is_(None))
    product = (await session.execute(stmt)).unique().scalar_one_or_none()
    if product is None:
        raise ProductNotFound(product_id)
    return product


async def load_by_slug(session: AsyncSession, slug: str) -> Product:
    if "\x00" in slug:
        raise ProductNotFound(slug)
    stmt = _with_relations(
        select(Product).where(Product.slug == slug, Product.deleted_at.is_(None))
    )
    product = (await session.execute(stmt)).unique().scalar_one_or_none()
    if product is None:
        raise ProductNotFound(slug)
    return product


def page_statement(
    filters: ProductFilters,
    *,
    sort: ProductSort,
    limit: int,
    cursor: str | None,
    visibility: Any = None,
) -> Select[Any]:
    """The product rows (table columns only) of one list page: filters, visibility, keyset
    cursor and order, `limit + 1` rows so the caller can tell whether a next page exists."""
    if (
        filters.price_min is not None
        and filters.price_max is not None
        and filters.price_min > filters.price_max
    ):
        raise Unprocessable(
            "price_min must not be greater than price_max", loc=["query", "price_min"]
        )
    key = sort.value.removeprefix("-")
    descending = sort.value.startswith("-")
    column, kind = _SORT_COLUMNS[key]

    stmt = select(*Product.__table__.c).where(Product.deleted_at.is_(None))
    if visibility is not None:
        stmt = stmt.where(visibility)
    if filters.category_id is not None:
        stmt = stmt.where(Product.category_id.in_(descendant_ids_select(filters.category_id)))
    if filters.brand_id is not None:
        stmt = stmt.where(Product.brand_id == filters.brand_id)
    if filters.status is not None:
        stmt = stmt.where(Product.status == filters.status.value)
    if filters.price_min is not None:
        stmt = stmt.where(Product.price_max >= filters.price_min)
    if filters.price_max is not None:
        stmt = stmt.where(Product.price_min <= filters.price_max)
    if filters.in_stock is True:
        stmt = stmt.where(Product.total_stock > 0)
    elif filters.in_stock is False:
        stmt = stmt.where(Product.total_stock == 0)

    if cursor:
        value, last_id = decode_cursor(cursor, sort.value, kind)
        check_cursor_value(value)
        if descending:
            stmt = stmt.where((column < value) | ((column == value) & (Product.id < last_id)))
        else:
            stmt = stmt.where((column > value) | ((column == value) & (Product.id > last_id)))
    order = (column.desc(), Product.id.desc()) if descending else (column.asc(), Product.id.asc())
    return stmt.order_by(*order).limit(limit + 1)


def next_page_cursor(rows: list[Any], sort: ProductSort, limit: int) -> str | None:
    """The cursor after the last of `limit` rows, when `page_statement` found one more."""
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    key = sort.value.removeprefix("-")
    sort_value = {"created_at": last.created_at, "price": last.price_min, "name": last.name}[key]
    return encode_cursor(sort.value, sort_value, last.id)


def check_cursor_value(value: Any) -> None:
    """Refuse values no real cursor holds and the database cannot compare (tampered cursors)."""
    if isinstance(value, Decimal):
        valid = (
            value.is_finite()
            and 0 <= value < Decimal("1e12")
            and value == value.quantize(Decimal("0.0001"))
        )
    elif isinstance(value, dt.datetime):
        try:
            (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
            valid = True
        except OverflowError:
            valid = False
    else:
        valid = "\x00" not in value
    if not valid:
        raise CursorError


# --------------------------------------------------------------------------- serialization


def serialize_variant(variant: Any, currency: str) -> dict[str, Any]:
    return {
        "id": variant.id,
        "product_id": variant.product_id,
        "sku": variant.sku,
        "price": format_money(variant.price, currency),
        "stock": variant.stock,
        "option_values": dict(sorted(variant.option_values.items())),
        "position": variant.position,
        "version": variant.version,
        "created_at": variant.created_at,
        "updated_at": variant.updated_at,
    }


def serialize(product: Product) -> dict[str, Any]:
    """The public JSON shape of a product (`ProductOut`), built without pydantic."""
    brand = product.brand
    category = product.category
    return product_dict(
        product,
        brand={"id": brand.id, "name": brand.name, "slug": brand.slug} if brand else None,
        category=(
            {"id": category.id, "name": category.name, "slug": category.slug} if category else None
        ),
        variants=product.variants,
    )


def product_dict(
    product: Any,
    *,
    brand: dict[str, Any] | None,
    category: dict[str, Any] | None,
    variants: Iterable[Any],
) -> dict[str, Any]:
    """`ProductOut` of an ORM product or of a row with the product table's columns (the read
    paths of `catalog.products.reads`): both give the same bytes, hence the same ETag."""
    currency = product.currency
    return {
        "id": product.id,
        "sku": product.sku,
        "slug": product.slug,
        "name": product.name,
        "description": product.description,
        "status": product.status,
        "brand_id": product.brand_id,
        "brand": brand,
        "category_id": product.category_id,
        "category": category,
        "attributes": product.attributes,
        "options": product.options,
        "currency": currency,
        "price_min": format_money(product.price_min, currency),
        "price_max": format_money(product.price_max, currency),
        "total_stock": product.total_stock,
        "in_stock": product.total_stock > 0,
        "rating_avg": product.rating_avg,
        "rating_count": product.rating_count,
        "thumbnail_url": product.thumbnail_url,
        "owner_id": product.owner_id,
        "variants": [serialize_variant(v, currency) for v in variants],
        "version": product.version,
        "created_at": product.created_at,
        "updated_at": product.updated_at,
        "deleted_at": product.deleted_at,
    }


# --------------------------------------------------------------------------- validation


async def _check_references(
    session: AsyncSession, brand_id: uuid.UUID | None, category_id: uuid.UUID | None
) -> None:
    if brand_id is not None and await session.get(Brand, brand_id) is None:
        raise Unprocessable(f"Brand {brand_id} does not exist", loc=["body", "brand_id"])
    if category_id is not None and await session.get(Category, category_id) is None:
        raise Unprocessable(f"Category {category_id} does not exist", loc=["body", "category_id"])


def _check_price(price: Decimal, currency: str, loc: list[str | int]) -> None:
    if not fits_currency(price, currency):
        raise Unprocessable(f"{price} has more decimals than {currency} allows", loc=loc)


def _check_option_values(
    options: list[dict[str, Any]], values: dict[str, str], loc: list[str | int]
) -> None:
    allowed = {o["name"]: set(o["values"]) for o in options}
    if set(values) != set(allowed):
        expected = ", ".join(sorted(allowed)) or "none"
        raise Unprocessable(
            f"option_values must give exactly the product's options ({expected})", loc=loc
        )
    for name, value in values.items():
        if value not in allowed[name]:
            raise Unprocessable(f"'{value}' is not a value of option '{name}'", loc=[*loc, name])


def _check_variant_set(product_options: list[dict[str, Any]], variants: list[Any]) -> None:
    """Variants must be distinguishable: one per option combination, and a product without
    options has exactly one variant."""
    if not product_options and len(variants) > 1:
        raise Unprocessable(
            "A product with several variants needs 'options' to tell them apart",
            loc=["body", "options"],
        )
    seen: set[tuple[tuple[str, str], ...]] = set()
    for variant in variants:
        combo = tuple(sorted(variant.option_values.items()))
        if combo in seen:
            raise Conflict(f"Two variants have the same option values {dict(combo)}")
        seen.add(combo)


async def _check_skus_free(
    session: AsyncSession, skus: list[str], *, product_id: uuid.UUID | None
) -> None:
    if len(set(skus)) != len(skus):
        raise Unprocessable("Variant SKUs must be unique", loc=["body", "variants"])
    stmt = select(ProductVariant.sku).where(ProductVariant.sku.in_(skus))
    if product_id is not None:
        stmt = stmt.where(ProductVariant.product_id != product_id)
    taken = (await session.execute(stmt.limit(1))).scalar_one_or_none()
    if taken is not None:
        raise DuplicateField("sku", taken)


def _options_json(options: list[ProductOption]) -> list[dict[str, Any]]:
    return [{"name": o.name, "values": list(o.values)} for o in options]


def refresh_aggregates(product: Product, *, loc: list[str | int] | None = None) -> None:
    """Derived fields used by filters and sorting, from the (loaded) variants."""
    total_stock = sum(v.stock for v in product.variants)
    if total_stock > MAX_TOTAL_STOCK:
        raise Unprocessable(
            f"The stock of all variants together must not exceed {MAX_TOTAL_STOCK}",
            loc=loc or ["body", "stock"],
        )
    prices = [v.price for v in product.variants]
    product.price_min = min(prices) if prices else Decimal(0)
    product.price_max = max(prices) if prices else Decimal(0)
    product.total_stock = total_stock


# --------------------------------------------------------------------------- products


async def create(
    session: AsyncSession, data: ProductCreate, *, owner_id: uuid.UUID | None = None
) -> Product:
    await _check_references(session, data.brand_id, data.category_id)
    await ensure_unique(session, Product.sku, data.sku, field="sku")
    if data.slug:
        await ensure_unique(session, Product.slug, data.slug, field="slug")
        slug = data.slug
    else:
        slug = await unique_slug(session, Product.slug, data.name, max_length=180)
    options = _options_json(data.options)

    if data.variants is None:
        assert data.price is not None
        variant_inputs = [VariantCreate(sku=data.sku, price=data.price, stock=data.stock or 0)]
    else:
        variant_inputs = data.variants
    for i, v in enumerate(variant_inputs):
        price_loc: list[str | int] = (
            ["body", "price"] if data.variants is None else ["body", "variants", i, "price"]
        )
        _check_price(v.price, data.currency, price_loc)
        _check_option_values(options, v.option_values, ["body", "variants", i, "option_values"])
    _check_variant_set(options, variant_inputs)
    await _check_skus_free(session, [v.sku for v in variant_inputs], product_id=None)

    product = Product(
        sku=data.sku,
        slug=slug,
        name=data.name,
        description=data.description,
        brand_id=data.brand_id,
        category_id=data.category_id,
        status=data.status.value,
        attributes=data.attributes,
        options=options,
        currency=data.currency,
        owner_id=owner_id,
        variants=[
            ProductVariant(
                sku=v.sku, price=v.price, stock=v.stock, option_values=v.option_values, position=i
            )
            for i, v in enumerate(variant_inputs)
        ],
    )
    refresh_aggregates(product, loc=["body", "variants"])
    session.add(product)
    await session.flush()
    invalidate_product(session, product.id, product.slug)
    return await load(session, product.id)


async def _apply_product_fields(
    session: AsyncSession,
    product: Product,
    changes: dict[str, Any],
    *,
    rename_default_variant: bool = True,
) -> None:
    if "brand_id" in changes or "category_id" in changes:
        await _check_references(session, changes.get("brand_id"), changes.get("category_id"))
    if "sku" in changes and changes["sku"] != product.sku:
        await ensure_unique(
            session, Product.sku, changes["sku"], field="sku", exclude_id=product.id
        )
        # A simple product's default variant carries the product SKU: keep them together.
        if (
            rename_default_variant
            and len(product.variants) == 1
            and product.variants[0].sku == product.sku
        ):
            await _check_skus_free(session, [changes["sku"]], product_id=product.id)
            product.variants[0].sku = changes["sku"]
    if "slug" in changes and changes["slug"] != product.slug:
        await ensure_unique(
            session, Product.slug, changes["slug"], field="slug", exclude_id=product.id
        )
    if "options" in changes:
        changes["options"] = [
            {"name": o["name"], "values": list(o["values"])} for o in changes["options"]
        ]
    if "status" in changes:
        changes["status"] = ProductStatus(changes["status"]).value
    for key in (
        "sku",
        "slug",
        "name",
        "description",
        "brand_id",
        "category_id",
        "status",
        "attributes",
        "currency",
        "options",
    ):
        if key in changes:
            setattr(product, key, changes[key])


def _set_single_variant(product: Product, price: Decimal | None, stock: int | None) -> None:
    if len(product.variants) != 1:
        raise Unprocessable(
            "This product has several variants: change price and stock through its variants",
            loc=["body", "price" if price is not None else "stock"],
        )
    variant = product.variants[0]
    if price is not None:
        variant.price = price
    if stock is not None:
        variant.stock = stock


def _validate_variants_against_product(product: Product) -> None:
    for i, v in enumerate(product.variants):
        _check_price(v.price, product.currency, ["body", "variants", i, "price"])
        _check_option_values(
            product.options, v.option_values, ["body", "variants", i, "option_values"]
        )
    _check_variant_set(product.options, product.variants)


async def update(session: AsyncSession, product: Product, data: ProductUpdate) -> Product:
    invalidate_product(session, product.id, product.slug)
    changes = data.changes()
    price = changes.pop("price", None)
    stock = changes.pop("stock", None)
    await _apply_product_fields(session, product, changes)
    if price is not None:
        _check_price(price, product.currency, ["body", "price"])
    if price is not None or stock is not None:
        _set_single_variant(product, price, stock)
    _validate_variants_against_product(product)
    refresh_aggregates(product)
    product.updated_at = utcnow()  # a variant-only change still changes the product
    await session.flush()
    invalidate_product(session, product.id, product.slug)
    return await load(session, product.id)


async def replace(session: AsyncSession, product: Product, data: ProductReplace) -> Product:
    invalidate_product(session, product.id, product.slug)
    changes = data.model_dump(exclude={"price", "stock", "variants"})
    changes["options"] = _options_json(data.options)
    await _apply_product_fields(
        session, product, changes, rename_default_variant=data.variants is None
    )
    if data.variants is not None:
        await _check_skus_free(session, [v.sku for v in data.variants], product_id=product.id)
        existing = {v.sku: v for v in product.variants}
        new_variants = []
        for i, v in enumerate(data.variants):
            variant = existing.pop(v.sku, None) or ProductVariant(sku=v.sku)
            variant.price = v.price
            variant.stock = v.stock
            variant.option_values = v.option_values
            variant.position = i
            new_variants.append(variant)
        product.variants = new_variants
    elif data.price is not None or data.stock is not None:
        if data.price is not None:
            _check_price(data.price, product.currency, ["body", "price"])
        _set_single_variant(product, data.price, data.stock)
    _validate_variants_against_product(product)
    refresh_aggregates(product, loc=["body", "variants"] if data.variants is not None else None)
    product.updated_at = utcnow()
    await session.flush()
    invalidate_product(session, product.id, product.slug)
    return await load(session, product.id)


async def soft_delete(session: AsyncSession, product: Product) -> None:
    product.deleted_at = utcnow()
    await session.flush()
    invalidate_product(session, product.id, product.slug)


async def purge(session: AsyncSession, product: Product) -> None:
    """Remove the product for good; its variants and images go with it (the foreign keys
    cascade)."""
    await session.delete(product)
    await session.flush()
    invalidate_product(session, product.id, product.slug)


async def restore(session: AsyncSession, product_id: uuid.UUID) -> Product:
    product = await load(session, product_id, include_deleted=True)
    if product.deleted_at is None:
        raise Conflict("The product is not deleted")
    product.deleted_at = None
    await session.flush()
    invalidate_product(session, product.id, product.slug)
    return await load(session, product.id)


# --------------------------------------------------------------------------- variants


def find_variant(product: Product, variant_id: uuid.UUID) -> ProductVariant:
    for variant in product.variants:
        if variant.id == variant_id:
            return variant
    raise VariantNotFound(variant_id)


async def add_variant(
    session: AsyncSession, product: Product, data: VariantCreate
) -> ProductVariant:
    if len(product.variants) >= 100:
        raise Unprocessable("A product has at most 100 variants", loc=["body"])
    _check_price(data.price, product.currency, ["body", "price"])
    _check_option_values(product.options, data.option_values, ["body", "option_values"])
    await _check_skus_free(session, [data.sku], product_id=None)
    variant = ProductVariant(
        sku=data.sku,
        price=data.price,
        stock=data.stock,
        option_values=data.option_values,
        position=max((v.position for v in product.variants), default=-1) + 1,
    )
    product.variants.append(variant)
    _check_variant_set(product.options, product.variants)
    refresh_aggregates(product)
    product.updated_at = utcnow()
    await session.flush()
    invalidate_product(session, product.id, product.slug)
    return variant


async def update_variant(
    session: AsyncSession,
    product: Product,
    variant: ProductVariant,
    data: VariantUpdate | VariantReplace,
) -> ProductVariant:
    changes = data.changes() if isinstance(data, VariantUpdate) else data.model_dump()
    if "price" in changes:
        _check_price(changes["price"], product.currency, ["body", "price"])
    if "option_values" in changes:
        _check_option_values(product.options, changes["option_values"], ["body", "option_values"])
    if "sku" in changes and changes["sku"] != variant.sku:
        await _check_skus_free(session, [changes["sku"]], product_id=None)
    for key, value in changes.items():
        setattr(variant, key, value)
    _check_variant_set(product.options, product.variants)
    refresh_aggregates(product)
    product.updated_at = utcnow()
    await session.flush()
    invalidate_product(session, product.id, product.slug)
    return variant


async def adjust_stock(
    session: AsyncSession, product: Product, variant: ProductVariant, delta: int
) -> ProductVariant:
    """Add `delta` to the variant's stock with conditional statements, so concurrent
    adjustments (on any worker) serialise on the rows and none is lost; refused with 409 when
    the stock would go below zero. The product row is updated first, in the order the ORM's
    own writes take their locks (product, then variant), so the two never deadlock."""
    now = utcnow()
    changed = (
        await session.execute(
            sql_update(Product)
            .where(
                Product.id == product.id,
                Product.total_stock + delta >= 0,
                Product.total_stock + delta <= MAX_TOTAL_STOCK,
            )
            .values(
                total_stock=Product.total_stock + delta,
                version=Product.version + 1,
                updated_at=now,
            )
            .returning(Product.id)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    stock = None
    if changed is not None:
        stock = (
            await session.execute(
                sql_update(ProductVariant)
                .where(
                    ProductVariant.id == variant.id,
                    ProductVariant.stock + delta >= 0,
                    ProductVariant.stock + delta <= MAX_VARIANT_STOCK,
                )
                .values(
                    stock=ProductVariant.stock + delta,
                    version=ProductVariant.version + 1,
                    updated_at=now,
                )
                .returning(ProductVariant.stock)
                .execution_options(synchronize_session=False)
            )
        ).scalar_one_or_none()
    if stock is None:  # nothing is kept: the request's transaction is rolled back
        available = (
            await session.execute(
                select(ProductVariant.stock).where(ProductVariant.id == variant.id)
            )
        ).scalar_one()
        if available + delta < 0:
            raise Conflict(f"Not enough stock: {available} available, {-delta} requested")
        raise Unprocessable(
            f"The stock would exceed {MAX_VARIANT_STOCK:,} units for the variant or "
            f"{MAX_TOTAL_STOCK:,} for the product",
            loc=["body", "delta"],
        )
    invalidate_product(session, product.id, product.slug)
    refreshed = await load(session, product.id)
    return find_variant(refreshed, variant.id)


async def delete_variant(session: AsyncSession, product: Product, variant: ProductVariant) -> None:
    if len(product.variants) <= 1:
        raise Conflict("A product keeps at least one variant; delete the product instead")
    product.variants.remove(variant)
    refresh_aggregates(product)
    product.updated_at = utcnow()
    await session.flush()
    invalidate_product(session, product.id, product.slug)


def serialize_summary(row: Mapping[str, Any]) -> dict[str, Any]:
    """`ProductSummary` from a row of `catalog.search.backend.SUMMARY_COLUMNS`."""
    currency = row["currency"]
    return {
        "id": row["id"],
        "sku": row["sku"],
        "slug": row["slug"],
        "name": row["name"],
        "status": row["status"],
        "brand": (
            {"id": row["brand_id"], "name": row["brand_name"], "slug": row["brand_slug"]}
            if row["brand_id"] is not None
            else None
        ),
        "category": (
            {"id": row["category_id"], "name": row["category_name"], "slug": row["category_slug"]}
            if row["category_id"] is not None
            else None
        ),
        "currency": currency,
        "price_min": format_money(row["price_min"], currency),
        "price_max": format_money(row["price_max"], currency),
        "total_stock": row["total_stock"],
        "in_stock": row["total_stock"] > 0,
        "rating_avg": row["rating_avg"],
        "rating_count": row["rating_count"],
        "attributes": row["attributes"],
        "thumbnail_url": row["thumbnail_url"],
        "created_at": row["created_at"],
    }
