"""Search backends: one query model, two engines.

`SearchBackend` holds everything shared (filters, facets, sorting, paging, the product summary
shape) as SQLAlchemy Core; each engine supplies only its full-text pieces:

* `PostgresSearchBackend`: the weighted `search_vector` kept by triggers, `to_tsquery('english')`
  (stemming), `ts_rank`, weight-restricted queries for per-field tiers, `pg_trgm` for typo
  candidates, and the names' own `name_vector` for autocomplete;
* `SqliteSearchBackend`: FTS5 with the porter stemmer, `bm25` with column weights, column filters
  for tiers, and the unstemmed `product_terms_vocab` for typo candidates.

Ranking, in order: number of query terms matched (all-terms first; partial matches are only used
when nothing matches every term), the query as a phrase in the name, field tier per term
(name 3 > brand/category 2 > description/attributes 1), any phrase match, popularity, text rank.
Popularity comes before the engines' text scores: `bm25` is length-normalised and `ts_rank` is
not, so letting them decide ties would make the two engines order the same catalog differently.

Every value a search sends (words, filter values, the page) is a named bound parameter: the text
of a statement depends only on the search's shape, and each shape's statement is built once
(`SearchBackend._statement`).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from functools import partial
from typing import Any, Protocol

from rapidfuzz.distance import DamerauLevenshtein
from sqlalchemy import (
    Boolean,
    Float,
    Integer,
    Select,
    String,
    Uuid,
    and_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from catalog.categories.service import descendant_ids_select
from catalog.models import Brand, Category, Product, ProductStatus, SearchQuery
from catalog.search.query import ParsedQuery, Term

# Search statements are built on the tables, not on the mapped classes: they select columns,
# never entities, and a statement of mapped classes is compiled and executed through the ORM
# (its compile state and result set-up), which made a new statement shape about a third slower
# to compile and every execution slower.
_product = Product.__table__
_brand = Brand.__table__
_category = Category.__table__
_search_query = SearchQuery.__table__

PRICE_BUCKETS: list[tuple[str, Decimal, Decimal | None]] = [
    ("0-25", Decimal(0), Decimal(25)),
    ("25-50", Decimal(25), Decimal(50)),
    ("50-100", Decimal(50), Decimal(100)),
    ("100-250", Decimal(100), Decimal(250)),
    ("250-500", Decimal(250), Decimal(500)),
    ("500-1000", Decimal(500), Decimal(1000)),
    ("1000+", Decimal(1000), None),
]


class SearchSort(StrEnum):
    relevance = "relevance"
    price_asc = "price_asc"
    price_desc = "price_desc"
    rating = "rating"
    popularity = "popularity"
    newest = "newest"


@dataclass(frozen=True)
class SearchFilters:
    category_id: uuid.UUID | None = None
    brand_ids: tuple[uuid.UUID, ...] = ()
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    in_stock: bool | None = None
    rating_min: float | None = None
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (name, accepted values)


@dataclass
class SearchRequest:
    query: ParsedQuery
    filters: SearchFilters
    sort: SearchSort
    offset: int
    limit: int
    facet_attributes: tuple[str, ...] = ()
    # The filter's category and its descendants, when the caller already knows them.
    category_ids: list[uuid.UUID] | None = None


@dataclass
class SearchResult:
    rows: list[dict[str, Any]]
    total: int
    facets: dict[str, Any]
    partial: bool = False  # True when not every term could be matched


@dataclass
class Suggestion:
    text: str
    kind: str  # product | brand | category | query
    id: uuid.UUID | None = None
    score: float = 0.0


# (expression, descending): one key of a result order.
SortKey = tuple[Any, bool]
# (facet, value, count, name, slug): one counted value of a facet.
FacetRow = tuple[str, str, int, str | None, str | None]


class FacetCache(Protocol):
    """Where the totals and facet counts of searches without words are kept between requests,
    invalidated by every write that can change them."""

    async def lookup(self, keys: list[str]) -> list[tuple[list[FacetRow] | None, str | None]]:
        """For each key: (the rows kept under it, or None; the key to store them under once
        counted, or None when they cannot be stored). One round trip for all of them."""
        ...

    async def store(self, stored_under: str, rows: list[FacetRow]) -> None: ...


def _own_facet_key(facet: str, filters: SearchFilters, category_ids: list[uuid.UUID] | None) -> str:
    """What the counts of `facet` (or the total) depend on in a search without words: every
    filter but the facet's own (the category subtree as resolved, so moving a category changes
    the key)."""
    material: dict[str, Any] = {
        "facet": facet,
        "in_stock": filters.in_stock,
        "rating_min": filters.rating_min,
    }
    if facet != "category" and filters.category_id is not None:
        material["categories"] = sorted(str(c) for c in category_ids or [filters.category_id])
    if facet != "brand":
        material["brands"] = sorted(str(b) for b in filters.brand_ids)
    if facet != "price":
        material["price"] = [str(filters.price_min), str(filters.price_max)]
    else:
        material["buckets"] = [str(low) for _key, low, _high in PRICE_BUCKETS]  # their numbers
    material["attributes"] = sorted(
        [name, sorted(values)] for name, values in filters.attributes if f"attr:{name}" != facet
    )
    digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
    return f"{facet}:{digest[:32]}"


def _summary_columns(product: Any, brand: Any, category: Any) -> list[Any]:
    """The columns of a product summary (named as `SUMMARY_KEYS`) from these tables."""
    return [
        product.c.id,
        product.c.sku,
        product.c.slug,
        product.c.name,
        product.c.status,
        product.c.currency,
        product.c.price_min,
        product.c.price_max,
        product.c.total_stock,
        product.c.rating_avg,
        product.c.rating_count,
        product.c.popularity,
        product.c.attributes,
        product.c.created_at,
        product.c.thumbnail_url,
        product.c.brand_id,
        brand.c.name.label("brand_name"),
        brand.c.slug.label("brand_slug"),
        product.c.category_id,
        category.c.name.label("category_name"),
        category.c.slug.label("category_slug"),
    ]


SUMMARY_COLUMNS = tuple(_summary_columns(_product, _brand, _category))
SUMMARY_KEYS = tuple(str(column.name) for column in SUMMARY_COLUMNS)

# A search statement answers its page's summaries with the page's rows (no second statement
# for them): every row of its parts has the summary columns, NULL but on the page's rows, which
# join the product by its id. The page's part comes first: its columns' types are those of the
# whole UNION (untyped NULLs take them in PostgreSQL, and SQLAlchemy reads them from the first
# part), so the other parts' NULLs need no casts.
_NO_SUMMARY = [null().label(f"s_{key}") for key in SUMMARY_KEYS]
_PAGE_PRODUCT = _product.alias("page_product")
_PAGE_BRAND = _brand.alias("page_brand")
_PAGE_CATEGORY = _category.alias("page_category")
_PAGE_SUMMARY = [
    column.label(f"s_{key}")
    for column, key in zip(
        _summary_columns(_PAGE_PRODUCT, _PAGE_BRAND, _PAGE_CATEGORY), SUMMARY_KEYS, strict=True
    )
]

# The ids of a category's subtree (`category_id`): a statement of one shape, built once.
_SUBTREE = descendant_ids_select(bindparam("category_id", type_=Uuid))


# The price facet counts each product in a bucket of PRICE_BUCKETS, numbered by position: the
# number of buckets after the first whose lowest price the product's reaches (below the
# second's, the first). Built once: it never changes.
_PRICE_BUCKET: ColumnElement[int] = case(
    *[
        (_product.c.price_min < low, literal(i, Integer))
        for i, (_key, low, _high) in enumerate(PRICE_BUCKETS[1:])
    ],
    else_=literal(len(PRICE_BUCKETS) - 1, Integer),
)


# The lowest prices of the buckets after the first, as a PostgreSQL array (constants).
_PRICE_LOWS: ColumnElement[Any] = literal_column(
    "'{" + ",".join(str(low) for _key, low, _high in PRICE_BUCKETS[1:]) + "}'::numeric[]"
)

# The visible products: active and not deleted.
_LIVE = (_product.c.status == ProductStatus.active.value, _product.c.deleted_at.is_(None))


@dataclass(frozen=True)
class _FilterShape:
    """Which filters a search's statement has; their values are bound parameters.

    A filter can be switched: in the statement whether the search has it or not, switched off
    by a bound flag when it does not (`:off OR condition`). PostgreSQL plans every search
    statement for its values (custom plans) and folds a switched-off filter away, so searches
    with different filters share a statement: there are too many combinations of filters,
    sorts and facets to build and compile one statement for each. Stock, rating and the price
    bounds are always switched; with `switched`, so are the brand, category and price filters
    (searches with words). Browsing keeps those three in its shape: a facet whose filter is set
    is counted apart, by its own scan."""

    brands: bool
    category: bool
    price: bool
    attributes: tuple[str, ...]  # the names of the attribute filters, in order
    switched: bool = False

    @classmethod
    def of(cls, filters: SearchFilters, *, switched: bool = False) -> _FilterShape:
        names = tuple(name for name, _values in filters.attributes)
        if switched:
            return cls(False, False, False, names, switched=True)
        return cls(
            brands=bool(filters.brand_ids),
            category=filters.category_id is not None,
            price=filters.price_min is not None or filters.price_max is not None,
            attributes=names,
        )


def _filter_values(filters: SearchFilters, category_ids: list[uuid.UUID] | None) -> dict[str, Any]:
    """The bound values of the filters (and the flags of the switched ones)."""
    values: dict[str, Any] = {
        "stock_any": filters.in_stock is None,
        "in_stock": bool(filters.in_stock),
        "rating_any": filters.rating_min is None,
        "rating_min": filters.rating_min if filters.rating_min is not None else 0.0,
        "brands_any": not filters.brand_ids,
        "brand_ids": list(filters.brand_ids),
        "categories_any": filters.category_id is None,
        "category_ids": [],
        "price_min_any": filters.price_min is None,
        "price_min": filters.price_min if filters.price_min is not None else Decimal(0),
        "price_max_any": filters.price_max is None,
        "price_max": filters.price_max if filters.price_max is not None else Decimal(0),
    }
    if filters.category_id is not None:
        # Literal ids (resolved beforehand) give the planner real selectivity estimates.
        values["category_ids"] = category_ids or [filters.category_id]
    for i, (_name, accepted) in enumerate(filters.attributes):
        values[f"attr{i}"] = list(accepted)
    return values


@dataclass(frozen=True)
class _Shape:
    """Everything that decides the text of a search statement."""

    # browse (no words) | nothing (only stop words) | all (every term) | any (some terms: the
    # partial matches) | exists (whether anything has every term)
    mode: str
    terms: int
    filters: _FilterShape
    sort: SearchSort = SearchSort.popularity
    facet_attributes: tuple[str, ...] = ()
    counted: tuple[str, ...] = ()  # browse: the counts made (the others come from the cache)


class SearchBackend:
    """Shared query building; subclasses provide the full-text expressions.

    Every value of a search (words, filter values, page) is a named bound parameter, so a
    statement depends only on the search's shape (`_Shape`): which filters, how many terms,
    which sort and facets. Each shape's statement is built once and kept: building the search
    statement took 2-3 ms of Python per request (half of what PostgreSQL needs to run it for a
    typical query, and garbage for the collector), while a statement object used again has its
    SQLAlchemy cache key and compiled form at hand at once."""

    name = "base"
    STATEMENTS_KEPT = 512
    # Whether the engine counts every facet of a full-text search in one pass over the matches
    # (GROUPING SETS), rather than one pass per facet.
    GROUPING_SETS = False

    def __init__(self) -> None:
        self._statements: OrderedDict[Any, Any] = OrderedDict()

    def _statement(self, shape: Any, build: Callable[[], Any]) -> Any:
        """The statement of `shape`, built by `build` the first time (least recently used
        shapes are forgotten beyond `STATEMENTS_KEPT`)."""
        stmt = self._statements.get(shape)
        if stmt is None:
            stmt = self._statements[shape] = build()
            if len(self._statements) > self.STATEMENTS_KEPT:
                self._statements.popitem(last=False)
        else:
            self._statements.move_to_end(shape)
        return stmt

    # ------------------------------------------------------------------ engine hooks
    def _matches(self, name: str) -> ColumnElement[bool]:
        """The products matching the engine's query text bound under `name` (made by
        `_match_text` or `_word_text`)."""
        raise NotImplementedError

    def _match_text(self, terms: list[Term], *, require_all: bool) -> str:
        raise NotImplementedError

    def _word_text(self, word: str) -> str:
        """The query text of a single word (matched as the index has it: stemmed on
        PostgreSQL)."""
        raise NotImplementedError

    def _relevance_order(self, terms: int, *, partial: bool) -> list[SortKey]:
        """(expression, descending) pairs ranking full-text matches of `terms` terms, whose
        texts `_relevance_values` binds; `partial`: the matches have some of the terms, not
        necessarily all (otherwise each has every term, which the order need not check again
        row by row)."""
        raise NotImplementedError

    def _relevance_values(self, query: ParsedQuery, *, partial: bool) -> dict[str, Any]:
        raise NotImplementedError

    async def matching_words(self, session: AsyncSession, words: list[str]) -> set[str]:
        """Which of `words` some visible product has, in one statement."""
        if not words:
            return set()

        def build() -> Any:
            checks = [
                exists(
                    select(literal(1)).select_from(_product).where(*_LIVE, self._matches(f"w{i}"))
                )
                for i in range(len(words))
            ]
            return select(*[c.label(f"w{i}") for i, c in enumerate(checks)])

        stmt = self._statement(("words", len(words)), build)
        values = {f"w{i}": self._word_text(word) for i, word in enumerate(words)}
        row = (await session.execute(stmt, values)).one()
        return {word for word, found in zip(words, row, strict=True) if found}

    async def category_subtree(
        self, session: AsyncSession, category_id: uuid.UUID
    ) -> list[uuid.UUID]:
        """The ids of a category and of its descendants (none for an unknown id)."""
        return list((await session.execute(_SUBTREE, {"category_id": category_id})).scalars())

    async def term_matches(self, session: AsyncSession, word: str) -> bool:
        return word in await self.matching_words(session, [word])

    @staticmethod
    def may_correct(word: str) -> bool:
        """Whether `word` is worth a typo correction when nothing has it."""
        return len(word) >= 3 and not word.isdigit()

    async def _correction_candidates(self, session: AsyncSession, word: str) -> list[str]:
        raise NotImplementedError

    async def _product_suggestions(
        self, session: AsyncSession, words: list[str], limit: int
    ) -> list[Suggestion]:
        raise NotImplementedError

    # ------------------------------------------------------------------ filters
    def _price_bucket(self) -> ColumnElement[int]:
        """The number of a product's price bucket (see `_PRICE_BUCKET`)."""
        return _PRICE_BUCKET

    @staticmethod
    def _attribute_value(name: str) -> ColumnElement[str]:
        return cast(_product.c.attributes[name].as_string(), String)

    def _filter_clauses(self, shape: _FilterShape) -> dict[str, ColumnElement[bool]]:
        """Each facet's own filter under its facet name, plain filters under '_'; the values
        and flags are the parameters `_filter_values` binds."""

        def off(flag: str, condition: ColumnElement[bool]) -> ColumnElement[bool]:
            return or_(bindparam(flag, type_=Boolean), condition)

        in_stock = (_product.c.total_stock > 0) == bindparam("in_stock", type_=Boolean)
        plain = [
            *_LIVE,
            off("stock_any", in_stock),
            off("rating_any", _product.c.rating_avg >= bindparam("rating_min")),
        ]
        out: dict[str, ColumnElement[bool]] = {"_": and_(*plain)}
        if shape.switched or shape.brands:
            brands = _product.c.brand_id.in_(bindparam("brand_ids", expanding=True))
            out["brand"] = off("brands_any", brands) if shape.switched else brands
        if shape.switched or shape.category:
            categories = _product.c.category_id.in_(bindparam("category_ids", expanding=True))
            out["category"] = off("categories_any", categories) if shape.switched else categories
        if shape.switched or shape.price:
            out["price"] = and_(
                off("price_min_any", _product.c.price_max >= bindparam("price_min")),
                off("price_max_any", _product.c.price_min <= bindparam("price_max")),
            )
        for i, name in enumerate(shape.attributes):
            accepted: BindParameter[Any] = bindparam(f"attr{i}", expanding=True)
            out[f"attr:{name}"] = self._attribute_value(name).in_(accepted)
        return out

    # ------------------------------------------------------------------ search
    def _sort_keys(self, shape: _Shape) -> list[SortKey]:
        """(expression, descending) pairs of the order; the last one (the id) breaks ties."""
        sort = shape.sort
        if sort == SearchSort.relevance and shape.terms:
            partial = shape.mode == "any"
            return [*self._relevance_order(shape.terms, partial=partial), (_product.c.id, False)]
        if sort == SearchSort.price_asc:
            return [(_product.c.price_min, False), (_product.c.id, False)]
        if sort == SearchSort.price_desc:
            return [(_product.c.price_max, True), (_product.c.id, False)]
        if sort == SearchSort.rating:
            return [
                (_product.c.rating_avg, True),
                (_product.c.rating_count, True),
                (_product.c.id, False),
            ]
        if sort == SearchSort.newest:
            return [(_product.c.created_at, True), (_product.c.id, True)]
        return [(_product.c.popularity, True), (_product.c.id, False)]  # popularity; browsing

    async def search(
        self,
        session: AsyncSession,
        request: SearchRequest,
        facet_cache: FacetCache | None = None,
    ) -> SearchResult:
        """The page, total and facets of a search. `facet_cache` keeps the total and the facet
        counts of searches without words: they depend on the filters only, not on the sort or
        the page, so paging through a category or sorting it again only looks for the page's
        products. A facet whose own filter is set counts over the other filters only (the
        category facet of a category page counts every category), which even more browsing
        requests share."""
        filters, query = request.filters, request.query
        category_ids = request.category_ids
        if filters.category_id is not None and category_ids is None:
            category_ids = await self.category_subtree(session, filters.category_id)
        # Searches with words have every filter switched (see `_FilterShape`); browsing keeps
        # its brand, category and price filters in its shape: they decide how it counts.
        switched = bool(query.text)
        values = _filter_values(filters, category_ids)
        values["offset"], values["limit"] = request.offset, request.limit
        facet_attributes = tuple(dict.fromkeys(request.facet_attributes))
        filter_shape = _FilterShape.of(filters, switched=switched)
        sort = request.sort
        if sort == SearchSort.relevance and query.empty:
            sort = SearchSort.popularity  # nothing to be relevant to
        shape = _Shape("browse", 0, filter_shape, sort, facet_attributes)
        found: list[FacetRow] = []
        pending: dict[str, str] = {}  # facet -> the cache key to store its counts under
        then: list[_Shape] = []  # the statements after `shape`'s
        if query.text and query.empty:
            shape = replace(shape, mode="nothing")  # only words like "the": nothing to look for
        elif not query.empty:
            shape = replace(shape, mode="all", terms=len(query.terms))
            values["q_match"] = self._match_text(query.terms, require_all=True)
            if len(query.terms) > 1 and not await self._exists(session, shape, values):
                # Nothing matches every term: fall back to the best partial matches.
                shape = replace(shape, mode="any")
                values["q_match"] = self._match_text(query.terms, require_all=False)
            if shape.sort == SearchSort.relevance:
                values.update(self._relevance_values(query, partial=shape.mode == "any"))
        else:
            counted: list[str] = []
            wanted = [*self._facet_names(facet_attributes), "total"]
            if facet_cache is None:
                counted = wanted
            else:
                keys = [_own_facet_key(facet, filters, category_ids) for facet in wanted]
                looked_up = await facet_cache.lookup(keys)
                for facet, (cached, stored_under) in zip(wanted, looked_up, strict=True):
                    if cached is not None:
                        found += cached
                        continue
                    if stored_under is not None:
                        pending[facet] = stored_under
                    counted.append(facet)
            # The page and the counts not found in the cache, as two statements: each depends
            # on less (the page on the sort, the counts on the facets) and is shared more.
            shape = replace(shape, facet_attributes=(), counted=())
            if counted:
                counts_shape = _Shape(
                    "counts",
                    0,
                    shape.filters,
                    facet_attributes=facet_attributes,
                    counted=tuple(counted),
                )
                then.append(counts_shape)
        rows_read: list[FacetRow] = []
        page: dict[int, dict[str, Any]] = {}  # position -> summary
        for each in [shape, *then]:
            stmt = self._statement(each, partial(self._search_statement, each))
            for r in (await session.execute(stmt, values)).all():
                if r[0] == "page":
                    page[int(r[2])] = dict(zip(SUMMARY_KEYS, r[5:], strict=True))
                else:
                    rows_read.append((r[0], r[1], r[2], r[3], r[4]))
        if facet_cache is not None:
            for facet, stored_under in pending.items():
                await facet_cache.store(stored_under, [r for r in rows_read if r[0] == facet])
        counts: dict[str, dict[str, int]] = {
            name: {} for name in ["brand", "category", "price", "total"]
        }
        counts.update({f"attr:{a}": {} for a in facet_attributes})
        names: dict[str, tuple[str, str]] = {}
        for facet, value, n, name, slug in [*rows_read, *found]:
            counts[facet][str(value)] = int(n)
            if name is not None:
                names[f"{facet}:{value}"] = (name, slug or "")
        total = counts["total"].get("all", 0)
        rows = [page[position] for position in sorted(page)]
        facets = self._facet_output(counts, names, facet_attributes)
        return SearchResult(rows=rows, total=total, facets=facets, partial=shape.mode == "any")

    def _search_statement(self, shape: _Shape) -> Any:
        """A search's statement: its facet counts, total and page's ids; browsing, its page's
        ids (`browse`) or the counts not found in the cache (`counts`)."""
        clauses = self._filter_clauses(shape.filters)
        if shape.mode in ("browse", "counts"):
            counted, page_part = self._browse_parts(shape, clauses)
            if shape.mode == "browse":
                return page_part
            return union_all(*(counted[facet] for facet in shape.counted))
        match = false() if shape.mode == "nothing" else self._matches("q_match")
        return union_all(*self._match_parts(shape, clauses, match))

    async def _exists(self, session: AsyncSession, shape: _Shape, values: dict[str, Any]) -> bool:
        """Whether some product passing the filters matches the query text `q_match`."""
        probe = _Shape("exists", shape.terms, shape.filters)

        def build() -> Any:
            clauses = self._filter_clauses(shape.filters)
            return (
                select(literal(1))
                .select_from(_product)
                .where(*clauses.values(), self._matches("q_match"))
                .limit(1)
            )

        stmt = self._statement(probe, build)
        return (await session.execute(stmt, values)).first() is not None

    @staticmethod
    def _facet_names(facet_attributes: tuple[str, ...]) -> list[str]:
        return ["brand", "category", "price", *(f"attr:{a}" for a in facet_attributes)]

    def _facet_columns(self, facet_attributes: tuple[str, ...]) -> dict[str, Any]:
        """The value each facet counts, by facet name."""
        columns: dict[str, Any] = {
            "brand": _product.c.brand_id,
            "category": _product.c.category_id,
            "price": self._price_bucket(),
        }
        for attr in facet_attributes:
            columns[f"attr:{attr}"] = self._attribute_value(attr)
        return columns

    def _match_parts(
        self,
        shape: _Shape,
        clauses: dict[str, ColumnElement[bool]],
        match: ColumnElement[bool],
    ) -> list[Any]:
        """Facet counts, the total and the page's ids of a full-text search, from one pass
        over the matching products: a CTE holding each match's facet values, whether it passes
        every filter but each facet's own, whether it passes them all, and the sort keys; each
        facet counts the rows passing every filter but its own, and the page is the first rows
        passing them all. (One boolean per count rather than one flag per filter: the planner
        knows nothing of a CTE's columns, and estimates a conjunction of flag tests to leave
        almost no rows, then sorts thousands of rows to group them instead of hashing.)"""
        facet_columns = self._facet_columns(shape.facet_attributes)
        keys = self._sort_keys(shape)
        filters = {name: clause for name, clause in clauses.items() if name != "_"}

        def passing(facet: str) -> ColumnElement[bool]:
            return and_(true(), *[clause for name, clause in filters.items() if name != facet])

        columns: list[Any] = [_product.c.id.label("id"), passing("").label("passes")]
        for i, (facet, column) in enumerate(facet_columns.items()):
            columns += [column.label(f"v{i}"), passing(facet).label(f"o{i}")]
        columns += [expression.label(f"k{i}") for i, (expression, _desc) in enumerate(keys)]
        base = select(*columns).select_from(_product).where(clauses["_"], match).cte("search_base")
        parts: list[Any]
        if self.GROUPING_SETS:
            parts = _grouped_counts(base, list(facet_columns))
        else:
            parts = [
                _counts(facet, base.c[f"v{i}"], base.c[f"o{i}"], _NAMED.get(facet), summary=True)
                for i, facet in enumerate(facet_columns)
            ]
            parts.append(_total(base, base.c.passes, summary=True))
        ordered = [(base.c[f"k{i}"], desc) for i, (_e, desc) in enumerate(keys)]
        return [_page(base.c.id, ordered, base.c.passes, base), *parts]

    def _browse_parts(
        self, shape: _Shape, clauses: dict[str, ColumnElement[bool]]
    ) -> tuple[dict[str, Any], Any]:
        """The counts (each facet's and the total, by name) and the page's ids of a search
        without words, as separate parts, so that counts found in a cache can be left out.
        Without a match to scan once, a facet whose own filter is set counts under the other
        filters with its own subquery (one that can use the indexes of those filters); the
        other facets and the total share the set passing every filter."""
        facet_columns = self._facet_columns(shape.facet_attributes)
        everything = list(clauses.values())
        counted: dict[str, Any] = {}
        shared: dict[str, Any] = {}
        for facet, column in facet_columns.items():
            if facet in clauses:
                where = [clause for name, clause in clauses.items() if name != facet]
                values = select(column.label("v")).select_from(_product).where(*where).subquery()
                counted[facet] = _counts(facet, values.c.v, true(), _NAMED.get(facet))
            else:
                shared[facet] = column
        labels = {facet: f"v{i}" for i, facet in enumerate(shared)}
        full = (
            select(literal(1).label("one"), *[c.label(labels[f]) for f, c in shared.items()])
            .select_from(_product)
            .where(*everything)
            .cte("search_full")
        )
        for facet in shared:
            counted[facet] = _counts(facet, full.c[labels[facet]], true(), _NAMED.get(facet))
        counted["total"] = _total(full, true())
        keys = self._sort_keys(shape)
        page_keys = (
            select(_product.c.id.label("id"), *[e.label(f"k{i}") for i, (e, _d) in enumerate(keys)])
            .select_from(_product)
            .where(*everything)
        )
        if shape.filters.category or shape.filters.brands:
            # Find the category's or brand's products first, then order them (OFFSET 0 keeps
            # the planner from merging the two): walking the whole catalogue in the sort's
            # order until twenty of them turn up is quick when they are everywhere in that
            # order but reads most of the catalogue when they are not (expensive furniture in
            # price order: 37,000 products passed over, 50 ms, against 5 ms).
            page_keys = page_keys.offset(0)
        ordered_ids = page_keys.subquery("browse_page_keys")
        ordered = [(ordered_ids.c[f"k{i}"], desc) for i, (_e, desc) in enumerate(keys)]
        return counted, _page(ordered_ids.c.id, ordered, true(), ordered_ids)

    def _facet_output(
        self,
        counts: dict[str, dict[str, int]],
        names: dict[str, tuple[str, str]],
        attributes: tuple[str, ...],
    ) -> dict[str, Any]:
        def named(facet: str) -> list[dict[str, Any]]:
            out = []
            for value, n in counts[facet].items():
                found = names.get(f"{facet}:{value}")
                if found is not None:
                    out.append(
                        {"id": _as_uuid(value), "name": found[0], "slug": found[1], "count": n}
                    )
            return sorted(out, key=lambda x: (-x["count"], x["name"]))

        price = [
            {
                "key": key,
                "min": str(low),
                "max": str(high) if high is not None else None,
                "count": counts["price"][str(i)],
            }
            for i, (key, low, high) in enumerate(PRICE_BUCKETS)
            if counts["price"].get(str(i), 0)
        ]
        return {
            "brands": named("brand"),
            "categories": named("category"),
            "price": price,
            "attributes": {
                attr: sorted(
                    ({"value": value, "count": n} for value, n in counts[f"attr:{attr}"].items()),
                    key=lambda x: (-int(x["count"]), str(x["value"])),
                )
                for attr in attributes
            },
        }

    # ------------------------------------------------------------------ typo tolerance
    async def correct(
        self,
        session: AsyncSession,
        word: str,
        *,
        vocabulary_only: bool = False,
        unmatched: bool = False,
    ) -> str | None:
        """The closest indexed word to a word that matches nothing, or None. `unmatched`: the
        caller already knows that no visible product has the word."""
        if not self.may_correct(word):
            return None
        if not vocabulary_only and not unmatched and await self.term_matches(session, word):
            return None
        candidates = await self._correction_candidates(session, word)
        allowed = 1 if len(word) <= 5 else 2
        close: list[tuple[int, float, str]] = []
        for candidate in set(candidates):
            if candidate == word:
                if vocabulary_only:
                    return None
                continue  # a known word, but no visible product has it
            distance = DamerauLevenshtein.distance(word, candidate)
            if distance <= allowed:
                score = DamerauLevenshtein.normalized_similarity(word, candidate)
                close.append((distance, -score, candidate))
        # The vocabulary also holds words of draft, archived and deleted products (and, on
        # PostgreSQL, words no product has any more): only suggest a word that finds something.
        best = [candidate for _distance, _score, candidate in sorted(close)[:5]]
        found = await self.matching_words(session, best)
        return next((candidate for candidate in best if candidate in found), None)

    # ------------------------------------------------------------------ suggestions
    async def suggest(self, session: AsyncSession, q: str, limit: int) -> list[Suggestion]:
        from catalog.search.query import STOPWORDS, tokenize

        words = tokenize(q)[:6]
        if not words:
            return []
        prefix = words[-1]
        # Whole words that are stop words cannot be matched on PostgreSQL: ignore them on both.
        head = [w for w in words[:-1] if w not in STOPWORDS]
        out = await self._reference_suggestions(session, words, 3)
        products = await self._product_suggestions(session, [*head, prefix], limit)
        if not products and len(prefix) >= 3:
            corrected = await self._correct_prefix(session, prefix)
            if corrected and corrected != prefix:
                products = await self._product_suggestions(session, [*head, corrected], limit)
        out += products
        seen: set[str] = set()
        unique: list[Suggestion] = []
        for s in out:
            key = s.text.lower()
            if key not in seen:
                seen.add(key)
                unique.append(s)
        return unique[:limit]

    async def _correct_prefix(self, session: AsyncSession, prefix: str) -> str | None:
        candidates = await self._correction_candidates(session, prefix)
        close: set[tuple[float, str]] = set()
        for candidate in candidates:
            head = candidate[: len(prefix)]
            if DamerauLevenshtein.distance(prefix, head) <= 1:
                close.add((-DamerauLevenshtein.normalized_similarity(prefix, head), head))
        # The most similar head; among equally similar ones the first in alphabetical order,
        # whatever order the candidates came in.
        return min(close)[1] if close else None

    async def _reference_suggestions(
        self, session: AsyncSession, words: list[str], limit: int
    ) -> list[Suggestion]:
        """Brands, categories and popular past queries starting with the words (up to `limit`
        of each), in one statement."""
        phrase = _like(" ".join(words))
        values = {"starts": f"{phrase}%", "inner": f"% {phrase}%", "each": limit}
        rows = (await session.execute(_REFERENCES, values)).all()
        order = {"brand": 0, "category": 1, "query": 2}

        # Each part's own order (a union does not keep it): names shortest first, queries most
        # frequent first.
        def rank(r: Any) -> tuple[int, float, int, str]:
            return order[r.kind], -float(r.score), len(r.text), r.text

        return [
            Suggestion(text=r.text, kind=r.kind, id=r.id, score=float(r.score))
            for r in sorted(rows, key=rank)
        ]


