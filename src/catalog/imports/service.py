"""Bulk import and export of products: jobs, the batch importer and the streamed export.

An import reads the file in batches of whole products (`Settings.import_batch_rows` rows). Each
batch is one transaction: it reads what the batch's SKUs already are, validates every product
with the same schema and rules as the API (`ProductCreate` and the product service's checks),
skips rows that change nothing, upserts the rest with multi-row `INSERT ... ON CONFLICT DO
UPDATE` statements, stores the failed rows and advances the job's progress. A crash therefore
never leaves half a product or a batch counted but not written; the job resumes after the last
committed batch. The search structures are kept by the database triggers, which fire for the
upserts like for any other write; the response caches are invalidated after each commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as dt
import functools
import os
import re
import time
import uuid
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

import orjson
import structlog
from asyncpg import PostgresError
from asyncpg.pgproto.pgproto import UUID as FastUUID  # noqa: N811
from pydantic import ValidationError
from sqlalchemy import Table, and_, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from catalog.categories.service import descendant_ids_select
from catalog.config import Settings
from catalog.db import new_id, utcnow
from catalog.errors import CatalogError, Conflict, NotFound, Unprocessable
from catalog.imports import formats
from catalog.imports.checks import CheckedProduct, from_model, quick_product
from catalog.imports.formats import MISSING, Format, Item, ProductIn, RowError
from catalog.kit import metrics
from catalog.kit.cache import Cache
from catalog.kit.invalidation import BRANDS, CATEGORIES, PRODUCTS, REFS, SEARCH
from catalog.kit.money import currency_exponent, format_money, known_currencies
from catalog.kit.slugs import SLUG_PATTERN, slugify
from catalog.models import (
    Brand,
    Category,
    ImportJob,
    ImportRowError,
    ImportStatus,
    Product,
    ProductVariant,
)
from catalog.models.imports import FINISHED
from catalog.products import service as products
from catalog.products.schemas import ProductCreate
from catalog.products.service import ProductFilters

log = structlog.get_logger(__name__)


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


PRODUCT = _table(Product)
VARIANT = _table(ProductVariant)
JOB = _table(ImportJob)
ROW_ERROR = _table(ImportRowError)
BRAND = _table(Brand)
CATEGORY = _table(Category)

_SLUG_RE = re.compile(SLUG_PATTERN)


class ImportNotFound(NotFound):
    def __init__(self, job_id: uuid.UUID) -> None:
        super().__init__(f"Import {job_id} not found")


class PayloadTooLarge(CatalogError):
    status = 413
    title = "Content Too Large"


class LeaseLost(Exception):
    """Another worker has taken the job over (this one was presumed dead)."""


def _canon(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _titled(slug: str) -> str:
    return slug.replace("-", " ").title()[:120]


# --------------------------------------------------------------------------- jobs


def job_view(job: ImportJob, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The public shape of a job (`ImportJobOut`)."""
    now = now or utcnow()
    elapsed = None
    if job.started_at is not None:
        elapsed = round(((job.finished_at or now) - job.started_at).total_seconds(), 3)
    total = job.rows_total
    percent = round(100.0 * job.rows_done / total, 1) if total else (100.0 if total == 0 else 0.0)
    return {
        "id": job.id,
        "status": job.status,
        "format": job.format,
        "filename": job.filename,
        "size_bytes": job.size_bytes,
        "dry_run": job.dry_run,
        "create_missing": job.create_missing,
        "cancel_requested": job.cancel_requested,
        "progress": {"rows_done": job.rows_done, "rows_total": total, "percent": percent},
        "counts": job.counts(),
        "error": job.error,
        "attempts": job.attempts,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "elapsed_seconds": elapsed,
    }


async def get_job(session: AsyncSession, job_id: uuid.UUID) -> ImportJob:
    job = await session.get(ImportJob, job_id, populate_existing=True)
    if job is None:
        raise ImportNotFound(job_id)
    assert isinstance(job, ImportJob)
    return job


async def cancel(session: AsyncSession, job: ImportJob) -> ImportJob:
    """Queued jobs stop at once; running ones after their current batch (committed batches
    stay imported)."""
    if job.status in FINISHED:
        raise Conflict(f"The import has already {job.status}")
    now = utcnow()
    result = await session.execute(
        update(ImportJob)
        .where(ImportJob.id == job.id, ImportJob.status == ImportStatus.queued.value)
        .values(
            status=ImportStatus.cancelled.value,
            cancel_requested=True,
            finished_at=now,
            updated_at=now,
        )
    )
    if getattr(result, "rowcount", 0) == 0:
        await session.execute(
            update(ImportJob)
            .where(ImportJob.id == job.id)
            .values(cancel_requested=True, updated_at=now)
        )
    await session.flush()
    return await get_job(session, job.id)


async def error_csv(engine: AsyncEngine, job: ImportJob, page: int = 2000) -> AsyncIterator[bytes]:
    """The failed rows as CSV: `error_row,error_field,error_message`, then the row as it was
    in the file (CSV imports: its columns; JSON Lines: the line)."""
    columns = list(job.columns or []) if job.format == "csv" else ["line"]
    yield formats.csv_line([*formats.ERROR_COLUMNS, *columns]).encode()
    last: tuple[int, uuid.UUID] | None = None
    while True:
        stmt = (
            select(
                ROW_ERROR.c.id,
                ROW_ERROR.c.row,
                ROW_ERROR.c.field,
                ROW_ERROR.c.message,
                ROW_ERROR.c.raw,
            )
            .where(ROW_ERROR.c.job_id == job.id)
            .order_by(ROW_ERROR.c.row, ROW_ERROR.c.id)
            .limit(page)
        )
        if last is not None:
            stmt = stmt.where(
                (ROW_ERROR.c.row > last[0])
                | ((ROW_ERROR.c.row == last[0]) & (ROW_ERROR.c.id > last[1]))
            )
        async with engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        if not rows:
            return
        chunk = []
        for row in rows:
            raw = row.raw
            cells = list(raw) if isinstance(raw, list) else [raw]
            chunk.append(formats.csv_line([row.row, row.field or "", row.message, *cells]))
        yield "".join(chunk).encode()
        last = (rows[-1].row, rows[-1].id)


# --------------------------------------------------------------------------- references


@dataclass
class References:
    """Brands by slug and categories by slug path, plus the ones this import creates."""

    brands: dict[str, uuid.UUID] = field(default_factory=dict)
    brand_names: set[str] = field(default_factory=set)
    categories: dict[str, uuid.UUID] = field(default_factory=dict)
    new_brands: list[dict[str, Any]] = field(default_factory=list)
    new_categories: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    async def load(cls, conn: AsyncConnection) -> References:
        refs = cls()
        for brand in await conn.execute(select(Brand.id, Brand.slug, Brand.name)):
            refs.brands[brand.slug] = brand.id
            refs.brand_names.add(brand.name.casefold())
        rows = (await conn.execute(select(Category.id, Category.parent_id, Category.slug))).all()
        by_id = {r.id: r for r in rows}
        for row in rows:
            parts = [row.slug]
            parent = row.parent_id
            depth = 0
            while parent is not None and parent in by_id and depth < 64:
                parts.append(by_id[parent].slug)
                parent = by_id[parent].parent_id
                depth += 1
            refs.categories["/".join(reversed(parts))] = row.id
        return refs

    def brand(self, slug: str, create: bool) -> uuid.UUID:
        found = self.brands.get(slug)
        if found is not None:
            return found
        if not _SLUG_RE.match(slug) or len(slug) > 140:
            raise ValueError(f"'{slug}' is not a brand slug (lowercase letters, digits, hyphens)")
        if not create:
            raise ValueError(
                f"Unknown brand '{slug}' (create_missing creates missing brands and categories)"
            )
        name = _titled(slug)
        if name.casefold() in self.brand_names:
            name = f"{name} ({slug})"[:120]
        brand_id = self.brands[slug] = new_id()
        self.brand_names.add(name.casefold())
        self.new_brands.append({"id": brand_id, "name": name, "slug": slug})
        return brand_id

    def category(self, path: str, create: bool) -> uuid.UUID:
        path = path.strip().strip("/")
        found = self.categories.get(path)
        if found is not None:
            return found
        parts = [p.strip() for p in path.split("/")]
        for part in parts:
            if not _SLUG_RE.match(part) or len(part) > 140:
                raise ValueError(
                    f"'{path}' is not a category path (slugs from the root joined by '/')"
                )
        if not create:
            raise ValueError(
                f"Unknown category '{path}' (create_missing creates missing brands and categories)"
            )
        parent: uuid.UUID | None = None
        for depth in range(len(parts)):
            sub = "/".join(parts[: depth + 1])
            existing = self.categories.get(sub)
            if existing is None:
                existing = self.categories[sub] = new_id()
                self.new_categories.append(
                    {
                        "id": existing,
                        "parent_id": parent,
                        "name": _titled(parts[depth]),
                        "slug": parts[depth],
                    }
                )
            parent = existing
        assert parent is not None
        return parent

    def take_pending(self) -> NewReferences:
        """The references created since the last call (those a batch's products use)."""
        taken = NewReferences(self.new_brands, self.new_categories)
        self.new_brands = []
        self.new_categories = []
        return taken

    def forget(self, created: NewReferences) -> None:
        """After a rollback: the references created in it do not exist."""
        for row in created.brands:
            self.brands.pop(row["slug"], None)
        ids = {row["id"] for row in created.categories}
        for path in [p for p, i in self.categories.items() if i in ids]:
            del self.categories[path]


@dataclass(slots=True)
class NewReferences:
    """Brands and categories a batch creates (rows to insert)."""

    brands: list[dict[str, Any]] = field(default_factory=list)
    categories: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.brands or self.categories)

    async def write(self, conn: AsyncConnection) -> None:
        now = utcnow()
        if self.brands:
            await conn.execute(
                BRAND.insert(),
                [
                    {
                        **b,
                        "description": None,
                        "logo_url": None,
                        "created_at": now,
                        "updated_at": now,
                        "version": 1,
                    }
                    for b in self.brands
                ],
            )
        if self.categories:
            await conn.execute(
                CATEGORY.insert(),
                [
                    {**c, "description": None, "created_at": now, "updated_at": now, "version": 1}
                    for c in self.categories
                ],
            )


