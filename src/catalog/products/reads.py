"""Product reads of the hot GET paths: one product by id or slug, and list pages.

Two implementations behind one interface, chosen by the database like the search backends:

* `CoreProductReads` (any database; the embedded profile): SQLAlchemy Core on a plain
  connection, two statements per read whatever its size, no ORM work;
* `PostgresProductReads` (production): straight on an asyncpg pool of its own, without the
  SQLAlchemy execution layer, whose per-statement cost is several times the statement's here.
  A product is one statement; a list page is one statement that returns each item's JSON,
  so Python only joins the items' bytes. The JSON is stored with the product
  (`product.item_json`, see `catalog_product_item` below): a page reads it ready-made, and
  builds (`json_build_object`) only the items whose stored copy a write has cleared; those are
  stored again in the background (`_ItemStore`).

Single products are serialized by `service.product_dict` in both, as for write responses, so
a product's bytes and ETag are the same whichever path produced them (If-Match relies on it).
List items carry the same fields and values (a test compares them with the single product).
The SQL text is assembled from constant fragments only; every value is a `$n` parameter, but
for list pages' statuses and page size (members of an enum and an integer, see `_status`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from functools import cache
from typing import Any, Protocol, TypeVar

import asyncpg
import orjson
from babel.numbers import get_currency_precision, list_currencies
from sqlalchemy import ColumnElement, Row, Select, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from catalog.auth import policy
from catalog.auth.principal import Principal
from catalog.config import Settings
from catalog.db import read_retrying
from catalog.errors import DATABASE_UNAVAILABLE, ServiceUnavailable, Unprocessable
from catalog.kit import metrics
from catalog.kit.http import dumps
from catalog.kit.pagination import decode_cursor, encode_cursor
from catalog.models import Brand, Category, Product, ProductStatus, ProductVariant
from catalog.products import service
from catalog.products.service import ProductFilters, ProductNotFound, ProductSort

T = TypeVar("T")

log = logging.getLogger(__name__)

_product = Product.__table__
_brand = Brand.__table__
_category = Category.__table__
_variant = ProductVariant.__table__


class ProductReads(Protocol):
    async def product_body(
        self,
        principal: Principal,
        *,
        product_id: uuid.UUID | None = None,
        slug: str | None = None,
    ) -> bytes:
        """The JSON of one live product by id or by slug, if `principal` may see it (else
        404, so drafts cannot be probed)."""
        ...

    async def page_body(
        self,
        principal: Principal,
        filters: ProductFilters,
        *,
        sort: ProductSort,
        limit: int,
        cursor: str | None,
    ) -> bytes:
        """The JSON of one product list page (`Page[ProductOut]`)."""
        ...

    async def close(self) -> None: ...


class _Prefixed:
    """Attribute access to the columns of a record whose names start with `prefix`."""

    __slots__ = ("_prefix", "_record")

    def __init__(self, record: Any, prefix: str = "") -> None:
        self._record = record
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        return self._record[self._prefix + name]


def _references(row: Any) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    brand = (
        {"id": row.brand_id, "name": row.brand_name, "slug": row.brand_slug}
        if row.brand_id is not None
        else None
    )
    category = (
        {"id": row.category_id, "name": row.category_name, "slug": row.category_slug}
        if row.category_id is not None
        else None
    )
    return brand, category


def _check_slug(slug: str | None) -> None:
    if slug is not None and "\x00" in slug:
        raise ProductNotFound(slug)


# --------------------------------------------------------------------------- any database

_REFERENCES = (
    _brand.c.name.label("brand_name"),
    _brand.c.slug.label("brand_slug"),
    _category.c.name.label("category_name"),
    _category.c.slug.label("category_slug"),
)


def _with_references(products: Any) -> Select[Any]:
    """`products` (the product table or a subquery of its columns) with brand and category."""
    return select(products, *_REFERENCES).select_from(
        products.outerjoin(_brand, _brand.c.id == products.c.brand_id).outerjoin(
            _category, _category.c.id == products.c.category_id
        )
    )


async def _variants_of(conn: AsyncConnection, ids: Sequence[uuid.UUID]) -> dict[Any, list[Any]]:
    """The variants of each product, in the order of the ORM relationship."""
    if not ids:
        return {}
    stmt = (
        select(_variant)
        .where(_variant.c.product_id.in_(ids))
        .order_by(_variant.c.product_id, _variant.c.position, _variant.c.id)
    )
    by_product: dict[Any, list[Any]] = defaultdict(list)
    for row in await conn.execute(stmt):
        by_product[row.product_id].append(row)
    return by_product


def _row_dict(row: Row[Any], variants: list[Any]) -> dict[str, Any]:
    brand, category = _references(row)
    return service.product_dict(row, brand=brand, category=category, variants=variants)


class CoreProductReads:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def product_body(
        self,
        principal: Principal,
        *,
        product_id: uuid.UUID | None = None,
        slug: str | None = None,
    ) -> bytes:
        _check_slug(slug)
        where: ColumnElement[bool] = (
            _product.c.id == product_id if product_id is not None else _product.c.slug == slug
        )
        stmt = _with_references(_product).where(where, _product.c.deleted_at.is_(None))

        async def read(conn: AsyncConnection) -> bytes:
            row = (await conn.execute(stmt)).first()
            if row is None or not policy.can_see(principal, row.status, row.owner_id):
                raise ProductNotFound(product_id or slug or "")
            variants = await _variants_of(conn, [row.id])
            return dumps(_row_dict(row, variants.get(row.id, [])))

        return await read_retrying(self._engine, read)

    async def page_body(
        self,
        principal: Principal,
        filters: ProductFilters,
        *,
        sort: ProductSort,
        limit: int,
        cursor: str | None,
    ) -> bytes:
        page = service.page_statement(
            filters,
            sort=sort,
            limit=limit,
            cursor=cursor,
            visibility=policy.product_visibility_clause(principal),
        ).subquery("page")
        column = page.c[_SORT_COLUMN[sort.value.removeprefix("-")]]
        order = (
            (column.desc(), page.c.id.desc())
            if sort.value.startswith("-")
            else (column.asc(), page.c.id.asc())
        )
        stmt = _with_references(page).order_by(*order)

        async def read(conn: AsyncConnection) -> bytes:
            rows = list(await conn.execute(stmt))
            next_cursor = service.next_page_cursor(rows, sort, limit)
            rows = rows[:limit]
            variants = await _variants_of(conn, [r.id for r in rows])
            items = [_row_dict(r, variants.get(r.id, [])) for r in rows]
            return dumps({"items": items, "next_cursor": next_cursor})

        return await read_retrying(self._engine, read)

    async def close(self) -> None:
        return None


_SORT_COLUMN = {"created_at": "created_at", "price": "price_min", "name": "name"}
_SORT_KIND: dict[str, type] = {"created_at": dt.datetime, "price": Decimal, "name": str}


# --------------------------------------------------------------------------- PostgreSQL

_PRODUCT_COLUMNS = [c.name for c in _product.c]
_VARIANT_COLUMNS = [c.name for c in _variant.c]

# One product with its references and one row per variant (there is always at least one).
_PRODUCT_SQL = (
    "SELECT "
    + ", ".join(f"p.{c}" for c in _PRODUCT_COLUMNS)
    + ", b.name AS brand_name, b.slug AS brand_slug,"
    " c.name AS category_name, c.slug AS category_slug, "
    + ", ".join(f"v.{c} AS v_{c}" for c in _VARIANT_COLUMNS)
    + " FROM product p"
    " LEFT JOIN brand b ON b.id = p.brand_id"
    " LEFT JOIN category c ON c.id = p.category_id"
    " LEFT JOIN product_variant v ON v.product_id = p.id"
    " WHERE p.{key} = $1 AND p.deleted_at IS NULL"
    " ORDER BY v.position, v.id"
)
_PRODUCT_BY_ID = _PRODUCT_SQL.replace("{key}", "id")
_PRODUCT_BY_SLUG = _PRODUCT_SQL.replace("{key}", "slug")


@cache
def _money_exponent_sql() -> str:
    """The number of decimals of `p.currency` (`currency_exponent` in SQL), computed once per
    product of a page: its prices and its variants' prices are all in that currency."""
    other: dict[int, list[str]] = {}
    for code in list_currencies():
        exponent = int(get_currency_precision(code))
        if exponent != 2:
            other.setdefault(exponent, []).append(code)
    cases = " ".join(
        f"WHEN p.currency IN ({', '.join(repr(c) for c in sorted(codes))}) THEN {exponent}"
        for exponent, codes in sorted(other.items())
    )
    return f"CASE {cases} ELSE 2 END"


