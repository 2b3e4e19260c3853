"""Prices are decimals with an ISO 4217 currency; never floats."""

from __future__ import annotations

from decimal import Decimal
from functools import cache

from babel.numbers import get_currency_precision, list_currencies


@cache
def known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def is_currency(code: str) -> bool:
    return code in known_currencies()


@cache
def currency_exponent(code: str) -> int:
    """Number of decimals of the currency's minor unit (USD 2, JPY 0, BHD 3)."""
    return int(get_currency_precision(code))


@cache
def _quantum(exponent: int) -> Decimal:
    return Decimal(1).scaleb(-exponent)


def format_money(amount: Decimal, currency: str) -> str:
    """The amount as a string with exactly the currency's number of decimals."""
    return str(Decimal(amount).quantize(_quantum(currency_exponent(currency))))


def fits_currency(amount: Decimal, currency: str) -> bool:
    """True when `amount` has no more decimals than the currency's minor unit allows."""
    exponent = amount.normalize().as_tuple().exponent
    return isinstance(exponent, int) and -exponent <= currency_exponent(currency)
