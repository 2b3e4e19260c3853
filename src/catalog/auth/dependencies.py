"""Authentication and authorization dependencies (typed aliases for the routers)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from catalog.auth import policy, service
from catalog.auth.principal import ANONYMOUS, Principal, Scope
from catalog.auth.service import Auth
from catalog.dependencies import SessionDep
from catalog.kit.clientip import client_ip
from catalog.kit.ratelimit import RateLimiter

bearer_scheme = HTTPBearer(auto_error=False, description="Access token from /api/v1/auth/token")
api_key_scheme = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="API key from /api/v1/api-keys"
)


async def get_auth(request: Request) -> Auth:
    auth: Auth = request.app.state.auth
    return auth


AuthDep = Annotated[Auth, Depends(get_auth)]


async def get_principal(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Principal:
    try:
        if bearer is not None and api_key is not None:
            raise policy.Unauthorized("Send either a bearer token or an API key, not both")
        if bearer is not None:
            # Reads stay available when the revocation store is down; writes do not.
            fail_open = request.method in ("GET", "HEAD", "OPTIONS")
            principal = await service.principal_for_token(
                auth, bearer.credentials, fail_open=fail_open
            )
        elif api_key is not None:
            principal = await service.principal_for_api_key(session, api_key)
        else:
            principal = ANONYMOUS
    except policy.Unauthorized:
        # Guessing tokens or keys is throttled like guessing passwords.
        limiter = get_rate_limiter(request)
        ip = client_ip(request.scope, request.app.state.trusted_proxies)
        await limiter.enforce(request.scope, limiter.auth, "bad-credentials", ip)
        raise
    request.scope.setdefault("state", {})["principal"] = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def authenticated(principal: PrincipalDep) -> Principal:
    policy.require_authenticated(principal)
    return principal


async def admin(principal: PrincipalDep) -> Principal:
    """User administration: an administrator's own session. API keys act within their scopes,
    and no scope covers user management."""
    policy.require_admin(principal)
    if principal.api_key_id is not None:
        raise policy.Forbidden("API keys cannot administer users")
    return principal


async def catalog_admin(principal: PrincipalDep) -> Principal:
    policy.require_catalog_admin(principal)
    return principal


async def product_creator(principal: PrincipalDep) -> Principal:
    policy.require_product_creator(principal)
    return principal


async def catalog_writer(principal: PrincipalDep) -> Principal:
    policy.require_scope(principal, Scope.catalog_write)
    return principal


async def analytics_reader(principal: PrincipalDep) -> Principal:
    """Administrators, through a token or an API key with the `analytics:read` scope."""
    policy.require_scope(principal, Scope.analytics_read)
    policy.require_admin(principal)
    return principal


AnalyticsReaderDep = Annotated[Principal, Depends(analytics_reader)]
AuthenticatedDep = Annotated[Principal, Depends(authenticated)]
AdminDep = Annotated[Principal, Depends(admin)]
CatalogAdminDep = Annotated[Principal, Depends(catalog_admin)]
ProductCreatorDep = Annotated[Principal, Depends(product_creator)]
CatalogWriterDep = Annotated[Principal, Depends(catalog_writer)]


def get_rate_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.ratelimiter
    return limiter


async def rate_limit(request: Request, principal: PrincipalDep) -> None:
    """The general limit: per API key, per user, or per client IP for anonymous callers."""
    limiter = get_rate_limiter(request)
    # Counted in process from budget leased from Redis: no round trip per request.
    if principal.api_key_id is not None:
        await limiter.enforce_general(
            request.scope, limiter.authenticated, "key", str(principal.api_key_id)
        )
    elif principal.user_id is not None:
        await limiter.enforce_general(
            request.scope, limiter.authenticated, "user", str(principal.user_id)
        )
    else:
        ip = client_ip(request.scope, request.app.state.trusted_proxies)
        await limiter.enforce_general(request.scope, limiter.anonymous, "ip", ip)


async def auth_rate_limit(request: Request) -> None:
    """The strict limit of login and registration, per client IP."""
    limiter = get_rate_limiter(request)
    ip = client_ip(request.scope, request.app.state.trusted_proxies)
    await limiter.enforce(request.scope, limiter.auth, "auth", ip)
