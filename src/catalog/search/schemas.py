from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Self

from pydantic import Field, StringConstraints, model_validator

from catalog.kit.schemas import InputModel, OutputModel
from catalog.products.schemas import ProductSummary

SynonymTerm = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class SynonymIn(InputModel):
    """A two-way group `{"terms": ["sofa", "couch"]}` or a one-way rule
    `{"input": "tv", "synonyms": ["television"]}`."""

    terms: Annotated[list[SynonymTerm], Field(min_length=2, max_length=20)] | None = None
    input: SynonymTerm | None = None
    synonyms: Annotated[list[SynonymTerm], Field(min_length=1, max_length=20)] | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> Self:
        group = self.terms is not None
        oneway = self.input is not None or self.synonyms is not None
        if group == oneway:
            raise ValueError(
                "give either 'terms' (two-way group) or 'input' + 'synonyms' (one-way)"
            )
        if oneway and (self.input is None or self.synonyms is None):
            raise ValueError("a one-way rule needs both 'input' and 'synonyms'")
        for value in [
            *(self.terms or []),
            *(self.synonyms or []),
            *([self.input] if self.input else []),
        ]:
            if not any(c.isalnum() for c in value):
                raise ValueError(f"'{value}' has no letters or digits")
        return self


class SynonymOut(OutputModel):
    id: uuid.UUID
    kind: str = Field(description="group (two-way) or oneway")
    terms: list[str] | None = None
    input: str | None = None
    synonyms: list[str] | None = None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


class BrandFacet(OutputModel):
    id: uuid.UUID
    name: str
    slug: str
    count: int


class PriceFacet(OutputModel):
    key: str
    min: str
    max: str | None
    count: int


class ValueFacet(OutputModel):
    value: str
    count: int


class Facets(OutputModel):
    brands: list[BrandFacet]
    categories: list[BrandFacet]
    price: list[PriceFacet]
    attributes: dict[str, list[ValueFacet]]


class SearchResponse(OutputModel):
    items: list[ProductSummary]
    total: int
    page: int
    page_size: int
    facets: Facets
    did_you_mean: str | None = Field(description="The corrected query when words had typos")
    partial: bool = Field(description="True when no product matched every word")
    search_id: uuid.UUID = Field(description="Send with POST /search/click")


class SuggestionOut(OutputModel):
    text: str
    kind: str = Field(description="product, brand, category or query")
    id: uuid.UUID | None = None


class SuggestResponse(OutputModel):
    suggestions: list[SuggestionOut]


class ClickIn(InputModel):
    search_id: uuid.UUID
    product_id: uuid.UUID
    position: Annotated[int, Field(ge=1, le=10_000)]


class QueryStat(OutputModel):
    query: str
    searches: int
    clicks: int | None = None
    click_through: float | None = None
    zero_results: int | None = None


class VolumePoint(OutputModel):
    day: str
    searches: int
    zero_results: int
    clicks: int
