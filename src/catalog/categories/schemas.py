from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, Field, field_validator

from catalog.kit.schemas import Description, InputModel, Name, OutputModel, Slug, UpdateModel


def has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return False


class NoNulStrings(BaseModel):
    """Refuses NUL characters in every string field: PostgreSQL text cannot store them."""

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if has_nul(value):
            raise ValueError("must not contain NUL characters")
        return value


class CategoryCreate(NoNulStrings, InputModel):
    name: Name
    slug: Slug | None = Field(default=None, description="Generated from the name when absent")
    parent_id: uuid.UUID | None = Field(default=None, description="Null for a root category")
    description: Description | None = None


class CategoryReplace(NoNulStrings, InputModel):
    name: Name
    slug: Slug
    parent_id: uuid.UUID | None = None
    description: Description | None = None


class CategoryUpdate(NoNulStrings, UpdateModel):
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
