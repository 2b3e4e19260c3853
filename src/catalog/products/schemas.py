from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any, Self, cast

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.config import JsonValue

from catalog.kit.money import is_currency
from catalog.kit.schemas import Description, InputModel, OutputModel, UpdateModel
from catalog.kit.slugs import SLUG_PATTERN
from catalog.models import ProductStatus

MAX_VARIANTS = 100
MAX_OPTIONS = 3
MAX_OPTION_VALUES = 50
MAX_ATTRIBUTES = 50
# Integers every JSON client reads exactly; larger numbers do not survive JSONB and orjson.
MAX_ATTRIBUTE_NUMBER = 2**53 - 1

Sku = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$"),
    Field(description="Stock keeping unit: letters, digits and . _ - /", examples=["CHAIR-OAK-01"]),
]
ProductSlug = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=SLUG_PATTERN, to_lower=True)
]
ProductName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


def _currency(value: str) -> str:
    code = value.upper()
    if not is_currency(code):
        raise ValueError(f"'{value}' is not an ISO 4217 currency code")
    return code


Currency = Annotated[
    str,
    StringConstraints(min_length=3, max_length=3, pattern=r"^[A-Za-z]{3}$"),
    AfterValidator(_currency),
    Field(description="ISO 4217 code", examples=["EUR"]),
]
Price = Annotated[
    Decimal,
    Field(
        ge=0,
        lt=Decimal("1e12"),
        max_digits=16,
        decimal_places=4,
        description='Decimal amount as a string, e.g. "19.99"',
        examples=["19.99"],
    ),
]
Stock = Annotated[int, Field(ge=0, le=1_000_000_000)]
OptionName = Annotated[str, StringConstraints(min_length=1, max_length=50)]
OptionValue = Annotated[str, StringConstraints(min_length=1, max_length=100)]
AttributeKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
AttributeValue = (
    Annotated[str, StringConstraints(max_length=500)]
    | bool
    | Annotated[int, Field(ge=-MAX_ATTRIBUTE_NUMBER, le=MAX_ATTRIBUTE_NUMBER)]
    | Annotated[
        float, Field(ge=-MAX_ATTRIBUTE_NUMBER, le=MAX_ATTRIBUTE_NUMBER, allow_inf_nan=False)
    ]
    | Annotated[list[Annotated[str, StringConstraints(max_length=200)]], Field(max_length=50)]
)
Attributes = Annotated[dict[AttributeKey, AttributeValue], Field(max_length=MAX_ATTRIBUTES)]