def _references() -> Any:
    """Brands and categories whose name has a word starting with the text (`starts`: at its
    start, `inner`: after a space) and popular past queries starting with it, `each` of each."""
    starts, inner = bindparam("starts", type_=String), bindparam("inner", type_=String)
    each = bindparam("each", type_=Integer)

    def named(model: Any, kind: str) -> Select[Any]:
        lowered = func.lower(model.name)
        return (
            select(
                literal(kind).label("kind"),
                model.id.label("id"),
                model.name.label("text"),
                cast(literal(0), Float).label("score"),
            )
            .where(lowered.like(starts, escape="\\") | lowered.like(inner, escape="\\"))
            .order_by(func.length(model.name), model.name)
            .limit(each)
        )

    queries = (
        select(
            literal("query").label("kind"),
            cast(literal(None), Uuid).label("id"),
            _search_query.c.query.label("text"),
            cast(_search_query.c.searches, Float).label("score"),
        )
        .where(_search_query.c.query.like(starts, escape="\\"), _search_query.c.searches >= 2)
        .order_by(_search_query.c.searches.desc(), _search_query.c.query)
        .limit(each)
    )
    parts = [named(_brand.c, "brand"), named(_category.c, "category"), queries]
    return union_all(*(select(p.subquery()) for p in parts))