# --------------------------------------------------------------------------- what the batch finds


@dataclass(slots=True)
class Current:
    """What the database holds for one batch: read with one indexed query per kind of row."""

    products: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # by SKU
    variants_of: dict[Any, list[Mapping[str, Any]]] = field(default_factory=dict)  # by product id
    variants: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # by variant SKU
    product_skus: dict[Any, str] = field(default_factory=dict)  # product id -> SKU
    slugs: dict[str, str] = field(default_factory=dict)  # slug -> product SKU


# The product columns an import reads and writes.
_PRODUCT_FIELDS = (
    "id",
    "sku",
    "slug",
    "name",
    "description",
    "status",
    "brand_id",
    "category_id",
    "owner_id",
    "attributes",
    "options",
    "currency",
    "price_min",
    "price_max",
    "total_stock",
)
PRODUCT_READ = (*_PRODUCT_FIELDS, "deleted_at", "version")
VARIANT_READ = ("id", "product_id", "sku", "price", "stock", "option_values", "position")

# (The statements are made of the constant column names above; values are parameters.)
_PRODUCT_LIST = ", ".join(PRODUCT_READ)
_VARIANT_LIST = ", ".join(VARIANT_READ)
_PG_PRODUCTS = f"SELECT {_PRODUCT_LIST} FROM product WHERE sku = ANY($1::varchar[])"  # noqa: S608
_PG_VARIANTS_OF = f"SELECT {_VARIANT_LIST} FROM product_variant WHERE product_id = ANY($1::uuid[])"  # noqa: S608
_PG_VARIANTS = f"SELECT {_VARIANT_LIST} FROM product_variant WHERE sku = ANY($1::varchar[])"  # noqa: S608
_PG_PRODUCT_SKUS = "SELECT id, sku FROM product WHERE id = ANY($1::uuid[])"
_PG_SLUGS = "SELECT slug, sku FROM product WHERE slug = ANY($1::varchar[])"


# The bulk statements are many and short: compiling them (PostgreSQL's JIT, which the row
# estimates of a freshly loaded table can trigger) costs more than running them.
NO_JIT = "SET LOCAL jit = off"


# On PostgreSQL the write transactions of import batches take turns: each one first takes a
# transaction-scoped advisory lock, then reads what the database holds, so concurrent imports of
# overlapping files do not plan from a state the other is changing (a batch planned ahead of its
# transaction, by the pipelining, and overtaken meanwhile is planned again under the lock). One
# lock rather than one per SKU: a batch holds thousands of SKUs, more than PostgreSQL's shared
# lock table is sized for, and the batches of one import run one after the other anyway. The
# first key separates it from any other advisory lock. On SQLite a batch's first write takes the
# database's write lock; what another writer changed between the batch's read and that write is
# found by the upserts' conditions and planned again (`ImportRun._write`). The embedded profile
# runs its imports one at a time; two importing processes on one SQLite file can still be
# refused with "database is locked".
_IMPORT_LOCK = (0x1CA7, 1)