class ProductOption(InputModel):
    name: OptionName
    values: Annotated[list[OptionValue], Field(min_length=1, max_length=MAX_OPTION_VALUES)]

    @field_validator("values")
    @classmethod
    def _distinct(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("option values must be distinct")
        return values


Options = Annotated[list[ProductOption], Field(max_length=MAX_OPTIONS)]
OptionValues = Annotated[dict[OptionName, OptionValue], Field(max_length=MAX_OPTIONS)]


def _distinct_option_names(options: list[ProductOption] | None) -> list[ProductOption] | None:
    if options is None:
        return None
    names = [o.name.casefold() for o in options]
    if len(set(names)) != len(names):
        raise ValueError("option names must be distinct")
    return options


class VariantCreate(InputModel):
    sku: Sku
    price: Price
    stock: Stock = 0
    option_values: OptionValues = Field(default_factory=dict)


class VariantReplace(VariantCreate):
    pass


class VariantUpdate(UpdateModel):
    __non_nullable__ = ("sku", "price", "stock", "option_values")

    sku: Sku | None = None
    price: Price | None = None
    stock: Stock | None = None
    option_values: OptionValues | None = None


class StockAdjustment(InputModel):
    """A relative change of a variant's stock, applied atomically (orders, returns, restocks):
    concurrent adjustments never lose one another and never take the stock below zero."""

    delta: Annotated[int, Field(ge=-1_000_000_000, le=1_000_000_000)] = Field(
        description="Units to add (positive) or remove (negative); not zero"
    )

    @field_validator("delta")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("delta must not be zero")
        return value


class _ProductFields(InputModel):
    sku: Sku
    slug: ProductSlug | None = Field(default=None, description="Generated from the name if absent")
    name: ProductName
    description: Description | None = None
    brand_id: uuid.UUID | None = None
    category_id: uuid.UUID | None = None
    status: ProductStatus = ProductStatus.draft
    attributes: Attributes = Field(default_factory=dict)
    currency: Currency
    options: Options = Field(default_factory=list)

    _distinct_options = field_validator("options")(_distinct_option_names)


def _json(examples: list[dict[str, Any]]) -> list[JsonValue]:
    return cast("list[JsonValue]", examples)


# Request examples in the OpenAPI document (and the bodies Schemathesis starts from).
PRODUCT_EXAMPLES: list[dict[str, Any]] = [
    {
        "sku": "CHAIR-OAK-01",
        "name": "Oak chair",
        "currency": "EUR",
        "price": "129.00",
        "stock": 12,
        "status": "active",
    },
    {
        "sku": "TEE-ORGANIC",
        "name": "Organic cotton tee",
        "currency": "EUR",
        "status": "active",
        "attributes": {"material": "cotton"},
        "options": [{"name": "size", "values": ["S", "M"]}],
        "variants": [
            {
                "sku": "TEE-ORGANIC-S",
                "price": "19.99",
                "stock": 5,
                "option_values": {"size": "S"},
            },
            {
                "sku": "TEE-ORGANIC-M",
                "price": "19.99",
                "stock": 0,
                "option_values": {"size": "M"},
            },
        ],
    },
]


class ProductCreate(_ProductFields):
    """Either `price` (and `stock`) for a simple product with one default variant, or `variants`."""

    model_config = ConfigDict(json_schema_extra={"examples": _json(PRODUCT_EXAMPLES)})

    price: Price | None = None
    stock: Stock | None = None
    variants: (
        Annotated[list[VariantCreate], Field(min_length=1, max_length=MAX_VARIANTS)] | None
    ) = None

    @model_validator(mode="after")
    def _price_or_variants(self) -> Self:
        if self.variants is None and self.price is None:
            raise ValueError("give either 'price' (a single default variant) or 'variants'")
        if self.variants is not None and (self.price is not None or self.stock is not None):
            raise ValueError("'price'/'stock' and 'variants' are mutually exclusive")
        if self.variants is None and self.options:
            raise ValueError("a product with 'options' needs 'variants'")
        return self


class ProductReplace(ProductCreate):
    """Full replacement. With `variants`, the variant set is replaced (matched by SKU); with
    `price`/`stock`, the product must have a single variant."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": _json([e | {"slug": e["sku"].lower()} for e in PRODUCT_EXAMPLES])
        }
    )

    slug: ProductSlug


class ProductUpdate(UpdateModel):
    __non_nullable__ = ("sku", "slug", "name", "status", "attributes", "currency", "options")

    sku: Sku | None = None
    slug: ProductSlug | None = None
    name: ProductName | None = None
    description: Description | None = None
    brand_id: uuid.UUID | None = None
    category_id: uuid.UUID | None = None
    status: ProductStatus | None = None
    attributes: Attributes | None = None
    currency: Currency | None = None
    options: Options | None = None
    price: Price | None = Field(default=None, description="Only for single-variant products")
    stock: Stock | None = Field(default=None, description="Only for single-variant products")

    _distinct_options = field_validator("options")(_distinct_option_names)

    @model_validator(mode="after")
    def _check(self) -> Self:
        for name in ("price", "stock"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"'{name}' cannot be null")
        return self


class BrandRef(OutputModel):
    id: uuid.UUID
    name: str
    slug: str


class CategoryRef(OutputModel):
    id: uuid.UUID
    name: str
    slug: str


class OptionOut(OutputModel):
    name: str
    values: list[str]


class VariantOut(OutputModel):
    id: uuid.UUID
    product_id: uuid.UUID
    sku: str
    price: str = Field(description="Decimal string with the currency's number of decimals")
    stock: int
    option_values: dict[str, str]
    position: int
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


class ProductOut(OutputModel):
    id: uuid.UUID
    sku: str
    slug: str
    name: str
    description: str | None
    status: ProductStatus
    brand_id: uuid.UUID | None
    brand: BrandRef | None
    category_id: uuid.UUID | None
    category: CategoryRef | None
    attributes: dict[str, Any]
    options: list[OptionOut]
    currency: str
    price_min: str
    price_max: str
    total_stock: int
    in_stock: bool
    rating_avg: float
    rating_count: int
    thumbnail_url: str | None = Field(description="The primary image's thumbnail URL, or null")
    owner_id: uuid.UUID | None
    variants: list[VariantOut]
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    deleted_at: dt.datetime | None


class ProductSummary(OutputModel):
    """The short product shape of search results and listings."""

    id: uuid.UUID
    sku: str
    slug: str
    name: str
    status: ProductStatus
    brand: BrandRef | None
    category: CategoryRef | None
    currency: str
    price_min: str
    price_max: str
    total_stock: int
    in_stock: bool
    rating_avg: float
    rating_count: int
    attributes: dict[str, Any]
    thumbnail_url: str | None = Field(description="The primary image's thumbnail URL, or null")
    created_at: dt.datetime
