from __future__ import annotations

import datetime as dt
import uuid

from pydantic import Field

from catalog.kit.schemas import (
    Description,
    HttpUrlStr,
    InputModel,
    Name,
    OutputModel,
    Slug,
    UpdateModel,
)

LogoUrl = HttpUrlStr


class BrandCreate(InputModel):
    name: Name
    slug: Slug | None = Field(default=None, description="Generated from the name when absent")
    description: Description | None = None
    logo_url: LogoUrl | None = None


class BrandReplace(InputModel):
    name: Name
    slug: Slug
    description: Description | None = None
    logo_url: LogoUrl | None = None


class BrandUpdate(UpdateModel):
    __non_nullable__ = ("name", "slug")

    name: Name | None = None
    slug: Slug | None = None
    description: Description | None = None
    logo_url: LogoUrl | None = None


class BrandOut(OutputModel):
    id: uuid.UUID
    name: str
    slug: str
    description: str | None
    logo_url: str | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