async def lock_batch(conn: AsyncConnection) -> None:
    """Keep other imports' batches out until this transaction ends (PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_advisory_xact_lock(_IMPORT_LOCK[0], _IMPORT_LOCK[1])))


# A batch's transaction does not wait for its commit to reach the disk: a crash may lose the
# last batches committed, but only whole (the job's progress is in the same transactions),
# and the job resumes after the last one kept. The job's end (`_finish`) waits as usual, so
# an import reported finished is on disk.
BATCH_SETTINGS = (
    "SELECT set_config('jit', 'off', true), set_config('synchronous_commit', 'off', true)"
)


async def driver_connection(conn: AsyncConnection) -> Any:
    """The asyncpg connection under `conn`, inside the transaction that `conn` manages
    (SQLAlchemy begins it on the first statement: when it is not begun yet, with JIT off)."""
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    if not driver.is_in_transaction():
        await conn.execute(text(NO_JIT))
    return driver


def _slug_candidates(
    items: list[ProductIn], existing: Mapping[str, Any]
) -> tuple[set[str], set[str]]:
    """The slugs the batch may use (given ones, and the ones new products' names give), and
    among them those made from names."""
    candidates = set()
    generated = set()
    for p in items:
        given = p.fields.get("slug")
        if isinstance(given, str) and given:
            candidates.add(given.lower())
        elif p.sku not in existing and isinstance(p.fields.get("name"), str):
            base = slugify(p.fields["name"], max_length=172)
            candidates.add(base)
            generated.add(base)
    return candidates, generated


async def read_current(conn: AsyncConnection, items: list[ProductIn]) -> Current:
    """The batch's products (by SKU), their variants, the other products' variants that use
    one of the batch's variant SKUs, and the products that use one of the slugs it may use."""
    current = Current()
    if conn.dialect.name == "postgresql":
        await _read_current_pg(conn, items, current)
    else:
        await _read_current_portable(conn, items, current)
    products = current.products
    for row in products.values():
        current.product_skus[row["id"]] = row["sku"]
    _, generated = _slug_candidates(items, products)
    # Slugs made from names that are taken: the suffixed ones in use (-2, -3, ...).
    for base in [c for c in generated if c in current.slugs]:
        pattern = base.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        for hit in await conn.execute(
            select(PRODUCT.c.slug, PRODUCT.c.sku).where(
                PRODUCT.c.slug.like(f"{pattern}-%", escape="\\")
            )
        ):
            current.slugs[hit.slug] = hit.sku
    return current


async def _read_current_pg(conn: AsyncConnection, items: list[ProductIn], current: Current) -> None:
    driver = await driver_connection(conn)
    products = current.products
    for row in await driver.fetch(_PG_PRODUCTS, [p.sku for p in items]):
        products[row["sku"]] = row
    by_sku = current.variants
    if products:
        variants_of = current.variants_of
        for row in await driver.fetch(_PG_VARIANTS_OF, [r["id"] for r in products.values()]):
            variants_of.setdefault(row["product_id"], []).append(row)
            by_sku[row["sku"]] = row
    wanted = [v.sku for p in items for v in p.variants if v.sku not in by_sku]
    if wanted:
        others = set()
        for row in await driver.fetch(_PG_VARIANTS, wanted):
            by_sku[row["sku"]] = row
            others.add(row["product_id"])
        if others:
            for row in await driver.fetch(_PG_PRODUCT_SKUS, list(others)):
                current.product_skus[row["id"]] = row["sku"]
    candidates, _ = _slug_candidates(items, products)
    if candidates:
        for row in await driver.fetch(_PG_SLUGS, list(candidates)):
            current.slugs[row["slug"]] = row["sku"]


async def _read_current_portable(
    conn: AsyncConnection, items: list[ProductIn], current: Current
) -> None:
    products = current.products
    product_columns = [PRODUCT.c[name] for name in PRODUCT_READ]
    skus = [p.sku for p in items]
    for row in await conn.execute(select(*product_columns).where(PRODUCT.c.sku.in_(skus))):
        products[row.sku] = row._asdict()
    variant_columns = [VARIANT.c[name] for name in VARIANT_READ]
    by_sku = current.variants
    ids = [r["id"] for r in products.values()]
    if ids:
        for row in await conn.execute(
            select(*variant_columns).where(VARIANT.c.product_id.in_(ids))
        ):
            data = row._asdict()
            current.variants_of.setdefault(row.product_id, []).append(data)
            by_sku[row.sku] = data
    wanted = [v.sku for p in items for v in p.variants if v.sku not in by_sku]
    if wanted:
        joined = VARIANT.join(PRODUCT, PRODUCT.c.id == VARIANT.c.product_id)
        for row in await conn.execute(
            select(*variant_columns, PRODUCT.c.sku.label("product_sku"))
            .select_from(joined)
            .where(VARIANT.c.sku.in_(wanted))
        ):
            by_sku[row.sku] = row._asdict()
            current.product_skus[row.product_id] = row.product_sku
    candidates, _ = _slug_candidates(items, products)
    if candidates:
        for hit in await conn.execute(
            select(PRODUCT.c.slug, PRODUCT.c.sku).where(PRODUCT.c.slug.in_(candidates))
        ):
            current.slugs[hit.slug] = hit.sku


# --------------------------------------------------------------------------- planning


class IdSource:
    """Time-ordered UUIDs (version 7, like `catalog.db.new_id`), made a thousand at a time:
    48 bits of milliseconds, a 12-bit sequence that keeps them increasing within a
    millisecond (carried into the next one when it runs out) and 62 random bits."""

    CHUNK = 1024

    def __init__(self) -> None:
        self._stamp = 0  # (milliseconds << 12) | sequence of the last id made
        self._ready: list[uuid.UUID] = []

    def take(self) -> uuid.UUID:
        if not self._ready:
            self._ready = self._make(self.CHUNK)
        return self._ready.pop()

    def _make(self, count: int) -> list[uuid.UUID]:
        stamp = max(time.time_ns() // 1_000_000 << 12, self._stamp + 1)
        self._stamp = stamp + count - 1
        noise = os.urandom(8 * count)
        make = FastUUID  # a `uuid.UUID` made from its bytes without Python code
        ids = []
        for i in range(count):
            at = stamp + i
            head = ((at >> 12) << 16) | 0x7000 | (at & 0xFFF)
            tail = int.from_bytes(noise[8 * i : 8 * i + 8]) & _LOW_62 | _VARIANT
            ids.append(make(((head << 64) | tail).to_bytes(16)))
        ids.reverse()  # taken from the end: in increasing order
        return ids


_LOW_62 = (1 << 62) - 1
_VARIANT = 0b10 << 62


@dataclass(slots=True)
class Plan:
    """What one product of the file does to the database."""

    source: ProductIn
    product_row: dict[str, Any] | None  # None: the product itself is unchanged
    variant_rows: list[dict[str, Any]]
    row_outcomes: dict[int, str]  # row number -> created | updated | unchanged
    new_product: bool = False  # the product did not exist when the batch was read
    new_variants: list[bool] = field(default_factory=list)  # per variant row: did not exist


@dataclass
class BatchResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[RowError] = field(default_factory=list)
    wrote: bool = False

    def add_outcomes(self, outcomes: Iterable[str]) -> None:
        for outcome in outcomes:
            if outcome == "created":
                self.created += 1
            elif outcome == "updated":
                self.updated += 1
            else:
                self.unchanged += 1

    def fail(self, product: ProductIn, errors: list[RowError]) -> None:
        """Every row of the product fails: the product is imported whole or not at all."""
        by_row: dict[int, list[RowError]] = {}
        for error in errors:
            by_row.setdefault(error.row, []).append(error)
        first_bad = min(by_row) if by_row else product.row
        for number, raw in product.rows or [(product.row, None)]:
            mine = by_row.pop(number, None)
            if mine:
                fields = [e.field for e in mine if e.field]
                message = "; ".join(dict.fromkeys(e.message for e in mine))
                self.errors.append(RowError(number, fields[0] if fields else None, message, raw))
            else:
                self.errors.append(
                    RowError(
                        number,
                        None,
                        f"Not imported: row {first_bad} of product {product.sku} has errors",
                        raw,
                    )
                )
            self.failed += 1
        # Errors of rows the product does not list (JSON Lines: one row per product).
        for number, mine in by_row.items():
            if any(e.row == number for e in self.errors):
                continue
            self.errors.append(RowError(number, mine[0].field, mine[0].message, mine[0].raw))


_PYDANTIC_FIELD = {"sku": formats.PRODUCT_SKU, "brand_id": "brand", "category_id": "category"}


class Planner:
    """Merges a product of the file with what the database holds and validates the result
    with the API's rules."""

    def __init__(
        self,
        refs: References,
        *,
        owner_id: uuid.UUID | None,
        restrict_to_owner: bool,
        create_missing: bool,
        fmt: Format,
    ) -> None:
        self.refs = refs
        self.owner_id = owner_id
        self.restrict = restrict_to_owner
        self.create_missing = create_missing
        self.fmt = fmt
        self.slugs_taken: dict[str, str] = {}  # slug -> product SKU, within this import
        self.ids = IdSource()

    def _error(self, product: ProductIn, row: int | None, name: str | None, msg: str) -> RowError:
        number = row if row is not None else product.row
        raw = next((r for n, r in product.rows if n == number), None)
        return RowError(number, name, msg, raw)

    def plan(self, p: ProductIn, current: Current, now: dt.datetime) -> Plan | list[RowError]:
        if p.errors:
            return p.errors
        existing = current.products.get(p.sku)
        own_variants = current.variants_of.get(existing["id"], []) if existing is not None else []
        variants_by_sku = current.variants
        db_slugs = current.slugs
        errors: list[RowError] = []
        if existing is not None:
            if existing["deleted_at"] is not None:
                return [
                    self._error(
                        p,
                        None,
                        formats.PRODUCT_SKU,
                        f"Product {p.sku} is deleted; restore it first",
                    )
                ]
            if self.restrict and existing["owner_id"] != self.owner_id:
                return [
                    self._error(
                        p, None, formats.PRODUCT_SKU, f"Product {p.sku} belongs to another seller"
                    )
                ]
        for v in p.variants:
            other = variants_by_sku.get(v.sku)
            if other is not None and (existing is None or other["product_id"] != existing["id"]):
                errors.append(
                    self._error(
                        p,
                        v.row,
                        "sku",
                        f"SKU {v.sku} is a variant of another product "
                        f"({current.product_skus.get(other['product_id'], '?')})",
                    )
                )
        if errors:
            return errors

        fields = p.fields
        data: dict[str, Any] = {"sku": p.sku}

        def pick(name: str, current: Any) -> Any:
            value = fields.get(name, MISSING)
            return current if value is MISSING else value

        ex = existing or {}
        for name in ("name", "description", "currency"):
            value = pick(name, ex.get(name))
            if value is not None:
                data[name] = value
        slug = fields.get("slug") or ex.get("slug")
        if slug is not None:
            data["slug"] = slug
        status = fields.get("status") or ex.get("status")
        if status is not None:
            data["status"] = status

        try:
            brand = fields.get("brand", MISSING)
            if brand is MISSING:
                data["brand_id"] = ex.get("brand_id")
            elif brand is not None:
                if not isinstance(brand, str):
                    raise TypeError("brand")
                data["brand_id"] = self.refs.brand(brand, self.create_missing)
        except (ValueError, TypeError) as exc:
            errors.append(self._error(p, None, "brand", _message(exc, "a brand slug")))
        try:
            category = fields.get("category", MISSING)
            if category is MISSING:
                data["category_id"] = ex.get("category_id")
            elif category is not None:
                if not isinstance(category, str):
                    raise TypeError("category")
                data["category_id"] = self.refs.category(category, self.create_missing)
        except (ValueError, TypeError) as exc:
            errors.append(self._error(p, None, "category", _message(exc, "a category path")))

        if p.replace_attributes:
            data["attributes"] = p.attributes
        else:
            # The attributes the file has a column for but no value are removed.
            removed = p.attribute_columns
            given = p.attributes
            attributes = {
                k: v
                for k, v in (ex.get("attributes") or {}).items()
                if k not in removed or k in given
            }
            for key, value in given.items():
                if value is None:
                    attributes.pop(key, None)
                else:
                    attributes[key] = value
            data["attributes"] = attributes

        # Variants: the file's, merged into the product's current ones (kept positions; new
        # variants are appended).
        own_by_sku = {v["sku"]: v for v in own_variants}
        next_position = max((v["position"] for v in own_variants), default=-1) + 1
        merged: dict[str, dict[str, Any]] = {
            v["sku"]: {
                "sku": v["sku"],
                "price": v["price"],
                "stock": v["stock"],
                "option_values": dict(v["option_values"] or {}),
                "position": v["position"],
                "row": None,
            }
            for v in own_variants
        }
        for v in p.variants:
            base = own_by_sku.get(v.sku)
            item: dict[str, Any] = {"sku": v.sku, "row": v.row}
            if v.price is not MISSING and v.price is not None:
                item["price"] = v.price
            elif base is not None and v.price is MISSING:
                item["price"] = base["price"]
            if v.stock is not MISSING:
                item["stock"] = v.stock
            else:
                item["stock"] = base["stock"] if base is not None else 0
            if v.replace_options:
                item["option_values"] = v.option_values
            elif base is None and v.option_values is not MISSING:
                # (Nothing to merge into: the values given.)
                item["option_values"] = {
                    name: value for name, value in v.option_values.items() if value is not None
                }
            else:
                values = dict(base["option_values"] or {}) if base is not None else {}
                if v.option_values is not MISSING:
                    for name, value in v.option_values.items():
                        key = _option_key(values, name)
                        if value is None:
                            values.pop(key, None)
                        else:
                            values[key] = value
                item["option_values"] = values
            if base is not None:
                item["position"] = base["position"]
            else:
                item["position"] = next_position
                next_position += 1
            merged[v.sku] = item
        ordered = sorted(merged.values(), key=lambda i: i["position"])
        rows_of = [i["row"] for i in ordered]

        if p.options is not MISSING:
            data["options"] = p.options
        else:
            data["options"] = _derive_options(ex.get("options") or [], ordered)
        data["variants"] = [
            {k: i[k] for k in ("sku", "price", "stock", "option_values") if k in i} for i in ordered
        ]

        # The API's schema decides; `quick_product` gives its result for plainly valid products
        # at a fraction of the cost, and leaves everything else to the model.
        valid = quick_product(data) if not errors else None
        if valid is None:
            try:
                model = ProductCreate.model_validate(data)
            except ValidationError as exc:
                errors.extend(self._pydantic_errors(p, exc, rows_of))
                return errors
            if errors:
                return errors
            valid = from_model(model)
        options = valid.options
        try:
            for i, checked in enumerate(valid.variants):
                products._check_price(
                    checked.price, valid.currency, ["body", "variants", i, "price"]
                )
                products._check_option_values(
                    options, checked.option_values, ["body", "variants", i, "option_values"]
                )
            products._check_variant_set(options, valid.variants)
        except (Unprocessable, Conflict) as exc:
            return [self._service_error(p, exc, rows_of)]
        total_stock = sum(v.stock for v in valid.variants)
        if total_stock > products.MAX_TOTAL_STOCK:
            return [
                self._error(
                    p,
                    None,
                    "stock",
                    "The stock of all variants together must not exceed "
                    f"{products.MAX_TOTAL_STOCK}",
                )
            ]

        # Slug: given, kept, or made from the name; unique among products.
        slug = valid.slug
        if slug is None:
            slug = self._new_slug(valid.name, db_slugs)
        owner = db_slugs.get(slug)
        if (owner is not None and owner != p.sku) or self.slugs_taken.get(slug, p.sku) != p.sku:
            return [self._error(p, None, "slug", f"The slug '{slug}' is used by another product")]
        self.slugs_taken[slug] = p.sku

        return self._diff(p, existing, valid, options, slug, ordered, own_variants, now)

    def _new_slug(self, name: str, db_slugs: dict[str, str]) -> str:
        base = slugify(name, max_length=172)
        taken = self.slugs_taken
        if base not in db_slugs and base not in taken:
            return base
        n = 2
        while f"{base}-{n}" in db_slugs or f"{base}-{n}" in taken:
            n += 1
        return f"{base}-{n}"

    def _diff(
        self,
        p: ProductIn,
        existing: Mapping[str, Any] | None,
        valid: CheckedProduct,
        options: list[dict[str, Any]],
        slug: str,
        ordered: list[dict[str, Any]],
        own_variants: list[Mapping[str, Any]],
        now: dt.datetime,
    ) -> Plan:
        prices = [v.price for v in valid.variants]
        values = {
            "slug": slug,
            "name": valid.name,
            "description": valid.description or None,
            "status": valid.status,
            "brand_id": valid.brand_id,
            "category_id": valid.category_id,
            "attributes": valid.attributes,
            "options": options,
            "currency": valid.currency,
            "price_min": min(prices),
            "price_max": max(prices),
            "total_stock": sum(v.stock for v in valid.variants),
        }
        if existing is None:
            product_changed = True
        else:
            product_changed = (
                any(
                    values[k] != existing[k]
                    for k in (
                        "slug",
                        "name",
                        "status",
                        "brand_id",
                        "category_id",
                        "currency",
                        "price_min",
                        "price_max",
                        "total_stock",
                    )
                )
                or values["description"] != (existing["description"] or None)
                or _canon(values["attributes"]) != _canon(existing["attributes"])
                or _canon(values["options"]) != _canon(existing["options"])
            )
        product_id = existing["id"] if existing is not None else self.ids.take()
        current = {v["sku"]: v for v in own_variants}
        variant_rows: list[dict[str, Any]] = []
        new_variants: list[bool] = []
        outcomes: dict[int, str] = {}
        for item, v in zip(ordered, valid.variants, strict=True):
            base = current.get(v.sku)
            changed = (
                base is None
                or base["price"] != v.price
                or base["stock"] != v.stock
                or base["position"] != item["position"]
                or base["option_values"] != v.option_values
            )
            if changed:
                new_variants.append(base is None)
                variant_rows.append(
                    {
                        "id": base["id"] if base is not None else self.ids.take(),
                        "product_id": product_id,
                        "sku": v.sku,
                        "price": v.price,
                        "stock": v.stock,
                        "option_values": v.option_values,
                        "position": item["position"],
                        "created_at": now,
                        "updated_at": now,
                        "version": 1,
                    }
                )
            if item["row"] is not None:
                if base is None:
                    outcomes[item["row"]] = "created"
                elif changed or (product_changed and existing is not None):
                    outcomes[item["row"]] = "updated"
                else:
                    outcomes[item["row"]] = "unchanged"
        if self.fmt == "jsonl":
            # One line is one product: its outcome is the product's.
            outcome = "created" if existing is None else "updated"
            if existing is not None and not (product_changed or variant_rows):
                outcome = "unchanged"
            outcomes = {p.row: outcome}
        product_row = None
        if product_changed or variant_rows:
            product_row = {
                "id": product_id,
                "sku": p.sku,
                **values,
                "owner_id": existing["owner_id"] if existing is not None else self.owner_id,
                "rating_avg": 0.0,
                "rating_count": 0,
                "popularity": 0.0,
                "deleted_at": None,
                "created_at": now,
                "updated_at": now,
                "version": existing["version"] if existing is not None else 1,
            }
        return Plan(p, product_row, variant_rows, outcomes, existing is None, new_variants)

    def _pydantic_errors(
        self, p: ProductIn, exc: ValidationError, rows_of: list[int | None]
    ) -> list[RowError]:
        out = []
        for err in exc.errors(include_url=False):
            loc = list(err.get("loc", ()))
            msg = str(err.get("msg", "invalid"))
            row: int | None = None
            name: str | None = None
            if loc and loc[0] == "variants" and len(loc) >= 2 and isinstance(loc[1], int):
                index = loc[1]
                row = rows_of[index] if index < len(rows_of) else None
                if len(loc) >= 3:
                    name = str(loc[2])
                    if name == "option_values" and len(loc) >= 4:
                        name = formats.OPTION_PREFIX + str(loc[3])
                if row is None and index < len(rows_of):
                    msg = f"existing variant {index + 1}: {msg}"
            elif loc and loc[0] == "attributes" and len(loc) >= 2:
                name = formats.ATTR_PREFIX + str(loc[1])
            elif loc:
                name = _PYDANTIC_FIELD.get(str(loc[0]), str(loc[0]))
            if msg.startswith("Value error, "):
                msg = msg.removeprefix("Value error, ")
            text_ = f"{name}: {msg}" if name else msg
            out.append(self._error(p, row, name, text_))
        return out

    def _service_error(
        self, p: ProductIn, exc: CatalogError, rows_of: list[int | None]
    ) -> RowError:
        loc = (exc.errors or [{}])[0].get("loc") or []
        row: int | None = None
        name: str | None = None
        if len(loc) >= 3 and loc[1] == "variants" and isinstance(loc[2], int):
            index = loc[2]
            row = rows_of[index] if index < len(rows_of) else None
            if len(loc) >= 4:
                name = str(loc[3])
                if name == "option_values" and len(loc) >= 5:
                    name = formats.OPTION_PREFIX + str(loc[4])
                elif name == "option_values":
                    name = "option"
        elif len(loc) >= 2:
            name = str(loc[1])
        return self._error(p, row, name, exc.detail or exc.title)


def _message(exc: Exception, what: str) -> str:
    if isinstance(exc, TypeError):
        return f"must be {what}"
    return str(exc)


def _option_key(values: dict[str, str], name: str) -> str:
    """The product's spelling of option `name` (option columns are case-insensitive)."""
    folded = name.casefold()
    for key in values:
        if key.casefold() == folded:
            return key
    return name


def _derive_options(
    current: list[dict[str, Any]], variants: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The product's options from its variants' values: the current options as they are when
    they cover every value (order and unused values kept), else extended with the new names
    and values in the order they appear; names no variant uses any more are dropped."""
    used: dict[str, list[str]] = {}
    for v in variants:
        for name, value in (v.get("option_values") or {}).items():
            if not isinstance(value, str):
                continue
            seen = used.setdefault(name, [])
            if value not in seen:
                seen.append(value)
    out: list[dict[str, Any]] = []
    for option in current:
        name = option["name"]
        if name in used:
            values = list(option["values"])
            values.extend(v for v in used.pop(name) if v not in values)
            out.append({"name": name, "values": values})
    out.extend({"name": name, "values": values} for name, values in used.items())
    return out


# --------------------------------------------------------------------------- writing


def _insert(conn: AsyncConnection, table: Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


PRODUCT_SET = (
    "slug",
    "name",
    "description",
    "status",
    "brand_id",
    "category_id",
    "attributes",
    "options",
    "currency",
    "price_min",
    "price_max",
    "total_stock",
    "updated_at",
)
VARIANT_SET = ("price", "stock", "option_values", "position", "updated_at")


def _product_upsert(conn: AsyncConnection) -> Any:
    stmt = _insert(conn, PRODUCT)
    excluded = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[PRODUCT.c.sku],
        set_={
            **{name: excluded[name] for name in PRODUCT_SET},
            "version": PRODUCT.c.version + 1,
        },
        # Optimistic concurrency: only the row planned against (same id, same version) is
        # updated. A product someone else changed, or created, since it was read is left alone
        # and planned again from what is committed now (`ImportRun._write`); if it changes once
        # more, its rows fail and can be imported again.
        where=and_(
            PRODUCT.c.id == excluded.id,
            PRODUCT.c.version == excluded.version,
            PRODUCT.c.deleted_at.is_(None),
        ),
    ).returning(PRODUCT.c.id, PRODUCT.c.sku)


def _variant_upsert(conn: AsyncConnection) -> Any:
    stmt = _insert(conn, VARIANT)
    excluded = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[VARIANT.c.sku],
        set_={
            **{name: excluded[name] for name in VARIANT_SET},
            "version": VARIANT.c.version + 1,
        },
        where=VARIANT.c.product_id == excluded.product_id,
    ).returning(VARIANT.c.sku)


class ConcurrentChange(Exception):
    def __init__(self, skus: set[str]) -> None:
        super().__init__(", ".join(sorted(skus)))
        self.skus = skus


async def _write_plans(conn: AsyncConnection, plans: list[Plan]) -> set[str]:
    """Write the plans' products then variants; returns the product SKUs that someone else
    changed or deleted meanwhile (left alone). Raises `ConcurrentChange` when a variant SKU
    was taken by another product meanwhile, and the database's error when a row cannot be
    written (the caller then writes the products one by one with `_upsert_plans`)."""
    if conn.dialect.name == "postgresql":
        return await _copy_plans(conn, plans)
    return await _upsert_plans(conn, plans)


async def _upsert_plans(conn: AsyncConnection, plans: list[Plan]) -> set[str]:
    """`_write_plans` with multi-row `INSERT ... ON CONFLICT DO UPDATE` statements."""
    product_rows = [p.product_row for p in plans if p.product_row is not None]
    if not product_rows:
        return set()
    written = {
        row.sku: row.id for row in (await conn.execute(_product_upsert(conn), product_rows)).all()
    }
    skipped = {row["sku"] for row in product_rows} - set(written)
    variant_rows = []
    for plan in plans:
        if plan.product_row is None or plan.source.sku in skipped:
            continue
        product_id = written[plan.source.sku]
        for row in plan.variant_rows:
            row["product_id"] = product_id
            variant_rows.append(row)
    if variant_rows:
        done = {r.sku for r in (await conn.execute(_variant_upsert(conn), variant_rows)).all()}
        lost = {row["sku"] for row in variant_rows} - done
        if lost:
            raise ConcurrentChange(lost)
    return skipped


PRODUCT_COPY = (
    *_PRODUCT_FIELDS,
    "rating_avg",
    "rating_count",
    "popularity",
    "deleted_at",
    "created_at",
    "updated_at",
    "version",
)
VARIANT_COPY = (*VARIANT_READ, "created_at", "updated_at", "version")
_JSON_COLUMNS = frozenset({"attributes", "options", "option_values"})

# Changed products and variants: one UPDATE each per batch over arrays of the new values. As
# the upserts: a product changed (version) or deleted since it was read is left alone, and a
# variant only moves within its product.
_PG_PRODUCT_TYPES = {
    "sku": "varchar",
    "slug": "varchar",
    "name": "varchar",
    "description": "text",
    "status": "varchar",
    "brand_id": "uuid",
    "category_id": "uuid",
    "attributes": "jsonb",
    "options": "jsonb",
    "currency": "varchar",
    "price_min": "numeric",
    "price_max": "numeric",
    "total_stock": "int",
    "updated_at": "timestamptz",
    "version": "int",
}
_PG_PRODUCT_UPDATE = (
    "UPDATE product AS p SET "  # noqa: S608 (constant column names)
    + ", ".join(f"{name} = t.{name}" for name in PRODUCT_SET)
    + ", version = p.version + 1 FROM unnest("
    + ", ".join(f"${i}::{kind}[]" for i, kind in enumerate(_PG_PRODUCT_TYPES.values(), 1))
    + ") AS t("
    + ", ".join(_PG_PRODUCT_TYPES)
    + ") WHERE p.sku = t.sku AND p.version = t.version AND p.deleted_at IS NULL RETURNING p.sku"
)
_PG_VARIANT_TYPES = {
    "sku": "varchar",
    "product_id": "uuid",
    "price": "numeric",
    "stock": "int",
    "option_values": "jsonb",
    "position": "int",
    "updated_at": "timestamptz",
}
_PG_VARIANT_UPDATE = (
    "UPDATE product_variant AS v SET "  # noqa: S608 (constant column names)
    + ", ".join(f"{name} = t.{name}" for name in VARIANT_SET)
    + ", version = v.version + 1 FROM unnest("
    + ", ".join(f"${i}::{kind}[]" for i, kind in enumerate(_PG_VARIANT_TYPES.values(), 1))
    + ") AS t("
    + ", ".join(_PG_VARIANT_TYPES)
    + ") WHERE v.sku = t.sku AND v.product_id = t.product_id RETURNING v.sku"
)


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _records(rows: list[dict[str, Any]], columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """The rows as tuples of `columns` (JSON columns as JSON text) for `COPY`."""
    get = itemgetter(*columns)
    json_at = [i for i, name in enumerate(columns) if name in _JSON_COLUMNS]
    records = []
    for row in rows:
        values = list(get(row))
        for i in json_at:
            values[i] = _json_text(values[i])
        records.append(tuple(values))
    return records


def _arrays(rows: list[dict[str, Any]], columns: Iterable[str]) -> list[list[Any]]:
    return [
        [_json_text(row[name]) for row in rows]
        if name in _JSON_COLUMNS
        else [row[name] for row in rows]
        for name in columns
    ]


async def _copy_plans(conn: AsyncConnection, plans: list[Plan]) -> set[str]:
    """`_write_plans` on PostgreSQL: new products and variants with `COPY`, changed ones with
    one `UPDATE ... FROM unnest(...)` each (the triggers fire as for any insert or update)."""
    driver = await driver_connection(conn)
    new_products = [p.product_row for p in plans if p.product_row is not None and p.new_product]
    changed = [p.product_row for p in plans if p.product_row is not None and not p.new_product]
    skipped: set[str] = set()
    if new_products:
        await driver.copy_records_to_table(
            "product", records=_records(new_products, PRODUCT_COPY), columns=PRODUCT_COPY
        )
    if changed:
        done = await driver.fetch(_PG_PRODUCT_UPDATE, *_arrays(changed, _PG_PRODUCT_TYPES))
        skipped = {row["sku"] for row in changed} - {row["sku"] for row in done}
    new_variants: list[dict[str, Any]] = []
    changed_variants: list[dict[str, Any]] = []
    for plan in plans:
        if plan.product_row is None or plan.source.sku in skipped:
            continue
        for row, new in zip(plan.variant_rows, plan.new_variants, strict=True):
            (new_variants if new else changed_variants).append(row)
    if new_variants:
        await driver.copy_records_to_table(
            "product_variant",
            records=_records(new_variants, VARIANT_COPY),
            columns=VARIANT_COPY,
        )
    if changed_variants:
        done = await driver.fetch(_PG_VARIANT_UPDATE, *_arrays(changed_variants, _PG_VARIANT_TYPES))
        lost = {row["sku"] for row in changed_variants} - {row["sku"] for row in done}
        if lost:
            raise ConcurrentChange(lost)
    return skipped


# --------------------------------------------------------------------------- running a job


ProgressCallback = Callable[[ImportJob], Any]


@dataclass(slots=True)
class _Batch:
    products: list[ProductIn] = field(default_factory=list)
    loose: list[RowError] = field(default_factory=list)
    rows: int = 0
    # Once planned: what to write, the rows already failed, the references to create.
    plans: list[Plan] | None = None
    result: BatchResult = field(default_factory=BatchResult)
    references: NewReferences = field(default_factory=NewReferences)


# The reading and planning of a batch hand the event loop back every so many products (a
# few milliseconds), so that the previous batch's statements progress meanwhile: PostgreSQL
# works while we plan, and each of its answers waits for the loop at most that long.
YIELD_EVERY = 16


def count_rows(path: Path, fmt: Format) -> tuple[int, list[str] | None]:
    """The number of data rows (and the CSV header), reading the whole file once: this also
    finds an undecodable file before anything is imported. Raises `FileError`."""
    rows = 0
    try:
        with formats.open_text(path) as text:
            if fmt == "csv":
                header = formats.read_csv_header(text)
                for _ in formats.csv_records(text):
                    rows += 1
                return rows, header.columns
            for _ in formats.jsonl_records(text):
                rows += 1
            return rows, None
    except UnicodeDecodeError as exc:
        raise formats.decode_problem(exc, rows + 1) from None
    except csv.Error as exc:
        raise formats.FileError(f"The CSV file cannot be read near row {rows + 1}: {exc}") from None


@dataclass(slots=True)
class _Reading:
    skip: int  # rows still to pass over (imported before the job was resumed)
    done: int  # rows read so far, from the top of the file


def _items(text: IO[str], fmt: Format) -> Iterator[Item]:
    if fmt == "csv":
        header = formats.read_csv_header(text)
        yield from formats.CsvReader(header).items(text)
    else:
        yield from formats.JsonlReader().items(text)


class ImportRun:
    """Processes one claimed job to its end (or until stopped, cancelled or taken over)."""

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        cache: Cache | None,
        job_id: uuid.UUID,
        lease_owner: str,
        *,
        stop: asyncio.Event | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.cache = cache
        self.job_id = job_id
        self.lease_owner = lease_owner
        self.stop = stop or asyncio.Event()
        self.on_progress = on_progress
        self.lease_lost = False

    # ------------------------------------------------------------------ job row
    async def _job(self) -> ImportJob:
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            return await get_job(session, self.job_id)

    def _mine(self) -> Any:
        return and_(JOB.c.id == self.job_id, JOB.c.lease_owner == self.lease_owner)

    async def _set(self, conn: AsyncConnection, **values: Any) -> Any:
        result = await conn.execute(
            update(JOB)
            .where(self._mine())
            .values(updated_at=utcnow(), **values)
            .returning(JOB.c.cancel_requested)
        )
        row = result.first()
        if row is None:
            raise LeaseLost
        return row.cancel_requested

    async def _finish(self, status: ImportStatus, error: str | None = None) -> None:
        now = utcnow()
        async with self.engine.begin() as conn:
            await self._set(
                conn,
                status=status.value,
                error=error,
                finished_at=now,
                lease_owner=None,
                lease_expires_at=None,
            )
        log.info("import_finished", job_id=str(self.job_id), status=status.value, error=error)

    def _lease_until(self) -> dt.datetime:
        return utcnow() + dt.timedelta(seconds=self.settings.import_lease_seconds)

    async def heartbeat(self) -> None:
        """Extends the lease while the job runs; notices when another worker took it over."""
        interval = max(self.settings.import_lease_seconds / 3, 0.2)
        while True:
            await asyncio.sleep(interval)
            try:
                async with self.engine.begin() as conn:
                    await self._set(conn, lease_expires_at=self._lease_until())
            except LeaseLost:
                self.lease_lost = True
                self.stop.set()
                return
            except Exception as exc:  # a missed beat is retried; the lease has slack
                log.warning("import_heartbeat_failed", job_id=str(self.job_id), error=str(exc))

    # ------------------------------------------------------------------ main loop
    async def execute(self) -> str:
        beat = asyncio.create_task(self.heartbeat(), name=f"import-heartbeat-{self.job_id}")
        try:
            return await self._execute()
        except LeaseLost:
            log.warning("import_lease_lost", job_id=str(self.job_id))
            return "lease-lost"
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _execute(self) -> str:
        job = await self._job()
        path = Path(job.file_path)
        fmt: Format = "jsonl" if job.format == "jsonl" else "csv"
        if not await asyncio.to_thread(path.is_file):
            await self._finish(ImportStatus.failed, "The uploaded file is no longer available")
            return ImportStatus.failed.value
        if job.cancel_requested:
            await self._finish(ImportStatus.cancelled)
            return ImportStatus.cancelled.value
        if job.rows_total is None:
            try:
                total, columns = await asyncio.to_thread(count_rows, path, fmt)
            except formats.FileError as exc:
                await self._finish(ImportStatus.failed, str(exc))
                self._cleanup(path)
                return ImportStatus.failed.value
            async with self.engine.begin() as conn:
                await self._set(conn, rows_total=total, columns=columns)
            job = await self._job()
        self._report(job)

        async with self.engine.connect() as conn:
            refs = await References.load(conn)
        planner = Planner(
            refs,
            owner_id=job.owner_id,
            restrict_to_owner=job.restrict_to_owner,
            create_missing=job.create_missing,
            fmt=fmt,
        )
        # PostgreSQL: while a batch is written and committed (a task), the next one is read,
        # looked up on another connection and planned; the optimistic checks of the writes
        # (versions, variant owners) catch whatever changes in between, as for any
        # concurrent writer. SQLite: one batch after the other, each read in its transaction.
        pipelined = self.engine.dialect.name == "postgresql"
        reading = _Reading(skip=job.rows_done, done=job.rows_done)
        limit = self.settings.import_batch_rows
        pending: asyncio.Task[bool] | None = None
        try:
            with formats.open_text(path) as text:
                items = _items(text, fmt)
                while (batch := await self._read_batch(items, limit, reading)) is not None:
                    if not pipelined:
                        if await self._commit_batch(batch, planner, job):
                            return ImportStatus.cancelled.value
                        if self.stop.is_set():
                            return await self._release()
                        continue
                    await self._prepare(batch, planner)
                    if pending is not None:
                        task, pending = pending, None
                        if await task:
                            return ImportStatus.cancelled.value
                        if self.stop.is_set():
                            return await self._release()
                    pending = asyncio.create_task(self._commit_batch(batch, planner, job))
                if pending is not None:
                    task, pending = pending, None
                    if await task:
                        return ImportStatus.cancelled.value
        except (UnicodeDecodeError, formats.FileError, csv.Error) as exc:
            if pending is not None:  # the batches before the problem are imported
                task, pending = pending, None
                if await task:
                    return ImportStatus.cancelled.value
            message = str(exc)
            if isinstance(exc, UnicodeDecodeError):
                message = str(formats.decode_problem(exc, reading.done + 1))
            await self._finish(ImportStatus.failed, message)
            self._cleanup(path)
            return ImportStatus.failed.value
        finally:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pending
        await self._finish(ImportStatus.succeeded)
        self._cleanup(path)
        self._report(await self._job())
        return ImportStatus.succeeded.value

    async def _release(self) -> str:
        """Stopping (shutdown): hand the job back to the queue, to resume where it is."""
        async with self.engine.begin() as conn:
            await self._set(
                conn,
                status=ImportStatus.queued.value,
                lease_owner=None,
                lease_expires_at=None,
                attempts=JOB.c.attempts - 1,
            )
        return "released"

    def _cleanup(self, path: Path) -> None:
        """Uploaded files go once their job ends; files imported in place (CLI) stay."""
        with contextlib.suppress(OSError):
            if path.resolve().is_relative_to(self.settings.import_dir.resolve()):
                path.unlink()

    def _report(self, job: ImportJob) -> None:
        if self.on_progress is not None:
            self.on_progress(job)

    async def _read_batch(
        self, items: Iterator[Item], limit: int, reading: _Reading
    ) -> _Batch | None:
        """The next `limit` rows (whole products) of the file, or None at its end."""
        batch = _Batch()
        count = 0
        for item in items:
            rows = 1 if isinstance(item, RowError) else item.row_count
            reading.done += rows
            if reading.skip > 0:  # resuming: imported before
                reading.skip -= rows
                continue
            if isinstance(item, RowError):
                batch.loose.append(item)
            else:
                batch.products.append(item)
            batch.rows += rows
            if batch.rows >= limit:
                return batch
            count += 1
            if count % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        return batch if batch.rows else None

    async def _prepare(self, batch: _Batch, planner: Planner) -> None:
        """Plan `batch` from what the database holds now (its own connection)."""
        if batch.products:
            async with self.engine.connect() as conn:
                if conn.dialect.name == "postgresql":
                    # One snapshot for all the reads: a concurrent import's commit between
                    # them would show its variants without their product, which plans as a
                    # SKU taken by another product (a failed row, not a retry under the lock).
                    await conn.execute(
                        text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    )
                current = await read_current(conn, batch.products)
            await self._plan(batch, current, planner)

    async def _plan(self, batch: _Batch, current: Current, planner: Planner) -> None:
        now = utcnow()
        plans = []
        result = batch.result
        for count, p in enumerate(batch.products, 1):
            outcome = planner.plan(p, current, now)
            if isinstance(outcome, Plan):
                plans.append(outcome)
            else:
                result.fail(p, outcome)
            if count % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        batch.plans = plans
        batch.references = planner.refs.take_pending()

    async def _commit_batch(self, batch: _Batch, planner: Planner, job: ImportJob) -> bool:
        """One transaction: the batch's products, its failed rows and the job's progress.
        Returns True when the job was cancelled (and is now finished as such)."""
        result = batch.result
        for error in batch.loose:
            result.errors.append(error)
            result.failed += 1
        async with self.engine.connect() as conn:
            try:
                trans = await conn.begin()
                if conn.dialect.name == "postgresql":
                    await conn.execute(text(BATCH_SETTINGS))
                if not job.dry_run:
                    await lock_batch(conn)
                if batch.plans is None:
                    current = await read_current(conn, batch.products)
                    await self._plan(batch, current, planner)
                plans = batch.plans or []
                if not job.dry_run:
                    await self._write(conn, plans, batch.references, result, planner)
                else:
                    for plan in plans:
                        result.add_outcomes(plan.row_outcomes.values())
                if result.errors:
                    await conn.execute(
                        ROW_ERROR.insert(),
                        [
                            {
                                "id": new_id(),
                                "job_id": self.job_id,
                                "row": e.row,
                                "field": (e.field or None) and e.field[:100],
                                "message": e.message,
                                "raw": e.raw if e.raw is not None else "",
                            }
                            for e in result.errors
                        ],
                    )
                cancel = await self._set(
                    conn,
                    rows_done=JOB.c.rows_done + batch.rows,
                    created=JOB.c.created + result.created,
                    updated=JOB.c.updated + result.updated,
                    unchanged=JOB.c.unchanged + result.unchanged,
                    failed=JOB.c.failed + result.failed,
                    lease_expires_at=self._lease_until(),
                )
                await trans.commit()
            except BaseException:
                planner.refs.forget(batch.references)
                raise
        created_refs = bool(batch.references) and not job.dry_run
        if result.wrote and self.cache is not None:
            names = [PRODUCTS, SEARCH, REFS]
            if created_refs:
                names += [BRANDS, CATEGORIES]
            await self.cache.bump(*names)
        job.rows_done += batch.rows
        metrics.import_rows(batch.rows)
        job.created += result.created
        job.updated += result.updated
        job.unchanged += result.unchanged
        job.failed += result.failed
        self._report(job)
        if cancel:
            await self._finish(ImportStatus.cancelled)
            self._cleanup(Path(job.file_path))
            return True
        return False

    async def _write(
        self,
        conn: AsyncConnection,
        plans: list[Plan],
        refs: NewReferences,
        result: BatchResult,
        planner: Planner,
    ) -> None:
        if not any(p.product_row is not None for p in plans) and not refs:
            for plan in plans:
                result.add_outcomes(plan.row_outcomes.values())
            return
        try:
            async with conn.begin_nested():
                await refs.write(conn)
                skipped = await _write_plans(conn, plans)
        except (IntegrityError, DBAPIError, ConcurrentChange, PostgresError) as exc:
            # Someone else wrote the same rows meanwhile, or the database refused a value the
            # checks let through: find the product(s) concerned, one savepoint each.
            log.info("import_batch_retry_per_product", job_id=str(self.job_id), error=str(exc))
            await refs.write(conn)
            skipped = await self._one_by_one(conn, plans, result)
        if skipped:
            # Planned from a state another writer changed before this transaction took its
            # locks (a concurrent import of the same SKUs): plan those products again from
            # what is committed now, which the locks keep as it is, and write them.
            log.info("import_batch_replan", job_id=str(self.job_id), products=len(skipped))
            again = [p for p in plans if p.source.sku in skipped]
            plans = [p for p in plans if p.source.sku not in skipped]
            current = await read_current(conn, [p.source for p in again])
            now = utcnow()
            replanned = []
            for plan in again:
                outcome = planner.plan(plan.source, current, now)
                if isinstance(outcome, Plan):
                    replanned.append(outcome)
                else:
                    result.fail(plan.source, outcome)
            skipped = await self._one_by_one(conn, replanned, result)
            plans += replanned
        for plan in plans:
            if plan.source.sku in skipped:
                result.fail(
                    plan.source,
                    [
                        RowError(
                            plan.source.row,
                            formats.PRODUCT_SKU,
                            f"Product {plan.source.sku} was changed or deleted by someone "
                            "else during the import; import these rows again",
                            None,
                        )
                    ],
                )
                continue
            if not plan.row_outcomes:
                continue  # failed in `_one_by_one`
            result.add_outcomes(plan.row_outcomes.values())
            if plan.product_row is not None:
                result.wrote = True
        if refs:
            result.wrote = True

    async def _one_by_one(
        self, conn: AsyncConnection, plans: list[Plan], result: BatchResult
    ) -> set[str]:
        """Write each plan in a savepoint of its own: a product the database refuses fails
        alone. Returns the product SKUs someone else changed meanwhile (left alone)."""
        skipped: set[str] = set()
        for plan in plans:
            try:
                async with conn.begin_nested():
                    skipped |= await _upsert_plans(conn, [plan])
            except ConcurrentChange:
                skipped.add(plan.source.sku)
            except (IntegrityError, DBAPIError) as inner:
                result.fail(
                    plan.source, [RowError(plan.source.row, None, _db_message(inner), None)]
                )
                plan.row_outcomes = {}
        return skipped


def _db_message(exc: BaseException) -> str:
    if isinstance(exc, ConcurrentChange):
        return f"SKU(s) {exc} became variants of another product during the import"
    if isinstance(exc, IntegrityError):
        return "The database refused the product: a unique value (slug or SKU) is already used"
    return "The database refused a value of the product (out of range or not acceptable)"


# --------------------------------------------------------------------------- export


EXPORT_BATCH = 1000


def _visible(stmt: Any, filters: ProductFilters, owner_id: uuid.UUID | None) -> Any:
    stmt = stmt.where(PRODUCT.c.deleted_at.is_(None))
    if owner_id is not None:
        stmt = stmt.where(PRODUCT.c.owner_id == owner_id)
    if filters.category_id is not None:
        stmt = stmt.where(PRODUCT.c.category_id.in_(descendant_ids_select(filters.category_id)))
    if filters.brand_id is not None:
        stmt = stmt.where(PRODUCT.c.brand_id == filters.brand_id)
    if filters.status is not None:
        stmt = stmt.where(PRODUCT.c.status == filters.status.value)
    if filters.price_min is not None:
        stmt = stmt.where(PRODUCT.c.price_max >= filters.price_min)
    if filters.price_max is not None:
        stmt = stmt.where(PRODUCT.c.price_min <= filters.price_max)
    if filters.in_stock is True:
        stmt = stmt.where(PRODUCT.c.total_stock > 0)
    elif filters.in_stock is False:
        stmt = stmt.where(PRODUCT.c.total_stock == 0)
    return stmt


async def _export_columns(
    conn: AsyncConnection, filters: ProductFilters, owner_id: uuid.UUID | None
) -> tuple[list[str], list[str]]:
    """The attribute keys and option names of the exported products (the CSV header)."""
    if conn.dialect.name == "postgresql":
        found = []
        for expression in (
            func.jsonb_object_keys(PRODUCT.c.attributes),
            func.jsonb_array_elements(PRODUCT.c.options).op("->>")("name"),
        ):
            stmt = _visible(select(expression).distinct(), filters, owner_id)
            found.append(sorted(str(k) for (k,) in await conn.execute(stmt) if k is not None))
        return found[0], found[1]
    base = _visible(select(PRODUCT.c.id), filters, owner_id).subquery()
    keys_sql = (
        "SELECT DISTINCT j.key FROM product p, json_each(p.attributes) j "
        "WHERE p.id IN (SELECT id FROM ids)"
    )
    options_sql = (
        "SELECT DISTINCT json_extract(o.value, '$.name') FROM product p, "
        "json_each(p.options) o WHERE p.id IN (SELECT id FROM ids)"
    )
    ids_cte = select(base.c.id).cte("ids")
    keys = sorted(
        str(k)
        for (k,) in await conn.execute(
            select(text("*")).select_from(text(f"({keys_sql}) AS k")).add_cte(ids_cte)
        )
        if k is not None
    )
    options = sorted(
        str(k)
        for (k,) in await conn.execute(
            select(text("*")).select_from(text(f"({options_sql}) AS o")).add_cte(ids_cte)
        )
        if k is not None
    )
    return keys, options


async def _reference_names(conn: AsyncConnection) -> tuple[dict[Any, str], dict[Any, str]]:
    refs = await References.load(conn)
    return {v: k for k, v in refs.brands.items()}, {v: k for k, v in refs.categories.items()}


async def export_products(
    engine: AsyncEngine,
    fmt: Format,
    filters: ProductFilters,
    *,
    owner_id: uuid.UUID | None = None,
    counter: list[int] | None = None,
) -> AsyncGenerator[bytes, None]:
    """The products (not deleted) matching `filters` as CSV or JSON Lines, in chunks of
    `EXPORT_BATCH` products read by keyset pages over one consistent snapshot: memory stays
    constant whatever the catalog size. `owner_id` limits the export to one seller's products.
    `counter`, when given, receives [products, rows] as they are written."""
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
            await conn.execute(text(NO_JIT))
        brand_slugs, category_paths = await _reference_names(conn)
        attr_keys: list[str] = []
        option_names: list[str] = []
        if fmt == "csv":
            attr_keys, option_names = await _export_columns(conn, filters, owner_id)
            header = [
                *formats.FIXED_COLUMNS,
                *(formats.ATTR_PREFIX + k for k in attr_keys),
                *(formats.OPTION_PREFIX + o for o in option_names),
            ]
            yield formats.csv_line(header).encode()
        postgres = conn.dialect.name == "postgresql"
        if fmt == "csv" and postgres:
            rows = _copy_csv(
                conn,
                filters,
                owner_id,
                attr_keys,
                option_names,
                brand_slugs=brand_slugs,
                category_paths=category_paths,
                counter=counter,
            )
            # Closed here, not left to the garbage collector, when the caller stops early: the
            # statement must end before the connection goes back to the pool.
            async with contextlib.aclosing(rows):
                async for chunk in rows:
                    yield chunk
            return
        columns: list[Any] = [
            PRODUCT.c.id,
            PRODUCT.c.sku,
            PRODUCT.c.slug,
            PRODUCT.c.name,
            PRODUCT.c.description,
            PRODUCT.c.status,
            PRODUCT.c.brand_id,
            PRODUCT.c.category_id,
            PRODUCT.c.attributes,
            PRODUCT.c.currency,
        ]
        if fmt == "jsonl":
            columns.append(PRODUCT.c.options)
        if fmt == "csv":
            chunks = _CsvChunks(brand_slugs, category_paths, attr_keys)
            make: Callable[[list[Any], list[Any]], Awaitable[bytes]] = chunks.chunk
            wanted: list[str] | None = option_names
        else:
            make = functools.partial(_jsonl_chunk, brand_slugs=brand_slugs, paths=category_paths)
            wanted = None
        pages = (
            _pages_pg(conn, columns, filters, owner_id)
            if postgres
            else _pages_portable(conn, columns, filters, owner_id, wanted)
        )
        async with contextlib.aclosing(pages):
            async for page, variants in pages:
                chunk = await make(page, variants)
                if counter is not None:
                    counter[0] += len(page)
                    counter[1] += len(variants)
                yield chunk


# --------------------------------------------------------------------------- CSV by COPY

# The CSV export on PostgreSQL is one `COPY (SELECT ...) TO STDOUT (FORMAT csv)`: the database
# writes the lines and quotes the cells as `_cell` does (a cell holding a comma, a quote or a
# line break), so the command only passes bytes on. Empty text is sent as NULL, which COPY
# writes as an empty cell (an empty string would be written `""`).

# `format_money` in SQL: the currency's decimals, a price with more decimals rounded half to
# even as `Decimal.quantize` does (`round` would round half away from zero).
_COPY_PRICE = """CASE WHEN v.price = round(v.price, v.places) THEN round(v.price, v.places)::text
ELSE round((floor(v.price * power(10::numeric, v.places))
    + CASE sign(v.price * power(10::numeric, v.places)
                - floor(v.price * power(10::numeric, v.places)) - 0.5)
      WHEN 1 THEN 1 WHEN -1 THEN 0
      ELSE abs(mod(floor(v.price * power(10::numeric, v.places)), 2)) END)
    / power(10::numeric, v.places), v.places)::text END"""


def _copy_attribute(value: str) -> str:
    """`formats.format_attribute` of the jsonb `value` in SQL (arrays written without
    spaces, as orjson writes them)."""
    text_ = f"({value} #>> '{{}}')"
    plain = (
        f"{text_} <> '' AND {text_} NOT IN ('true', 'false') AND ({text_} !~ "
        f"""'^[-0-9["]' OR ({text_} ~ '^[-0-9]' AND {text_} ~ '{_NOT_NUMBER_SQL}'))"""
    )
    array = (
        "(SELECT '[' || coalesce(string_agg(e.value::text, ',' ORDER BY e.i), '') || ']' "  # noqa: S608
        f"FROM jsonb_array_elements({value}) WITH ORDINALITY AS e(value, i))"
    )
    return (
        f"CASE jsonb_typeof({value}) WHEN 'string' THEN CASE WHEN {plain} THEN {text_} "
        f"ELSE {value}::text END WHEN 'array' THEN {array} ELSE {value}::text END"
    )


# A character that cannot be in a JSON number (nor the whitespace around it): see
# `formats.format_attribute`.
_NOT_NUMBER_SQL = r"[^-0-9.eE+ \t\n\r]"


def _copy_csv_sql(products_sql: str, attr_count: int, option_count: int) -> str:
    """The export's query; parameters: $1 brand slugs and $2 category paths (jsonb objects by
    id), $3 the currencies' decimals (jsonb, the currencies with other than 2), then the
    attribute keys, then the option names. Each product's attribute cells are made once per
    product, from the attributes it has (a catalog has a hundred keys, a product a handful),
    and its variants' lines repeat them."""
    attrs = "".join(f", p.a{n}" for n in range(attr_count))
    options = "".join(
        f", NULLIF(v.option_values ->> ${4 + attr_count + n}::text, '')"
        for n in range(option_count)
    )
    if attr_count:
        cells = "".join(f", c.cells ->> ${4 + n}::text AS a{n}" for n in range(attr_count))
        cells += (
            f" FROM ({products_sql}) AS q CROSS JOIN LATERAL (SELECT jsonb_object_agg(a.key, "  # noqa: S608
            f"{_copy_attribute('a.value')}) AS cells FROM jsonb_each(q.attributes) AS a) AS c"
        )
    else:
        cells = f" FROM ({products_sql}) AS q"
    # Column expressions of this module; the keys and names are parameters. (OFFSET 0 keeps
    # the products' subquery whole: its cells are made once per product, not per variant.)
    return (
        "SELECT p.sku, p.name, p.slug, NULLIF(p.description, ''), p.status, "  # noqa: S608
        "$1::jsonb ->> p.brand_id::text, $2::jsonb ->> p.category_id::text, p.currency, "
        f"v.sku, {_COPY_PRICE}, v.stock{attrs}{options} "
        f"FROM (SELECT q.*{cells} OFFSET 0) AS p CROSS JOIN LATERAL ("
        "SELECT v.sku, v.price, v.stock, v.option_values, v.position, "
        "coalesce(($3::jsonb ->> p.currency)::int, 2) AS places FROM product_variant AS v "
        "WHERE v.product_id = p.id) AS v "
        "ORDER BY p.id, v.position, v.sku"
    )


async def _copy_csv(
    conn: AsyncConnection,
    filters: ProductFilters,
    owner_id: uuid.UUID | None,
    attr_keys: list[str],
    option_names: list[str],
    *,
    brand_slugs: dict[Any, str],
    category_paths: dict[Any, str],
    counter: list[int] | None,
) -> AsyncGenerator[bytes, None]:
    """The CSV lines after the header, in chunks of about `COPY_CHUNK` bytes. The database
    waits while the caller is slow to take them (a bounded queue), so memory stays constant."""
    columns = [
        PRODUCT.c.id,
        PRODUCT.c.sku,
        PRODUCT.c.name,
        PRODUCT.c.slug,
        PRODUCT.c.description,
        PRODUCT.c.status,
        PRODUCT.c.brand_id,
        PRODUCT.c.category_id,
        PRODUCT.c.currency,
        PRODUCT.c.attributes,
    ]
    visible = _visible(select(*columns), filters, owner_id).order_by(PRODUCT.c.id)
    # The filters' values are UUIDs, decimals and statuses the service parsed: rendered as
    # literals, as COPY takes no parameters.
    products_sql = str(
        visible.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    )
    sql = _copy_csv_sql(products_sql, len(attr_keys), len(option_names))
    places = {c: e for c in known_currencies() if (e := currency_exponent(c)) != 2}
    args = [
        orjson.dumps({str(k): v for k, v in brand_slugs.items()}).decode(),
        orjson.dumps({str(k): v for k, v in category_paths.items()}).decode(),
        orjson.dumps(places).decode(),
        *attr_keys,
        *option_names,
    ]
    if counter is not None:
        counted = select(func.count()).select_from(
            _visible(select(PRODUCT.c.id), filters, owner_id).subquery()
        )
        counter[0] = int((await conn.execute(counted)).scalar_one())
    driver = await driver_connection(conn)
    # A COPY is one statement however long the caller takes to read it.
    await conn.execute(text("SET LOCAL statement_timeout = 0"))
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=COPY_QUEUE)
    pending: list[bytes] = []
    size = 0

    async def take(data: bytes) -> None:
        nonlocal size
        pending.append(data)
        size += len(data)
        if size >= COPY_CHUNK:
            await queue.put(b"".join(pending))
            pending.clear()
            size = 0

    async def run() -> str:
        try:
            status: str = await driver.copy_from_query(sql, *args, output=take, format="csv")
            if pending:
                await queue.put(b"".join(pending))
            await queue.put(None)
            return status
        except BaseException:
            # Failed or cancelled: the lines are worthless, and waiting for room in the queue
            # could wait for a reader that is gone. The reader, if any, finds the end marker
            # and then the error (`await task`).
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(None)
            raise

    task = asyncio.create_task(run())
    try:
        while (chunk := await queue.get()) is not None:
            yield chunk
        status = await task
        if counter is not None:
            counter[1] = int(status.rsplit(" ", 1)[-1])
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


