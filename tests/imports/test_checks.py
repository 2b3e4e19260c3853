"""`quick_product` (the import's fast validation) against `ProductCreate`: whatever the fast
path accepts, the model accepts with the same values; it only ever leaves decisions to the
model, never makes a different one."""

from __future__ import annotations

import copy
import random
import uuid
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from catalog.imports.checks import CheckedProduct, from_model, quick_product
from catalog.products.schemas import ProductCreate

TEXTS: list[Any] = [
    "Oak chair",
    " padded",
    "padded ",
    "tab\there",
    "line\nbreak",
    "trailing\n",
    "nul\x00inside",
    "\u00a0nbsp",
    "wide\u3000",
    "zero\u200bwidth",
    "",
    "x" * 50,
    "x" * 51,
    "x" * 64,
    "x" * 65,
    "x" * 100,
    "x" * 101,
    "y" * 200,
    "y" * 201,
    "é" * 120,
    "12",
    "[draft]",
    "true",
    None,
    5,
    True,
    1.5,
    [],
    {},
]
SKUS: list[Any] = [
    "SKU-1",
    "sku.2/b_c",
    "-LEADING",
    "has space",
    "SKU\n",
    "S" * 64,
    "S" * 65,
    "",
    "ünï",
    7,
    None,
]
SLUGS: list[Any] = [
    "oak-chair",
    "Oak-Chair",
    "oak--chair",
    "-oak",
    "oak-",
    "oak chair",
    "a" * 200,
    "a" * 201,
    " oak",
    "oak\n",
    None,
    3,
]
CURRENCIES: list[Any] = ["USD", "usd", "JPY", "BHD", "XYZ", "US", "USDX", " USD", "U5D", None, 1]
KEYS = [t for t in TEXTS if isinstance(t, str)]
STATUSES: list[Any] = ["draft", "active", "archived", "Active", "deleted", "", None, 1]
PRICES: list[Any] = [
    "10",
    "10.00",
    "10.5",
    "0",
    "0.0000",
    "1.0001",
    "1.00001",
    "01",
    "-1",
    "1e3",
    " 1",
    "1.",
    ".5",
    "abc",
    "",
    "999999999999.9999",
    "1000000000000",
    "NaN",
    "Infinity",
    Decimal("12.5000"),
    Decimal("0E-4"),
    Decimal("1E+2"),
    Decimal("-0.01"),
    Decimal("NaN"),
    Decimal("1.23456"),
    Decimal("999999999999.9999"),
    1500,
    -1,
    10**12,
    2.5,
    True,
    None,
]
STOCKS: list[Any] = [
    0,
    "0",
    "7",
    "007",
    "+1",
    "1_000",
    "1e3",
    "-0",
    " 3",
    "1000000000",
    "1000000001",
    1_000_000_000,
    1_000_000_001,
    -1,
    2.0,
    True,
    None,
    "",
]
ATTRIBUTE_VALUES: list[Any] = [
    *TEXTS,
    "z" * 500,
    "z" * 501,
    ["x" * 200],
    0,
    -(2**53) + 1,
    2**53 - 1,
    2**53,
    -(2**53),
    1e20,
    float("inf"),
    float("nan"),
    -0.0,
    ["a", "b"],
    ["a", 1],
    ["x" * 201],
    ["ok"] * 51,
    {"nested": 1},
]


def base_product() -> dict[str, Any]:
    return {
        "sku": "CHAIR",
        "name": "Oak chair",
        "description": "A sturdy chair",
        "currency": "USD",
        "slug": "oak-chair",
        "status": "active",
        "brand_id": uuid.uuid4(),
        "category_id": None,
        "attributes": {"material": "oak", "weight_kg": 7.5, "seats": 1, "stackable": True},
        "options": [{"name": "size", "values": ["S", "M"]}],
        "variants": [
            {"sku": "CHAIR-S", "price": "99.90", "stock": "3", "option_values": {"size": "S"}},
            {"sku": "CHAIR-M", "price": "109", "stock": 0, "option_values": {"size": "M"}},
        ],
    }


