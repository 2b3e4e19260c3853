from __future__ import annotations

import asyncio
import contextlib
import uuid
from decimal import Decimal
from pathlib import Path
from typing import IO, Annotated, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import select

from catalog.auth import policy
from catalog.auth.dependencies import AuthenticatedDep, ProductCreatorDep
from catalog.auth.principal import Principal
from catalog.dependencies import SessionDep, SettingsDep
from catalog.errors import Unprocessable, responses
from catalog.imports import service
from catalog.imports.formats import Format
from catalog.imports.schemas import ImportJobOut
from catalog.kit.http import dumps, json_response
from catalog.models import ImportJob, ImportStatus, ProductStatus, Role
from catalog.products.service import ProductFilters

router = APIRouter(prefix="/imports", tags=["imports"])
exports_router = APIRouter(prefix="/exports", tags=["imports"])

JobId = Annotated[uuid.UUID, PathParam(description="Import job id")]
PriceQuery = Annotated[
    Decimal | None, Query(ge=0, lt=Decimal("1e12"), max_digits=16, decimal_places=4)
]
COPY_CHUNK = 1024 * 1024
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


def _body(request: Request, job: ImportJob) -> bytes:
    view = service.job_view(job)
    view["errors_url"] = f"{request.scope.get('root_path', '')}/api/v1/imports/{job.id}/errors"
    return dumps(view)


def _format_for(filename: str, given: str | None) -> Format:
    if given in ("csv", "jsonl"):
        return "jsonl" if given == "jsonl" else "csv"
    if given:
        raise Unprocessable("format must be csv or jsonl", loc=["body", "format"])
    suffix = Path(filename).suffix.lower()
    return "jsonl" if suffix in (".jsonl", ".ndjson") else "csv"


def _copy(source: IO[bytes], target: Path, limit: int) -> int:
    """Copy the upload to `target`, refusing it past `limit` bytes."""
    size = 0
    with target.open("wb") as out:
        while chunk := source.read(COPY_CHUNK):
            size += len(chunk)
            if size > limit:
                raise service.PayloadTooLarge(
                    f"The file is larger than the import limit of {limit} bytes"
                )
            out.write(chunk)
    return size


async def _visible_job(session: SessionDep, principal: Principal, job_id: uuid.UUID) -> ImportJob:
    job = await service.get_job(session, job_id)
    if not principal.is_admin and job.created_by_id != principal.user_id:
        raise service.ImportNotFound(job_id)  # other people's jobs do not exist for you
    return job


@router.post(
    "",
    status_code=202,
    response_model=ImportJobOut,
    # 400: a multipart body that cannot be parsed (e.g. without a boundary).
    responses=responses(400, 401, 403, 413, 422),
)
async def create_import(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: ProductCreatorDep,
    file: Annotated[UploadFile, File(description="CSV (one row per variant) or JSON Lines")],
    format: Annotated[
        Literal["csv", "jsonl"] | None,
        Form(description="csv or jsonl; by default from the file name (.jsonl, .ndjson)"),
    ] = None,
    dry_run: Annotated[bool, Form(description="Validate and count; write nothing")] = False,
    create_missing: Annotated[
        bool, Form(description="Create brands and categories the file names but that do not exist")
    ] = False,
) -> Response:
    """Upload a catalog file; it is imported in the background. Sellers' rows are always owned
    by the seller, and rows of products owned by someone else fail. Poll the `Location`."""
    filename = Path(file.filename or "upload").name[:255] or "upload"
    fmt = _format_for(filename, format)
    job_id = uuid.uuid4()
    directory = settings.import_dir
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    target = directory / f"{job_id}.{fmt}"
    try:
        size = await asyncio.to_thread(_copy, file.file, target, settings.import_max_bytes)
        if size == 0:
            raise Unprocessable("The file is empty", loc=["body", "file"])
        job = ImportJob(
            id=job_id,
            created_by_id=principal.user_id,
            owner_id=principal.user_id,
            restrict_to_owner=principal.role != Role.admin,
            format=fmt,
            filename=filename,
            file_path=str(target),
            size_bytes=size,
            dry_run=dry_run,
            create_missing=create_missing,
            status=ImportStatus.queued.value,
            cancel_requested=False,
            rows_done=0,
            created=0,
            updated=0,
            unchanged=0,
            failed=0,
            attempts=0,
        )
        session.add(job)
        await session.commit()
    except BaseException:
        with contextlib.suppress(OSError):
            target.unlink()
        raise
    worker = getattr(request.app.state, "import_worker", None)
    if worker is not None:
        worker.wake()
    return json_response(
        _body(request, job),
        status_code=202,
        headers={"Location": f"{request.url.path}/{job.id}"},
    )