COPY_CHUNK = 256 * 1024
COPY_QUEUE = 4


# The variants of a page of products (given as arrays of ids and of their currencies'
# decimals), in the page's order, each with the index of its product in the page (from 1):
# (index, sku, price with the currency's decimals, whether that is exact, price, stock,
# option values).
_FROM_PAGE = (
    "FROM unnest($1::uuid[], $2::int[]) WITH ORDINALITY AS pg(id, places, i) "
    "JOIN product_variant v ON v.product_id = pg.id"
)
_PRICE = "round(v.price, pg.places)"
_EXPORT_VARIANTS_SQL = (
    f"SELECT pg.i, v.sku, {_PRICE}::text, v.price = {_PRICE}, v.price::text, v.stock, "
    f"v.option_values {_FROM_PAGE} ORDER BY pg.i, v.position, v.sku"
)


async def _pages_pg(
    conn: AsyncConnection,
    columns: Any,
    filters: ProductFilters,
    owner_id: uuid.UUID | None,
) -> AsyncGenerator[tuple[list[Any], list[Any]], None]:
    """Pages of `EXPORT_BATCH` products read from one server-side cursor (one sort or index
    scan for the whole export, whatever the statistics say), each with its variants read by
    one indexed query, the prices cut to their currency's decimals by the database (the JSON
    Lines export)."""
    driver = await driver_connection(conn)
    stmt = _visible(select(*columns), filters, owner_id).order_by(PRODUCT.c.id)
    result = await conn.stream(stmt.execution_options(yield_per=EXPORT_BATCH))
    partitions = result.partitions(EXPORT_BATCH)

    async def read() -> tuple[list[Any], list[Any]] | None:
        partition = await anext(partitions, None)
        if partition is None:
            return None
        page = list(partition)
        ids = [p.id for p in page]
        places = [currency_exponent(p.currency) for p in page]
        return page, await driver.fetch(_EXPORT_VARIANTS_SQL, ids, places)

    # The next page is read (a task on the same connection, one statement at a time) while
    # the caller writes this one, which hands the event loop back now and then.
    pending = asyncio.create_task(read())
    try:
        while (got := await pending) is not None:
            pending = asyncio.create_task(read())
            await asyncio.sleep(0)  # the task sends its statement before the caller works
            yield got
    finally:
        if not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending


