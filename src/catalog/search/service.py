"""Search: query understanding (synonyms, typo correction), the backend call, analytics."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sized
from typing import Any

import orjson
from sqlalchemy import String, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.analytics.recorder import EventRecorder
from catalog.db import new_id, utcnow
from catalog.errors import NotFound
from catalog.kit import metrics
from catalog.kit.cache import Cache, Cached, CacheUnavailable, ReadCache
from catalog.kit.invalidation import REFS, SEARCH, invalidate
from catalog.models import SearchClick, SearchEvent, SearchQuery, SearchSynonym
from catalog.products.service import serialize_summary
from catalog.search.backend import (
    FacetRow,
    SearchBackend,
    SearchFilters,
    SearchRequest,
    SearchSort,
)
from catalog.search.query import apply_synonyms, normalize_query, parse_query
from catalog.search.schemas import SynonymIn

# --------------------------------------------------------------------------- synonyms


async def synonym_rules(session: AsyncSession) -> list[tuple[str, list[str], bool]]:
    """(input, synonyms, two_way) for every rule; read per search so changes apply at once."""
    rows = (
        await session.execute(select(SearchSynonym.kind, SearchSynonym.input, SearchSynonym.terms))
    ).all()
    rules: list[tuple[str, list[str], bool]] = []
    for kind, source, terms in rows:
        if kind == "group":
            for member in terms:
                rules.append((member, [t for t in terms if t != member], True))
        elif source:
            rules.append((source, list(terms), False))
    return rules


def synonym_out(row: SearchSynonym) -> dict[str, Any]:
    group = row.kind == "group"
    return {
        "id": row.id,
        "kind": row.kind,
        "terms": row.terms if group else None,
        "input": None if group else row.input,
        "synonyms": None if group else row.terms,
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _apply_synonym(row: SearchSynonym, data: SynonymIn) -> None:
    if data.terms is not None:
        row.kind, row.input, row.terms = "group", None, [t.lower() for t in data.terms]
    else:
        assert data.input is not None
        assert data.synonyms is not None
        row.kind, row.input, row.terms = (
            "oneway",
            data.input.lower(),
            [t.lower() for t in data.synonyms],
        )


async def create_synonym(session: AsyncSession, data: SynonymIn) -> SearchSynonym:
    row = SearchSynonym()
    _apply_synonym(row, data)
    session.add(row)
    await session.flush()
    invalidate(session, SEARCH)
    return row


async def get_synonym(session: AsyncSession, synonym_id: uuid.UUID) -> SearchSynonym:
    row = await session.get(SearchSynonym, synonym_id)
    if row is None:
        raise NotFound(f"Synonym rule {synonym_id} not found")
    return row


async def update_synonym(
    session: AsyncSession, row: SearchSynonym, data: SynonymIn
) -> SearchSynonym:
    _apply_synonym(row, data)
    await session.flush()
    invalidate(session, SEARCH)
    return row


async def delete_synonym(session: AsyncSession, row: SearchSynonym) -> None:
    await session.delete(row)
    await session.flush()
    invalidate(session, SEARCH)


async def list_synonyms(session: AsyncSession) -> list[SearchSynonym]:
    stmt = select(SearchSynonym).order_by(SearchSynonym.created_at, SearchSynonym.id).limit(1000)
    return list((await session.execute(stmt)).scalars())


# --------------------------------------------------------------------------- search


class SearchMemo:
    """What a search reads before its main statement and only a write bumping the SEARCH
    generation changes: the synonym rules, which words some visible product has, the
    corrections of those no product has and the categories under a category. Kept in process
    for the current generation, so a search whose words and category were seen makes no round
    trip for them. Every write that can change them (a product, a synonym rule, a brand or a
    category) bumps SEARCH, which empties the memo of every worker as it makes their cached
    searches unreachable; a value read before a bump is never kept under the generation after
    it. Without the generation (Redis unreachable) every search reads them afresh. At most
    `max_entries` of each kind are kept per generation."""

    def __init__(self, cache: Cache, max_entries: int = 50_000) -> None:
        self._cache = cache
        self._max = max_entries
        self._generation: int | None = None
        self._rules: list[tuple[str, list[str], bool]] | None = None
        self._words: dict[str, bool] = {}
        self._corrections: dict[str, str | None] = {}
        self._subtrees: dict[uuid.UUID, list[uuid.UUID]] = {}

    async def _current(self) -> int | None:
        try:
            generation = await self._cache.generation(SEARCH)
        except CacheUnavailable:
            return None
        if generation != self._generation:
            self._generation, self._rules = generation, None
            self._words, self._corrections, self._subtrees = {}, {}, {}
        return generation

    def _keeps(self, generation: int | None, kept: Sized) -> bool:
        """Whether a value read under `generation` may be kept in `kept`: no write bumped the
        generation while it was read, and there is room."""
        return generation is not None and generation == self._generation and len(kept) < self._max

    async def synonym_rules(self, session: AsyncSession) -> list[tuple[str, list[str], bool]]:
        generation = await self._current()
        if generation is not None and self._rules is not None:
            return self._rules
        rules = await synonym_rules(session)
        if self._keeps(generation, ()):
            self._rules = rules
        return rules

    async def matching_words(
        self, session: AsyncSession, backend: SearchBackend, words: list[str]
    ) -> set[str]:
        generation = await self._current()
        if generation is None:
            return await backend.matching_words(session, words)
        known = self._words
        unknown = [w for w in words if w not in known]
        found = await backend.matching_words(session, unknown) if unknown else set()
        if self._keeps(generation, known):
            known.update({w: w in found for w in unknown})
        return {w for w in words if w in found or known.get(w, False)}

    async def correct(self, session: AsyncSession, backend: SearchBackend, word: str) -> str | None:
        """The correction of a word no visible product has (see `SearchBackend.correct`)."""
        generation = await self._current()
        if generation is not None and word in self._corrections:
            return self._corrections[word]
        correction = await backend.correct(session, word, unmatched=True)
        if self._keeps(generation, self._corrections):
            self._corrections[word] = correction
        return correction

    async def category_subtree(
        self, session: AsyncSession, backend: SearchBackend, category_id: uuid.UUID
    ) -> list[uuid.UUID]:
        generation = await self._current()
        if generation is not None and category_id in self._subtrees:
            return self._subtrees[category_id]
        subtree = await backend.category_subtree(session, category_id)
        if self._keeps(generation, self._subtrees):
            self._subtrees[category_id] = subtree
        return subtree


class CachedFacetCounts:
    """Browse totals and facet counts in the response cache, under the generations of the
    namespaces a write bumps when it changes a product (SEARCH) or a brand's or category's name
    (REFS). The key is made with the generations read before counting, so counts made from
    data older than a write are never found after it."""

    NAME = "search-facets"

    def __init__(self, read_cache: ReadCache, ttl: float) -> None:
        self.read_cache = read_cache
        self.ttl = ttl

    async def lookup(self, keys: list[str]) -> list[tuple[list[FacetRow] | None, str | None]]:
        stored = [await self.read_cache.key(self.NAME, [SEARCH, REFS], key) for key in keys]
        cache = self.read_cache.cache
        hits = await cache.get_many([k for k in stored if k is not None])
        found = iter(hits)
        out: list[tuple[list[FacetRow] | None, str | None]] = []
        for stored_under in stored:
            hit = next(found) if stored_under is not None else None
            if stored_under is None:
                out.append((None, None))
            elif hit is None:
                cache.stats.miss(self.NAME)
                out.append((None, stored_under))
            else:
                cache.stats.hit(self.NAME)
                rows = [
                    (f, v, int(n), name, slug) for f, v, n, name, slug in orjson.loads(hit.body)
                ]
                out.append((rows, None))
        return out

    async def store(self, stored_under: str, rows: list[FacetRow]) -> None:
        self.read_cache.cache.set_soon(
            stored_under, Cached(body=orjson.dumps(rows), etag=""), self.ttl
        )


async def run_search(
    session: AsyncSession,
    backend: SearchBackend,
    *,
    q: str | None,
    filters: SearchFilters,
    sort: SearchSort | None,
    page: int,
    page_size: int,
    facet_attributes: tuple[str, ...],
    facet_cache: CachedFacetCounts | None = None,
    memo: SearchMemo | None = None,
) -> tuple[dict[str, Any], int]:
    """The search answer (without its `search_id`) and the total number of results."""
    query = parse_query(q)
    if not query.empty:
        rules = await (memo.synonym_rules(session) if memo else synonym_rules(session))
        apply_synonyms(query, rules)
        # A word a synonym rule knows is not a typo; the others are checked in one statement.
        checked = [
            t.word for t in query.terms if not t.alternatives and backend.may_correct(t.word)
        ]
        found = await (
            memo.matching_words(session, backend, checked)
            if memo
            else backend.matching_words(session, checked)
        )
        for term in query.terms:
            if term.word not in checked or term.word in found:
                continue
            correction = await (
                memo.correct(session, backend, term.word)
                if memo
                else backend.correct(session, term.word, unmatched=True)
            )
            if correction:
                query.corrected[term.word] = correction
                term.alternatives.append((correction,))
    category_ids = None
    if memo is not None and filters.category_id is not None:
        category_ids = await memo.category_subtree(session, backend, filters.category_id)
    request = SearchRequest(
        category_ids=category_ids,
        query=query,
        filters=filters,
        sort=sort or (SearchSort.relevance if not query.empty else SearchSort.popularity),
        offset=(page - 1) * page_size,
        limit=page_size,
        facet_attributes=facet_attributes,
    )
    result = await backend.search(session, request, facet_cache)
    body = {
        "items": [serialize_summary(row) for row in result.rows],
        "total": result.total,
        "page": page,
        "page_size": page_size,
        "facets": result.facets,
        "did_you_mean": query.did_you_mean,
        "partial": result.partial,
    }
    return body, result.total


def record_search(
    recorder: EventRecorder | None,
    *,
    search_id: uuid.UUID,
    q: str | None,
    filters: SearchFilters,
    sort: SearchSort | None,
    result_count: int,
    latency_ms: float,
    user_id: uuid.UUID | None,
    session_id: str | None,
) -> None:
    metrics.search_answered(latency_ms, result_count)
    if recorder is None:
        return
    text = normalize_query(q)
    effective = sort or (SearchSort.relevance if text else SearchSort.popularity)
    now = utcnow()
    recorder.record(
        SearchEvent.__table__,  # type: ignore[arg-type]
        {
            "id": search_id,
            "query": text[:200],
            "filters": _filters_json(filters, effective),
            "result_count": result_count,
            "latency_ms": latency_ms,
            "user_id": user_id,
            "session_id": session_id,
            "created_at": now,
        },
    )
    if text and result_count > 0:
        # Popular past queries for autocomplete: a running count per query.
        recorder.tally(
            SearchQuery.__table__,  # type: ignore[arg-type]
            "query",
            {"query": text[:200], "last_searched_at": now},
            "searches",
        )


def _filters_json(filters: SearchFilters, sort: SearchSort) -> dict[str, Any]:
    out: dict[str, Any] = {"sort": sort.value}
    if filters.category_id:
        out["category_id"] = str(filters.category_id)
    if filters.brand_ids:
        out["brand_id"] = [str(b) for b in filters.brand_ids]
    if filters.price_min is not None:
        out["price_min"] = str(filters.price_min)
    if filters.price_max is not None:
        out["price_max"] = str(filters.price_max)
    if filters.in_stock is not None:
        out["in_stock"] = filters.in_stock
    if filters.rating_min is not None:
        out["rating_min"] = filters.rating_min
    for name, values in filters.attributes:
        out[f"attributes.{name}"] = list(values)
    return out


def record_click(
    recorder: EventRecorder | None,
    *,
    search_id: uuid.UUID,
    product_id: uuid.UUID,
    position: int,
    user_id: uuid.UUID | None,
) -> None:
    if recorder is None:
        return
    recorder.record(
        SearchClick.__table__,  # type: ignore[arg-type]
        {
            "id": new_id(),
            "search_id": search_id,
            "product_id": product_id,
            "position": position,
            "user_id": user_id,
            "created_at": utcnow(),
        },
    )


# --------------------------------------------------------------------------- analytics


def _since(days: int) -> dt.datetime:
    return utcnow() - dt.timedelta(days=days)


Window = tuple[dt.datetime, dt.datetime]


def _window(column: Any, days: int, period: Window | None) -> Any:
    """The last `days` days, or exactly `period` (start included, end excluded) when given."""
    if period is None:
        return column >= _since(days)
    return and_(column >= period[0], column < period[1])


async def top_queries(
    session: AsyncSession, *, days: int, limit: int, period: Window | None = None
) -> list[dict[str, Any]]:
    clicks = (
        select(SearchClick.search_id, func.count().label("c"))
        .group_by(SearchClick.search_id)
        .subquery()
    )
    stmt = (
        select(
            SearchEvent.query,
            func.count().label("searches"),
            func.coalesce(func.sum(clicks.c.c), 0).label("clicks"),
            func.count().filter(SearchEvent.result_count == 0).label("zero"),
        )
        .outerjoin(clicks, clicks.c.search_id == SearchEvent.id)
        .where(
            _window(SearchEvent.created_at, days, period),
            SearchEvent.query != "",
        )
        .group_by(SearchEvent.query)
        .order_by(func.count().desc(), SearchEvent.query)
        .limit(limit)
    )
    out = []
    for row in (await session.execute(stmt)).all():
        out.append(
            {
                "query": row.query,
                "searches": int(row.searches),
                "clicks": int(row.clicks),
                "click_through": round(int(row.clicks) / int(row.searches), 4),
                "zero_results": int(row.zero or 0),
            }
        )
    return out


async def zero_result_queries(
    session: AsyncSession, *, days: int, limit: int, period: Window | None = None
) -> list[dict[str, Any]]:
    stmt = (
        select(SearchEvent.query, func.count().label("searches"))
        .where(
            _window(SearchEvent.created_at, days, period),
            SearchEvent.result_count == 0,
            SearchEvent.query != "",
        )
        .group_by(SearchEvent.query)
        .order_by(func.count().desc(), SearchEvent.query)
        .limit(limit)
    )
    return [
        {"query": r.query, "searches": int(r.searches), "zero_results": int(r.searches)}
        for r in (await session.execute(stmt)).all()
    ]


async def low_click_through(
    session: AsyncSession, *, days: int, limit: int, min_searches: int
) -> list[dict[str, Any]]:
    """Queries that return results but whose results are rarely clicked."""
    rows = await top_queries(session, days=days, limit=10_000)
    candidates = [
        r for r in rows if r["searches"] >= min_searches and r["zero_results"] < r["searches"]
    ]
    candidates.sort(key=lambda r: (r["click_through"], -r["searches"], r["query"]))
    return candidates[:limit]


def _utc_day(session: AsyncSession, column: Any) -> Any:
    """The UTC calendar day of a timestamp as 'YYYY-MM-DD'. Not `CAST(... AS DATE)`: SQLite
    turns that into the number 2026, and PostgreSQL would use the session's time zone."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD", type_=String)
    return func.date(column, type_=String)  # SQLite stores naive UTC 'YYYY-MM-DD HH:MM:SS'


async def volume(
    session: AsyncSession, *, days: int, period: Window | None = None
) -> list[dict[str, Any]]:
    day = _utc_day(session, SearchEvent.created_at)
    searches = (
        select(
            day.label("day"),
            func.count().label("searches"),
            func.count().filter(SearchEvent.result_count == 0).label("zero"),
        )
        .where(_window(SearchEvent.created_at, days, period))
        .group_by(day)
    )
    click_day = _utc_day(session, SearchClick.created_at)
    clicks = (
        select(click_day.label("day"), func.count().label("clicks"))
        .where(_window(SearchClick.created_at, days, period))
        .group_by(click_day)
    )
    by_day: dict[str, dict[str, Any]] = {}
    for row in (await session.execute(searches)).all():
        key = str(row.day)[:10]
        by_day[key] = {
            "day": key,
            "searches": int(row.searches),
            "zero_results": int(row.zero),
            "clicks": 0,
        }
    for click_row in (await session.execute(clicks)).all():
        key = str(click_row.day)[:10]
        by_day.setdefault(key, {"day": key, "searches": 0, "zero_results": 0, "clicks": 0})
        by_day[key]["clicks"] = int(click_row.clicks)
    return [by_day[k] for k in sorted(by_day)]
