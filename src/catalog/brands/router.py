from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from catalog.auth.dependencies import catalog_admin
from catalog.brands import service
from catalog.brands.schemas import BrandCreate, BrandOut, BrandReplace, BrandUpdate
from catalog.dependencies import ReadCacheDep, SessionDep, SettingsDep
from catalog.errors import responses
from catalog.kit.http import (
    cached_response,
    check_if_match,
    dumps,
    etag_for,
    json_response,
    model_json,
    query_fingerprint,
    resource_response,
)
from catalog.kit.invalidation import BRANDS
from catalog.kit.schemas import Page

WRITE = [Depends(catalog_admin)]  # brands and categories: admin-only writes

router = APIRouter(prefix="/brands", tags=["brands"])


@router.get("", response_model=Page[BrandOut], responses=responses(422))
async def list_brands(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    read_cache: ReadCacheDep,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    q: Annotated[str | None, Query(max_length=120, description="Name contains")] = None,
) -> Response:
    size = min(limit or settings.default_page_size, settings.max_page_size)

    async def page() -> bytes:
        rows, next_cursor = await service.list_brands(session, limit=size, cursor=cursor, q=q)
        items = [BrandOut.model_validate(b).model_dump(mode="json") for b in rows]
        return dumps({"items": items, "next_cursor": next_cursor})

    if read_cache is not None:
        key = await read_cache.key("brands", [BRANDS], query_fingerprint(request))
        if key is not None:
            value = await read_cache.fetch("brands", key, page, settings.cache_list_ttl_seconds)
            return cached_response(request, value)
    return json_response(await page())


@router.post(
    "",
    status_code=201,
    response_model=BrandOut,
    responses=responses(401, 403, 409, 422),
    dependencies=WRITE,
)
async def create_brand(request: Request, session: SessionDep, data: BrandCreate) -> Response:
    brand = await service.create(session, data)
    return resource_response(
        request,
        model_json(BrandOut, brand),
        status_code=201,
        headers={"Location": f"{request.url.path}/{brand.id}"},
    )


@router.get("/{brand_id}", response_model=BrandOut, responses=responses(304, 404, 422))
async def get_brand(request: Request, session: SessionDep, brand_id: uuid.UUID) -> Response:
    brand = await service.get(session, brand_id)
    return resource_response(request, model_json(BrandOut, brand))


@router.put(
    "/{brand_id}",
    response_model=BrandOut,
    responses=responses(401, 403, 404, 409, 412, 422),
    dependencies=WRITE,
)
async def replace_brand(
    request: Request, session: SessionDep, brand_id: uuid.UUID, data: BrandReplace
) -> Response:
    brand = await service.get(session, brand_id)
    check_if_match(request, etag_for(model_json(BrandOut, brand)))
    brand = await service.update(session, brand, data)
    return resource_response(request, model_json(BrandOut, brand))


@router.patch(
    "/{brand_id}",
    response_model=BrandOut,
    responses=responses(401, 403, 404, 409, 412, 422),
    dependencies=WRITE,
)
async def update_brand(
    request: Request, session: SessionDep, brand_id: uuid.UUID, data: BrandUpdate
) -> Response:
    brand = await service.get(session, brand_id)
    check_if_match(request, etag_for(model_json(BrandOut, brand)))
    brand = await service.update(session, brand, data)
    return resource_response(request, model_json(BrandOut, brand))


@router.delete(
    "/{brand_id}",
    status_code=204,
    responses=responses(401, 403, 404, 409, 412, 422),
    dependencies=WRITE,
)
async def delete_brand(request: Request, session: SessionDep, brand_id: uuid.UUID) -> Response:
    brand = await service.get(session, brand_id)
    check_if_match(request, etag_for(model_json(BrandOut, brand)))
    await service.delete(session, brand)
    return Response(status_code=204)