async def _pages_portable(
    conn: AsyncConnection,
    columns: Any,
    filters: ProductFilters,
    owner_id: uuid.UUID | None,
    option_names: list[str] | None,
) -> AsyncGenerator[tuple[list[Any], list[Any]], None]:
    """`_pages_pg` with keyset pages and SQLAlchemy statements."""
    last: Any = None
    while True:
        stmt = _visible(select(*columns), filters, owner_id)
        if last is not None:
            stmt = stmt.where(PRODUCT.c.id > last)
        page = list((await conn.execute(stmt.order_by(PRODUCT.c.id).limit(EXPORT_BATCH))).all())
        if not page:
            return
        last = page[-1].id
        index = {p.id: (i, p.currency) for i, p in enumerate(page, 1)}
        variants: list[tuple[Any, ...]] = []
        for v in await conn.execute(
            select(
                VARIANT.c.product_id,
                VARIANT.c.sku,
                VARIANT.c.price,
                VARIANT.c.stock,
                VARIANT.c.option_values,
            )
            .where(VARIANT.c.product_id.in_(list(index)))
            .order_by(VARIANT.c.product_id, VARIANT.c.position, VARIANT.c.sku)
        ):
            i, currency = index[v.product_id]
            values = v.option_values or {}
            price = format_money(v.price, currency)
            if option_names is None:
                variants.append((i, v.sku, price, True, price, v.stock, values))
                continue
            main = f"{_cell(v.sku)},{price},{v.stock}"
            options = "".join(
                "," if values.get(o) is None else "," + _cell(str(values[o])) for o in option_names
            )
            variants.append((i, main, options))
        variants.sort(key=lambda row: row[0])  # stable: keeps each product's variant order
        yield page, variants


