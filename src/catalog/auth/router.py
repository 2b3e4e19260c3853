from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from catalog.auth import service
from catalog.auth.dependencies import (
    AdminDep,
    AuthDep,
    AuthenticatedDep,
    auth_rate_limit,
    get_rate_limiter,
)
from catalog.auth.policy import Forbidden
from catalog.auth.principal import Principal
from catalog.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    LogoutIn,
    MeUpdate,
    RefreshIn,
    RegisterIn,
    TokenPair,
    UserAdminUpdate,
    UserOut,
)
from catalog.dependencies import SessionDep, SettingsDep
from catalog.errors import responses
from catalog.kit.http import dumps, json_response, model_json
from catalog.kit.schemas import Page
from catalog.models import Role

auth_router = APIRouter(prefix="/auth", tags=["auth"])
users_router = APIRouter(prefix="/users", tags=["users"])
api_keys_router = APIRouter(prefix="/api-keys", tags=["api keys"])

NO_STORE = {"Cache-Control": "no-store"}


@auth_router.post(
    "/register",
    status_code=201,
    response_model=UserOut,
    responses=responses(409, 422, 429),
    dependencies=[Depends(auth_rate_limit)],
)
async def register(
    request: Request, session: SessionDep, auth: AuthDep, data: RegisterIn
) -> Response:
    """Create a buyer account."""
    user = await service.register(session, auth, data)
    return json_response(
        model_json(UserOut, user),
        status_code=201,
        headers={"Location": f"/api/v1/users/{user.id}"},
    )


