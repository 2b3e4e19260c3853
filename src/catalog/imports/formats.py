"""The two file formats of bulk import and export, and their parsing.

**CSV**: one row per variant; the product's columns are repeated on each of its rows, and the
rows of one product are adjacent. Columns (header names are case-insensitive, order is free):

=============  ==========================================================================
product_sku    the product's SKU: identifies the product (required)
name           product name (required for a new product)
slug           URL slug; empty: keep the current one (new products: made from the name)
description    product description; empty: none
status         draft, active or archived; empty: keep the current one (new products: draft)
brand          brand slug; empty: no brand
category       category path of slugs from the root, e.g. ``furniture/chairs``; empty: none
currency       ISO 4217 code (required for a new product)
sku            the variant's SKU: identifies the variant (required)
price          variant price, a decimal with at most the currency's decimals (required)
stock          variant stock; empty: 0
attr:<name>    product attribute ``<name>``; empty: the attribute is removed
option:<name>  the variant's value of option ``<name>``; empty: the variant has no such option
=============  ==========================================================================

A column that is absent from the file leaves that field of existing products as it is, so a
file of ``product_sku,sku,price,stock`` updates prices and stock only. Attribute cells holding
JSON numbers, ``true``/``false`` or arrays are read as such (``12.5``, ``["a", "b"]``); any
other text is a string (export writes strings that would read as JSON in JSON quotes).
``error_row``, ``error_field`` and ``error_message`` columns (those of the errors file) are
ignored, so a corrected errors file can be uploaded again as it is.

**JSON Lines**: one product per line, ``{"sku", "name", "slug", "description", "status",
"brand", "category", "currency", "attributes", "options", "variants": [{"sku", "price",
"stock", "option_values"}]}``; the same rules, keys absent leave fields as they are.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import compress
from operator import itemgetter
from pathlib import Path
from typing import IO, Any, Literal

import orjson

Format = Literal["csv", "jsonl"]

PRODUCT_SKU = "product_sku"
PRODUCT_COLUMNS = ("name", "slug", "description", "status", "brand", "category", "currency")
VARIANT_COLUMNS = ("sku", "price", "stock")
FIXED_COLUMNS = (PRODUCT_SKU, *PRODUCT_COLUMNS, *VARIANT_COLUMNS)
REQUIRED_COLUMNS = (PRODUCT_SKU, "sku", "price")
ERROR_COLUMNS = ("error_row", "error_field", "error_message")
ATTR_PREFIX = "attr:"
OPTION_PREFIX = "option:"

JSONL_PRODUCT_KEYS = frozenset(
    {"sku", *PRODUCT_COLUMNS, "attributes", "options", "variants", "product_sku"}
)
JSONL_VARIANT_KEYS = frozenset({"sku", "price", "stock", "option_values"})

# The CSV module's default limit (128 KiB) is below a long description.
csv.field_size_limit(1024 * 1024)


class FileError(Exception):
    """The file as a whole cannot be imported (encoding, header); the job fails."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""Marks a field the file does not give (its column is absent): the current value stays."""


@dataclass(slots=True)
class RowError:
    row: int
    field: str | None
    message: str
    raw: Any


@dataclass(slots=True)
class VariantIn:
    row: int
    raw: Any
    sku: str
    price: Any = MISSING
    stock: Any = MISSING
    # CSV: the option columns present (None: the variant has no value for that option);
    # JSONL: the whole mapping, or MISSING.
    option_values: Any = MISSING
    replace_options: bool = False


@dataclass(slots=True)
class ProductIn:
    """One product of the file, with its variants, as given (not yet validated)."""

    sku: str
    row: int
    rows: list[tuple[int, Any]] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    # Attribute changes (None removes the key), or the whole mapping when `replace_attributes`.
    attributes: dict[str, Any] = field(default_factory=dict)
    replace_attributes: bool = False
    # Attribute keys the file gives a column for (CSV): those without a value in `attributes`
    # are removed (an empty cell removes the attribute).
    attribute_columns: frozenset[str] = frozenset()
    options: Any = MISSING
    variants: list[VariantIn] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def row_count(self) -> int:
        return len(self.rows)


Item = ProductIn | RowError
"""What a reader yields: a product (possibly with row errors) or a row that has no product."""


# --------------------------------------------------------------------------- decoding


def detect_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8"


def open_text(path: Path) -> IO[str]:
    """The file as text: UTF-8 (a byte order mark is skipped) or UTF-16 with a BOM. Bytes that
    are not valid in that encoding raise `UnicodeDecodeError` while reading."""
    with path.open("rb") as raw:
        head = raw.read(4)
    return path.open(encoding=detect_encoding(head), errors="strict", newline="")