_REFERENCES = _references()


_NO_NAME = cast(literal(None), String)
_NAMED: dict[str, Any] = {"brand": _brand, "category": _category}  # facets of ids, named


def _facet_row(
    facet: str, value: Any, n: Any, named: Any = None, source: Any = None, *, summary: bool = False
) -> Select[Any]:
    """The (facet, value, count, name, slug) columns every part of a search statement answers
    with; name and slug come from the `named` table (brands, categories) whose id the value is,
    joined to `source`. With `summary`, the (NULL) summary columns of a statement whose page
    rows carry the summaries (see `_NO_SUMMARY`)."""
    if named is None:
        return select(
            literal(facet).label("facet"),
            cast(value, String).label("value"),
            n.label("n"),
            _NO_NAME.label("name"),
            _NO_NAME.label("slug"),
            *(_NO_SUMMARY if summary else []),
        )
    return select(
        literal(facet).label("facet"),
        cast(value, String).label("value"),
        n.label("n"),
        named.c.name.label("name"),
        named.c.slug.label("slug"),
        *(_NO_SUMMARY if summary else []),
    ).join_from(source, named, named.c.id == value)


def _counts(
    facet: str, column: Any, where: ColumnElement[bool], named: Any = None, *, summary: bool = False
) -> Select[Any]:
    """(facet, value, count, name, slug) rows of one facet; name and slug come from the
    `named` table (brands, categories) whose id the value is."""
    if named is None:
        return (
            _facet_row(facet, column, func.count(), summary=summary)
            .where(where, column.is_not(None))
            .group_by(column)
        )
    grouped = (
        select(column.label("key"), func.count().label("n"))
        .where(where, column.is_not(None))
        .group_by(column)
        .subquery(f"{facet}_counts")
    )
    return _facet_row(facet, grouped.c.key, grouped.c.n, named, grouped, summary=summary)


