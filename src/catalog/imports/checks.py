"""A fast path through `ProductCreate` for the rows of a bulk import.

Validating every product of a large file with the pydantic model costs more than everything
else an import does (the model runs a Python validator on every field of every variant).
`quick_product` applies the same rules by hand to the plain values an import builds, and
returns the values the model would produce — or None as soon as anything is not plainly
valid or needs a conversion it does not make (surrounding whitespace, upper-case slugs,
float prices, ...). The importer then validates that product with `ProductCreate` itself, so
the model stays the authority for what is refused and for every error message: this module
may only accept a subset of what the model accepts, never more (tests compare the two).
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeGuard

from catalog.kit.money import is_currency
from catalog.kit.slugs import SLUG_PATTERN
from catalog.models import ProductStatus
from catalog.products import schemas

# The model's patterns, matched in full (`re.fullmatch`; `$` would also match before a final
# newline, which the model's patterns do not).
_SKU = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-/]*")
_SLUG = re.compile(SLUG_PATTERN.removeprefix("^").removesuffix("$"))
_CURRENCY = re.compile(r"[A-Za-z]{3}")
# Prices as plain decimals with at most 12 integer digits (no leading zeros) and 4 decimals:
# within the model's `lt=1e12`, `max_digits=16` and `decimal_places=4` whatever its counting.
_PRICE = re.compile(r"(?:0|[1-9][0-9]{0,11})(?:\.[0-9]{1,4})?")
_STOCK = re.compile(r"0|[1-9][0-9]{0,9}")

_STATUSES = frozenset(s.value for s in ProductStatus)
_MAX_STOCK = 1_000_000_000
_PRICE_LIMIT = Decimal("1e12")
_MAX_NUMBER = schemas.MAX_ATTRIBUTE_NUMBER
_PRODUCT_KEYS = frozenset(
    {
        "sku",
        "name",
        "description",
        "currency",
        "slug",
        "status",
        "brand_id",
        "category_id",
        "attributes",
        "options",
        "variants",
    }
)
_VARIANT_KEYS = frozenset({"sku", "price", "stock", "option_values"})
_OPTION_KEYS = frozenset({"name", "values"})


@dataclass(slots=True)
class CheckedVariant:
    sku: str
    price: Decimal
    stock: int
    option_values: dict[str, str]


@dataclass(slots=True)
class CheckedProduct:
    """What `ProductCreate` gives for a product (the fields an import uses)."""

    sku: str
    slug: str | None
    name: str
    description: str | None
    status: str
    brand_id: uuid.UUID | None
    category_id: uuid.UUID | None
    attributes: dict[str, Any]
    currency: str
    options: list[dict[str, Any]]
    variants: list[CheckedVariant]


def from_model(valid: schemas.ProductCreate) -> CheckedProduct:
    assert valid.variants is not None
    return CheckedProduct(
        sku=valid.sku,
        slug=valid.slug,
        name=valid.name,
        description=valid.description,
        status=valid.status.value,
        brand_id=valid.brand_id,
        category_id=valid.category_id,
        attributes=valid.attributes,
        currency=valid.currency,
        options=[{"name": o.name, "values": list(o.values)} for o in valid.options],
        variants=[CheckedVariant(v.sku, v.price, v.stock, v.option_values) for v in valid.variants],
    )


def _text(value: Any, lowest: int, highest: int) -> TypeGuard[str]:
    """A string the model keeps as it is: already trimmed, no NUL, length within bounds."""
    return (
        type(value) is str
        and lowest <= len(value) <= highest
        and "\x00" not in value
        and (not value or (not value[0].isspace() and not value[-1].isspace()))
    )


def _sku(value: Any) -> TypeGuard[str]:
    return type(value) is str and len(value) <= 64 and _SKU.fullmatch(value) is not None


def _attribute(value: Any) -> bool:
    kind = type(value)
    if kind is str:
        return _text(value, 0, 500)
    if kind is bool:
        return True
    if kind is int:
        return bool(-_MAX_NUMBER <= value <= _MAX_NUMBER)
    if kind is float:
        return math.isfinite(value) and bool(-_MAX_NUMBER <= value <= _MAX_NUMBER)
    if kind is list:
        return len(value) <= 50 and all(_text(item, 0, 200) for item in value)
    return False


def _attributes(value: Any) -> dict[str, Any] | None:
    if type(value) is not dict or len(value) > schemas.MAX_ATTRIBUTES:
        return None
    for key, item in value.items():
        if not _text(key, 1, 64) or not _attribute(item):
            return None
    return {k: list(v) if type(v) is list else v for k, v in value.items()}


def _options(value: Any) -> list[dict[str, Any]] | None:
    if type(value) is not list or len(value) > schemas.MAX_OPTIONS:
        return None
    out = []
    names = set()
    for option in value:
        if type(option) is not dict or option.keys() != _OPTION_KEYS:
            return None
        name, values = option["name"], option["values"]
        if not _text(name, 1, 50) or type(values) is not list:
            return None
        if not 1 <= len(values) <= schemas.MAX_OPTION_VALUES:
            return None
        if not all(_text(v, 1, 100) for v in values) or len(set(values)) != len(values):
            return None
        names.add(name.casefold())
        out.append({"name": name, "values": list(values)})
    if len(names) != len(out):
        return None
    return out


def _price(value: Any) -> Decimal | None:
    kind = type(value)
    if kind is str:
        return Decimal(value) if _PRICE.fullmatch(value) else None
    if kind is Decimal:
        if not value.is_finite() or value < 0 or value >= _PRICE_LIMIT:
            return None
        _, digits, exponent = value.as_tuple()
        if not isinstance(exponent, int) or not -4 <= exponent <= 0 or len(digits) > 16:
            return None
        checked: Decimal = value
        return checked
    if kind is int:
        return Decimal(value) if 0 <= value < _PRICE_LIMIT else None
    return None


def _stock(value: Any) -> int | None:
    kind = type(value)
    if kind is int:
        return value if 0 <= value <= _MAX_STOCK else None
    if kind is str and _STOCK.fullmatch(value):
        stock = int(value)
        return stock if stock <= _MAX_STOCK else None
    return None


def _option_values(value: Any) -> dict[str, str] | None:
    if type(value) is not dict or len(value) > schemas.MAX_OPTIONS:
        return None
    for name, item in value.items():
        if not _text(name, 1, 50) or not _text(item, 1, 100):
            return None
    return dict(value)


def _variant(value: Any) -> CheckedVariant | None:
    if type(value) is not dict or not value.keys() <= _VARIANT_KEYS or "price" not in value:
        return None
    sku = value.get("sku")
    if not _sku(sku):
        return None
    price = _price(value["price"])
    if price is None:
        return None
    stock = _stock(value.get("stock", 0))
    if stock is None:
        return None
    option_values = _option_values(value.get("option_values", {}))
    if option_values is None:
        return None
    return CheckedVariant(sku, price, stock, option_values)


def quick_product(data: dict[str, Any]) -> CheckedProduct | None:
    """`ProductCreate.model_validate(data)` for a product with `variants` (as an import
    builds it), when `data` is plainly valid; None when the model must decide."""
    if not data.keys() <= _PRODUCT_KEYS:
        return None
    sku, name, currency = data.get("sku"), data.get("name"), data.get("currency")
    if not _sku(sku) or not _text(name, 1, 200):
        return None
    if type(currency) is not str or not _CURRENCY.fullmatch(currency):
        return None
    currency = currency.upper()
    if not is_currency(currency):
        return None
    slug = data.get("slug")
    if slug is not None and (type(slug) is not str or len(slug) > 200 or not _SLUG.fullmatch(slug)):
        return None
    description = data.get("description")
    if description is not None and not _text(description, 0, 10_000):
        return None
    status = data.get("status", ProductStatus.draft.value)
    if type(status) is not str or status not in _STATUSES:
        if type(status) is not ProductStatus:
            return None
        status = status.value
    brand_id, category_id = data.get("brand_id"), data.get("category_id")
    # (isinstance: the database driver's UUIDs are a subclass.)
    if not (brand_id is None or isinstance(brand_id, uuid.UUID)):
        return None
    if not (category_id is None or isinstance(category_id, uuid.UUID)):
        return None
    attributes = _attributes(data.get("attributes", {}))
    options = _options(data.get("options", []))
    if attributes is None or options is None:
        return None
    items = data.get("variants")
    if type(items) is not list or not 1 <= len(items) <= schemas.MAX_VARIANTS:
        return None
    variants = []
    for item in items:
        variant = _variant(item)
        if variant is None:
            return None
        variants.append(variant)
    return CheckedProduct(
        sku=sku,
        slug=slug,
        name=name,
        description=description,
        status=status,
        brand_id=brand_id,
        category_id=category_id,
        attributes=attributes,
        currency=currency,
        options=options,
        variants=variants,
    )