def mutate(rng: random.Random, data: dict[str, Any]) -> None:
    """One random change of `data`, towards the limits of the schema."""
    variants = data.get("variants")
    variant: dict[str, Any] = {}
    if isinstance(variants, list) and variants and isinstance(variants[0], dict):
        variant = rng.choice(variants)
    change = rng.randrange(17)
    if change == 0:
        data["sku"] = rng.choice(SKUS)
    elif change == 1:
        data["name"] = rng.choice(TEXTS)
    elif change == 2:
        data["description"] = rng.choice([*TEXTS, "d" * 10_000, "d" * 10_001])
    elif change == 3:
        data["currency"] = rng.choice(CURRENCIES)
    elif change == 4:
        data["slug"] = rng.choice(SLUGS)
    elif change == 5:
        data["status"] = rng.choice(STATUSES)
    elif change == 6:
        data[rng.choice(["brand_id", "category_id"])] = rng.choice(
            [None, uuid.uuid4(), str(uuid.uuid4()), "not-a-uuid"]
        )
    elif change == 7:
        data["attributes"][rng.choice(["material", *KEYS])] = rng.choice(ATTRIBUTE_VALUES)
    elif change == 8:
        data["attributes"] = {f"k{i}": i for i in range(rng.choice([49, 50, 51]))}
    elif change == 9:
        variant["price"] = rng.choice(PRICES)
    elif change == 10:
        variant["stock"] = rng.choice(STOCKS)
    elif change == 11:
        variant["sku"] = rng.choice(SKUS)
    elif change == 12:
        variant["option_values"] = rng.choice(
            [
                {"size": rng.choice(TEXTS)},
                {rng.choice(KEYS): "S"},
                {},
                {"a": "1", "b": "2", "c": "3", "d": "4"},
                "S",
            ]
        )
    elif change == 13:
        data["options"] = rng.choice(
            [
                [],
                [{"name": "size", "values": ["S", "S"]}],
                [{"name": "size", "values": []}],
                [{"name": "size", "values": ["S"] + [f"v{i}" for i in range(50)]}],
                [{"name": "size", "values": ["S", "M"]}, {"name": "SIZE", "values": ["L"]}],
                [{"name": "size", "values": ["S", "M"], "extra": 1}],
                [{"name": rng.choice(TEXTS), "values": ["S", "M"]}],
                [{"name": "size", "values": [rng.choice(TEXTS), "M"]}],
                [{"name": f"o{i}", "values": ["x"]} for i in range(4)],
                "size",
            ]
        )
    elif change == 14:
        variant.pop(rng.choice(["price", "stock", "option_values"]), None)
    elif change == 15:
        data["variants"] = rng.choice([[], [copy.deepcopy(variant) for _ in range(101)], "v"])
    else:
        data[rng.choice(["name", "currency", "variants", "slug"])] = rng.choice([None, "x"])
        if rng.random() < 0.5:
            data.pop(rng.choice(list(data)))


def model_result(data: dict[str, Any]) -> CheckedProduct | None:
    try:
        return from_model(ProductCreate.model_validate(data))
    except ValidationError:
        return None


def same(quick: CheckedProduct, model: CheckedProduct) -> bool:
    """Equal values, and prices with the same digits (19.90 is not written 19.9)."""
    prices = [str(v.price) for v in quick.variants] == [str(v.price) for v in model.variants]
    return quick == model and prices


def test_a_plain_product_takes_the_fast_path() -> None:
    data = base_product()
    quick = quick_product(data)
    assert quick is not None
    model = model_result(data)
    assert model is not None
    assert same(quick, model)
    assert quick.variants[0].price == Decimal("99.90")
    assert quick.variants[0].stock == 3


@pytest.mark.parametrize("seed", range(4))
def test_the_fast_path_never_accepts_what_the_model_refuses(seed: int) -> None:
    rng = random.Random(seed)
    fast = refused = 0
    for _ in range(1500):
        data = base_product()
        for _ in range(rng.choice([1, 1, 2, 3])):
            mutate(rng, data)
        quick = quick_product(copy.deepcopy(data))
        model = model_result(copy.deepcopy(data))
        if quick is not None:
            fast += 1
            assert model is not None, data
            assert same(quick, model), (data, quick, model)
        elif model is None:
            refused += 1
    # Both kinds of outcome happen (the comparison is not vacuous).
    assert fast > 200, fast
    assert refused > 200, refused
