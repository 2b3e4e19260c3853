"""Batched event recording off the request path.

Requests append rows to an in-memory buffer (no I/O); a background task writes them with one
multi-row INSERT per table (a binary COPY on PostgreSQL where it gives the same rows) every
`interval` seconds or as soon as `max_batch` rows wait. Counted events (`count`) that repeat
before a write are one row with their number. Tallies (`tally`) add to a running total kept in
one row per key (an upsert per key and write). The lifespan flushes what is left on shutdown,
so events are not lost when the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import Any

import structlog
from sqlalchemy import JSON, Table, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = structlog.get_logger(__name__)


class EventRecorder:
    def __init__(
        self, engine: AsyncEngine, *, interval: float = 1.0, max_batch: int = 1000
    ) -> None:
        self._engine = engine
        self._interval = interval
        self._max_batch = max_batch
        self._buffer: dict[Table, list[dict[str, Any]]] = defaultdict(list)
        # The queued rows of counted events, by table and key (the rows are also in `_buffer`).
        self._counted: dict[Table, dict[tuple[Any, ...], dict[str, Any]]] = defaultdict(dict)
        # Queued tallies: by table, (key column, added column), key value.
        self._tallies: dict[tuple[Table, str, str], dict[Any, dict[str, Any]]] = defaultdict(dict)
        self._pending = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.dropped = 0

    def record(self, table: Table, row: dict[str, Any]) -> None:
        """Queue one row; never blocks and never raises."""
        if self._pending >= self._max_batch * 20:
            self.dropped += 1  # the database is far behind: shed load rather than grow forever
            return
        self._buffer[table].append(row)
        self._pending += 1
        if self._pending >= self._max_batch:
            self._wake.set()

    def count(self, table: Table, key: tuple[Any, ...], row: dict[str, Any], column: str) -> None:
        """Queue one event `key` of `table`: those with the same key queued for the same write
        are one row, the first one's (`row`), whose `column` is their number. Under load the
        same product is read many times a second: one row per viewer and write instead of one
        per read is what keeps the database's share of a cached read small."""
        queued = self._counted[table].get(key)
        if queued is not None:
            queued[column] += 1
            return
        row[column] = 1
        before = self._pending
        self.record(table, row)
        if self._pending > before:
            self._counted[table][key] = row

    def tally(self, table: Table, key: str, row: dict[str, Any], column: str) -> None:
        """Add 1 to `column` of the row of `table` whose `key` column is `row[key]` (created
        from `row` when missing; its other columns take the latest queued values)."""
        queued = self._tallies[(table, key, column)]
        current = queued.get(row[key])
        if current is not None:
            current.update(row, **{column: current[column] + 1})
            return
        if self._pending >= self._max_batch * 20:
            self.dropped += 1
            return
        queued[row[key]] = {**row, column: 1}
        self._pending += 1
        if self._pending >= self._max_batch:
            self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event-recorder")

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:  # keep recording; the rows stay queued for the next try
                log.warning("event_flush_failed", error=str(exc))

    async def flush(self) -> int:
        """Write everything queued; returns the number of rows written."""
        async with self._lock:
            if not self._pending:
                return 0
            batches, self._buffer = self._buffer, defaultdict(list)
            self._counted = defaultdict(dict)  # what comes next is counted in new rows
            tallies, self._tallies = self._tallies, defaultdict(dict)
            count, self._pending = self._pending, 0
            try:
                async with self._engine.begin() as conn:
                    copy = conn.dialect.name == "postgresql"
                    for table, rows in batches.items():
                        columns = _copy_columns(table, rows) if copy else None
                        if columns is not None:
                            await _copy(conn, table, columns, rows)
                            continue
                        for start in range(0, len(rows), self._max_batch):
                            await conn.execute(insert(table), rows[start : start + self._max_batch])
                    for (table, key, column), by_key in tallies.items():
                        await _add_tallies(conn, table, key, column, by_key, self._max_batch)
            except Exception:
                for table, rows in batches.items():
                    self._buffer[table][:0] = rows
                for where, by_key in tallies.items():
                    merged = self._tallies[where]
                    for value, row in by_key.items():
                        later = merged.get(value)
                        if later is not None:
                            row = {**later, where[2]: row[where[2]] + later[where[2]]}
                        merged[value] = row
                # A tally queued again while the flush ran is one row, not two.
                self._pending = sum(len(rows) for rows in self._buffer.values()) + sum(
                    len(by_key) for by_key in self._tallies.values()
                )
                raise
            return count

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        except Exception as exc:
            log.error("event_flush_on_shutdown_failed", error=str(exc), pending=self._pending)


async def _add_tallies(
    conn: AsyncConnection,
    table: Table,
    key: str,
    column: str,
    by_key: dict[Any, dict[str, Any]],
    chunk: int,
) -> None:
    """Upsert the queued tallies: new keys are inserted, known ones get their number added.
    In key order, so that two writers adding to the same keys cannot deadlock."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    rows = [by_key[value] for value in sorted(by_key)]
    for start in range(0, len(rows), chunk):
        stmt = dialect.insert(table)
        others = {c: stmt.excluded[c] for c in rows[0] if c not in (key, column)}
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c[key]],
            set_={column: table.c[column] + stmt.excluded[column], **others},
        )
        await conn.execute(stmt, rows[start : start + chunk])


def _copy_columns(table: Table, rows: list[dict[str, Any]]) -> list[str] | None:
    """The columns to COPY `rows` into `table` with, when COPY gives what INSERT would: every
    row names the same columns, the others need no client-side default, and no value needs a
    JSON codec. Otherwise None (INSERT)."""
    columns = list(rows[0])
    if any(len(row) != len(columns) or list(row) != columns for row in rows):
        return None
    for column in table.c:
        if isinstance(column.type, JSON):
            return None
        if column.name not in columns and column.default is not None:
            return None
    return columns


async def _copy(
    conn: AsyncConnection, table: Table, columns: list[str], rows: list[dict[str, Any]]
) -> None:
    """Binary COPY on the transaction's own connection: the busiest event tables (a row per
    product view) cost a fraction of a multi-row INSERT's client-side work."""
    await conn.exec_driver_sql("SELECT 1")  # the transaction has begun: COPY joins it
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    await driver.copy_records_to_table(
        table.name, records=[tuple(row[c] for c in columns) for row in rows], columns=columns
    )
