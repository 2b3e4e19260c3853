"""Product images: ordering, the primary image, variant links and their stored files.

Rules:
* a product with images has exactly one primary image (the first upload becomes primary; when
  the primary is deleted the next one in order takes over), enforced by a unique index too;
* positions are 0..n-1 in display order;
* the product row keeps its primary image's thumbnail URL (`product.thumbnail_url`), so product
  reads need no extra query; every image write invalidates the product's cached answers;
* files are content-addressed and may be shared by several images: a file is removed from
  storage, after the transaction commits, once no rendition row refers to it any more.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import anyio
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from catalog.db import after_commit, utcnow
from catalog.errors import CatalogError, NotFound, Unprocessable
from catalog.kit.invalidation import invalidate_product
from catalog.media.processing import ImageRefused, ProcessedImage
from catalog.media.storage import MediaStorage
from catalog.models import (
    ImageRendition,
    Product,
    ProductImage,
    ProductImageVariant,
    ProductVariant,
)

log = structlog.get_logger(__name__)

# The rendition whose URL summaries carry.
THUMBNAIL = ("480", "webp")
MAX_IMAGES_PER_PRODUCT = 100
STORE_CONCURRENCY = 8


class ImageNotFound(NotFound):
    def __init__(self, image_id: uuid.UUID) -> None:
        super().__init__(f"Image {image_id} not found")


class ContentTooLarge(CatalogError):
    status = 413
    title = "Content Too Large"


class UnsupportedMediaType(CatalogError):
    status = 415
    title = "Unsupported Media Type"


def refused(index: int, filename: str | None, exc: ImageRefused) -> CatalogError:
    """The problem for a refused upload, naming the file (`files[index]`)."""
    name = (filename or f"file {index + 1}")[:200]
    detail = f"{name}: {exc.detail}"
    errors = [{"loc": ["body", "files", index], "msg": exc.detail, "type": "image"}]
    if exc.status == 415:
        return UnsupportedMediaType(detail, errors=errors)
    if exc.status == 413:
        return ContentTooLarge(detail, errors=errors)
    error = Unprocessable(detail)
    error.errors = errors
    return error


# --------------------------------------------------------------------------- loading


def _with_files(stmt: Any) -> Any:
    return stmt.options(
        selectinload(ProductImage.renditions), selectinload(ProductImage.variant_links)
    )


async def product_images(session: AsyncSession, product_id: uuid.UUID) -> list[ProductImage]:
    stmt = _with_files(
        select(ProductImage)
        .where(ProductImage.product_id == product_id)
        .order_by(ProductImage.position, ProductImage.id)
        .execution_options(populate_existing=True)
    )
    return list((await session.execute(stmt)).scalars())


async def load_image(session: AsyncSession, image_id: uuid.UUID) -> ProductImage:
    stmt = _with_files(select(ProductImage).where(ProductImage.id == image_id))
    image: ProductImage | None = (await session.execute(stmt)).scalar_one_or_none()
    if image is None:
        raise ImageNotFound(image_id)
    return image


async def lock_product(session: AsyncSession, product_id: uuid.UUID) -> Product | None:
    """The live product, locked (PostgreSQL) so image writes of one product run one at a
    time; None when it is gone or soft-deleted."""
    stmt = (
        select(Product)
        .where(Product.id == product_id, Product.deleted_at.is_(None))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


# --------------------------------------------------------------------------- serialization


def serialize(image: ProductImage, storage: MediaStorage) -> dict[str, Any]:
    """`ImageOut`."""
    return {
        "id": image.id,
        "product_id": image.product_id,
        "position": image.position,
        "is_primary": image.is_primary,
        "alt_text": image.alt_text,
        "format": image.source_format,
        "width": image.width,
        "height": image.height,
        "placeholder": image.placeholder,
        "variant_ids": sorted(str(link.variant_id) for link in image.variant_links),
        "renditions": [
            {
                "name": r.name,
                "format": r.format,
                "url": storage.url(r.storage_key),
                "width": r.width,
                "height": r.height,
                "bytes": r.bytes,
            }
            for r in sorted(image.renditions, key=_rendition_order)
        ],
        "created_at": image.created_at,
        "updated_at": image.updated_at,
    }


def _rendition_order(r: ImageRendition) -> tuple[int, str]:
    return (r.width if r.name != "original" else 1 << 30, r.format)


# --------------------------------------------------------------------------- files


async def store_files(storage: MediaStorage, processed: Sequence[ProcessedImage]) -> list[str]:
    """Write every rendition (each distinct file once); returns the keys written."""
    files = {r.key: r.data for image in processed for r in image.renditions}
    limiter = anyio.Semaphore(STORE_CONCURRENCY)

    async def put(key: str, data: bytes) -> None:
        async with limiter:
            await storage.put(key, data)

    async with anyio.create_task_group() as tg:
        for key, data in files.items():
            tg.start_soon(put, key, data)
    return list(files)


async def _unreferenced(session: AsyncSession, keys: Iterable[str]) -> list[str]:
    wanted = sorted(set(keys))
    if not wanted:
        return []
    stmt = select(ImageRendition.storage_key).where(ImageRendition.storage_key.in_(wanted))
    used = set((await session.execute(stmt)).scalars())
    return [k for k in wanted if k not in used]


def discard_files_after_commit(
    session: AsyncSession, storage: MediaStorage, keys: Iterable[str]
) -> None:
    """Once the transaction has committed, remove the files no image refers to any more."""
    candidates = sorted(set(keys))
    if not candidates:
        return

    async def discard() -> None:
        try:
            await storage.delete(await _unreferenced(session, candidates))
        except Exception as exc:  # the write stands; an orphaned file is only wasted space
            log.warning("media_discard_failed", error=str(exc)[:300], keys=len(candidates))

    after_commit(session, discard)


async def discard_unreferenced(
    sessionmaker: async_sessionmaker[AsyncSession], storage: MediaStorage, keys: Iterable[str]
) -> None:
    """Remove files a failed upload wrote and nothing refers to (in a session of its own)."""
    try:
        async with sessionmaker() as session:
            await storage.delete(await _unreferenced(session, keys))
    except Exception as exc:
        log.warning("media_discard_failed", error=str(exc)[:300])


async def product_file_keys(session: AsyncSession, product_id: uuid.UUID) -> list[str]:
    stmt = (
        select(ImageRendition.storage_key)
        .join(ProductImage, ProductImage.id == ImageRendition.image_id)
        .where(ProductImage.product_id == product_id)
        .distinct()
    )
    return list((await session.execute(stmt)).scalars())


async def forget_product_images(
    session: AsyncSession, storage: MediaStorage, product_id: uuid.UUID
) -> None:
    """Before a product is removed for good (its image rows go with it, by the foreign keys'
    cascade): its files are removed once the removal has committed."""
    discard_files_after_commit(session, storage, await product_file_keys(session, product_id))


# --------------------------------------------------------------------------- writes


def _thumbnail_key(image: ProductImage) -> str | None:
    for r in image.renditions:
        if (r.name, r.format) == THUMBNAIL:
            return r.storage_key
    return None


async def _settle(
    session: AsyncSession, storage: MediaStorage, product: Product, images: list[ProductImage]
) -> None:
    """Positions 0..n-1 in the given order, exactly one primary, the product's thumbnail, and
    the product's cached answers invalidated."""
    for i, image in enumerate(images):
        image.position = i
    primaries = [image for image in images if image.is_primary]
    primary = primaries[0] if primaries else (images[0] if images else None)
    # The unique index allows one primary at a time: clear the others first.
    for image in images:
        if image is not primary and image.is_primary:
            image.is_primary = False
    await session.flush()
    if primary is not None and not primary.is_primary:
        primary.is_primary = True
        await session.flush()
    key = _thumbnail_key(primary) if primary is not None else None
    thumbnail = storage.url(key) if key else None
    if product.thumbnail_url != thumbnail:
        product.thumbnail_url = thumbnail
    product.updated_at = utcnow()
    await session.flush()
    invalidate_product(session, product.id, product.slug)