def _money_sql(column: str) -> str:
    """`format_money` in SQL: the amount rounded to its currency's decimals, as text (prices
    are validated to fit them, so nothing is actually rounded)."""
    return f"round({column}, p.money_exponent)::text"


def _timestamp_sql(column: str) -> str:
    """A timestamp as orjson writes a UTC datetime (microseconds always, like nearly every
    stored value has)."""
    return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"


def _variant_json_sql() -> str:
    money = _money_sql("v.price")
    return (
        "json_build_object("
        "'id', v.id, 'product_id', v.product_id, 'sku', v.sku, "
        f"'price', {money}, 'stock', v.stock, "
        "'option_values', (SELECT coalesce(json_object_agg(o.key, o.value ORDER BY o.key "
        "COLLATE \"C\"), '{}') FROM jsonb_each(v.option_values) AS o), "
        "'position', v.position, 'version', v.version, "
        f"'created_at', {_timestamp_sql('v.created_at')}, "
        f"'updated_at', {_timestamp_sql('v.updated_at')})"
    )


def _item_json_sql() -> str:
    """`ProductOut` built by PostgreSQL, field for field like `service.product_dict`."""
    fields: list[tuple[str, str]] = [
        ("id", "p.id"),
        ("sku", "p.sku"),
        ("slug", "p.slug"),
        ("name", "p.name"),
        ("description", "p.description"),
        ("status", "p.status"),
        ("brand_id", "p.brand_id"),
        (
            "brand",
            "CASE WHEN b.id IS NULL THEN NULL ELSE "
            "json_build_object('id', b.id, 'name', b.name, 'slug', b.slug) END",
        ),
        ("category_id", "p.category_id"),
        (
            "category",
            "CASE WHEN c.id IS NULL THEN NULL ELSE "
            "json_build_object('id', c.id, 'name', c.name, 'slug', c.slug) END",
        ),
        ("attributes", "p.attributes"),
        ("options", "p.options"),
        ("currency", "p.currency"),
        ("price_min", _money_sql("p.price_min")),
        ("price_max", _money_sql("p.price_max")),
        ("total_stock", "p.total_stock"),
        ("in_stock", "p.total_stock > 0"),
        ("rating_avg", "p.rating_avg"),
        ("rating_count", "p.rating_count"),
        ("owner_id", "p.owner_id"),
        ("thumbnail_url", "p.thumbnail_url"),
        (
            "variants",
            f"(SELECT coalesce(json_agg({_variant_json_sql()} ORDER BY v.position, v.id), "
            "'[]') FROM product_variant v WHERE v.product_id = p.id)",
        ),
        ("version", "p.version"),
        ("created_at", _timestamp_sql("p.created_at")),
        ("updated_at", _timestamp_sql("p.updated_at")),
        (
            "deleted_at",
            f"CASE WHEN p.deleted_at IS NULL THEN NULL ELSE {_timestamp_sql('p.deleted_at')} END",
        ),
    ]
    return "json_build_object(" + ", ".join(f"'{k}', {v}" for k, v in fields) + ")::text"


