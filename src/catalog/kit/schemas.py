"""Base pydantic models shared by the domains."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import (
    AfterValidator,
    AnyUrl,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    UrlConstraints,
    field_validator,
    model_validator,
)

from catalog.kit.slugs import SLUG_PATTERN


def has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return False


class InputModel(BaseModel):
    """Request bodies: unknown fields are refused, strings are trimmed, and NUL characters are
    refused everywhere (PostgreSQL text cannot store them)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if has_nul(value):
            raise ValueError("must not contain NUL characters")
        return value


class UpdateModel(InputModel):
    """PATCH bodies: only the fields sent are changed; `null` is refused for required fields."""

    __non_nullable__: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _no_null_for_required(self) -> Any:
        for name in self.__non_nullable__:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"'{name}' cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class OutputModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


T = TypeVar("T")


class Page(OutputModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page"
    )


Name = Annotated[str, StringConstraints(min_length=1, max_length=120, strip_whitespace=True)]
Slug = Annotated[
    str, StringConstraints(min_length=1, max_length=140, pattern=SLUG_PATTERN, to_lower=True)
]
Description = Annotated[str, StringConstraints(max_length=10_000)]

_http_url = TypeAdapter(
    Annotated[AnyUrl, UrlConstraints(max_length=2048, allowed_schemes=["http", "https"])]
)


def _validate_http_url(value: str) -> str:
    url = str(_http_url.validate_python(value))
    # Normalizing can lengthen it ("https://host" gains a "/"): the stored form must fit too.
    if len(url) > 2048:
        raise ValueError("URL should have at most 2048 characters once normalized")
    return url


HttpUrlStr = Annotated[
    str,
    StringConstraints(min_length=1, max_length=2048),
    AfterValidator(_validate_http_url),
    Field(json_schema_extra={"format": "uri"}),
]
