from __future__ import annotations

import re
import time
import uuid
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from catalog.analytics.recorder import EventRecorder
from catalog.auth.dependencies import AnalyticsReaderDep, PrincipalDep, catalog_admin
from catalog.db import new_id
from catalog.dependencies import ReadCacheDep, SearchSessionDep, SessionDep, SettingsDep
from catalog.errors import Unprocessable, responses
from catalog.kit.cache import Cached
from catalog.kit.http import (
    cached_response,
    check_if_match,
    dumps,
    etag_for,
    json_response,
    query_fingerprint,
    resource_response,
)
from catalog.kit.invalidation import REFS, SEARCH
from catalog.search import service
from catalog.search.backend import SearchBackend, SearchFilters, SearchSort
from catalog.search.query import MAX_QUERY_LENGTH
from catalog.search.schemas import (
    ClickIn,
    QueryStat,
    SearchResponse,
    SuggestResponse,
    SynonymIn,
    SynonymOut,
    VolumePoint,
)

router = APIRouter(prefix="/search", tags=["search"])

MAX_RESULT_WINDOW = 10_000
MAX_ATTRIBUTE_FILTERS = 10
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
ADMIN = [Depends(catalog_admin)]


async def get_backend(request: Request) -> SearchBackend:
    backend: SearchBackend = request.app.state.search_backend
    return backend


async def get_recorder(request: Request) -> EventRecorder | None:
    recorder: EventRecorder | None = request.app.state.recorder
    return recorder


BackendDep = Annotated[SearchBackend, Depends(get_backend)]
RecorderDep = Annotated[EventRecorder | None, Depends(get_recorder)]


def _attribute_filters(request: Request) -> tuple[tuple[str, tuple[str, ...]], ...]:
    grouped: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        if not key.startswith("attributes."):
            continue
        name = key.removeprefix("attributes.")
        if not _ATTRIBUTE_NAME.match(name):
            raise Unprocessable(f"Invalid attribute name '{name[:64]}'", loc=["query", key[:80]])
        if len(value) > 200:
            raise Unprocessable("Attribute values are at most 200 characters", loc=["query", key])
        grouped.setdefault(name, []).append(value)
    if len(grouped) > MAX_ATTRIBUTE_FILTERS:
        raise Unprocessable(f"At most {MAX_ATTRIBUTE_FILTERS} attribute filters", loc=["query"])
    return tuple((name, tuple(values)) for name, values in grouped.items())


