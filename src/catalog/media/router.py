from __future__ import annotations

import uuid
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import FileResponse
from starlette.datastructures import UploadFile

from catalog.auth import policy
from catalog.auth.dependencies import CatalogWriterDep, PrincipalDep
from catalog.auth.principal import Principal
from catalog.dependencies import SessionDep, SettingsDep
from catalog.errors import NotFound, Unprocessable, responses
from catalog.kit.http import PRIVATE_CACHE, PUBLIC_CACHE, dumps, resource_response
from catalog.media import service
from catalog.media.dependencies import ImageProcessorDep, MediaStorageDep
from catalog.media.processing import ImageRefused, ProcessedImage
from catalog.media.schemas import ImageOut, ImageUpdate
from catalog.media.storage import (
    IMMUTABLE,
    InvalidKey,
    LocalMediaStorage,
    check_key,
    content_type,
)
from catalog.models import Product, ProductImage
from catalog.products import service as products

READ_CHUNK = 64 * 1024


ProductId = Annotated[uuid.UUID, Path(description="Product id")]
ImageId = Annotated[uuid.UUID, Path(description="Image id")]

product_images_router = APIRouter(prefix="/products", tags=["images"])
images_router = APIRouter(prefix="/images", tags=["images"])

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "One or more JPEG, PNG, WebP or GIF images",
                        }
                    },
                }
            }
        },
    }
}


def _cache_control(principal: Principal) -> str:
    return PRIVATE_CACHE if principal.is_authenticated else PUBLIC_CACHE


async def _manageable_product(
    session: SessionDep, principal: Principal, product_id: uuid.UUID, not_found: NotFound
) -> Product:
    try:
        product = await products.load(session, product_id)
    except products.ProductNotFound:
        raise not_found from None
    policy.ensure_can_manage_product(principal, product, not_found)
    return product


async def _locked(session: SessionDep, product_id: uuid.UUID, not_found: NotFound) -> Product:
    product = await service.lock_product(session, product_id)
    if product is None:
        raise not_found
    return product


async def _read_upload(upload: UploadFile, index: int, limit: int) -> bytes:
    """The file's bytes, refusing it as soon as it grows past `limit`."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await upload.read(READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise service.refused(
                index,
                upload.filename,
                ImageRefused(413, f"The file is larger than the limit of {limit} bytes"),
            )
        chunks.append(chunk)
    return b"".join(chunks)


@product_images_router.post(
    "/{product_id}/images",
    status_code=201,
    response_model=list[ImageOut],
    responses=responses(400, 401, 403, 404, 409, 413, 415, 422),
    openapi_extra=UPLOAD_BODY,
)
async def upload_images(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: CatalogWriterDep,
    storage: MediaStorageDep,
    processor: ImageProcessorDep,
    product_id: ProductId,
) -> Response:
    """Add images to a product (its seller or an administrator), as multipart field `files`.
    Every file is checked and processed before anything is stored: one refused file refuses
    the request. The first image of a product becomes its primary image."""
    not_found = products.ProductNotFound(product_id)
    await _manageable_product(session, principal, product_id, not_found)
    # No connection is held while the images are read and processed (seconds for large ones).
    await session.commit()

    processed: list[ProcessedImage] = []
    async with request.form(max_files=settings.media_max_files_per_request, max_fields=10) as form:
        uploads = form.getlist("files")
        if not uploads:
            raise Unprocessable(
                "Send one or more images in the field 'files'", loc=["body", "files"]
            )
        for index, upload in enumerate(uploads):
            if not isinstance(upload, UploadFile):
                raise Unprocessable("'files' must be files", loc=["body", "files", index])
            data = await _read_upload(upload, index, settings.media_max_upload_bytes)
            try:
                processed.append(await processor.process(data))
            except ImageRefused as exc:
                raise service.refused(index, upload.filename, exc) from None

    keys = await service.store_files(storage, processed)
    try:
        product = await _locked(session, product_id, not_found)
        images = await service.add_images(session, storage, product, processed)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await session.rollback()
            await service.discard_unreferenced(request.app.state.sessionmaker, storage, keys)
        raise
    body = dumps([service.serialize(image, storage) for image in images])
    return resource_response(request, body, status_code=201, headers={"Location": request.url.path})


@product_images_router.get(
    "/{product_id}/images",
    response_model=list[ImageOut],
    responses=responses(304, 404, 422),
)
async def list_images(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    storage: MediaStorageDep,
    product_id: ProductId,
) -> Response:
    """A product's images in display order (primary image flagged), visible like the product."""
    product = await products.load(session, product_id)
    if not policy.can_see_product(principal, product):
        raise products.ProductNotFound(product_id)
    images = await service.product_images(session, product_id)
    body = dumps([service.serialize(image, storage) for image in images])
    return resource_response(request, body, cache_control=_cache_control(principal))


async def _image_and_product(
    session: SessionDep, principal: Principal, image_id: uuid.UUID
) -> tuple[ProductImage, Product]:
    image = await service.load_image(session, image_id)
    not_found = service.ImageNotFound(image_id)
    product = await _manageable_product(session, principal, image.product_id, not_found)
    return image, product


@images_router.get("/{image_id}", response_model=ImageOut, responses=responses(304, 404, 422))
async def get_image(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    storage: MediaStorageDep,
    image_id: ImageId,
) -> Response:
    image = await service.load_image(session, image_id)
    try:
        product = await products.load(session, image.product_id)
    except products.ProductNotFound:
        raise service.ImageNotFound(image_id) from None
    if not policy.can_see_product(principal, product):
        raise service.ImageNotFound(image_id)
    body = dumps(service.serialize(image, storage))
    return resource_response(request, body, cache_control=_cache_control(principal))


@images_router.patch(
    "/{image_id}", response_model=ImageOut, responses=responses(401, 403, 404, 409, 422)
)
async def update_image(
    request: Request,
    session: SessionDep,
    principal: CatalogWriterDep,
    storage: MediaStorageDep,
    image_id: ImageId,
    data: ImageUpdate,
) -> Response:
    """Alt text, place in the order, primary flag and the variants the image shows."""
    image, product = await _image_and_product(session, principal, image_id)
    product = await _locked(session, product.id, service.ImageNotFound(image_id))
    image = await service.update_image(session, storage, product, image, data.changes())
    return resource_response(request, dumps(service.serialize(image, storage)))


@images_router.delete("/{image_id}", status_code=204, responses=responses(401, 403, 404, 422))
async def delete_image(
    session: SessionDep, principal: CatalogWriterDep, storage: MediaStorageDep, image_id: ImageId
) -> Response:
    """Remove the image and every one of its files (once no other image shares them)."""
    image, product = await _image_and_product(session, principal, image_id)
    product = await _locked(session, product.id, service.ImageNotFound(image_id))
    await service.delete_image(session, storage, product, image)
    return Response(status_code=204)


# --------------------------------------------------------------------------- local files

files_router = APIRouter(tags=["media"], include_in_schema=False)


@files_router.api_route("/media/{key:path}", methods=["GET", "HEAD"])
async def media_file(key: str, storage: MediaStorageDep) -> Response:
    """Files of the local storage, cacheable forever (their names are their contents' hash)."""
    if not isinstance(storage, LocalMediaStorage):
        raise NotFound("Not Found")
    try:
        path = storage.path(check_key(key))
    except InvalidKey:
        raise NotFound("Not Found") from None
    if not await anyio.Path(path).is_file():
        raise NotFound("Not Found")
    return FileResponse(
        path,
        media_type=content_type(key),
        headers={"Cache-Control": IMMUTABLE},  # nosniff comes from the security headers
    )
