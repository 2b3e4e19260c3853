from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from catalog.kit.schemas import OutputModel, UpdateModel

AltText = Annotated[str, StringConstraints(max_length=500)]


class RenditionOut(OutputModel):
    name: str = Field(
        description="`original`, or the size of the long side in px", examples=["480"]
    )
    format: Literal["jpeg", "png", "webp"]
    url: str
    width: int
    height: int
    bytes: int


class ImageOut(OutputModel):
    id: uuid.UUID
    product_id: uuid.UUID
    position: int = Field(description="0 for the first image of the product")
    is_primary: bool
    alt_text: str | None
    format: Literal["jpeg", "png", "webp", "gif"] = Field(description="Format of the upload")
    width: int = Field(description="Width of the upright original")
    height: int
    placeholder: str = Field(description="A tiny blurred preview as a `data:` URI")
    variant_ids: list[uuid.UUID] = Field(description="Variants this image shows; [] for all")
    renditions: list[RenditionOut]
    created_at: dt.datetime
    updated_at: dt.datetime


class ImageUpdate(UpdateModel):
    __non_nullable__ = ("position", "is_primary", "variant_ids")

    alt_text: AltText | None = None
    position: Annotated[int, Field(ge=0, le=10_000)] | None = Field(
        default=None, description="Move the image to this place; the others shift"
    )
    is_primary: bool | None = Field(
        default=None, description="`true` makes this the product's primary image"
    )
    variant_ids: Annotated[list[uuid.UUID], Field(max_length=100)] | None = Field(
        default=None, description="Replace the variants this image is attached to"
    )

    @field_validator("is_primary")
    @classmethod
    def _only_true(cls, value: bool | None) -> bool | None:
        if value is False:
            raise ValueError("a product always has a primary image: make another one primary")
        return value
