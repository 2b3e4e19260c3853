from __future__ import annotations

import datetime as dt
import uuid

from pydantic import Field

from catalog.kit.schemas import Description, InputModel, Name, OutputModel, Slug, UpdateModel


class CategoryCreate(InputModel):
    name: Name
    slug: Slug | None = Field(default=None, description="Generated from the name when absent")
    parent_id: uuid.UUID | None = Field(default=None, description="Null for a root category")
    description: Description | None = None


class CategoryReplace(InputModel):
    name: Name
    slug: Slug
    parent_id: uuid.UUID | None = None
    description: Description | None = None


class CategoryUpdate(UpdateModel):
    __non_nullable__ = ("name", "slug")

    name: Name | None = None
    slug: Slug | None = None
    parent_id: uuid.UUID | None = Field(
        default=None, description="Move the category under another parent (null: make it a root)"
    )
    description: Description | None = None


class CategoryOut(OutputModel):
    id: uuid.UUID
    parent_id: uuid.UUID | None
    name: str
    slug: str
    description: str | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


class CategoryNode(OutputModel):
    id: uuid.UUID
    parent_id: uuid.UUID | None
    name: str
    slug: str
    path: str = Field(description="Slugs from the root, joined by '/'")
    children: list[CategoryNode]