def decode_problem(exc: UnicodeDecodeError, row: int) -> FileError:
    return FileError(
        f"The file is not valid UTF-8 text (undecodable bytes near row {row}); "
        "save it as UTF-8, e.g. 'CSV UTF-8' in a spreadsheet application"
    )


# --------------------------------------------------------------------------- cell values


def parse_attribute(cell: str) -> Any:
    """An attribute cell: JSON numbers, booleans, arrays and quoted strings as such, any other
    text as a string."""
    if cell and (cell[0] in '-0123456789["' or cell in ("true", "false")):
        try:
            value = orjson.loads(cell)
        except orjson.JSONDecodeError:
            return cell
        if isinstance(value, str | int | float | bool | list):
            return value
    return cell


# What a JSON number and the whitespace around it can be made of.
_NUMBER_CHARS = frozenset("-0123456789.eE+ \t\n\r")


def format_attribute(value: Any) -> str:
    """The inverse of `parse_attribute`: a cell that reads back as `value`. A string is
    written as it is when it cannot read as JSON (it does not start like a JSON value, or it
    starts like a number and holds a character no number has), else as a JSON string; the
    PostgreSQL export applies the same rule in SQL (`service._copy_attribute`)."""
    if isinstance(value, str) and value and value not in ("true", "false"):
        first = value[0]
        if first not in '-0123456789["' or (
            first not in '["' and not _NUMBER_CHARS.issuperset(value)
        ):
            return value
    return orjson.dumps(value).decode()


# --------------------------------------------------------------------------- CSV


@dataclass(slots=True)
class CsvHeader:
    columns: list[str]  # as written in the file (kept for the errors file)
    fixed: dict[str, int]
    attributes: list[tuple[str, int]]
    options: list[tuple[str, int]]

    @classmethod
    def parse(cls, cells: list[str]) -> CsvHeader:
        fixed: dict[str, int] = {}
        attributes: list[tuple[str, int]] = []
        options: list[tuple[str, int]] = []
        seen: set[str] = set()
        unknown: list[str] = []
        for index, cell in enumerate(cells):
            name = cell.strip()
            lowered = name.lower()
            if not name:
                if index == len(cells) - 1 and index > 0:
                    continue  # a trailing separator
                raise FileError(f"Column {index + 1} of the header has no name")
            key = lowered
            if lowered.startswith(ATTR_PREFIX):
                attr = name[len(ATTR_PREFIX) :].strip()
                if not attr:
                    raise FileError(f"Column '{name}' names no attribute")
                key = ATTR_PREFIX + attr
                attributes.append((attr, index))
            elif lowered.startswith(OPTION_PREFIX):
                option = name[len(OPTION_PREFIX) :].strip()
                if not option:
                    raise FileError(f"Column '{name}' names no option")
                key = OPTION_PREFIX + option.casefold()
                options.append((option, index))
            elif lowered in FIXED_COLUMNS:
                fixed[lowered] = index
            elif lowered in ERROR_COLUMNS:
                pass
            else:
                unknown.append(name)
            if key in seen:
                raise FileError(f"Column '{name}' appears twice in the header")
            seen.add(key)
        if unknown:
            raise FileError(
                "Unknown column(s): "
                + ", ".join(f"'{u}'" for u in unknown)
                + "; known columns are "
                + ", ".join(FIXED_COLUMNS)
                + ", attr:<name> and option:<name>"
            )
        missing = [c for c in REQUIRED_COLUMNS if c not in fixed]
        if missing:
            raise FileError("Missing required column(s): " + ", ".join(missing))
        return cls(list(cells), fixed, attributes, options)


def _blank(cells: list[str]) -> bool:
    return not any(c.strip() for c in cells)