@router.get("", response_model=list[ImportJobOut], responses=responses(401, 422))
async def list_imports(
    request: Request,
    session: SessionDep,
    principal: AuthenticatedDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """Your latest imports (administrators: everyone's), newest first."""
    stmt = select(ImportJob).order_by(ImportJob.created_at.desc(), ImportJob.id.desc())
    if not principal.is_admin:
        stmt = stmt.where(ImportJob.created_by_id == principal.user_id)
    jobs = (await session.execute(stmt.limit(limit))).scalars().all()
    return json_response(b"[" + b",".join(_body(request, j) for j in jobs) + b"]")


@router.get("/{job_id}", response_model=ImportJobOut, responses=responses(401, 404, 422))
async def get_import(
    request: Request, session: SessionDep, principal: AuthenticatedDep, job_id: JobId
) -> Response:
    """Status, progress (rows done / total), counts and elapsed time of an import."""
    job = await _visible_job(session, principal, job_id)
    return json_response(_body(request, job), headers={"Cache-Control": "no-store"})


@router.get(
    "/{job_id}/errors",
    responses={
        **responses(401, 404, 422),
        200: {"content": {"text/csv": {}}, "description": "The failed rows"},
    },
    response_class=StreamingResponse,
)
async def get_import_errors(
    request: Request, session: SessionDep, principal: AuthenticatedDep, job_id: JobId
) -> StreamingResponse:
    """The failed rows as CSV: `error_row`, `error_field`, `error_message`, then the row as it
    was in the file, so that it can be corrected and uploaded again as it is."""
    job = await _visible_job(session, principal, job_id)
    stem = Path(job.filename).stem or "import"
    return StreamingResponse(
        service.error_csv(request.app.state.engine, job),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{stem}.errors.csv"'},
    )


@router.post(
    "/{job_id}/cancel",
    status_code=202,
    response_model=ImportJobOut,
    responses=responses(401, 404, 409, 422),
)
async def cancel_import(
    request: Request, session: SessionDep, principal: AuthenticatedDep, job_id: JobId
) -> Response:
    """Stop an import: a queued one at once, a running one after its current batch (the
    batches already committed stay imported). 409 when it has already finished."""
    job = await _visible_job(session, principal, job_id)
    job = await service.cancel(session, job)
    return json_response(_body(request, job), status_code=202)


async def _exporter(principal: AuthenticatedDep) -> Principal:
    if principal.role not in (Role.admin, Role.seller):
        raise policy.Forbidden("Only sellers and administrators may export products")
    return principal


@exports_router.get(
    "/products",
    responses={
        **responses(401, 403, 422),
        200: {
            "content": {"text/csv": {}, "application/x-ndjson": {}},
            "description": "The products, one row per variant (CSV) or one per line (JSONL)",
        },
    },
    response_class=StreamingResponse,
)
async def export_products(
    request: Request,
    principal: AuthenticatedDep,
    format: Annotated[Literal["csv", "jsonl"], Query(description="csv or jsonl")] = "csv",
    category_id: Annotated[
        uuid.UUID | None, Query(description="Includes products of sub-categories")
    ] = None,
    brand_id: uuid.UUID | None = None,
    status: ProductStatus | None = None,
    price_min: PriceQuery = None,
    price_max: PriceQuery = None,
    in_stock: bool | None = None,
) -> StreamingResponse:
    """The catalog in the import formats, streamed (constant memory whatever its size); a
    seller exports their own products. Importing the file again changes nothing."""
    await _exporter(principal)
    if price_min is not None and price_max is not None and price_min > price_max:
        raise Unprocessable(
            "price_min must not be greater than price_max", loc=["query", "price_min"]
        )
    filters = ProductFilters(
        category_id=category_id,
        brand_id=brand_id,
        status=status,
        price_min=price_min,
        price_max=price_max,
        in_stock=in_stock,
    )
    owner = None if principal.is_admin else principal.user_id
    return StreamingResponse(
        service.export_products(request.app.state.engine, format, filters, owner_id=owner),
        media_type=MEDIA_TYPES[format],
        headers={
            "Content-Disposition": f'attachment; filename="products.{format}"',
            "Cache-Control": "no-store",
        },
    )