ITEM_FIELDS_SQL = _item_json_sql()


def item_function_body() -> str:
    """The body of the PostgreSQL function `catalog_product_item(uuid)`: the list item of one
    product, built by `ITEM_FIELDS_SQL`.

    Migration 0009 created the function with this text, and the triggers that clear
    `product.item_json`, the stored copy of its result, on every write that changes it: a
    product's own update, a change to its variants, a brand's or category's new name or slug.
    A change here (the item's shape, or a currency's decimals in Babel's data) needs a new
    migration that replaces the function and clears `item_json` everywhere; a test compares
    the function in the database with this text."""
    return (
        "BEGIN RETURN (SELECT "
        + ITEM_FIELDS_SQL
        + " FROM (SELECT p.*, "
        + _money_exponent_sql()
        + " AS money_exponent FROM product p WHERE p.id = $1) AS p"
        " LEFT JOIN brand b ON b.id = p.brand_id"
        " LEFT JOIN category c ON c.id = p.category_id); END"
    )


class _PageQuery:
    """The SQL of one list page and its parameters ($1, $2, ... in order of use)."""

    def __init__(self) -> None:
        self.where: list[str] = ["p.deleted_at IS NULL"]
        self.params: list[Any] = []

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"


def _status(status: ProductStatus) -> str:
    """A status as an SQL literal. Statuses and the page size are written into the statement:
    as parameters, the planner could not estimate how many rows they select without their
    values, so PostgreSQL would plan the prepared statement again on each execution (custom
    plans); with them written in, a page's statement without other values is planned once."""
    return f"'{ProductStatus(status).value}'"


