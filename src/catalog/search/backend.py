"""Search backends: one query model, two engines.

`SearchBackend` holds everything shared (filters, facets, sorting, paging, the product summary
shape) as SQLAlchemy Core; each engine supplies only its full-text pieces:

* `PostgresSearchBackend`: the weighted `search_vector` kept by triggers, `to_tsquery('english')`
  (stemming), `ts_rank`, `ts_filter` for per-field tiers, `pg_trgm` for typo candidates;
* `SqliteSearchBackend`: FTS5 with the porter stemmer, `bm25` with column weights, column filters
  for tiers, and the unstemmed `product_terms_vocab` for typo candidates.

Ranking, in order: number of query terms matched (all-terms first; partial matches are only used
when nothing matches every term), the query as a phrase in the name, field tier per term
(name 3 > brand/category 2 > description/attributes 1), any phrase match, popularity, text rank.
Popularity comes before the engines' text scores: `bm25` is length-normalised and `ts_rank` is
not, so letting them decide ties would make the two engines order the same catalog differently.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from rapidfuzz.distance import DamerauLevenshtein
from sqlalchemy import (
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
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from catalog.categories.service import descendant_ids_select
from catalog.models import Brand, Category, Product, ProductStatus
from catalog.search.query import ParsedQuery, Term

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

    async def lookup(self, key: str) -> tuple[list[FacetRow] | None, str | None]:
        """(the rows kept under `key`, or None; the key to store them under once counted, or
        None when they cannot be stored)."""
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
    material["attributes"] = sorted(
        [name, sorted(values)] for name, values in filters.attributes if f"attr:{name}" != facet
    )
    digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
    return f"{facet}:{digest[:32]}"


SUMMARY_COLUMNS = (
    Product.id,
    Product.sku,
    Product.slug,
    Product.name,
    Product.status,
    Product.currency,
    Product.price_min,
    Product.price_max,
    Product.total_stock,
    Product.rating_avg,
    Product.rating_count,
    Product.popularity,
    Product.attributes,
    Product.created_at,
    Product.thumbnail_url,
    Product.brand_id,
    Brand.name.label("brand_name"),
    Brand.slug.label("brand_slug"),
    Product.category_id,
    Category.name.label("category_name"),
    Category.slug.label("category_slug"),
)


def _or_all(clauses: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    out = clauses[0]
    for clause in clauses[1:]:
        out = out | clause
    return out


# The price bucket of a product, as the price facet counts it (built once: it never changes).
_PRICE_BUCKET = case(
    *[
        (
            and_(
                Product.price_min >= low,
                *([Product.price_min < high] if high is not None else []),
            ),
            literal(key),
        )
        for key, low, high in PRICE_BUCKETS
    ],
    else_=literal("0-25"),
)


class SearchBackend:
    """Shared query building; subclasses provide the full-text expressions."""

    name = "base"

    # ------------------------------------------------------------------ engine hooks
    def _match(self, terms: list[Term], *, require_all: bool) -> ColumnElement[bool]:
        raise NotImplementedError

    def _relevance_order(self, query: ParsedQuery, *, partial: bool) -> list[SortKey]:
        """(expression, descending) pairs ranking full-text matches; `partial`: the matches
        have some of the terms, not necessarily all (otherwise each has every term, which the
        order need not check again row by row)."""
        raise NotImplementedError

    def _word_match(self, word: str) -> ColumnElement[bool]:
        """The products having `word` (as the index has it: stemmed on PostgreSQL)."""
        raise NotImplementedError

    async def matching_words(self, session: AsyncSession, words: list[str]) -> set[str]:
        """Which of `words` some visible product has, in one statement."""
        if not words:
            return set()
        live = (Product.status == ProductStatus.active.value, Product.deleted_at.is_(None))
        checks = [
            exists(select(literal(1)).select_from(Product).where(*live, self._word_match(word)))
            for word in words
        ]
        row = (
            await session.execute(select(*[c.label(f"w{i}") for i, c in enumerate(checks)]))
        ).one()
        return {word for word, found in zip(words, row, strict=True) if found}

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
    @staticmethod
    def _attribute_value(name: str) -> ColumnElement[str]:
        return cast(Product.attributes[name].as_string(), String)

    def _filter_clauses(
        self, filters: SearchFilters, category_ids: list[uuid.UUID] | None = None
    ) -> dict[str, ColumnElement[bool]]:
        """Each facet's own filter under its facet name, plain filters under '_'."""
        out: dict[str, ColumnElement[bool]] = {}
        plain: list[ColumnElement[bool]] = [
            Product.status == ProductStatus.active.value,
            Product.deleted_at.is_(None),
        ]
        if filters.in_stock is True:
            plain.append(Product.total_stock > 0)
        elif filters.in_stock is False:
            plain.append(Product.total_stock == 0)
        if filters.rating_min is not None:
            plain.append(Product.rating_avg >= filters.rating_min)
        out["_"] = and_(*plain)
        if filters.brand_ids:
            out["brand"] = Product.brand_id.in_(filters.brand_ids)
        if filters.category_id is not None:
            # Literal ids (resolved beforehand) give the planner real selectivity estimates.
            out["category"] = Product.category_id.in_(category_ids or [filters.category_id])
        price: list[ColumnElement[bool]] = []
        if filters.price_min is not None:
            price.append(Product.price_max >= filters.price_min)
        if filters.price_max is not None:
            price.append(Product.price_min <= filters.price_max)
        if price:
            out["price"] = and_(*price)
        for name, values in filters.attributes:
            out[f"attr:{name}"] = self._attribute_value(name).in_(values)
        return out

    # ------------------------------------------------------------------ search
    def _sort_keys(self, request: SearchRequest, *, partial: bool = False) -> list[SortKey]:
        """(expression, descending) pairs of the order; the last one (the id) breaks ties."""
        sort = request.sort
        if sort == SearchSort.relevance and not request.query.empty:
            return [*self._relevance_order(request.query, partial=partial), (Product.id, False)]
        if sort == SearchSort.price_asc:
            return [(Product.price_min, False), (Product.id, False)]
        if sort == SearchSort.price_desc:
            return [(Product.price_max, True), (Product.id, False)]
        if sort == SearchSort.rating:
            return [(Product.rating_avg, True), (Product.rating_count, True), (Product.id, False)]
        if sort == SearchSort.newest:
            return [(Product.created_at, True), (Product.id, True)]
        return [(Product.popularity, True), (Product.id, False)]  # popularity; browsing

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
        category_ids = None
        if request.filters.category_id is not None:
            subtree = descendant_ids_select(request.filters.category_id)
            category_ids = list((await session.execute(subtree)).scalars())
        clauses = self._filter_clauses(request.filters, category_ids)
        match: ColumnElement[bool] | None = None
        partial = False
        if request.query.text and request.query.empty:
            match = false()  # only words like "the": nothing to look for
        elif not request.query.empty:
            match = self._match(request.query.terms, require_all=True)
            if len(request.query.terms) > 1 and not await self._exists(session, clauses, match):
                # Nothing matches every term: fall back to the best partial matches.
                match = self._match(request.query.terms, require_all=False)
                partial = True
        found: list[FacetRow] = []
        pending: dict[str, str] = {}  # facet -> the cache key to store its counts under
        if match is None:
            counted, page_part = self._browse_parts(request, clauses)
            parts = [page_part]
            for facet, part in counted.items():
                if facet_cache is not None:
                    key = _own_facet_key(facet, request.filters, category_ids)
                    cached, stored_under = await facet_cache.lookup(key)
                    if cached is not None:
                        found += cached
                        continue
                    if stored_under is not None:
                        pending[facet] = stored_under
                parts.append(part)
        else:
            parts = self._match_parts(request, clauses, match, partial=partial)
        await self._before_facets(session)
        rows_read: list[FacetRow] = [
            (r[0], r[1], r[2], r[3], r[4]) for r in (await session.execute(union_all(*parts))).all()
        ]
        if facet_cache is not None:
            for facet, stored_under in pending.items():
                await facet_cache.store(stored_under, [r for r in rows_read if r[0] == facet])
        counts: dict[str, dict[str, int]] = {
            name: {} for name in ["brand", "category", "price", "total", "page"]
        }
        counts.update({f"attr:{a}": {} for a in request.facet_attributes})
        names: dict[str, tuple[str, str]] = {}
        for facet, value, n, name, slug in [*rows_read, *found]:
            counts[facet][str(value)] = int(n)
            if name is not None:
                names[f"{facet}:{value}"] = (name, slug or "")
        total = counts["total"].get("all", 0)
        page = sorted(counts.pop("page").items(), key=lambda item: item[1])
        rows = await self._rows(session, [_as_uuid(value) for value, _position in page])
        facets = self._facet_output(counts, names, request.facet_attributes)
        return SearchResult(rows=rows, total=total, facets=facets, partial=partial)

    async def _exists(
        self,
        session: AsyncSession,
        clauses: dict[str, ColumnElement[bool]],
        match: ColumnElement[bool],
    ) -> bool:
        stmt = select(literal(1)).select_from(Product).where(*clauses.values(), match).limit(1)
        return (await session.execute(stmt)).first() is not None

    def _facet_columns(self, request: SearchRequest) -> dict[str, Any]:
        """The value each facet counts, by facet name."""
        columns: dict[str, Any] = {
            "brand": Product.brand_id,
            "category": Product.category_id,
            "price": _PRICE_BUCKET,
        }
        for attr in request.facet_attributes:
            columns[f"attr:{attr}"] = self._attribute_value(attr)
        return columns

    def _match_parts(
        self,
        request: SearchRequest,
        clauses: dict[str, ColumnElement[bool]],
        match: ColumnElement[bool],
        *,
        partial: bool,
    ) -> list[Any]:
        """Facet counts, the total and the page's ids of a full-text search, from one pass
        over the matching products: a CTE holding each match's facet values, one flag per facet
        filter and the sort keys; each facet counts the rows passing every filter but its own,
        and the page is the first rows passing them all."""
        facet_columns = self._facet_columns(request)
        keys = self._sort_keys(request, partial=partial)
        columns: list[Any] = [Product.id.label("id")]
        labels: dict[str, str] = {}
        for i, (facet, column) in enumerate(facet_columns.items()):
            labels[facet] = f"v{i}"
            columns.append(column.label(f"v{i}"))
        flag_names: dict[str, str] = {}
        for i, (name, clause) in enumerate(c for c in clauses.items() if c[0] != "_"):
            flag_names[name] = f"f{i}"
            columns.append(case((clause, literal(1)), else_=literal(0)).label(f"f{i}"))
        columns += [expression.label(f"k{i}") for i, (expression, _desc) in enumerate(keys)]
        base = select(*columns).select_from(Product).where(clauses["_"], match).cte("search_base")

        def others(facet: str) -> ColumnElement[bool]:
            conds = [base.c[flag] == 1 for name, flag in flag_names.items() if name != facet]
            return and_(true(), *conds)

        parts: list[Any] = [
            _counts(facet, base.c[labels[facet]], others(facet), _NAMED.get(facet))
            for facet in facet_columns
        ]
        parts.append(_total(base, others("")))
        ordered = [(base.c[f"k{i}"], desc) for i, (_e, desc) in enumerate(keys)]
        parts.append(_page(base.c.id, ordered, others(""), base, request))
        return parts

    def _browse_parts(
        self, request: SearchRequest, clauses: dict[str, ColumnElement[bool]]
    ) -> tuple[dict[str, Any], Any]:
        """The counts (each facet's and the total, by name) and the page's ids of a search
        without words, as separate parts, so that counts found in a cache can be left out.
        Without a match to scan once, a facet whose own filter is set counts under the other
        filters with its own subquery (one that can use the indexes of those filters); the
        other facets and the total share the set passing every filter."""
        facet_columns = self._facet_columns(request)
        everything = list(clauses.values())
        counted: dict[str, Any] = {}
        shared: dict[str, Any] = {}
        for facet, column in facet_columns.items():
            if facet in clauses:
                where = [clause for name, clause in clauses.items() if name != facet]
                values = select(column.label("v")).select_from(Product).where(*where).subquery()
                counted[facet] = _counts(facet, values.c.v, true(), _NAMED.get(facet))
            else:
                shared[facet] = column
        labels = {facet: f"v{i}" for i, facet in enumerate(shared)}
        full = (
            select(literal(1).label("one"), *[c.label(labels[f]) for f, c in shared.items()])
            .select_from(Product)
            .where(*everything)
            .cte("search_full")
        )
        for facet in shared:
            counted[facet] = _counts(facet, full.c[labels[facet]], true(), _NAMED.get(facet))
        counted["total"] = _total(full, true())
        keys = self._sort_keys(request)
        ordered_ids = (
            select(Product.id.label("id"), *[e.label(f"k{i}") for i, (e, _d) in enumerate(keys)])
            .select_from(Product)
            .where(*everything)
        ).subquery("browse_page_keys")
        ordered = [(ordered_ids.c[f"k{i}"], desc) for i, (_e, desc) in enumerate(keys)]
        return counted, _page(ordered_ids.c.id, ordered, true(), ordered_ids, request)

    async def _rows(
        self, session: AsyncSession, ids: list[uuid.UUID | None]
    ) -> list[dict[str, Any]]:
        """The summaries of a page's products, in the page's order."""
        wanted = [i for i in ids if i is not None]
        if not wanted:
            return []
        stmt = (
            select(*SUMMARY_COLUMNS)
            .select_from(Product)
            .outerjoin(Brand, Brand.id == Product.brand_id)
            .outerjoin(Category, Category.id == Product.category_id)
            .where(Product.id.in_(wanted))
        )
        found = {r.id: dict(r._mapping) for r in (await session.execute(stmt)).all()}
        return [found[i] for i in wanted if i in found]

    async def _before_facets(self, session: AsyncSession) -> None:
        """Engine-specific preparation of the facet statement."""

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
                "count": counts["price"].get(key, 0),
            }
            for key, low, high in PRICE_BUCKETS
            if counts["price"].get(key, 0)
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
        best: tuple[float, str] | None = None
        for candidate in candidates:
            head = candidate[: len(prefix)]
            distance = DamerauLevenshtein.distance(prefix, head)
            if distance <= 1:
                score = DamerauLevenshtein.normalized_similarity(prefix, head)
                if best is None or score > best[0]:
                    best = (score, candidate[: len(prefix)])
        return best[1] if best else None

    async def _reference_suggestions(
        self, session: AsyncSession, words: list[str], limit: int
    ) -> list[Suggestion]:
        """Brands, categories and popular past queries starting with the words (up to `limit`
        of each), in one statement."""
        from catalog.models import SearchQuery

        phrase = " ".join(words)
        starts, inner = f"{_like(phrase)}%", f"% {_like(phrase)}%"

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
                .limit(limit)
            )

        queries = (
            select(
                literal("query").label("kind"),
                cast(literal(None), Uuid).label("id"),
                SearchQuery.query.label("text"),
                cast(SearchQuery.searches, Float).label("score"),
            )
            .where(SearchQuery.query.like(starts, escape="\\"), SearchQuery.searches >= 2)
            .order_by(SearchQuery.searches.desc(), SearchQuery.query)
            .limit(limit)
        )
        parts = [named(Brand, "brand"), named(Category, "category"), queries]
        stmt = union_all(*(select(p.subquery()) for p in parts))
        rows = (await session.execute(stmt)).all()
        order = {"brand": 0, "category": 1, "query": 2}

        # Each part's own order (a union does not keep it): names shortest first, queries most
        # frequent first.
        def rank(r: Any) -> tuple[int, float, int, str]:
            return order[r.kind], -float(r.score), len(r.text), r.text

        return [
            Suggestion(text=r.text, kind=r.kind, id=r.id, score=float(r.score))
            for r in sorted(rows, key=rank)
        ]


