from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from catalog.auth.dependencies import catalog_admin
from catalog.categories import service
from catalog.categories.schemas import (
    CategoryCreate,
    CategoryNode,
    CategoryOut,
    CategoryReplace,
    CategoryUpdate,
)
from catalog.dependencies import ReadCacheDep, SessionDep, SettingsDep
from catalog.errors import responses
from catalog.kit.http import (
    cached_response,
    check_if_match,
    dumps,
    etag_for,
    json_response,
    model_json,
    resource_response,
)
from catalog.kit.invalidation import CATEGORIES
from catalog.kit.schemas import Page

WRITE = [Depends(catalog_admin)]  # brands and categories: admin-only writes

router = APIRouter(prefix="/categories", tags=["categories"])


@router.get("", response_model=Page[CategoryOut], responses=responses(422))
async def list_categories(
    session: SessionDep,
    settings: SettingsDep,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    parent_id: Annotated[uuid.UUID | None, Query(description="Only direct children")] = None,
) -> Response:
    size = min(limit or settings.default_page_size, settings.max_page_size)
    rows, next_cursor = await service.list_categories(
        session, limit=size, cursor=cursor, parent_id=parent_id
    )
    items = [CategoryOut.model_validate(c).model_dump(mode="json") for c in rows]
    return json_response(dumps({"items": items, "next_cursor": next_cursor}))


@router.get("/tree", response_model=list[CategoryNode], responses=responses(304))
async def category_tree(
    request: Request, session: SessionDep, settings: SettingsDep, read_cache: ReadCacheDep
) -> Response:
    async def compute() -> bytes:
        return dumps(await service.tree(session))

    if read_cache is not None:
        key = await read_cache.key("category_tree", [CATEGORIES], "all")
        if key is not None:
            value = await read_cache.fetch(
                "category_tree", key, compute, settings.cache_ttl_seconds
            )
            return cached_response(request, value)
    return resource_response(request, await compute())


@router.post(
    "",
    status_code=201,
    response_model=CategoryOut,
    responses=responses(401, 403, 409, 422),
    dependencies=WRITE,
)
async def create_category(request: Request, session: SessionDep, data: CategoryCreate) -> Response:
    category = await service.create(session, data)
    return resource_response(
        request,
        model_json(CategoryOut, category),
        status_code=201,
        headers={"Location": f"{request.url.path}/{category.id}"},
    )


@router.get("/{category_id}", response_model=CategoryOut, responses=responses(304, 404, 422))
async def get_category(request: Request, session: SessionDep, category_id: uuid.UUID) -> Response:
    category = await service.get(session, category_id)
    return resource_response(request, model_json(CategoryOut, category))


@router.put(
    "/{category_id}",
    response_model=CategoryOut,
    responses=responses(401, 403, 404, 409, 412, 422),
    dependencies=WRITE,
)
async def replace_category(
    request: Request, session: SessionDep, category_id: uuid.UUID, data: CategoryReplace
) -> Response:
    category = await service.get(session, category_id)
    check_if_match(request, etag_for(model_json(CategoryOut, category)))
    category = await service.update(session, category, data)
    return resource_response(request, model_json(CategoryOut, category))


@router.patch(
    "/{category_id}",
    response_model=CategoryOut,
    responses=responses(401, 403, 404, 409, 412, 422),
    dependencies=WRITE,
)
async def update_category(
    request: Request, session: SessionDep, category_id: uuid.UUID, data: CategoryUpdate
) -> Response:
    category = await service.get(session, category_id)
    check_if_match(request, etag_for(model_json(CategoryOut, category)))
    category = await service.update(session, category, data)
    return resource_response(request, model_json(CategoryOut, category))


@router.delete(
    "/{category_id}",
    status_code=204,
    responses=responses(401, 403, 404, 409, 412, 422),
    dependencies=WRITE,
)
async def delete_category(
    request: Request,
    session: SessionDep,
    category_id: uuid.UUID,
    reparent: Annotated[
        bool,
        Query(description="Move sub-categories and products to the parent instead of refusing"),
    ] = False,
) -> Response:
    category = await service.get(session, category_id)
    check_if_match(request, etag_for(model_json(CategoryOut, category)))
    await service.delete(session, category, reparent=reparent)
    return Response(status_code=204)