def _as_utc(value: dt.datetime) -> dt.datetime:
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _page_sql(
    principal: Principal,
    filters: ProductFilters,
    *,
    sort: ProductSort,
    limit: int,
    cursor: str | None,
) -> tuple[str, list[Any]]:
    """The page of `service.page_statement`, written for PostgreSQL with the items' JSON."""
    if (
        filters.price_min is not None
        and filters.price_max is not None
        and filters.price_min > filters.price_max
    ):
        raise Unprocessable(
            "price_min must not be greater than price_max", loc=["query", "price_min"]
        )
    q = _PageQuery()
    if not principal.is_admin:
        if principal.user_id is None:
            q.where.append(f"p.status = {_status(ProductStatus.active)}")
        else:
            active = _status(ProductStatus.active)
            q.where.append(f"(p.status = {active} OR p.owner_id = {q.param(principal.user_id)})")
    subtree = None
    if filters.category_id is not None:
        subtree = (
            "WITH RECURSIVE subtree(id) AS ("
            f"SELECT id FROM category WHERE id = {q.param(filters.category_id)} "
            "UNION ALL SELECT c.id FROM category c JOIN subtree s ON c.parent_id = s.id) "
            "SELECT id FROM subtree"
        )
    if filters.brand_id is not None:
        q.where.append(f"p.brand_id = {q.param(filters.brand_id)}")
    if filters.status is not None:
        q.where.append(f"p.status = {_status(filters.status)}")
    if filters.price_min is not None:
        q.where.append(f"p.price_max >= {q.param(filters.price_min)}")
    if filters.price_max is not None:
        q.where.append(f"p.price_min <= {q.param(filters.price_max)}")
    if filters.in_stock is True:
        q.where.append("p.total_stock > 0")
    elif filters.in_stock is False:
        q.where.append("p.total_stock = 0")

    key = sort.value.removeprefix("-")
    column = f"p.{_SORT_COLUMN[key]}"
    descending = sort.value.startswith("-")
    if cursor:
        value, last_id = decode_cursor(cursor, sort.value, _SORT_KIND[key])
        service.check_cursor_value(value)
        if isinstance(value, dt.datetime):
            value = _as_utc(value)
        op = "<" if descending else ">"
        v, i = q.param(value), q.param(last_id)
        q.where.append(f"({column} {op} {v} OR ({column} = {v} AND p.id {op} {i}))")
    direction = "DESC" if descending else "ASC"
    order = f"{column} {direction}, p.id {direction}"
    size = str(int(limit) + 1)  # literal, as the statuses (see `_status`)

    def ordered(*conditions: str, ids_first: bool = False) -> str:
        where = " AND ".join([*q.where, *conditions])
        if subtree is None and not ids_first:
            return f"SELECT p.* FROM product p WHERE {where} ORDER BY {order} LIMIT {size}"
        if subtree is None:
            # The page's ids from an index alone (an index-only scan whose included columns
            # reject most of the rows it passes), then those rows.
            first = f"SELECT p.id FROM product p WHERE {where} ORDER BY {order} LIMIT {size}"
            return f"SELECT p.* FROM product p WHERE p.id IN ({first})"
        # A category and its descendants: the first products of each category, read in order
        # from its range of a (category_id, sort column, id) index, then the first of those
        # (only their ids and sort keys are sorted; the rows are read for the page's products
        # alone, in no order: the caller sorts them). Walking the sort column's index instead
        # passes over every product of the other categories: a hundred rows per item for a
        # category with 1% of the catalog.
        first = (
            f"SELECT p.id FROM ({subtree}) AS cat CROSS JOIN LATERAL ("
            f"SELECT p.id, {column} FROM product p WHERE p.category_id = cat.id AND {where} "
            f"ORDER BY {order} LIMIT {size}) AS p ORDER BY {order} LIMIT {size}"
        )
        return f"SELECT p.* FROM product p WHERE p.id IN ({first})"

    rows = ordered()
    if key == "price" and not descending and filters.price_min is not None:
        # Cheapest first from `price_min` on: the products whose lowest price is at or above
        # the bound (a range of the price index) and those whose prices span it (lowest below,
        # highest at or above: multi-price products, a small partial index), each read in
        # order up to the page size, then merged. A single scan of the price index would walk
        # every cheaper product, most of them filtered out by `price_max >= price_min`.
        low = q.param(filters.price_min)
        from_low = ordered(f"p.price_min >= {low}")
        spanning = ordered(f"p.price_min < {low}", "p.price_min <> p.price_max", ids_first=True)
        rows = (
            f"SELECT p.* FROM (({from_low}) UNION ALL ({spanning})) AS p "
            f"ORDER BY {order} LIMIT {size}"
        )
    # One row: the page's items joined, whether there is a next page, the id and sort value of
    # its last item (the next cursor), and the items that were built rather than read. An item
    # is the stored one or, cleared by a write, the one built now; the function is opaque to
    # the planner: planning the inline JSON expression on every execution cost more than
    # running the whole statement on stored items. (One row instead of one per item: the
    # driver's work per row was a third of the page's cost in Python.)
    last = f"FILTER (WHERE p.n = {int(limit)}))[1]"
    sql = (
        f"SELECT string_agg(p.item, ',' ORDER BY p.n) FILTER (WHERE p.n <= {int(limit)}) AS items, "
        f"count(*) > {int(limit)} AS more, (array_agg(p.id) {last} AS last_id, "
        f"(array_agg(p.{_SORT_COLUMN[key]}) {last} AS last_value, "
        f"array_agg(p.id) FILTER (WHERE p.stale AND p.n <= {int(limit)}) AS stale "
        f"FROM (SELECT p.id, p.{_SORT_COLUMN[key]}, "
        "coalesce(p.item_json, catalog_product_item(p.id)) AS item, "
        f"p.item_json IS NULL AS stale, row_number() OVER (ORDER BY {order}) AS n "
        f"FROM ({rows}) AS p) AS p"
    )
    return sql, q.params