def csv_records(text: IO[str]) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) of the non-blank data records; the header is row 1, as a
    spreadsheet numbers them (a record spanning several lines is one row)."""
    reader = csv.reader(text, strict=False)
    number = 1
    for cells in reader:
        number += 1
        if cells and (cells[0].strip() or not _blank(cells)):
            yield number, cells


def count_csv_records(text: IO[str]) -> int:
    """The number of records `csv_records` yields, without numbering them."""
    return sum(
        1
        for cells in csv.reader(text, strict=False)
        if cells and (cells[0].strip() or not _blank(cells))
    )


def _getter(indexes: list[int]) -> Callable[[list[str]], tuple[str, ...]]:
    """The cells at `indexes` of a row, as a tuple."""
    if not indexes:
        return lambda cells: ()
    if len(indexes) == 1:
        index = indexes[0]
        return lambda cells: (cells[index],)
    return itemgetter(*indexes)


def _runs(indexes: list[int]) -> list[slice]:
    """Contiguous runs of the sorted distinct `indexes`, as slices."""
    runs: list[slice] = []
    start = previous = -2
    for index in sorted(set(indexes)):
        if index != previous + 1:
            if start >= 0:
                runs.append(slice(start, previous + 1))
            start = index
        previous = index
    if start >= 0:
        runs.append(slice(start, previous + 1))
    return runs


def read_csv_header(text: IO[str]) -> CsvHeader:
    reader = csv.reader(text, strict=False)
    for cells in reader:
        if cells and not _blank(cells):
            return CsvHeader.parse(cells)
        raise FileError("The first line of the file must be the header")
    raise FileError("The file is empty")


class CsvReader:
    """Groups adjacent rows of one product into a `ProductIn`.

    Remembers every variant SKU and product seen, to refuse a SKU given twice and rows of a
    product that are not adjacent (the product was already imported)."""

    def __init__(self, header: CsvHeader) -> None:
        self.header = header
        self.seen_variants: dict[str, int] = {}
        self.seen_products: dict[str, int] = {}
        # The product's cells, as contiguous runs of columns (compared row to row as slices).
        self._product_runs = _runs(
            [
                *(header.fixed[name] for name in PRODUCT_COLUMNS if name in header.fixed),
                *(index for _, index in header.attributes),
            ]
        )
        self._product_fields_at = [
            (name, header.fixed[name]) for name in PRODUCT_COLUMNS if name in header.fixed
        ]
        self._attribute_columns = frozenset(attr for attr, _ in header.attributes)
        self._attribute_names = [attr for attr, _ in header.attributes]
        self._attribute_cells = _getter([index for _, index in header.attributes])
        self._option_names = [option for option, _ in header.options]
        self._option_cells = _getter([index for _, index in header.options])
        self._sku_at = header.fixed["sku"]
        self._price_at = header.fixed["price"]
        self._stock_at = header.fixed.get("stock")
        self._first_cells: list[str] = []
        # The product's cells of a row, as one tuple of slices (compared row to row).
        self._product_key: Callable[[list[str]], Any] = (
            itemgetter(*self._product_runs) if self._product_runs else lambda cells: ()
        )
        self._first_key: Any = ()

    def _cell(self, cells: list[str], name: str) -> str | None:
        index = self.header.fixed.get(name)
        if index is None:
            return None
        return cells[index].strip() if index < len(cells) else ""

    def items(self, text: IO[str]) -> Iterator[Item]:
        width = len(self.header.columns)
        sku_at = self.header.fixed[PRODUCT_SKU]  # < width: the rows here have `width` cells
        current: ProductIn | None = None
        for number, cells in csv_records(text):
            if len(cells) != width and not (len(cells) > width and _blank(cells[width:])):
                error = RowError(
                    number,
                    None,
                    f"The row has {len(cells)} cells but the header has {width} columns",
                    cells,
                )
                if current is not None and current.sku == (self._cell(cells, PRODUCT_SKU) or ""):
                    current.rows.append((number, cells))
                    current.errors.append(error)
                else:
                    yield error
                continue
            product_sku = cells[sku_at].strip()
            if not product_sku:
                yield RowError(number, PRODUCT_SKU, "product_sku is required", cells)
                continue
            if current is None or current.sku != product_sku:
                if current is not None:
                    yield current
                current = ProductIn(sku=product_sku, row=number)
                first = self.seen_products.get(product_sku)
                if first is not None:
                    current.errors.append(
                        RowError(
                            number,
                            PRODUCT_SKU,
                            f"The rows of product {product_sku} must be adjacent "
                            f"(it first appears at row {first})",
                            cells,
                        )
                    )
                else:
                    self.seen_products[product_sku] = number
                self._product_fields(current, cells, number)
            elif self._product_key(cells) != self._first_key:
                self._check_same_product(current, cells, number)
            current.rows.append((number, cells))
            self._variant(current, cells, number)
        if current is not None:
            yield current

    def _product_fields(self, product: ProductIn, cells: list[str], number: int) -> None:
        self._first_cells = cells
        self._first_key = self._product_key(cells)
        width = len(cells)
        fields = product.fields
        for name, index in self._product_fields_at:
            fields[name] = (cells[index].strip() if index < width else "") or None
        # Only the attributes with a value are listed; the other columns remove theirs.
        attributes = product.attributes
        values = self._attribute_cells(cells)
        for attr, cell in zip(
            compress(self._attribute_names, values), filter(None, values), strict=True
        ):
            cell = cell.strip()
            if cell:
                attributes[attr] = parse_attribute(cell)
        product.attribute_columns = self._attribute_columns

    def _check_same_product(self, product: ProductIn, cells: list[str], number: int) -> None:
        first = self._first_cells
        if all(cells[run] == first[run] for run in self._product_runs):
            return
        for name in PRODUCT_COLUMNS:
            value = self._cell(cells, name)
            if value is not None and (value or None) != product.fields.get(name):
                product.errors.append(
                    RowError(
                        number,
                        name,
                        f"'{name}' differs from row {product.row} of the same product",
                        cells,
                    )
                )
        for attr, index in self.header.attributes:
            cell = cells[index].strip()
            value = parse_attribute(cell) if cell else None
            if value != product.attributes.get(attr):
                product.errors.append(
                    RowError(
                        number,
                        ATTR_PREFIX + attr,
                        f"'{ATTR_PREFIX}{attr}' differs from row {product.row} of the same product",
                        cells,
                    )
                )

    def _variant(self, product: ProductIn, cells: list[str], number: int) -> None:
        width = len(cells)
        sku = cells[self._sku_at].strip() if self._sku_at < width else ""
        if not sku:
            product.errors.append(RowError(number, "sku", "sku is required", cells))
            return
        first = self.seen_variants.get(sku)
        if first is not None:
            product.errors.append(
                RowError(number, "sku", f"SKU {sku} already appears at row {first}", cells)
            )
            return
        self.seen_variants[sku] = number
        variant = VariantIn(row=number, raw=cells, sku=sku)
        variant.price = (cells[self._price_at].strip() if self._price_at < width else "") or None
        if self._stock_at is not None:
            stock = cells[self._stock_at].strip() if self._stock_at < width else ""
            variant.stock = stock or 0
        if self._option_names:
            variant.option_values = {
                option: (cell.strip() or None) if cell else None
                for option, cell in zip(self._option_names, self._option_cells(cells), strict=True)
            }
        product.variants.append(variant)


# --------------------------------------------------------------------------- JSON Lines


def jsonl_records(text: IO[str]) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text, start=1):
        if line.strip():
            yield number, line.rstrip("\r\n")


class JsonlReader:
    def __init__(self) -> None:
        self.seen_variants: dict[str, int] = {}
        self.seen_products: dict[str, int] = {}

    def items(self, text: IO[str]) -> Iterator[Item]:
        for number, line in jsonl_records(text):
            yield self._item(number, line)

    def _item(self, number: int, line: str) -> Item:
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            return RowError(number, None, f"Not valid JSON: {exc}", line)
        if not isinstance(data, dict):
            return RowError(number, None, "Each line must be a JSON object (one product)", line)
        sku = data.get("sku", data.get("product_sku"))
        if not isinstance(sku, str) or not sku.strip():
            return RowError(number, "sku", "The product's 'sku' is required", line)
        product = ProductIn(sku=sku.strip(), row=number, rows=[(number, line)])
        unknown = sorted(set(data) - JSONL_PRODUCT_KEYS)
        if unknown:
            product.errors.append(
                RowError(number, unknown[0], f"Unknown key(s): {', '.join(unknown)}", line)
            )
        first = self.seen_products.get(product.sku)
        if first is not None:
            product.errors.append(
                RowError(
                    number, "sku", f"Product {product.sku} already appears at row {first}", line
                )
            )
        else:
            self.seen_products[product.sku] = number
        for name in PRODUCT_COLUMNS:
            if name in data:
                value = data[name]
                product.fields[name] = value.strip() or None if isinstance(value, str) else value
        if "attributes" in data:
            product.attributes = data["attributes"]
            product.replace_attributes = True
        if "options" in data:
            product.options = data["options"]
        variants = data.get("variants")
        if not isinstance(variants, list) or not variants:
            product.errors.append(
                RowError(number, "variants", "'variants' must be a non-empty list", line)
            )
            return product
        for index, item in enumerate(variants):
            where = f"variants[{index}]"
            if not isinstance(item, dict):
                product.errors.append(RowError(number, where, "must be an object", line))
                continue
            extra = sorted(set(item) - JSONL_VARIANT_KEYS)
            if extra:
                product.errors.append(
                    RowError(number, where, f"Unknown key(s): {', '.join(extra)}", line)
                )
            vsku = item.get("sku")
            if not isinstance(vsku, str) or not vsku.strip():
                product.errors.append(RowError(number, f"{where}.sku", "sku is required", line))
                continue
            vsku = vsku.strip()
            seen = self.seen_variants.get(vsku)
            if seen is not None:
                product.errors.append(
                    RowError(
                        number, f"{where}.sku", f"SKU {vsku} already appears at row {seen}", line
                    )
                )
                continue
            self.seen_variants[vsku] = number
            variant = VariantIn(row=number, raw=line, sku=vsku, price=item.get("price"))
            if "stock" in item:
                variant.stock = item["stock"]
            if "option_values" in item:
                variant.option_values = item["option_values"]
                variant.replace_options = True
            product.variants.append(variant)
        return product


# --------------------------------------------------------------------------- export


def csv_line(cells: list[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue()
