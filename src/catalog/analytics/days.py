"""UTC calendar days in SQL, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import String, func
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


def day_of(conn: AsyncConnection | AsyncSession, column: Any) -> Any:
    """The UTC day of a timestamp as 'YYYY-MM-DD'. Not `CAST(... AS DATE)`: SQLite turns that
    into the number 2026, and PostgreSQL would use the session's time zone."""
    bind = conn.get_bind() if isinstance(conn, AsyncSession) else conn
    if bind.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD", type_=String)
    return func.date(column, type_=String)  # SQLite stores naive UTC 'YYYY-MM-DD HH:MM:SS'


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