def _money(price: Any, currency: str) -> str:
    """`format_money` of a price given as a Decimal or as text."""
    return format_money(Decimal(price), currency)


_QUOTED = re.compile('[,"\r\n]')


def _cell(value: str) -> str:
    """A CSV cell (quoted when it holds a separator, a quote or a line break)."""
    if _QUOTED.search(value):
        return '"' + value.replace('"', '""') + '"'
    return value


class _CsvChunks:
    """CSV lines of products and their variants (SQLite: PostgreSQL writes them itself, see
    `_copy_csv`): the product's cells are made once per product, each variant's line is the
    product's cells around its own."""

    def __init__(
        self,
        brand_slugs: dict[Any, str],
        category_paths: dict[Any, str],
        attr_keys: list[str],
    ) -> None:
        self.brands = {k: _cell(v) for k, v in brand_slugs.items()}
        self.categories = {k: _cell(v) for k, v in category_paths.items()}
        self.attr_count = len(attr_keys)
        self.attr_at = {key: i for i, key in enumerate(attr_keys)}
        self.attr_cells: dict[tuple[type, Any], str] = {}  # attribute value -> its cell

    def _attribute(self, value: Any) -> str:
        """The cell of `formats.format_attribute(value)`, remembered for scalar values."""
        if type(value) is list:
            return _cell(formats.format_attribute(value))
        key = (type(value), value)
        cell = self.attr_cells.get(key)
        if cell is None:
            if len(self.attr_cells) > 100_000:
                self.attr_cells.clear()
            cell = self.attr_cells[key] = _cell(formats.format_attribute(value))
        return cell

    async def chunk(self, page: list[Any], variants: list[Any]) -> bytes:
        """The lines of `page`'s products; `variants` as `_pages_portable` gives them. Hands
        the event loop back every `YIELD_EVERY` products."""
        blank_attrs = [""] * self.attr_count
        attr_at = self.attr_at
        brands, categories = self.brands, self.categories
        prefixes = []
        for p in page:
            brand = brands.get(p.brand_id, "") if p.brand_id is not None else ""
            category = categories.get(p.category_id, "") if p.category_id is not None else ""
            cells = (p.sku, p.name, p.slug, p.description or "", p.status)
            head = f"{','.join(_cell(c) for c in cells)},{brand},{category},{p.currency},"
            attrs = ""
            if blank_attrs:
                attr_cells = blank_attrs.copy()
                for key, value in (p.attributes or {}).items():
                    at = attr_at.get(key)
                    if at is not None:
                        attr_cells[at] = self._attribute(value)
                attrs = "," + ",".join(attr_cells)
            prefixes.append((head, attrs))
            if len(prefixes) % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        lines: list[str] = []
        add = lines.append
        for i, main, options in variants:
            head, attrs = prefixes[i - 1]
            add(f"{head}{main}{attrs}{options}\n")
        return "".join(lines).encode()


