"""Domain errors and their RFC 9457 problem+json rendering.

Every error a caller can cause is a `CatalogError` subclass with a status code; one handler turns it
into ``application/problem+json``. Routes declare the errors they can return with `responses()`.
"""

from __future__ import annotations

import re
import socket
import sqlite3
import traceback
from http import HTTPStatus
from typing import Any

import asyncpg
import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"

log = structlog.get_logger(__name__)


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Path of the offending field, e.g. ['body', 'price']")
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None


class CatalogError(Exception):
    status: int = 500
    title: str = "Internal Server Error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = errors
        self.headers = headers


class BadRequest(CatalogError):
    status = 400
    title = "Bad Request"


class NotFound(CatalogError):
    status = 404
    title = "Not Found"


class Conflict(CatalogError):
    status = 409
    title = "Conflict"


class PreconditionFailed(CatalogError):
    status = 412
    title = "Precondition Failed"


class PreconditionRequired(CatalogError):
    status = 428
    title = "Precondition Required"


class ServiceUnavailable(CatalogError):
    status = 503
    title = "Service Unavailable"


class Unprocessable(CatalogError):
    status = 422
    title = "Unprocessable Content"

    def __init__(self, detail: str, *, loc: list[str | int] | None = None) -> None:
        errors = [{"loc": loc, "msg": detail, "type": "value_error"}] if loc else None
        super().__init__(detail, errors=errors)


class DuplicateField(Conflict):
    def __init__(self, field: str, value: object | None = None) -> None:
        shown = f" '{value}'" if value is not None else ""
        super().__init__(
            f"A record with this {field}{shown} already exists",
            errors=[{"loc": ["body", field], "msg": "already exists", "type": "unique"}],
        )
        self.field = field


