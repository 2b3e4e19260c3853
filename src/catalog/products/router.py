from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from catalog.analytics.views import product_id_of, record_view
from catalog.auth import policy
from catalog.auth.dependencies import CatalogWriterDep, PrincipalDep, ProductCreatorDep
from catalog.auth.principal import ANONYMOUS, Principal
from catalog.dependencies import (
    ProductReadsDep,
    ReadCacheDep,
    RecorderDep,
    SessionDep,
    SettingsDep,
)
from catalog.errors import responses
from catalog.kit.http import (
    PRIVATE_CACHE,
    PUBLIC_CACHE,
    cached_response,
    check_if_match,
    dumps,
    etag_for,
    json_response,
    query_fingerprint,
    resource_response,
)
from catalog.kit.invalidation import PRODUCTS, REFS, product_ns, slug_ns
from catalog.kit.schemas import Page
from catalog.media import service as media
from catalog.media.dependencies import MediaStorageDep
from catalog.models import Product, ProductStatus
from catalog.products import service
from catalog.products.schemas import (
    ProductCreate,
    ProductOut,
    ProductReplace,
    ProductUpdate,
    StockAdjustment,
    VariantCreate,
    VariantOut,
    VariantReplace,
    VariantUpdate,
)
from catalog.products.service import ProductFilters, ProductSort

router = APIRouter(prefix="/products", tags=["products"])

ProductId = Annotated[uuid.UUID, Path(description="Product id")]
VariantId = Annotated[uuid.UUID, Path(description="Variant id")]
PriceQuery = Annotated[
    Decimal | None, Query(ge=0, lt=Decimal("1e12"), max_digits=16, decimal_places=4)
]


def _product_body(product: Product) -> bytes:
    return dumps(service.serialize(product))


def _check_product_if_match(request: Request, product: Product) -> None:
    if "if-match" in request.headers:
        check_if_match(request, etag_for(_product_body(product)))


def _cache_control(principal: Principal) -> str:
    return PRIVATE_CACHE if principal.is_authenticated else PUBLIC_CACHE


def _visible(principal: Principal, product: Product) -> Product:
    """Drafts and archived products exist only for their owner and admins."""
    if not policy.can_see_product(principal, product):
        raise service.ProductNotFound(product.id)
    return product


async def _manageable(
    session: SessionDep,
    principal: Principal,
    product_id: uuid.UUID,
    *,
    include_deleted: bool = False,
) -> Product:
    product = await service.load(
        session, product_id, include_deleted=include_deleted, for_update=True
    )
    policy.ensure_can_manage_product(principal, product, service.ProductNotFound(product_id))
    return product


@router.get("", response_model=Page[ProductOut], responses=responses(422))
async def list_products(
    request: Request,
    product_reads: ProductReadsDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    read_cache: ReadCacheDep,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    category_id: Annotated[
        uuid.UUID | None, Query(description="Includes products of sub-categories")
    ] = None,
    brand_id: uuid.UUID | None = None,
    status: ProductStatus | None = None,
    price_min: PriceQuery = None,
    price_max: PriceQuery = None,
    in_stock: bool | None = None,
    sort: ProductSort = ProductSort.created_at_desc,
) -> Response:
    size = min(limit or settings.default_page_size, settings.max_page_size)
    filters = ProductFilters(
        category_id=category_id,
        brand_id=brand_id,
        status=status,
        price_min=price_min,
        price_max=price_max,
        in_stock=in_stock,
    )

    async def page() -> bytes:
        return await product_reads.page_body(
            principal, filters, sort=sort, limit=size, cursor=cursor
        )

    if read_cache is not None and not principal.is_authenticated:
        key = await read_cache.key("products", [PRODUCTS, REFS], query_fingerprint(request))
        if key is not None:
            value = await read_cache.fetch("products", key, page, settings.cache_list_ttl_seconds)
            return cached_response(request, value)
    return json_response(await page(), headers={"Cache-Control": PRIVATE_CACHE})


@router.post(
    "", status_code=201, response_model=ProductOut, responses=responses(401, 403, 409, 422)
)
async def create_product(
    request: Request, session: SessionDep, principal: ProductCreatorDep, data: ProductCreate
) -> Response:
    """Create a product owned by the caller (sellers and admins)."""
    product = await service.create(session, data, owner_id=principal.user_id)
    return resource_response(
        request,
        _product_body(product),
        status_code=201,
        headers={"Location": f"{request.url.path}/{product.id}"},
    )


