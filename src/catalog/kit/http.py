"""JSON responses from prepared bytes, ETags and conditional requests (RFC 9110)."""

from __future__ import annotations

import hashlib
import uuid
from decimal import Decimal
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel

from catalog.errors import PreconditionFailed
from catalog.kit.cache import Cached

JSON = "application/json"


def _default(value: Any) -> Any:
    # asyncpg returns its own UUID subclass, which orjson does not serialize natively.
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(data: Any) -> bytes:
    return orjson.dumps(data, default=_default)


def etag_for(body: bytes) -> str:
    """A strong validator derived from the representation's bytes."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def _tags(header: str) -> list[str]:
    return [tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()]


def not_modified(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = _tags(header)
    return "*" in tags or etag in tags


def check_if_match(request: Request, current_etag: str) -> None:
    """412 when the caller's `If-Match` does not name the current representation."""
    header = request.headers.get("if-match")
    if header is None:
        return
    tags = [tag.strip() for tag in header.split(",") if tag.strip()]
    if "*" in tags or current_etag in tags:
        return
    raise PreconditionFailed(
        "The resource has changed since you fetched it (If-Match does not match its ETag)"
    )


def json_response(
    body: bytes,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(body, status_code=status_code, media_type=JSON, headers=headers)


def resource_response(
    request: Request,
    body: bytes,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    cache_control: str = "no-cache",
) -> Response:
    """A single resource with its ETag; 304 when `If-None-Match` matches."""
    etag = etag_for(body)
    out_headers = {"ETag": etag, "Cache-Control": cache_control}
    if headers:
        out_headers.update(headers)
    if status_code == 200 and request.method in ("GET", "HEAD") and not_modified(request, etag):
        return Response(status_code=304, headers=out_headers)
    return Response(body, status_code=status_code, media_type=JSON, headers=out_headers)


def model_json(model: type[BaseModel], obj: object) -> bytes:
    """Validate an ORM object into `model` and serialize it to JSON bytes."""
    return model.model_validate(obj).model_dump_json().encode()


PUBLIC_CACHE = "public, max-age=5, stale-while-revalidate=30"
PRIVATE_CACHE = "private, no-cache"


def cached_response(
    request: Request, value: Cached, *, cache_control: str = PUBLIC_CACHE
) -> Response:
    """A prepared body from the cache; 304 when `If-None-Match` names it."""
    headers = {"ETag": value.etag, "Cache-Control": cache_control}
    if request.method in ("GET", "HEAD") and not_modified(request, value.etag):
        return Response(status_code=304, headers=headers)
    return Response(value.body, media_type=JSON, headers=headers)


def query_fingerprint(request: Request) -> str:
    """A stable digest of the query string (parameter order does not matter)."""
    return fingerprint(request.query_params.multi_items())


def fingerprint(items: list[tuple[str, str]]) -> str:
    """`query_fingerprint` of decoded query parameters."""
    raw = "&".join(f"{k}={v}" for k, v in sorted(items)).encode()
    return hashlib.blake2b(raw, digest_size=12).hexdigest()