_NO_NAME = cast(literal(None), String)
_NAMED: dict[str, Any] = {"brand": Brand, "category": Category}  # facets of ids, named


def _counts(
    facet: str, column: Any, where: ColumnElement[bool], named: Any = None
) -> Select[str, str, int, str, str]:
    """(facet, value, count, name, slug) rows of one facet; name and slug come from the
    `named` table (brands, categories) whose id the value is."""
    if named is None:
        return (
            select(
                literal(facet).label("facet"),
                cast(column, String).label("value"),
                func.count().label("n"),
                _NO_NAME.label("name"),
                _NO_NAME.label("slug"),
            )
            .where(where, column.is_not(None))
            .group_by(column)
        )
    grouped = (
        select(column.label("key"), func.count().label("n"))
        .where(where, column.is_not(None))
        .group_by(column)
        .subquery(f"{facet}_counts")
    )
    return select(
        literal(facet).label("facet"),
        cast(grouped.c.key, String).label("value"),
        grouped.c.n,
        named.name.label("name"),
        named.slug.label("slug"),
    ).join_from(grouped, named, named.id == grouped.c.key)


def _total(source: Any, where: ColumnElement[bool]) -> Select[str, str, int, str, str]:
    return (
        select(
            literal("total").label("facet"),
            cast(literal("all"), String).label("value"),
            func.count().label("n"),
            _NO_NAME.label("name"),
            _NO_NAME.label("slug"),
        )
        .select_from(source)
        .where(where)
    )