@router.get("/by-slug/{slug}", response_model=ProductOut, responses=responses(304, 404, 422))
async def get_product_by_slug(
    request: Request,
    product_reads: ProductReadsDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    read_cache: ReadCacheDep,
    recorder: RecorderDep,
    slug: Annotated[str, Path(max_length=200)],
) -> Response:
    async def body(who: Principal) -> bytes:
        return await product_reads.product_body(who, slug=slug)

    if read_cache is not None and not principal.is_authenticated:
        key = await read_cache.key("product_slug", [slug_ns(slug), REFS], slug)
        if key is not None:
            value = await read_cache.fetch(
                "product_slug", key, lambda: body(ANONYMOUS), settings.cache_ttl_seconds
            )
            record_view(recorder, request.scope, product_id_of(value.body), principal.user_id)
            return cached_response(request, value)
    content = await body(principal)
    record_view(recorder, request.scope, product_id_of(content), principal.user_id)
    return resource_response(request, content, cache_control=_cache_control(principal))


@router.get("/{product_id}", response_model=ProductOut, responses=responses(304, 404, 422))
async def get_product(
    request: Request,
    product_reads: ProductReadsDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    read_cache: ReadCacheDep,
    recorder: RecorderDep,
    product_id: ProductId,
) -> Response:
    """One product. Anonymous reads are served from the cache (no database query when hot);
    `If-None-Match` with the current ETag answers 304."""

    async def body(who: Principal) -> bytes:
        return await product_reads.product_body(who, product_id=product_id)

    if read_cache is not None and not principal.is_authenticated:
        key = await read_cache.key("product", [product_ns(product_id), REFS], str(product_id))
        if key is not None:
            value = await read_cache.fetch(
                "product", key, lambda: body(ANONYMOUS), settings.cache_ttl_seconds
            )
            record_view(recorder, request.scope, product_id, principal.user_id)
            return cached_response(request, value)
    content = await body(principal)
    record_view(recorder, request.scope, product_id, principal.user_id)
    return resource_response(request, content, cache_control=_cache_control(principal))


@router.put(
    "/{product_id}", response_model=ProductOut, responses=responses(401, 403, 404, 409, 412, 422)
)
async def replace_product(
    request: Request,
    session: SessionDep,
    principal: CatalogWriterDep,
    product_id: ProductId,
    data: ProductReplace,
) -> Response:
    product = await _manageable(session, principal, product_id)
    _check_product_if_match(request, product)
    product = await service.replace(session, product, data)
    return resource_response(request, _product_body(product))


@router.patch(
    "/{product_id}", response_model=ProductOut, responses=responses(401, 403, 404, 409, 412, 422)
)
async def update_product(
    request: Request,
    session: SessionDep,
    principal: CatalogWriterDep,
    product_id: ProductId,
    data: ProductUpdate,
) -> Response:
    product = await _manageable(session, principal, product_id)
    _check_product_if_match(request, product)
    product = await service.update(session, product, data)
    return resource_response(request, _product_body(product))


@router.delete("/{product_id}", status_code=204, responses=responses(401, 403, 404, 412, 422))
async def delete_product(
    request: Request,
    session: SessionDep,
    principal: CatalogWriterDep,
    storage: MediaStorageDep,
    product_id: ProductId,
    purge: Annotated[
        bool, Query(description="Remove the product for good (also a soft-deleted one)")
    ] = False,
) -> Response:
    """Soft delete: the product disappears from every read until restored, its images kept.
    With `purge=true` it is removed for good with its variants, images and image files."""
    product = await _manageable(session, principal, product_id, include_deleted=purge)
    _check_product_if_match(request, product)
    if purge:
        await media.forget_product_images(session, storage, product.id)
        await service.purge(session, product)
    else:
        await service.soft_delete(session, product)
    return Response(status_code=204)


@router.post(
    "/{product_id}/restore", response_model=ProductOut, responses=responses(401, 403, 404, 409, 422)
)
async def restore_product(
    request: Request, session: SessionDep, principal: CatalogWriterDep, product_id: ProductId
) -> Response:
    await _manageable(session, principal, product_id, include_deleted=True)
    product = await service.restore(session, product_id)
    return resource_response(request, _product_body(product))