def _grouped_counts(base: Any, facets: list[str]) -> list[Any]:
    """(facet, value, count, name, slug) rows of every facet and the total of a full-text
    search's matches (`base`: value `v{i}` and "passes every filter but its own" `o{i}` of
    facet i, `passes` every filter), grouped in one pass over the matches. Each grouping set
    is told apart by `grouping(...)`: a bit per facet column, set when the row does not group
    by it, the first column's bit the highest."""
    values = [base.c[f"v{i}"] for i in range(len(facets))]
    everything = (1 << len(facets)) - 1
    grouped = (
        select(
            func.grouping(*values).label("g"),
            *values,
            *[func.count().filter(base.c[f"o{i}"]).label(f"n{i}") for i in range(len(facets))],
            func.count().filter(base.c.passes).label("total"),
        )
        .group_by(func.grouping_sets(*[tuple_(v) for v in values], tuple_()))
        .cte("search_counts")
    )
    parts: list[Any] = []
    for i, facet in enumerate(facets):
        value, n = grouped.c[f"v{i}"], grouped.c[f"n{i}"]
        own_set = everything - (1 << (len(facets) - 1 - i))  # grouped by this facet only
        row = _facet_row(facet, value, n, _NAMED.get(facet), grouped, summary=True)
        parts.append(row.where(grouped.c.g == own_set, value.is_not(None), n > 0))
    total = _facet_row("total", literal("all"), grouped.c.total, summary=True)
    parts.append(total.where(grouped.c.g == everything))
    return parts