async def add_images(
    session: AsyncSession,
    storage: MediaStorage,
    product: Product,
    processed: Sequence[ProcessedImage],
) -> list[ProductImage]:
    """Append uploaded images (their files already stored) after the product's others."""
    existing = await product_images(session, product.id)
    if len(existing) + len(processed) > MAX_IMAGES_PER_PRODUCT:
        raise Unprocessable(
            f"A product has at most {MAX_IMAGES_PER_PRODUCT} images ({len(existing)} already)",
            loc=["body", "files"],
        )
    added: list[ProductImage] = []
    for item in processed:
        image = ProductImage(
            product_id=product.id,
            position=len(existing) + len(added),
            is_primary=False,
            source_format=item.source_format,
            source_sha256=item.source_sha256,
            width=item.width,
            height=item.height,
            placeholder=item.placeholder,
            renditions=[
                ImageRendition(
                    name=r.name,
                    format=r.format,
                    width=r.width,
                    height=r.height,
                    bytes=len(r.data),
                    storage_key=r.key,
                )
                for r in item.renditions
            ],
            variant_links=[],
        )
        session.add(image)
        added.append(image)
    await session.flush()
    await _settle(session, storage, product, [*existing, *added])
    return added


async def _check_variants(
    session: AsyncSession, product: Product, variant_ids: list[uuid.UUID]
) -> list[uuid.UUID]:
    wanted = list(dict.fromkeys(variant_ids))
    if not wanted:
        return []
    stmt = select(ProductVariant.id).where(
        ProductVariant.product_id == product.id, ProductVariant.id.in_(wanted)
    )
    found = set((await session.execute(stmt)).scalars())
    for i, variant_id in enumerate(variant_ids):
        if variant_id not in found:
            raise Unprocessable(
                f"Variant {variant_id} is not a variant of this product",
                loc=["body", "variant_ids", i],
            )
    return wanted


async def update_image(
    session: AsyncSession,
    storage: MediaStorage,
    product: Product,
    image: ProductImage,
    changes: dict[str, Any],
) -> ProductImage:
    images = await product_images(session, product.id)
    current = next(i for i in images if i.id == image.id)
    if "alt_text" in changes:
        current.alt_text = changes["alt_text"] or None
    if "variant_ids" in changes:
        wanted = await _check_variants(session, product, changes["variant_ids"])
        kept = {link.variant_id: link for link in current.variant_links}
        current.variant_links = [
            kept.get(v) or ProductImageVariant(image_id=current.id, variant_id=v) for v in wanted
        ]
    if "position" in changes:
        images.remove(current)
        images.insert(min(changes["position"], len(images)), current)
    if changes.get("is_primary"):
        for other in images:
            if other is not current and other.is_primary:
                other.is_primary = False
        await session.flush()
        current.is_primary = True
    current.updated_at = utcnow()
    await _settle(session, storage, product, images)
    return (await product_images(session, product.id))[images.index(current)]


async def delete_image(
    session: AsyncSession, storage: MediaStorage, product: Product, image: ProductImage
) -> None:
    images = await product_images(session, product.id)
    current = next(i for i in images if i.id == image.id)
    keys = [r.storage_key for r in current.renditions]
    images.remove(current)
    await session.delete(current)
    await session.flush()
    await _settle(session, storage, product, images)
    discard_files_after_commit(session, storage, keys)
