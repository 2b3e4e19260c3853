"""Product views: one in-memory count per read of a product page (by id or slug), written in
batches by the `EventRecorder`, a row per product and viewer with the number of reads. A view
is recorded once the product was found and visible."""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson
from starlette.types import Scope

from catalog.analytics.recorder import EventRecorder
from catalog.db import utcnow
from catalog.models import ProductView

SESSION_HEADER = b"x-session-id"
SESSION_COOKIE = "catalog_session"
_SESSION_OK = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")
_TABLE: Any = ProductView.__table__


def session_id(scope: Scope) -> str | None:
    """The anonymous session: the `X-Session-ID` header, else the `catalog_session` cookie."""
    cookie = None
    for name, value in scope["headers"]:
        if name == SESSION_HEADER:
            candidate = value.decode("latin-1").strip()
            return candidate if _SESSION_OK.match(candidate) else None
        if name == b"cookie":
            cookie = value.decode("latin-1")
    if cookie is None or SESSION_COOKIE not in cookie:
        return None
    for part in cookie.split(";"):
        key, _, value = part.strip().partition("=")
        if key == SESSION_COOKIE:
            value = value.strip('"')
            return value if _SESSION_OK.match(value) else None
    return None


def record_view(
    recorder: EventRecorder | None,
    scope: Scope,
    product_id: uuid.UUID | str,
    user_id: uuid.UUID | None = None,
) -> None:
    if recorder is None or scope["method"] != "GET":
        return
    product = product_id if isinstance(product_id, uuid.UUID) else uuid.UUID(product_id)
    session = session_id(scope)
    recorder.count(
        _TABLE,
        (product, user_id, session),
        # No "id": the database numbers the rows.
        {"product_id": product, "user_id": user_id, "session_id": session, "created_at": utcnow()},
        "views",
    )


def viewed_early(state: Any, scope: Scope, match: re.Match[str] | None) -> None:
    """A product answered by the fast read path (anonymous, by id)."""
    if match is not None:
        record_view(state.recorder, scope, match.group(1))


def product_id_of(body: bytes) -> uuid.UUID:
    """The id of a product body (`{"id":"...",` first, as `product_dict` orders it)."""
    if body.startswith(b'{"id":"'):
        return uuid.UUID(body[7:43].decode())
    return uuid.UUID(orjson.loads(body)["id"])