def _total(source: Any, where: ColumnElement[bool], *, summary: bool = False) -> Select[Any]:
    row = _facet_row("total", literal("all"), func.count(), summary=summary)
    return row.select_from(source).where(where)


def _ordered(keys: list[SortKey]) -> list[Any]:
    return [key.desc() if descending else key.asc() for key, descending in keys]


def _page(
    id_column: Any,
    keys: list[tuple[Any, bool]],
    where: ColumnElement[bool],
    source: Any,
) -> Select[Any]:
    """("page", id, position) rows of the requested page (`offset` and `limit` bound), with
    each product's summary columns."""
    page = (
        select(id_column.label("id"), *[key.label(f"p{i}") for i, (key, _d) in enumerate(keys)])
        .select_from(source)
        .where(where)
        .order_by(*_ordered(keys))
        .offset(bindparam("offset", type_=Integer))
        .limit(bindparam("limit", type_=Integer))
        .subquery("search_page")
    )
    in_page = [(page.c[f"p{i}"], descending) for i, (_key, descending) in enumerate(keys)]
    return select(
        literal("page").label("facet"),
        cast(page.c.id, String).label("value"),
        func.row_number().over(order_by=_ordered(in_page)).label("n"),
        _NO_NAME.label("name"),
        _NO_NAME.label("slug"),
        *_PAGE_SUMMARY,
    ).select_from(
        page.join(_PAGE_PRODUCT, _PAGE_PRODUCT.c.id == page.c.id)
        .outerjoin(_PAGE_BRAND, _PAGE_BRAND.c.id == _PAGE_PRODUCT.c.brand_id)
        .outerjoin(_PAGE_CATEGORY, _PAGE_CATEGORY.c.id == _PAGE_PRODUCT.c.category_id)
    )


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _as_uuid(value: Any) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        return None