def problem_response(
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for the problem statuses a route can return."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        if status == 304:
            out[status] = {"description": "Not Modified (the `If-None-Match` ETag matches)"}
            continue
        out[status] = {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    return out


_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: ([\w.]+)")
# Unique indexes on expressions, whose names do not end with the field.
_INDEX_FIELDS = {"uq_user_account_email_lower": "email"}


def unique_violation_field(exc: IntegrityError) -> str | None:
    """The column behind a unique violation, on PostgreSQL (constraint name) or SQLite (message)."""
    orig = exc.orig
    constraint = getattr(orig, "constraint_name", None) or getattr(
        getattr(orig, "__cause__", None), "constraint_name", None
    )
    if constraint in _INDEX_FIELDS:
        return _INDEX_FIELDS[constraint]
    if constraint:
        for prefix in ("uq_", "ix_"):
            if constraint.startswith(prefix):
                parts = str(constraint).removeprefix(prefix).split("_")
                return parts[-1]
    match = _SQLITE_UNIQUE.search(str(orig))
    if match:
        return match.group(1).split(".")[-1]
    if "index 'uq_user_account_email_lower'" in str(orig):
        return "email"
    return None


DATABASE_UNAVAILABLE = "The database is unavailable; retry shortly"
_UNAVAILABLE = (DATABASE_UNAVAILABLE, 5)
_LOCKED = ("The data is being changed by another request; retry shortly", 1)
_SLOW = ("The database did not answer in time; retry shortly", 5)
_BUSY = ("Every database connection is in use; retry shortly", 1)
_NETWORK = ("A service this request needs cannot be reached; retry shortly", 5)
# SQLite's words for a database another connection holds, or that cannot be opened.
_SQLITE_UNAVAILABLE = ("database is locked", "database table is locked", "unable to open")


def database_unavailable(exc: BaseException) -> tuple[str, int] | None:
    """Why a failure is the database's passing state rather than a bug: the detail of the 503
    it becomes and its Retry-After seconds, or None. Looks through the exception's causes (a
    driver error is wrapped by SQLAlchemy's, sometimes twice)."""
    current: BaseException | None = exc
    for _ in range(6):
        if current is None:
            return None
        if isinstance(current, PoolTimeoutError):
            return _BUSY
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return _UNAVAILABLE
        code = getattr(current, "sqlstate", None)
        if isinstance(code, str):
            if code == "57014":  # query_canceled: the statement timeout
                return _SLOW
            if code in ("55P03", "40001", "40P01"):  # lock timeout, serialization, deadlock
                return _LOCKED
            if code.startswith(("08", "53", "57P")):  # connection, resources, server stopping
                return _UNAVAILABLE
        if isinstance(current, sqlite3.OperationalError):
            message = str(current)
            if any(words in message for words in _SQLITE_UNAVAILABLE):
                return _LOCKED if "locked" in message else _UNAVAILABLE
        if isinstance(
            current,
            ConnectionError | TimeoutError | socket.gaierror | asyncpg.InterfaceError,
        ):
            return _UNAVAILABLE if _raised_by_database_driver(current) else _NETWORK
        current = (
            current.orig
            if isinstance(current, DBAPIError) and current.orig is not None
            else current.__cause__ or current.__context__
        )
    return None


_DRIVERS = ("asyncpg.", "aiosqlite.", "sqlalchemy.")


def _raised_by_database_driver(exc: BaseException) -> bool:
    """A connection failure the database driver let through unwrapped (connecting is not
    wrapped by SQLAlchemy): its traceback passes through the driver's modules."""
    return any(
        str(frame.f_globals.get("__name__", "")).startswith(_DRIVERS)
        for frame, _ in traceback.walk_tb(exc.__traceback__)
    )


def unavailable_response(exc: BaseException, request_id: str | None) -> Response | None:
    """The 503 answering a failure `database_unavailable` recognises, or None."""
    unavailable = database_unavailable(exc)
    if unavailable is None:
        return None
    detail, retry_after = unavailable
    log.warning(
        "database_unavailable",
        error=f"{type(exc).__name__}: {str(exc)[:300]}",
        request_id=request_id,
    )
    headers = {"Retry-After": str(retry_after)}
    if request_id:
        headers["X-Request-ID"] = request_id
    return problem_response(503, detail=detail, headers=headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    # May run outside the request-context middleware: the request id is carried over explicitly.
    request_id = request.scope.get("state", {}).get("request_id")
    response = unavailable_response(exc, request_id)
    if response is not None:
        return response
    log.error("unhandled_error", exc_info=exc, request_id=request_id)
    headers = {"X-Request-ID": request_id} if request_id else None
    return problem_response(500, detail="An unexpected error occurred", headers=headers)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        loc = [part if isinstance(part, int) else str(part) for part in err.get("loc", ())]
        out.append({"loc": loc, "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))})
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CatalogError)
    async def _catalog_error(_request: Request, exc: CatalogError) -> Response:
        return problem_response(
            exc.status,
            title=exc.title,
            detail=exc.detail,
            errors=exc.errors,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> Response:
        errors = _validation_errors(exc)
        first = errors[0] if errors else None
        detail = (
            f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
            if first
            else "Invalid request"
        )
        return problem_response(422, detail=detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
            # A JSON body that is not UTF-8 is as malformed as one with a syntax error (422).
            return problem_response(
                422,
                detail="body: the JSON body is not valid UTF-8",
                errors=[{"loc": ["body"], "msg": "JSON decode error", "type": "json_invalid"}],
            )
        detail = exc.detail if isinstance(exc.detail, str) else None
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(exc.status_code, detail=detail, headers=headers)

    @app.exception_handler(StaleDataError)
    async def _stale(_request: Request, _exc: StaleDataError) -> Response:
        return problem_response(
            409, detail="The resource was modified concurrently; fetch it again and retry"
        )

    @app.exception_handler(DataError)
    async def _data_error(_request: Request, exc: DataError) -> Response:
        # Values the database refuses (out of range, bad encoding) that validation let through.
        log.warning("data_error", error=str(exc.orig)[:300])
        return problem_response(422, detail="A value is out of range or not acceptable")

    @app.exception_handler(IntegrityError)
    async def _integrity(_request: Request, exc: IntegrityError) -> Response:
        field = unique_violation_field(exc)
        if field:
            return problem_response(
                409,
                detail=f"A record with this {field} already exists",
                errors=[{"loc": ["body", field], "msg": "already exists", "type": "unique"}],
            )
        log.warning("integrity_error", error=str(exc.orig))
        return problem_response(409, detail="The request conflicts with the current state")

    # The failures a database outage, overload or lock raises: a 503 with Retry-After when
    # `database_unavailable` recognises them, handled here so the server does not log them as
    # crashes; anything else among them is a 500 like every unexpected error.
    # (The `Exception` handler runs in the outermost middleware, for whatever escapes the rest.)
    for failure in (DBAPIError, PoolTimeoutError, OSError, asyncpg.PostgresError, Exception):
        app.add_exception_handler(failure, _server_error)