async def _jsonl_chunk(
    page: list[Any],
    variants: list[Any],
    *,
    brand_slugs: dict[Any, str],
    paths: dict[Any, str],
) -> bytes:
    """The lines of `page`'s products; `variants` as `_pages_pg` gives them (all the option
    values)."""
    mine: list[list[dict[str, Any]]] = [[] for _ in page]
    for v in variants:
        i = v[0] - 1
        mine[i].append(
            {
                "sku": v[1],
                "price": v[2] if v[3] else _money(v[4], page[i].currency),
                "stock": v[5],
                "option_values": v[6] or {},
            }
        )
    lines: list[bytes] = []
    for p, own in zip(page, mine, strict=True):
        if len(lines) % YIELD_EVERY == YIELD_EVERY - 1:
            await asyncio.sleep(0)
        lines.append(
            orjson.dumps(
                {
                    "sku": p.sku,
                    "name": p.name,
                    "slug": p.slug,
                    "description": p.description,
                    "status": p.status,
                    "brand": brand_slugs.get(p.brand_id) if p.brand_id is not None else None,
                    "category": paths.get(p.category_id) if p.category_id is not None else None,
                    "currency": p.currency,
                    "attributes": p.attributes or {},
                    "options": p.options or [],
                    "variants": own,
                },
                option=orjson.OPT_APPEND_NEWLINE,
            )
        )
    return b"".join(lines)