def _int(clause: ColumnElement[bool]) -> ColumnElement[int]:
    return case((clause, literal(1)), else_=literal(0))


# ---------------------------------------------------------------------------- PostgreSQL


def _ts_word(word: str, weight: str = "") -> str:
    """A quoted lexeme; with `weight`, matched only where the vector gives it that weight."""
    return f"'{word}':{weight}" if weight else f"'{word}'"


def _ts_form(form: tuple[str, ...], weight: str = "") -> str:
    if len(form) == 1:
        return _ts_word(form[0], weight)
    return "(" + " <-> ".join(_ts_word(w, weight) for w in form) + ")"


def _ts_term(term: Term, weight: str = "") -> str:
    return "(" + " | ".join(_ts_form(f, weight) for f in term.forms) + ")"


_CLOSING_QUOTE = literal("'(?= |$)")


# The search CTE is scanned once per facet: keep it in memory rather than on disk. A statement is
# prepared once per shape and reused with other words and filters, so PostgreSQL would switch to
# a generic plan after five runs, one made without knowing how many products match the words or
# the category, nor which switched filters are off: plan each run for its values.
def _text(name: str) -> BindParameter[str]:
    return bindparam(name, type_=String)


class PostgresSearchBackend(SearchBackend):
    name = "postgresql"
    GROUPING_SETS = True

    _vector: ColumnElement[Any] = literal_column("product.search_vector")

    def _tsquery(self, query_text: Any) -> ColumnElement[Any]:
        return func.to_tsquery(literal_column("'english'"), query_text)

    def _matches(self, name: str) -> ColumnElement[bool]:
        return self._vector.op("@@")(self._tsquery(_text(name)))

    def _match_text(self, terms: list[Term], *, require_all: bool) -> str:
        return (" & " if require_all else " | ").join(_ts_term(t) for t in terms)

    def _word_text(self, word: str) -> str:
        return _ts_word(word)

    def _price_bucket(self) -> ColumnElement[int]:
        # One binary search over the buckets' lowest prices rather than a comparison per
        # bucket: the facet is computed for every match (a tenth of a broad word's time).
        return func.width_bucket(_product.c.price_min, _PRICE_LOWS, type_=Integer)

    def _relevance_order(self, terms: int, *, partial: bool) -> list[SortKey]:
        # A term's field tier comes from weight-restricted queries ('chair':A matches only a
        # name's lexeme) on the whole vector: the same answer as matching the vector filtered to
        # that weight (ts_filter), without building a filtered copy of it for every row.
        v = self._vector
        matched: ColumnElement[Any] = literal(0)
        tier: ColumnElement[Any] = literal(0)
        for i in range(terms):
            found: list[Any] = []
            if partial:
                has_term = v.op("@@")(self._tsquery(_text(f"q_t{i}")))
                found = [(has_term, literal(1))]
                matched = matched + _int(has_term)
            tier = tier + case(
                (v.op("@@")(self._tsquery(_text(f"q_t{i}_a"))), literal(3)),
                (v.op("@@")(self._tsquery(_text(f"q_t{i}_b"))), literal(2)),
                *found,
                else_=literal(0 if partial else 1),
            )
        order: list[SortKey] = [(matched, True)] if partial else []
        if terms > 1:
            # phraseto_tsquery places the words as the text does (stop words leave gaps). The
            # name's phrase is the same tsquery with every lexeme restricted to weight A: its
            # text form quotes each lexeme, so a weight goes after each closing quote (one
            # followed by a space or the end). All of it is constant, folded once by the planner.
            phrase = func.phraseto_tsquery(literal_column("'english'"), _text("q_phrase"))
            name_phrase = cast(
                func.regexp_replace(cast(phrase, String), _CLOSING_QUOTE, "':A", "g"), TSQUERY
            )
            order += [(_int(v.op("@@")(name_phrase)), True)]
            order += [(tier, True), (_int(v.op("@@")(phrase)), True)]
        else:
            order += [(tier, True)]
        order.append((_product.c.popularity, True))
        order.append((cast(func.ts_rank(v, self._tsquery(_text("q_any"))), Float), True))
        return order

    def _relevance_values(self, query: ParsedQuery, *, partial: bool) -> dict[str, Any]:
        values: dict[str, Any] = {
            "q_phrase": query.text,
            "q_any": " | ".join(_ts_term(t) for t in query.terms),
        }
        for i, term in enumerate(query.terms):
            values[f"q_t{i}"] = _ts_term(term)
            values[f"q_t{i}_a"] = _ts_term(term, "A")
            values[f"q_t{i}_b"] = _ts_term(term, "B")
        return values

    async def _correction_candidates(self, session: AsyncSession, word: str) -> list[str]:
        # Trigram neighbours, plus words sharing the first letter and a similar length: short
        # transpositions ("chiar") share too few trigrams to be found by similarity alone.
        # Both in a set order: the same word gets the same candidates whatever the plan.
        stmt = text(
            """
            (SELECT term FROM search_term WHERE term % :w
             ORDER BY similarity(term, :w) DESC, term LIMIT 40)
            UNION
            (SELECT term FROM search_term
             WHERE term >= :lo AND term < :hi AND length(term) BETWEEN :lmin AND :lmax
             ORDER BY term LIMIT 400)
            """
        ).bindparams(
            w=word,
            lo=word[0],
            hi=chr(ord(word[0]) + 1),
            lmin=max(2, len(word) - 2),
            lmax=len(word) + 2,
        )
        return [row[0] for row in (await session.execute(stmt)).all()]

    async def _product_suggestions(
        self, session: AsyncSession, words: list[str], limit: int
    ) -> list[Suggestion]:
        # Words of the name only (`name_vector`: the name's lexemes, as weight A of
        # `search_vector` has them); the last word is a prefix, also taken unstemmed ('simple'):
        # a prefix like "the" of "theater" is an English stop word, which
        # to_tsquery('english') would drop (SQLite's prefix query keeps it).
        several = len(words) > 1

        def build() -> Any:
            prefix = _text("prefix")
            tsquery = self._tsquery(prefix).op("||")(
                func.to_tsquery(literal_column("'simple'"), prefix)
            )
            if several:
                tsquery = self._tsquery(_text("head")).op("&&")(tsquery)
            return (
                select(_product.c.id, _product.c.name, _product.c.popularity)
                .where(literal_column("product.name_vector").op("@@")(tsquery), *_LIVE)
                .order_by(_product.c.popularity.desc(), _product.c.id)
                .limit(bindparam("limit", type_=Integer))
            )

        stmt = self._statement(("suggest", several), build)
        values = {
            "prefix": _ts_word(words[-1]) + ":*",
            "head": " & ".join(_ts_word(w) for w in words[:-1]),
            "limit": limit,
        }
        return [
            Suggestion(text=r.name, kind="product", id=r.id, score=r.popularity)
            for r in (await session.execute(stmt, values)).all()
        ]