# --------------------------------------------------------------------------- variants


def _variant_body(product: Product, variant_id: uuid.UUID) -> bytes:
    variant = service.find_variant(product, variant_id)
    return dumps(service.serialize_variant(variant, product.currency))


@router.get(
    "/{product_id}/variants", response_model=list[VariantOut], responses=responses(404, 422)
)
async def list_variants(
    session: SessionDep, principal: PrincipalDep, product_id: ProductId
) -> Response:
    product = _visible(principal, await service.load(session, product_id))
    body = dumps([service.serialize_variant(v, product.currency) for v in product.variants])
    return json_response(body)


@router.post(
    "/{product_id}/variants",
    status_code=201,
    response_model=VariantOut,
    responses=responses(401, 403, 404, 409, 422),
)
async def create_variant(
    request: Request,
    session: SessionDep,
    principal: CatalogWriterDep,
    product_id: ProductId,
    data: VariantCreate,
) -> Response:
    product = await _manageable(session, principal, product_id)
    variant = await service.add_variant(session, product, data)
    return resource_response(
        request,
        dumps(service.serialize_variant(variant, product.currency)),
        status_code=201,
        headers={"Location": f"{request.url.path}/{variant.id}"},
    )


@router.get(
    "/{product_id}/variants/{variant_id}",
    response_model=VariantOut,
    responses=responses(304, 404, 422),
)
async def get_variant(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    product_id: ProductId,
    variant_id: VariantId,
) -> Response:
    product = _visible(principal, await service.load(session, product_id))
    return resource_response(request, _variant_body(product, variant_id))


async def _write_variant(
    request: Request,
    session: SessionDep,
    principal: Principal,
    product_id: uuid.UUID,
    variant_id: uuid.UUID,
    data: VariantUpdate | VariantReplace,
) -> Response:
    product = await _manageable(session, principal, product_id)
    check_if_match(request, etag_for(_variant_body(product, variant_id)))
    variant = service.find_variant(product, variant_id)
    await service.update_variant(session, product, variant, data)
    return resource_response(request, dumps(service.serialize_variant(variant, product.currency)))


@router.put(
    "/{product_id}/variants/{variant_id}",
    response_model=VariantOut,
    responses=responses(401, 403, 404, 409, 412, 422),
)
async def replace_variant(
    request: Request,
    session: SessionDep,
    principal: CatalogWriterDep,
    product_id: ProductId,
    variant_id: VariantId,
    data: VariantReplace,
) -> Response:
    return await _write_variant(request, session, principal, product_id, variant_id, data)


@router.patch(
    "/{product_id}/variants/{variant_id}",
    response_model=VariantOut,
    responses=responses(401, 403, 404, 409, 412, 422),
)
async def update_variant(
    request: Request,
    session: SessionDep,
    principal: CatalogWriterDep,
    product_id: ProductId,
    variant_id: VariantId,
    data: VariantUpdate,
) -> Response:
    return await _write_variant(request, session, principal, product_id, variant_id, data)


@router.post(
    "/{product_id}/variants/{variant_id}/stock-adjustments",
    response_model=VariantOut,
    responses=responses(401, 403, 404, 409, 422),
)
async def adjust_variant_stock(
    session: SessionDep,
    principal: CatalogWriterDep,
    product_id: ProductId,
    variant_id: VariantId,
    data: StockAdjustment,
) -> Response:
    """Add to or take from a variant's stock atomically (`{"delta": -2}` for two units sold):
    concurrent adjustments are never lost, and 409 when the stock would go below zero."""
    product = await _manageable(session, principal, product_id)
    variant = await service.adjust_stock(
        session, product, service.find_variant(product, variant_id), data.delta
    )
    return json_response(dumps(service.serialize_variant(variant, product.currency)))


@router.delete(
    "/{product_id}/variants/{variant_id}",
    status_code=204,
    responses=responses(401, 403, 404, 409, 412, 422),
)
async def delete_variant(
    request: Request,
    session: SessionDep,
    principal: CatalogWriterDep,
    product_id: ProductId,
    variant_id: VariantId,
) -> Response:
    product = await _manageable(session, principal, product_id)
    check_if_match(request, etag_for(_variant_body(product, variant_id)))
    await service.delete_variant(session, product, service.find_variant(product, variant_id))
    return Response(status_code=204)
