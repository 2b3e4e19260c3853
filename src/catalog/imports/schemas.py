from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import Field

from catalog.kit.schemas import OutputModel
from catalog.models import ImportStatus


class ImportProgress(OutputModel):
    rows_done: int = Field(description="Rows processed (imported, unchanged or failed)")
    rows_total: int | None = Field(description="Rows in the file; null until it was counted")
    percent: float


class ImportCounts(OutputModel):
    created: int = Field(description="Rows whose variant SKU was new")
    updated: int = Field(description="Rows whose variant or product changed")
    unchanged: int = Field(description="Rows that changed nothing")
    failed: int = Field(description="Rows not imported; see the errors file")


class ImportJobOut(OutputModel):
    id: uuid.UUID
    status: ImportStatus
    format: Literal["csv", "jsonl"]
    filename: str
    size_bytes: int
    dry_run: bool = Field(description="Validate and count only; nothing is written")
    create_missing: bool = Field(description="Unknown brands and categories are created")
    cancel_requested: bool
    progress: ImportProgress
    counts: ImportCounts
    error: str | None = Field(description="Why the whole file failed (encoding, header, ...)")
    attempts: int = Field(description="Workers that took the job (more than 1: resumed)")
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    elapsed_seconds: float | None
    errors_url: str
