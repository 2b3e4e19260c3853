"""Import workers: claim jobs from the database and run them.

A worker claims the oldest queued job, or a running job whose lease has expired (its worker
died), with `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL so concurrent workers never take
the same job (SQLite serializes writers; the guarded UPDATE settles it there). While it runs a
job the worker renews the lease; a job whose workers keep dying is marked failed after
`import_max_attempts` claims instead of being retried for ever. Jobs are never silently lost:
they finish (succeeded, failed, cancelled) or are resumed by the next worker.

`catalog worker` runs this loop in its own process; in the embedded profile (or with
`CATALOG_IMPORT_IN_PROCESS=true`) the API process runs it as a background task.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import socket
import uuid

import structlog
from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from catalog.config import Settings
from catalog.db import utcnow
from catalog.imports.service import ImportRun
from catalog.kit.cache import Cache
from catalog.models import ImportJob, ImportStatus

log = structlog.get_logger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:100]


class ImportWorker:
    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        cache: Cache | None = None,
        *,
        name: str | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.cache = cache
        self.name = name or worker_name()
        self.stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """A job was just queued: look now rather than at the next poll."""
        self._wake.set()

    def _claimable(self, now: dt.datetime) -> ColumnElement[bool]:
        return or_(
            ImportJob.status == ImportStatus.queued.value,
            and_(
                ImportJob.status == ImportStatus.running.value,
                or_(ImportJob.lease_expires_at.is_(None), ImportJob.lease_expires_at < now),
            ),
        )

    async def claim(self) -> uuid.UUID | None:
        """Take one job (or None). Jobs that used up their attempts are failed on the way."""
        while True:
            now = utcnow()
            async with self.engine.begin() as conn:
                row = (
                    await conn.execute(
                        select(ImportJob.id, ImportJob.status, ImportJob.attempts)
                        .where(self._claimable(now))
                        .order_by(ImportJob.created_at)
                        .limit(1)
                        .with_for_update(skip_locked=True)
                    )
                ).first()
                if row is None:
                    return None
                guard = and_(ImportJob.id == row.id, self._claimable(now))
                if (
                    row.status == ImportStatus.running.value
                    and row.attempts >= self.settings.import_max_attempts
                ):
                    await conn.execute(
                        update(ImportJob)
                        .where(guard)
                        .values(
                            status=ImportStatus.failed.value,
                            error=(
                                f"The import stopped {row.attempts} times without finishing "
                                "(its worker was interrupted); the rows already counted are "
                                "imported, upload the rest again"
                            ),
                            lease_owner=None,
                            lease_expires_at=None,
                            finished_at=now,
                            updated_at=now,
                        )
                    )
                    log.warning("import_abandoned", job_id=str(row.id), attempts=row.attempts)
                    continue
                lease = now + dt.timedelta(seconds=self.settings.import_lease_seconds)
                result = await conn.execute(
                    update(ImportJob)
                    .where(guard)
                    .values(
                        status=ImportStatus.running.value,
                        lease_owner=self.name,
                        lease_expires_at=lease,
                        attempts=ImportJob.attempts + 1,
                        updated_at=now,
                    )
                )
                if result.rowcount != 1:
                    continue  # another worker was faster (SQLite)
                await conn.execute(
                    update(ImportJob)
                    .where(ImportJob.id == row.id, ImportJob.started_at.is_(None))
                    .values(started_at=now)
                )
                if row.status == ImportStatus.running.value:
                    log.warning("import_resumed", job_id=str(row.id), worker=self.name)
                return uuid.UUID(str(row.id))

    async def run_once(self) -> bool:
        """Claim and run one job; False when there was none."""
        job_id = await self.claim()
        if job_id is None:
            return False
        log.info("import_claimed", job_id=str(job_id), worker=self.name)
        run = ImportRun(self.settings, self.engine, self.cache, job_id, self.name, stop=self.stop)
        try:
            await run.execute()
        except Exception as exc:
            # Unexpected: leave the job to its lease (resumed or failed by a later claim).
            log.error("import_crashed", job_id=str(job_id), exc_info=exc)
        return True

    async def run(self) -> None:
        """Work until `stop` is set; a job in progress is handed back after its current batch."""
        log.info("import_worker_started", worker=self.name)
        while not self.stop.is_set():
            try:
                worked = await self.run_once()
            except Exception as exc:  # the database may be briefly unreachable
                log.warning("import_worker_error", error=str(exc))
                worked = False
            if worked:
                continue
            self._wake.clear()
            waiters = [
                asyncio.ensure_future(self._wake.wait()),
                asyncio.ensure_future(self.stop.wait()),
            ]
            await asyncio.wait(
                waiters, timeout=self.settings.import_poll_seconds, return_when="FIRST_COMPLETED"
            )
            for waiter in waiters:
                waiter.cancel()
        log.info("import_worker_stopped", worker=self.name)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="import-worker")

    async def close(self, grace: float = 10.0) -> None:
        self.stop.set()
        task, self._task = self._task, None
        if task is None:
            return
        done, _ = await asyncio.wait({task}, timeout=grace)
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