def _ordered(keys: list[SortKey]) -> list[Any]:
    return [key.desc() if descending else key.asc() for key, descending in keys]


def _page(
    id_column: Any,
    keys: list[tuple[Any, bool]],
    where: ColumnElement[bool],
    source: Any,
    request: SearchRequest,
) -> Select[str, str, int, str, str]:
    """("page", id, position) rows of the requested page."""
    page = (
        select(id_column.label("id"), *[key.label(f"p{i}") for i, (key, _d) in enumerate(keys)])
        .select_from(source)
        .where(where)
        .order_by(*_ordered(keys))
        .offset(request.offset)
        .limit(request.limit)
        .subquery("search_page")
    )
    in_page = [(page.c[f"p{i}"], descending) for i, (_key, descending) in enumerate(keys)]
    return select(
        literal("page").label("facet"),
        cast(page.c.id, String).label("value"),
        func.row_number().over(order_by=_ordered(in_page)).label("n"),
        _NO_NAME.label("name"),
        _NO_NAME.label("slug"),
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


class PostgresSearchBackend(SearchBackend):
    name = "postgresql"

    async def _before_facets(self, session: AsyncSession) -> None:
        # The search CTE is scanned once per facet: keep it in memory rather than on disk. The
        # statement is prepared once per shape and reused with other words and filters, so
        # PostgreSQL would switch to a generic plan after five runs, one made without knowing
        # how many products match the words or the category: plan each run for its values.
        await session.execute(
            text(
                "SELECT set_config('work_mem', '32MB', true), "
                "set_config('plan_cache_mode', 'force_custom_plan', true)"
            )
        )

    _vector: ColumnElement[Any] = literal_column("product.search_vector")

    def _tsquery(self, query_text: str) -> ColumnElement[Any]:
        return func.to_tsquery(literal_column("'english'"), query_text)

    def _match(self, terms: list[Term], *, require_all: bool) -> ColumnElement[bool]:
        joiner = " & " if require_all else " | "
        return self._vector.op("@@")(self._tsquery(joiner.join(_ts_term(t) for t in terms)))

    def _relevance_order(self, query: ParsedQuery, *, partial: bool) -> list[SortKey]:
        # A term's field tier comes from weight-restricted queries ('chair':A matches only a
        # name's lexeme) on the whole vector: the same answer as matching the vector filtered to
        # that weight (ts_filter), without building a filtered copy of it for every row.
        v = self._vector
        matched: ColumnElement[Any] = literal(0)
        tier: ColumnElement[Any] = literal(0)
        for term in query.terms:
            tq = self._tsquery(_ts_term(term))
            found = [(v.op("@@")(tq), literal(1))] if partial else []
            if partial:
                matched = matched + _int(v.op("@@")(tq))
            tier = tier + case(
                (v.op("@@")(self._tsquery(_ts_term(term, "A"))), literal(3)),
                (v.op("@@")(self._tsquery(_ts_term(term, "B"))), literal(2)),
                *found,
                else_=literal(0 if partial else 1),
            )
        order: list[SortKey] = [(matched, True)] if partial else []
        if len(query.terms) > 1:
            # phraseto_tsquery places the words as the text does (stop words leave gaps). The
            # name's phrase is the same tsquery with every lexeme restricted to weight A: its
            # text form quotes each lexeme, so a weight goes after each closing quote (one
            # followed by a space or the end). All of it is constant, folded once by the planner.
            phrase = func.phraseto_tsquery(literal_column("'english'"), query.text)
            name_phrase = cast(
                func.regexp_replace(cast(phrase, String), _CLOSING_QUOTE, "':A", "g"), TSQUERY
            )
            order += [(_int(v.op("@@")(name_phrase)), True)]
            order += [(tier, True), (_int(v.op("@@")(phrase)), True)]
        else:
            order += [(tier, True)]
        order.append((Product.popularity, True))
        any_terms = self._tsquery(" | ".join(_ts_term(t) for t in query.terms))
        order.append((cast(func.ts_rank(v, any_terms), Float), True))
        return order

    def _word_match(self, word: str) -> ColumnElement[bool]:
        return self._vector.op("@@")(self._tsquery(_ts_word(word)))

    async def _correction_candidates(self, session: AsyncSession, word: str) -> list[str]:
        # Trigram neighbours, plus words sharing the first letter and a similar length: short
        # transpositions ("chiar") share too few trigrams to be found by similarity alone.
        stmt = text(
            """
            (SELECT term FROM search_term WHERE term % :w
             ORDER BY similarity(term, :w) DESC LIMIT 40)
            UNION
            (SELECT term FROM search_term
             WHERE term >= :lo AND term < :hi AND length(term) BETWEEN :lmin AND :lmax
             LIMIT 400)
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
        # Words of the name only (weight A); the last word is a prefix, also taken unstemmed
        # ('simple'): a prefix like "the" of "theater" is an English stop word, which
        # to_tsquery('english') would drop (SQLite's prefix query keeps it).
        prefix = _ts_word(words[-1]) + ":*A"
        tsquery = self._tsquery(prefix).op("||")(
            func.to_tsquery(literal_column("'simple'"), prefix)
        )
        if len(words) > 1:
            tsquery = self._tsquery(" & ".join(_ts_word(w) + ":A" for w in words[:-1])).op("&&")(
                tsquery
            )
        stmt = (
            select(Product.id, Product.name, Product.popularity)
            .where(self._vector.op("@@")(tsquery))
            .where(Product.status == ProductStatus.active.value, Product.deleted_at.is_(None))
            .order_by(Product.popularity.desc(), Product.id)
            .limit(limit)
        )
        return [
            Suggestion(text=r.name, kind="product", id=r.id, score=r.popularity)
            for r in (await session.execute(stmt)).all()
        ]


# ---------------------------------------------------------------------------- SQLite


_PARAM_NAMES = itertools.count()


def _fts_form(form: tuple[str, ...]) -> str:
    return '"' + " ".join(form) + '"'


def _fts_term(term: Term) -> str:
    return "(" + " OR ".join(_fts_form(f) for f in term.forms) + ")"


class SqliteSearchBackend(SearchBackend):
    name = "sqlite"

    @staticmethod
    def _attribute_value(name: str) -> ColumnElement[str]:
        # json_extract gives 1/0 for JSON booleans; PostgreSQL's ->> gives 'true'/'false'.
        kind = func.json_type(Product.attributes, f'$."{name}"')
        return case(
            (kind == "true", literal("true")),
            (kind == "false", literal("false")),
            else_=SearchBackend._attribute_value(name),
        )

    @staticmethod
    def _rowids(expression: str) -> Any:
        # Every MATCH of one statement needs a bind parameter of its own name.
        name = f"fts_{next(_PARAM_NAMES)}"
        return (
            text(f"SELECT rowid FROM product_fts WHERE product_fts MATCH :{name}")  # noqa: S608
            .bindparams(bindparam(name, expression))
            .columns(rowid=Integer)
        )

    def _in(self, expression: str) -> ColumnElement[bool]:
        return literal_column("product.rowid").in_(self._rowids(expression).scalar_subquery())

    def _match(self, terms: list[Term], *, require_all: bool) -> ColumnElement[bool]:
        joiner = " AND " if require_all else " OR "
        return self._in(joiner.join(_fts_term(t) for t in terms))

    def _relevance_order(self, query: ParsedQuery, *, partial: bool) -> list[SortKey]:
        matched: ColumnElement[Any] = literal(0)
        tier: ColumnElement[Any] = literal(0)
        for term in query.terms:
            expression = _fts_term(term)
            found = [(self._in(expression), literal(1))] if partial else []
            if partial:
                matched = matched + _int(self._in(expression))
            tier = tier + case(
                (self._in(f"name : {expression}"), literal(3)),
                (self._in(f"{{brand category}} : {expression}"), literal(2)),
                *found,
                else_=literal(0 if partial else 1),
            )
        order: list[SortKey] = [(matched, True)] if partial else []
        if len(query.terms) > 1:
            phrase = _fts_form(tuple(query.words))
            order += [(_int(self._in(f"name : {phrase}")), True), (tier, True)]
            order += [(_int(self._in(phrase)), True)]
        else:
            order += [(tier, True)]
        order.append((Product.popularity, True))
        any_terms = " OR ".join(_fts_term(t) for t in query.terms)
        rank = (
            select(literal_column("bm25(product_fts, 10.0, 4.0, 4.0, 1.0, 0.5)"))
            .select_from(text("product_fts"))
            .where(text("product_fts MATCH :fts_rank").bindparams(fts_rank=any_terms))
            .where(literal_column("product_fts.rowid") == literal_column("product.rowid"))
            .scalar_subquery()
        )
        order.append((func.coalesce(rank, 0.0), False))
        return order

    def _word_match(self, word: str) -> ColumnElement[bool]:
        return self._in(_fts_form((word,)))

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
        expression = "name : (" + " AND ".join(parts) + ")"
        stmt = (
            select(Product.id, Product.name, Product.popularity)
            .where(self._in(expression))
            .where(Product.status == ProductStatus.active.value, Product.deleted_at.is_(None))
            .order_by(Product.popularity.desc(), Product.id)
            .limit(limit)
        )
        return [
            Suggestion(text=r.name, kind="product", id=r.id, score=r.popularity)
            for r in (await session.execute(stmt)).all()
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