# Storing the items a page had to build: in a REPEATABLE READ transaction, so the store can
# never keep an item older than a committed write. Every write that changes an item updates
# the product's row (variant writes update the product's aggregates, version or timestamp; a
# brand's or category's rename updates its products' rows through the triggers), and a row
# updated since the transaction's snapshot fails the UPDATE with a serialization error. The
# brands and categories the items show are locked FOR SHARE under the same snapshot for the
# same reason: a rename committed meanwhile fails the lock; one that comes after waits, then
# clears what was stored.
_STORE_LOCKS = (
    "SELECT 1 FROM brand WHERE id IN "
    "(SELECT brand_id FROM product WHERE id = ANY($1::uuid[])) FOR SHARE",
    "SELECT 1 FROM category WHERE id IN "
    "(SELECT category_id FROM product WHERE id = ANY($1::uuid[])) FOR SHARE",
)
_STORE = (
    "UPDATE product SET item_json = catalog_product_item(id) "
    "WHERE id = ANY($1::uuid[]) AND item_json IS NULL"
)


async def store_items(
    conn: asyncpg.Connection,
    ids: Sequence[uuid.UUID],
    *,
    after_snapshot: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Store the list items of the products `ids` whose stored item is missing; returns how
    many were stored. Raises `asyncpg.SerializationError` when one of them, or a brand or
    category they show, was changed since the transaction began (nothing is stored then).
    `after_snapshot` runs once the snapshot is taken (tests change rows there)."""
    async with conn.transaction(isolation="repeatable_read"):
        if after_snapshot is not None:
            await conn.execute("SELECT 1")  # the transaction's snapshot is taken here
            await after_snapshot()
        for sql in _STORE_LOCKS:
            await conn.execute(sql, ids)
        status: str = await conn.execute(_STORE, ids)
    return int(status.rsplit(" ", 1)[-1])


class _ItemStore:
    """Stores, in the background, the items pages had to build: one task at a time per
    process, `BATCH` products per transaction, at most `MAX_PENDING` waiting (a page that
    finds more builds them itself meanwhile). A failed store is dropped: the next page that
    needs those items asks again."""

    BATCH = 200
    MAX_PENDING = 10_000

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._pending: dict[uuid.UUID, None] = {}  # insertion-ordered set
        self._task: asyncio.Task[None] | None = None

    def add(self, ids: Sequence[uuid.UUID]) -> None:
        for product_id in ids:
            if len(self._pending) >= self.MAX_PENDING:
                break
            self._pending[product_id] = None
        if self._pending and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while self._pending:
            batch = list(itertools.islice(self._pending, self.BATCH))
            for product_id in batch:
                del self._pending[product_id]
            try:
                async with self._pool.acquire() as conn:
                    await store_items(conn, batch)
            except (asyncpg.PostgresError, *_CONNECTION_ERRORS) as exc:
                # A concurrent write (serialization failure, deadlock), a timeout or a lost
                # connection: those items are built by the pages until a later store.
                log.debug("list items not stored: %s", exc)

    async def idle(self) -> None:
        """Wait for the pending items to be stored (tests)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def close(self) -> None:
        self._pending.clear()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


# Errors of a connection that died (restart, pg_terminate_backend, network): the read is
# retried once on another connection, then reported as 503.
_CONNECTION_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    # What asyncpg reports when a connection is used whose server went away mid-protocol.
    asyncpg.InternalClientError,
    ConnectionError,
    OSError,
    TimeoutError,
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name,
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def _no_session_reset(_conn: asyncpg.Connection) -> None:
    return None


class PostgresProductReads:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = self.pool = pool  # `pool`: its usage is sampled for /metrics
        self.items = _ItemStore(pool)
        # Called with each statement before it runs (tests count statements with it).
        self.statement_listeners: list[Callable[[str, Sequence[Any]], None]] = []

    @classmethod
    async def connect(cls, settings: Settings) -> PostgresProductReads:
        url = make_url(settings.database_url).set(drivername="postgresql")
        # No JIT (see `catalog.db`): a list page's statement would be compiled on every run.
        # Generic plans: the statements' shapes are fixed by their filters and their values
        # (ids, a price bound, a cursor) do not change the best plan, while planning a list
        # page anew for its values cost about as much as running it.
        server_settings = {
            "application_name": "catalog-reads",
            "timezone": "UTC",
            "jit": "off",
            "plan_cache_mode": "force_generic_plan",
        }
        if settings.db_statement_timeout_ms:
            server_settings["statement_timeout"] = str(settings.db_statement_timeout_ms)
        pool = await asyncpg.create_pool(
            url.render_as_string(hide_password=False),
            min_size=0,  # the app starts (and reports the database down) without it
            max_size=settings.db_read_pool_size,
            server_settings=server_settings,
            init=_init_connection,
            # Reads change no session state, so a returned connection needs no reset statement
            # (the default sends one per release); asyncpg still ends any open transaction.
            reset=_no_session_reset,
            # Connections are reused for hours; recycle them like the main pool does.
            max_inactive_connection_lifetime=1800,
        )
        return cls(pool)

    async def _run(
        self, sql: str, params: Sequence[Any], read: Callable[[asyncpg.Connection], Awaitable[T]]
    ) -> T:
        for listener in self.statement_listeners:
            listener(sql, params)
        for attempt in (1, 2):
            try:
                async with self._pool.acquire() as conn, metrics.read_query(sql):
                    try:
                        return await read(conn)
                    except _CONNECTION_ERRORS:
                        conn.terminate()  # never handed out again
                        raise
            except _CONNECTION_ERRORS as exc:
                if attempt == 2:
                    raise ServiceUnavailable(
                        DATABASE_UNAVAILABLE, headers={"Retry-After": "5"}
                    ) from exc
                # The server restarted or ended the sessions: the pool's other idle
                # connections are most likely dead too, so the retry opens a fresh one.
                await self._pool.expire_connections()
        raise AssertionError("unreachable")

    async def product_body(
        self,
        principal: Principal,
        *,
        product_id: uuid.UUID | None = None,
        slug: str | None = None,
    ) -> bytes:
        _check_slug(slug)
        sql, key = (
            (_PRODUCT_BY_ID, product_id) if product_id is not None else (_PRODUCT_BY_SLUG, slug)
        )
        rows = await self._run(sql, [key], lambda conn: conn.fetch(sql, key))
        if not rows:
            raise ProductNotFound(product_id or slug or "")
        product = _Prefixed(rows[0])
        if not policy.can_see(principal, product.status, product.owner_id):
            raise ProductNotFound(product_id or slug or "")
        brand, category = _references(product)
        variants = [_Prefixed(r, "v_") for r in rows if r["v_id"] is not None]
        return dumps(
            service.product_dict(product, brand=brand, category=category, variants=variants)
        )

    async def page_body(
        self,
        principal: Principal,
        filters: ProductFilters,
        *,
        sort: ProductSort,
        limit: int,
        cursor: str | None,
    ) -> bytes:
        sql, params = _page_sql(principal, filters, sort=sort, limit=limit, cursor=cursor)
        row = await self._run(sql, params, lambda conn: conn.fetchrow(sql, *params))
        assert row is not None  # an aggregate: always one row
        next_cursor = None
        if row["more"]:
            next_cursor = encode_cursor(sort.value, row["last_value"], row["last_id"])
        if row["stale"]:
            self.items.add(row["stale"])
        items = row["items"] or ""
        return (
            b'{"items":[' + items.encode() + b'],"next_cursor":' + orjson.dumps(next_cursor) + b"}"
        )

    async def close(self) -> None:
        await self.items.close()
        await self._pool.close()


async def product_reads_for(settings: Settings, engine: AsyncEngine) -> ProductReads:
    if engine.dialect.name == "postgresql":
        return await PostgresProductReads.connect(settings)
    return CoreProductReads(engine)
