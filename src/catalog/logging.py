"""Structured JSON logs (structlog) and the request-id / access-log ASGI middleware."""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catalog.kit.clientip import client_ip

_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


def json_formatter() -> logging.Formatter:
    """Standard-library records as our JSON lines: for the server's own loggers (granian's
    main process logs before the app configures anything)."""
    return structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(),
        ],
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
    )


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        # Stack traces as structured fields, without local variables (they may hold secrets).
        structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        ),
    ]
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        # One write() per line, newline included (print() makes two when stdout is unbuffered,
        # PYTHONUNBUFFERED): the workers of `serve --workers N` share stdout, and a line of one
        # must never land inside a line of another.
        logger_factory=structlog.WriteLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=True,
    )
    # Standard-library loggers (uvicorn, sqlalchemy, alembic) go through the same renderer.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # aiosqlite logs every statement with its parameter values at DEBUG: never below INFO.
    logging.getLogger("aiosqlite").setLevel(max(logging.INFO, logging.getLevelName(level)))
    logging.getLogger("uvicorn.access").disabled = True  # replaced by our access log


access_log = structlog.get_logger("catalog.access")


def _route_template(scope: Scope) -> str | None:
    """The matched route's path template, with the prefixes of the routers it is included in.

    FastAPI keeps included routers nested: `scope["route"].path` is then relative to the
    router that declares it ("/brands/{brand_id}"), and the full template
    ("/api/v1/brands/{brand_id}") is only on FastAPI's effective route context."""
    answered_early = scope.get("route_template")  # by the fast read path, before routing
    if isinstance(answered_early, str):
        return answered_early
    fastapi_scope = scope.get("fastapi")
    if isinstance(fastapi_scope, dict):
        context = fastapi_scope.get("effective_route_context")
        path_format = getattr(context, "path_format", None)
        if isinstance(path_format, str) and path_format:
            return path_format
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else None


class RequestContextMiddleware:
    """Accepts or generates `X-Request-ID`, echoes it, binds it to every log line of the request
    and writes one access-log line per request. Pure ASGI: no per-request task overhead."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _REQUEST_ID_OK.match(candidate):
                    request_id = candidate
                break
        if request_id is None:
            request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        start = time.perf_counter()
        status = 500
        header_value = request_id.encode()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", header_value)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            state = scope["state"]
            principal = state.get("principal")  # set once the credentials were checked
            app_state = getattr(scope.get("app"), "state", None)
            access_log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                route=_route_template(scope),
                status=status,
                duration_ms=round((time.perf_counter() - start) * 1000, 2),
                client_ip=client_ip(scope, getattr(app_state, "trusted_proxies", [])),
                user_id=str(principal.user_id) if principal and principal.user_id else None,
                api_key_id=str(principal.api_key_id)
                if principal and principal.api_key_id
                else None,
            )
            structlog.contextvars.clear_contextvars()
