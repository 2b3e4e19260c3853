"""Opaque keyset cursors: ``base64url(orjson([sort_key, sort_value, id]))``.

Keyset pagination keeps every page as cheap as the first one and is stable under inserts.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.errors import Unprocessable


class CursorError(Unprocessable):
    def __init__(self) -> None:
        super().__init__("Invalid or expired cursor", loc=["query", "cursor"])


def encode_cursor(sort: str, value: Any, row_id: uuid.UUID) -> str:
    if isinstance(value, Decimal):
        value = str(value)
    elif isinstance(value, dt.datetime):
        value = value.isoformat()
    raw = orjson.dumps([sort, value, str(row_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str, kind: type) -> tuple[Any, uuid.UUID]:
    """Decode a cursor made for `sort`; the value is parsed back to `kind`."""
    if len(cursor) > 512:
        raise CursorError
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
        raise CursorError from exc
    if not isinstance(data, list) or len(data) != 3 or data[0] != sort:
        raise CursorError
    _, value, row_id = data
    try:
        parsed_id = uuid.UUID(str(row_id))
        if kind is dt.datetime:
            parsed: Any = dt.datetime.fromisoformat(str(value))
        elif kind is Decimal:
            parsed = Decimal(str(value))
        elif kind is uuid.UUID:
            parsed = uuid.UUID(str(value))
        else:
            if not isinstance(value, str):
                raise CursorError
            parsed = value
    except (ValueError, InvalidOperation) as exc:
        raise CursorError from exc
    return parsed, parsed_id


async def page_by_id(
    session: AsyncSession, stmt: Select[Any], id_column: Any, *, limit: int, cursor: str | None
) -> tuple[list[Any], str | None]:
    """One page of `stmt`'s ORM rows in id order (ids are time-ordered UUIDs)."""
    stmt = stmt.order_by(id_column).limit(limit + 1)
    if cursor:
        _, last_id = decode_cursor(cursor, "id", uuid.UUID)
        stmt = stmt.where(id_column > last_id)
    rows = list((await session.execute(stmt)).scalars())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor("id", str(rows[-1].id), rows[-1].id)
    return rows, next_cursor