# ---------------------------------------------------------------------------- SQLite


def _fts_form(form: tuple[str, ...]) -> str:
    return '"' + " ".join(form) + '"'


def _fts_term(term: Term) -> str:
    return "(" + " OR ".join(_fts_form(f) for f in term.forms) + ")"


class SqliteSearchBackend(SearchBackend):
    name = "sqlite"

    @staticmethod
    def _attribute_value(name: str) -> ColumnElement[str]:
        # json_extract gives 1/0 for JSON booleans; PostgreSQL's ->> gives 'true'/'false'.
        kind = func.json_type(_product.c.attributes, f'$."{name}"')
        return case(
            (kind == "true", literal("true")),
            (kind == "false", literal("false")),
            else_=SearchBackend._attribute_value(name),
        )

    @staticmethod
    def _rowids(name: str) -> Any:
        """The rowids of the FTS5 rows matching the expression bound under `name`."""
        return (
            text(f"SELECT rowid FROM product_fts WHERE product_fts MATCH :{name}")  # noqa: S608
            .bindparams(bindparam(name, type_=String))
            .columns(rowid=Integer)
        )

    def _matches(self, name: str) -> ColumnElement[bool]:
        return literal_column("product.rowid").in_(self._rowids(name).scalar_subquery())

    def _match_text(self, terms: list[Term], *, require_all: bool) -> str:
        return (" AND " if require_all else " OR ").join(_fts_term(t) for t in terms)

    def _word_text(self, word: str) -> str:
        return _fts_form((word,))

    def _relevance_order(self, terms: int, *, partial: bool) -> list[SortKey]:
        matched: ColumnElement[Any] = literal(0)
        tier: ColumnElement[Any] = literal(0)
        for i in range(terms):
            found: list[Any] = []
            if partial:
                found = [(self._matches(f"q_t{i}"), literal(1))]
                matched = matched + _int(self._matches(f"q_t{i}"))
            tier = tier + case(
                (self._matches(f"q_t{i}_name"), literal(3)),
                (self._matches(f"q_t{i}_bc"), literal(2)),
                *found,
                else_=literal(0 if partial else 1),
            )
        order: list[SortKey] = [(matched, True)] if partial else []
        if terms > 1:
            order += [(_int(self._matches("q_phrase_name")), True), (tier, True)]
            order += [(_int(self._matches("q_phrase")), True)]
        else:
            order += [(tier, True)]
        order.append((_product.c.popularity, True))
        rank = (
            select(literal_column("bm25(product_fts, 10.0, 4.0, 4.0, 1.0, 0.5)"))
            .select_from(text("product_fts"))
            .where(text("product_fts MATCH :q_any").bindparams(bindparam("q_any", type_=String)))
            .where(literal_column("product_fts.rowid") == literal_column("product.rowid"))
            .scalar_subquery()
        )
        order.append((func.coalesce(rank, 0.0), False))
        return order

    def _relevance_values(self, query: ParsedQuery, *, partial: bool) -> dict[str, Any]:
        phrase = _fts_form(tuple(query.words))
        values: dict[str, Any] = {
            "q_phrase": phrase,
            "q_phrase_name": f"name : {phrase}",
            "q_any": " OR ".join(_fts_term(t) for t in query.terms),
        }
        for i, term in enumerate(query.terms):
            expression = _fts_term(term)
            values[f"q_t{i}"] = expression
            values[f"q_t{i}_name"] = f"name : {expression}"
            values[f"q_t{i}_bc"] = f"{{brand category}} : {expression}"
        return values

    async def _correction_candidates(self, session: AsyncSession, word: str) -> list[str]:
        stmt = text(
            "SELECT term FROM product_terms_vocab WHERE term >= :lo AND term < :hi "
            "AND length(term) BETWEEN :lmin AND :lmax LIMIT 2000"
        ).bindparams(
            lo=word[0],
            hi=chr(ord(word[0]) + 1),
            lmin=max(2, len(word) - 2),
            lmax=len(word) + 2,
        )
        found = [row[0] for row in (await session.execute(stmt)).all()]
        if len(word) > 1:
            # A typo in the first letter ("xhair"): words sharing the second and third letters.
            stmt = text(
                "SELECT term FROM product_terms_vocab WHERE substr(term, 2, 2) = :mid "
                "AND length(term) BETWEEN :lmin AND :lmax LIMIT 500"
            ).bindparams(mid=word[1:3], lmin=max(2, len(word) - 2), lmax=len(word) + 2)
            found += [row[0] for row in (await session.execute(stmt)).all()]
        return found

    async def _product_suggestions(
        self, session: AsyncSession, words: list[str], limit: int
    ) -> list[Suggestion]:
        parts = [_fts_form((w,)) for w in words[:-1]] + [f'"{words[-1]}" *']

        def build() -> Any:
            return (
                select(_product.c.id, _product.c.name, _product.c.popularity)
                .where(self._matches("names"), *_LIVE)
                .order_by(_product.c.popularity.desc(), _product.c.id)
                .limit(bindparam("limit", type_=Integer))
            )

        stmt = self._statement(("suggest",), build)
        values = {"names": "name : (" + " AND ".join(parts) + ")", "limit": limit}
        return [
            Suggestion(text=r.name, kind="product", id=r.id, score=r.popularity)
            for r in (await session.execute(stmt, values)).all()
        ]


def backend_for(dialect: str) -> SearchBackend:
    if dialect == "postgresql":
        return PostgresSearchBackend()
    if dialect == "sqlite":
        return SqliteSearchBackend()
    raise ValueError(f"no search backend for {dialect}")


__all__ = [
    "PostgresSearchBackend",
    "SearchBackend",
    "SearchFilters",
    "SearchRequest",
    "SearchResult",
    "SearchSort",
    "SqliteSearchBackend",
    "Suggestion",
    "backend_for",
]
