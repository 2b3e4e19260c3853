"""What `catalog import`, `catalog export` and `catalog worker` run."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from redis.asyncio import Redis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import func, select

from catalog.config import Settings
from catalog.db import create_engine, create_sessionmaker, utcnow
from catalog.imports import service
from catalog.imports.formats import Format
from catalog.imports.worker import ImportWorker, worker_name
from catalog.kit.cache import Cache, RedisCache
from catalog.models import ImportJob, ImportStatus, Role, User
from catalog.products.service import ProductFilters


class CommandError(Exception):
    """A problem to report in one line (exit status 1)."""


@dataclass
class ImportSummary:
    status: str
    created: int
    updated: int
    unchanged: int
    failed: int
    rows_total: int | None
    error: str | None
    errors_file: Path | None
    seconds: float


@contextlib.asynccontextmanager
async def _cache(settings: Settings) -> AsyncIterator[Cache | None]:
    """The shared response cache, to invalidate after writes (production profile). The
    embedded profile's cache lives inside each API process, which expires it by TTL."""
    if not (settings.redis_url and settings.cache_enabled):
        yield None
        return
    redis = Redis.from_url(settings.redis_url, socket_timeout=5.0, socket_connect_timeout=5.0)
    try:
        yield RedisCache(redis, settings.redis_prefix)
    finally:
        await redis.aclose()


def format_for(path: Path, given: str | None) -> Format:
    if given is not None:
        if given not in ("csv", "jsonl"):
            raise CommandError("--format must be csv or jsonl")
        return "jsonl" if given == "jsonl" else "csv"
    return "jsonl" if path.suffix.lower() in (".jsonl", ".ndjson") else "csv"


async def import_file(
    settings: Settings,
    path: Path,
    *,
    fmt: Format,
    dry_run: bool = False,
    create_missing: bool = False,
    owner_email: str | None = None,
    errors_path: Path | None = None,
    console: Console | None = None,
) -> ImportSummary:
    """Import `path` in this process, with a progress bar on `console` (stderr by default).
    The job is recorded like an uploaded one (visible to administrators in the API)."""
    if not await asyncio.to_thread(path.is_file):
        raise CommandError(f"{path}: no such file")
    resolved = await asyncio.to_thread(path.resolve)
    size = (await asyncio.to_thread(path.stat)).st_size
    console = console or Console(stderr=True)
    engine = create_engine(settings)
    name = worker_name()
    started = time.perf_counter()
    try:
        async with create_sessionmaker(engine)() as session:
            owner: User | None = None
            if owner_email:
                owner = (
                    await session.execute(
                        select(User).where(func.lower(User.email) == owner_email.strip().lower())
                    )
                ).scalar_one_or_none()
                if owner is None:
                    raise CommandError(f"--owner: no user with the email {owner_email}")
                if owner.role not in (Role.admin.value, Role.seller.value):
                    raise CommandError("--owner must be a seller or an administrator")
            now = utcnow()
            job = ImportJob(
                id=uuid.uuid4(),
                created_by_id=None,
                owner_id=owner.id if owner is not None else None,
                restrict_to_owner=owner is not None and owner.role == Role.seller.value,
                format=fmt,
                filename=path.name[:255],
                file_path=str(resolved),
                size_bytes=size,
                dry_run=dry_run,
                create_missing=create_missing,
                status=ImportStatus.running.value,
                cancel_requested=False,
                rows_done=0,
                created=0,
                updated=0,
                unchanged=0,
                failed=0,
                lease_owner=name,
                lease_expires_at=now + dt.timedelta(seconds=settings.import_lease_seconds),
                attempts=1,
                started_at=now,
            )
            session.add(job)
            await session.commit()
            job_id = job.id

        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[counts]}"),
            console=console,
            transient=False,
        )
        task = progress.add_task("counting", total=None, counts="")

        def on_progress(current: ImportJob) -> None:
            progress.update(
                task,
                description="dry run" if dry_run else "importing",
                total=current.rows_total,
                completed=current.rows_done,
                counts=(
                    f"created {current.created}  updated {current.updated}  "
                    f"unchanged {current.unchanged}  failed {current.failed}"
                ),
            )

        async with _cache(settings) as cache:
            run = service.ImportRun(settings, engine, cache, job_id, name, on_progress=on_progress)
            with progress:
                try:
                    await run.execute()
                except (KeyboardInterrupt, asyncio.CancelledError):
                    await _abandon(engine, job_id, name)
                    raise

        async with create_sessionmaker(engine)() as session:
            final = await service.get_job(session, job_id)
        errors_file = None
        if final.failed:
            errors_file = errors_path or path.with_name(path.name + ".errors.csv")
            with errors_file.open("wb") as out:
                async for chunk in service.error_csv(engine, final):
                    out.write(chunk)
        return ImportSummary(
            status=final.status,
            created=final.created,
            updated=final.updated,
            unchanged=final.unchanged,
            failed=final.failed,
            rows_total=final.rows_total,
            error=final.error,
            errors_file=errors_file,
            seconds=time.perf_counter() - started,
        )
    finally:
        await engine.dispose()


async def _abandon(engine: object, job_id: uuid.UUID, name: str) -> None:
    """Interrupted (Ctrl-C): the job ends as cancelled rather than waiting for a worker."""
    from sqlalchemy import update
    from sqlalchemy.ext.asyncio import AsyncEngine

    assert isinstance(engine, AsyncEngine)
    with contextlib.suppress(Exception):
        async with engine.begin() as conn:
            await conn.execute(
                update(ImportJob)
                .where(ImportJob.id == job_id, ImportJob.lease_owner == name)
                .values(
                    status=ImportStatus.cancelled.value,
                    cancel_requested=True,
                    finished_at=utcnow(),
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )


async def export_file(
    settings: Settings, fmt: Format, output: IO[bytes], filters: ProductFilters | None = None
) -> tuple[int, int, float]:
    """Write the catalog to `output`; returns (products, rows, seconds)."""
    engine = create_engine(settings)
    counter = [0, 0]
    started = time.perf_counter()
    try:
        async for chunk in service.export_products(
            engine, fmt, filters or ProductFilters(), counter=counter
        ):
            output.write(chunk)
        output.flush()
    finally:
        await engine.dispose()
    return counter[0], counter[1], time.perf_counter() - started


async def run_worker(settings: Settings, *, once: bool = False) -> int:
    """Run import jobs until SIGTERM/SIGINT (the job in progress is handed back after its
    current batch) or, with `once`, until the queue is empty. Returns the jobs run."""
    engine = create_engine(settings)
    done = 0
    try:
        async with _cache(settings) as cache:
            worker = ImportWorker(settings, engine, cache)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, worker.stop.set)
            if once:
                while not worker.stop.is_set() and await worker.run_once():
                    done += 1
            else:
                print(f"import worker {worker.name} waiting for jobs", file=sys.stderr)
                await worker.run()
    finally:
        await engine.dispose()
    return done