@router.get("", response_model=SearchResponse, responses=responses(422))
async def search(
    request: Request,
    session: SearchSessionDep,
    settings: SettingsDep,
    read_cache: ReadCacheDep,
    backend: BackendDep,
    recorder: RecorderDep,
    principal: PrincipalDep,
    q: Annotated[
        str | None, Query(max_length=MAX_QUERY_LENGTH, description="Words to find")
    ] = None,
    category_id: Annotated[uuid.UUID | None, Query(description="Includes sub-categories")] = None,
    brand_id: Annotated[list[uuid.UUID] | None, Query(max_length=50)] = None,
    price_min: Annotated[Decimal | None, Query(ge=0, lt=Decimal("1e12"))] = None,
    price_max: Annotated[Decimal | None, Query(ge=0, lt=Decimal("1e12"))] = None,
    in_stock: bool | None = None,
    rating_min: Annotated[float | None, Query(ge=0, le=5)] = None,
    facet: Annotated[
        list[str] | None,
        Query(max_length=10, description="Attribute names to count values of, e.g. color"),
    ] = None,
    sort: Annotated[
        SearchSort | None, Query(description="Default: relevance with q, popularity without")
    ] = None,
    page: Annotated[int, Query(ge=1, le=MAX_RESULT_WINDOW)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """Full-text search over active products with filters, facets and typo tolerance.

    Filter on attributes with `attributes.<name>=<value>` (repeat for several values). Facets
    count over the filtered results, each ignoring its own filter."""
    if price_min is not None and price_max is not None and price_min > price_max:
        raise Unprocessable(
            "price_min must not be greater than price_max", loc=["query", "price_min"]
        )
    if page * page_size > MAX_RESULT_WINDOW:
        raise Unprocessable(
            f"Only the first {MAX_RESULT_WINDOW} results can be paged through; refine the query",
            loc=["query", "page"],
        )
    attributes = _attribute_filters(request)
    facets: list[str] = []
    for name in [*(facet or []), *(a for a, _ in attributes)]:
        if not _ATTRIBUTE_NAME.match(name):
            raise Unprocessable(f"Invalid attribute name '{name[:64]}'", loc=["query", "facet"])
        if name not in facets:
            facets.append(name)
    filters = SearchFilters(
        category_id=category_id,
        brand_ids=tuple(brand_id or ()),
        price_min=price_min,
        price_max=price_max,
        in_stock=in_stock,
        rating_min=rating_min,
        attributes=attributes,
    )
    session_id = request.headers.get("x-session-id")
    started = time.perf_counter()

    async def compute() -> tuple[bytes, str]:
        body, total = await service.run_search(
            session,
            backend,
            q=q,
            filters=filters,
            sort=sort,
            page=page,
            page_size=page_size,
            facet_attributes=tuple(facets),
            facet_cache=(
                service.CachedFacetCounts(read_cache, settings.cache_list_ttl_seconds)
                if read_cache is not None
                else None
            ),
            memo=request.app.state.search_memo,
        )
        return dumps(body), str(total)

    value: Cached | None = None
    if read_cache is not None:
        # Results are the same for every caller: only active products are searchable.
        key = await read_cache.key("search", [SEARCH, REFS], query_fingerprint(request))
        if key is not None:
            value = await read_cache.fetch("search", key, compute, settings.cache_list_ttl_seconds)
    if value is None:
        body, meta = await compute()
        value = Cached(body=body, etag="", meta=meta)
    search_id = new_id()
    service.record_search(
        recorder,
        search_id=search_id,
        q=q,
        filters=filters,
        sort=sort,
        result_count=int(value.meta or 0),
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
        user_id=principal.user_id,
        session_id=session_id[:64] if session_id else None,
    )
    # The cached answer is shared; each response gets its own search_id for click tracking.
    payload = value.body[:-1] + b',"search_id":"' + str(search_id).encode() + b'"}'
    return json_response(payload, headers={"Cache-Control": "no-store"})


@router.get("/suggest", response_model=SuggestResponse, responses=responses(422))
async def suggest(
    request: Request,
    session: SearchSessionDep,
    settings: SettingsDep,
    read_cache: ReadCacheDep,
    backend: BackendDep,
    q: Annotated[str, Query(min_length=1, max_length=100)],
    limit: Annotated[int, Query(ge=1, le=10)] = 10,
) -> Response:
    """Autocomplete: product names, brands, categories and popular searches for a prefix."""

    async def compute() -> bytes:
        suggestions = await backend.suggest(session, q, limit)
        return dumps(
            {"suggestions": [{"text": s.text, "kind": s.kind, "id": s.id} for s in suggestions]}
        )

    if read_cache is not None:
        key = await read_cache.key("suggest", [SEARCH], query_fingerprint(request))
        if key is not None:
            value = await read_cache.fetch("suggest", key, compute, settings.cache_list_ttl_seconds)
            return cached_response(request, value)
    return json_response(await compute())


@router.post("/click", status_code=202, response_class=Response, responses=responses(422))
async def click(recorder: RecorderDep, principal: PrincipalDep, data: ClickIn) -> Response:
    """Record that a search result was opened (for click-through analytics)."""
    service.record_click(
        recorder,
        search_id=data.search_id,
        product_id=data.product_id,
        position=data.position,
        user_id=principal.user_id,
    )
    return Response(status_code=202)


# --------------------------------------------------------------------------- synonyms (admin)


@router.get(
    "/synonyms", response_model=list[SynonymOut], responses=responses(401, 403), dependencies=ADMIN
)
async def list_synonyms(session: SessionDep) -> Response:
    rows = await service.list_synonyms(session)
    return json_response(dumps([service.synonym_out(r) for r in rows]))


@router.post(
    "/synonyms",
    status_code=201,
    response_model=SynonymOut,
    responses=responses(401, 403, 422),
    dependencies=ADMIN,
)
async def create_synonym(request: Request, session: SessionDep, data: SynonymIn) -> Response:
    row = await service.create_synonym(session, data)
    return resource_response(
        request,
        dumps(service.synonym_out(row)),
        status_code=201,
        headers={"Location": f"{request.url.path}/{row.id}"},
    )


@router.get(
    "/synonyms/{synonym_id}",
    response_model=SynonymOut,
    responses=responses(304, 401, 403, 404, 422),
    dependencies=ADMIN,
)
async def get_synonym(request: Request, session: SessionDep, synonym_id: uuid.UUID) -> Response:
    row = await service.get_synonym(session, synonym_id)
    return resource_response(request, dumps(service.synonym_out(row)))


@router.put(
    "/synonyms/{synonym_id}",
    response_model=SynonymOut,
    responses=responses(401, 403, 404, 412, 422),
    dependencies=ADMIN,
)
async def replace_synonym(
    request: Request, session: SessionDep, synonym_id: uuid.UUID, data: SynonymIn
) -> Response:
    row = await service.get_synonym(session, synonym_id)
    check_if_match(request, etag_for(dumps(service.synonym_out(row))))
    row = await service.update_synonym(session, row, data)
    return resource_response(request, dumps(service.synonym_out(row)))


@router.delete(
    "/synonyms/{synonym_id}",
    status_code=204,
    responses=responses(401, 403, 404, 412, 422),
    dependencies=ADMIN,
)
async def delete_synonym(request: Request, session: SessionDep, synonym_id: uuid.UUID) -> Response:
    row = await service.get_synonym(session, synonym_id)
    check_if_match(request, etag_for(dumps(service.synonym_out(row))))
    await service.delete_synonym(session, row)
    return Response(status_code=204)


# --------------------------------------------------------------------------- analytics (admin)

Days = Annotated[int, Query(ge=1, le=366, description="Look back this many days")]
Limit = Annotated[int, Query(ge=1, le=100)]


@router.get(
    "/analytics/top-queries", response_model=list[QueryStat], responses=responses(401, 403, 422)
)
async def top_queries(
    session: SessionDep, _reader: AnalyticsReaderDep, days: Days = 30, limit: Limit = 20
) -> Response:
    return json_response(dumps(await service.top_queries(session, days=days, limit=limit)))


@router.get(
    "/analytics/zero-results", response_model=list[QueryStat], responses=responses(401, 403, 422)
)
async def zero_results(
    session: SessionDep, _reader: AnalyticsReaderDep, days: Days = 30, limit: Limit = 20
) -> Response:
    return json_response(dumps(await service.zero_result_queries(session, days=days, limit=limit)))


@router.get(
    "/analytics/low-click-through",
    response_model=list[QueryStat],
    responses=responses(401, 403, 422),
)
async def low_click_through(
    session: SessionDep,
    _reader: AnalyticsReaderDep,
    days: Days = 30,
    limit: Limit = 20,
    min_searches: Annotated[int, Query(ge=1, le=100_000)] = 5,
) -> Response:
    rows = await service.low_click_through(
        session, days=days, limit=limit, min_searches=min_searches
    )
    return json_response(dumps(rows))


@router.get(
    "/analytics/volume", response_model=list[VolumePoint], responses=responses(401, 403, 422)
)
async def search_volume(
    session: SessionDep, _reader: AnalyticsReaderDep, days: Days = 30
) -> Response:
    return json_response(dumps(await service.volume(session, days=days)))
