from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from catalog.db import Base, IdMixin, JSONType, TimestampMixin, UTCDateTime


class ImportStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


FINISHED = (ImportStatus.succeeded, ImportStatus.failed, ImportStatus.cancelled)


class ImportJob(IdMixin, TimestampMixin, Base):
    """One uploaded file and its progress. Workers claim queued jobs (and running jobs whose
    lease has expired) and commit the job's progress in the same transaction as each batch of
    products, so a restarted job resumes exactly after the last committed batch."""

    __tablename__ = "import_job"

    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("user_account.id", ondelete="SET NULL"), index=True
    )
    # New products are owned by `owner_id`; with `restrict_to_owner` (sellers) only products
    # already owned by `owner_id` may be updated.
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("user_account.id", ondelete="SET NULL")
    )
    restrict_to_owner: Mapped[bool] = mapped_column(Boolean, default=False)

    format: Mapped[str] = mapped_column(String(8))
    filename: Mapped[str] = mapped_column(String(255))
    file_path: Mapped[str] = mapped_column(String(1024))
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    create_missing: Mapped[bool] = mapped_column(Boolean, default=False)
    columns: Mapped[list[str] | None] = mapped_column(JSONType)

    status: Mapped[str] = mapped_column(String(16), default=ImportStatus.queued.value)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    rows_total: Mapped[int | None] = mapped_column(Integer)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)

    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="status"
        ),
        CheckConstraint("format IN ('csv', 'jsonl')", name="format"),
        # What workers poll: the jobs that may need one.
        Index(
            "ix_import_job_claimable",
            "created_at",
            postgresql_where=text("status IN ('queued', 'running')"),
            sqlite_where=text("status IN ('queued', 'running')"),
        ),
    )

    def counts(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
        }


class ImportRowError(IdMixin, Base):
    """A row that was not imported: where, why, and the row as it was in the file."""

    __tablename__ = "import_row_error"

    job_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("import_job.id", ondelete="CASCADE"))
    row: Mapped[int] = mapped_column(Integer)
    field: Mapped[str | None] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(Text)
    # CSV: the cells as a JSON list (in the order of `ImportJob.columns`); JSONL: the line.
    raw: Mapped[Any] = mapped_column(JSONType)

    __table_args__ = (Index("ix_import_row_error_job_id_row", "job_id", "row"),)