@auth_router.post(
    "/token",
    response_model=TokenPair,
    # 400: a form body that cannot be parsed (e.g. multipart without a boundary).
    responses=responses(400, 401, 422, 429),
    dependencies=[Depends(auth_rate_limit)],
)
async def login(
    request: Request,
    session: SessionDep,
    auth: AuthDep,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> Response:
    """OAuth2 password flow: `username` is the email address."""
    limiter = get_rate_limiter(request)
    await limiter.enforce(
        request.scope, limiter.login_per_account, "login", service.normalize_email(form.username)
    )
    user = await service.authenticate(session, auth, form.username, form.password)
    pair = await service.issue_session(session, auth, user)
    return json_response(dumps(pair), headers=NO_STORE)


@auth_router.post(
    "/refresh",
    response_model=TokenPair,
    responses=responses(401, 422, 429),
    dependencies=[Depends(auth_rate_limit)],
)
async def refresh(session: SessionDep, auth: AuthDep, data: RefreshIn) -> Response:
    """Exchange a refresh token for a new pair; the presented token stops working."""
    pair = await service.refresh(session, auth, data.refresh_token)
    return json_response(dumps(pair), headers=NO_STORE)


@auth_router.post("/logout", status_code=204, responses=responses(401, 422))
async def logout(
    session: SessionDep,
    auth: AuthDep,
    principal: AuthenticatedDep,
    data: LogoutIn | None = None,
) -> Response:
    """Revoke the current access token and its session's refresh tokens."""
    await service.logout(session, auth, principal, data.refresh_token if data else None)
    return Response(status_code=204)


@auth_router.get("/me", response_model=UserOut, responses=responses(401))
async def me(session: SessionDep, principal: AuthenticatedDep) -> Response:
    assert principal.user_id is not None
    user = await service.get_user(session, principal.user_id)
    return json_response(model_json(UserOut, user), headers={"Cache-Control": "private, no-cache"})


@auth_router.patch("/me", response_model=UserOut, responses=responses(401, 403, 422))
async def update_me(
    session: SessionDep, auth: AuthDep, principal: AuthenticatedDep, data: MeUpdate
) -> Response:
    """Change the name, or the password (with `old_password`)."""
    if principal.api_key_id is not None:
        raise Forbidden("API keys cannot change the account")
    assert principal.user_id is not None
    user = await service.get_user(session, principal.user_id)
    user = await service.update_me(session, auth, user, data)
    return json_response(model_json(UserOut, user))


# --------------------------------------------------------------------------- users (admin)


@users_router.get("", response_model=Page[UserOut], responses=responses(401, 403, 422))
async def list_users(
    session: SessionDep,
    settings: SettingsDep,
    _admin: AdminDep,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    role: Role | None = None,
    is_active: bool | None = None,
) -> Response:
    size = min(limit or settings.default_page_size, settings.max_page_size)
    rows, next_cursor = await service.list_users(
        session, limit=size, cursor=cursor, role=role, is_active=is_active
    )
    items = [UserOut.model_validate(u).model_dump(mode="json") for u in rows]
    return json_response(dumps({"items": items, "next_cursor": next_cursor}))


@users_router.get("/{user_id}", response_model=UserOut, responses=responses(401, 403, 404, 422))
async def get_user(session: SessionDep, _admin: AdminDep, user_id: uuid.UUID) -> Response:
    return json_response(model_json(UserOut, await service.get_user(session, user_id)))


@users_router.patch(
    "/{user_id}", response_model=UserOut, responses=responses(401, 403, 404, 409, 422)
)
async def update_user(
    session: SessionDep,
    auth: AuthDep,
    admin: AdminDep,
    user_id: uuid.UUID,
    data: UserAdminUpdate,
) -> Response:
    """Change a user's role or name, or deactivate them (which ends all their sessions)."""
    user = await service.get_user(session, user_id)
    user = await service.admin_update_user(session, auth, admin, user, data)
    return json_response(model_json(UserOut, user))


# --------------------------------------------------------------------------- API keys


def _no_api_key(principal: Principal) -> None:
    if principal.api_key_id is not None:
        raise Forbidden("API keys cannot manage API keys; use a signed-in session")


@api_keys_router.post(
    "", status_code=201, response_model=ApiKeyCreated, responses=responses(401, 403, 422)
)
async def create_api_key(
    request: Request, session: SessionDep, principal: AuthenticatedDep, data: ApiKeyCreate
) -> Response:
    """Create a key for a third party. The secret `key` is shown only in this response."""
    key, secret = await service.create_api_key(session, principal, data)
    body = ApiKeyOut.model_validate(key).model_dump(mode="json") | {"key": secret}
    return json_response(
        dumps(body),
        status_code=201,
        headers={"Location": f"{request.url.path}/{key.id}", **NO_STORE},
    )


@api_keys_router.get("", response_model=list[ApiKeyOut], responses=responses(401, 403, 422))
async def list_api_keys(
    session: SessionDep,
    principal: AuthenticatedDep,
    all_owners: Annotated[bool, Query(description="Admins: keys of every owner")] = False,
) -> Response:
    _no_api_key(principal)
    keys = await service.list_api_keys(session, principal, all_owners=all_owners)
    return json_response(dumps([ApiKeyOut.model_validate(k).model_dump(mode="json") for k in keys]))


@api_keys_router.get("/{key_id}", response_model=ApiKeyOut, responses=responses(401, 403, 404, 422))
async def get_api_key(
    session: SessionDep, principal: AuthenticatedDep, key_id: uuid.UUID
) -> Response:
    _no_api_key(principal)
    return json_response(
        model_json(ApiKeyOut, await service.get_api_key(session, principal, key_id))
    )


@api_keys_router.delete("/{key_id}", status_code=204, responses=responses(401, 403, 404, 422))
async def revoke_api_key(
    session: SessionDep, principal: AuthenticatedDep, key_id: uuid.UUID
) -> Response:
    """Revoke a key: it is refused at once by every worker."""
    _no_api_key(principal)
    await service.revoke_api_key(session, await service.get_api_key(session, principal, key_id))
    return Response(status_code=204)


@api_keys_router.post(
    "/{key_id}/rotate",
    response_model=ApiKeyCreated,
    responses=responses(401, 403, 404, 409, 422),
)
async def rotate_api_key(
    session: SessionDep, principal: AuthenticatedDep, key_id: uuid.UUID
) -> Response:
    """Issue a new secret for the key; the old one stops working at once."""
    _no_api_key(principal)
    key, secret = await service.rotate_api_key(
        session, await service.get_api_key(session, principal, key_id)
    )
    body = ApiKeyOut.model_validate(key).model_dump(mode="json") | {"key": secret}
    return json_response(dumps(body), headers=NO_STORE)
