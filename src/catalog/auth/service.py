"""Users, sessions (access + rotating refresh tokens) and API keys."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.auth.passwords import Passwords, password_problem
from catalog.auth.policy import Forbidden, Unauthorized
from catalog.auth.principal import ALL_SCOPES, Principal, Scope
from catalog.auth.revocation import RevocationStore
from catalog.auth.schemas import ApiKeyCreate, MeUpdate, RegisterIn, UserAdminUpdate
from catalog.auth.tokens import InvalidToken, TokenService
from catalog.config import Settings
from catalog.db import new_id, utcnow
from catalog.errors import Conflict, NotFound, ServiceUnavailable, Unprocessable
from catalog.kit.pagination import page_by_id
from catalog.models import ApiKey, RefreshToken, Role, User

log = structlog.get_logger(__name__)

API_KEY_PREFIX = "ck_"
LAST_USED_RESOLUTION = dt.timedelta(seconds=60)


@dataclass
class Auth:
    """The authentication machinery of one app instance."""

    settings: Settings
    passwords: Passwords
    tokens: TokenService
    revocations: RevocationStore


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def find_user_by_email(session: AsyncSession, email: str) -> User | None:
    stmt = select(User).where(func.lower(User.email) == normalize_email(email))
    return (await session.execute(stmt)).scalar_one_or_none()


def _check_password(password: str, email: str | None, loc: list[str | int]) -> None:
    problem = password_problem(password, email=email)
    if problem:
        raise Unprocessable(f"The password {problem}", loc=loc)


async def create_user(
    session: AsyncSession,
    auth: Auth,
    *,
    email: str,
    password: str,
    full_name: str,
    role: Role = Role.buyer,
) -> User:
    email = normalize_email(email)
    _check_password(password, email, ["body", "password"])
    if await find_user_by_email(session, email) is not None:
        raise Conflict(
            "An account with this email already exists",
            errors=[{"loc": ["body", "email"], "msg": "already exists", "type": "unique"}],
        )
    user = User(
        email=email,
        password_hash=await auth.passwords.hash(password),
        full_name=full_name,
        role=role.value,
        is_active=True,
    )
    session.add(user)
    await session.flush()
    return user


async def register(session: AsyncSession, auth: Auth, data: RegisterIn) -> User:
    """Self-service sign-up: always a buyer."""
    return await create_user(
        session, auth, email=data.email, password=data.password, full_name=data.full_name
    )


async def authenticate(session: AsyncSession, auth: Auth, email: str, password: str) -> User:
    """The user for valid credentials. Unknown emails cost the same time as wrong passwords,
    and both answer the same message."""
    user = await find_user_by_email(session, email)
    if user is None:
        await auth.passwords.burn(password)
        raise Unauthorized("Incorrect email or password")
    valid, new_hash = await auth.passwords.verify(password, user.password_hash)
    if not valid or not user.is_active:
        raise Unauthorized("Incorrect email or password")
    if new_hash is not None:
        user.password_hash = new_hash
        await session.flush()
    return user


async def issue_session(
    session: AsyncSession, auth: Auth, user: User, family_id: uuid.UUID | None = None
) -> dict[str, Any]:
    """A new access token and a refresh token of `family_id` (a new family when None)."""
    family_id = family_id or new_id()
    refresh_secret = "rt_" + secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id,
            token_hash=_digest(refresh_secret),
            created_at=now,
            expires_at=now + dt.timedelta(seconds=auth.settings.refresh_token_ttl_seconds),
        )
    )
    await session.flush()
    access, _ = auth.tokens.issue(user.id, user.role, family_id)
    return {
        "access_token": access,
        "refresh_token": refresh_secret,
        "token_type": "bearer",
        "expires_in": auth.settings.access_token_ttl_seconds,
    }


async def revoke_family(session: AsyncSession, family_id: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


async def refresh(session: AsyncSession, auth: Auth, refresh_secret: str) -> dict[str, Any]:
    """Rotate: the presented token is used up and a new pair is issued in the same family.
    A token presented a second time means it was copied: the whole family is revoked."""
    token = (
        await session.execute(
            select(RefreshToken).where(RefreshToken.token_hash == _digest(refresh_secret))
        )
    ).scalar_one_or_none()
    invalid = Unauthorized("Invalid or expired refresh token")
    if token is None:
        raise invalid
    now = utcnow()
    if token.revoked_at is not None or token.expires_at <= now:
        raise invalid
    # Mark it used atomically, so two concurrent refreshes cannot both succeed.
    claimed = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token.id, RefreshToken.used_at.is_(None))
        .values(used_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        log.warning(
            "refresh_token_reuse", family_id=str(token.family_id), user_id=str(token.user_id)
        )
        await revoke_family(session, token.family_id)
        # The family's access tokens are revoked too: their holder may be the thief.
        await auth.revocations.revoke_family(token.family_id)
        # Commit the revocation even though the request fails.
        await session.commit()
        raise invalid
    user = await session.get(User, token.user_id)
    if user is None or not user.is_active:
        raise invalid
    return await issue_session(session, auth, user, token.family_id)


async def logout(
    session: AsyncSession, auth: Auth, principal: Principal, refresh_secret: str | None
) -> None:
    if principal.family_id is not None:
        await revoke_family(session, principal.family_id)
        await auth.revocations.revoke_family(principal.family_id)
    if refresh_secret:
        token = (
            await session.execute(
                select(RefreshToken).where(RefreshToken.token_hash == _digest(refresh_secret))
            )
        ).scalar_one_or_none()
        if token is not None and token.user_id == principal.user_id:
            await revoke_family(session, token.family_id)
            await auth.revocations.revoke_family(token.family_id)
    if principal.token_jti and principal.token_expires_at:
        await auth.revocations.revoke_token(principal.token_jti, principal.token_expires_at)


async def end_all_sessions(session: AsyncSession, auth: Auth, user_id: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    await auth.revocations.revoke_user(user_id)


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"User {user_id} not found")
    return user


async def update_me(session: AsyncSession, auth: Auth, user: User, data: MeUpdate) -> User:
    changes = data.changes()
    if "full_name" in changes:
        user.full_name = changes["full_name"]
    if changes.get("password") is not None:
        if not data.old_password:
            raise Unprocessable(
                "old_password is required to change the password", loc=["body", "old_password"]
            )
        valid, _ = await auth.passwords.verify(data.old_password, user.password_hash)
        if not valid:
            raise Unprocessable("old_password is incorrect", loc=["body", "old_password"])
        _check_password(changes["password"], user.email, ["body", "password"])
        user.password_hash = await auth.passwords.hash(changes["password"])
        # A new password signs the account out everywhere, this session included.
        await end_all_sessions(session, auth, user.id)
    await session.flush()
    return user


async def list_users(
    session: AsyncSession,
    *,
    limit: int,
    cursor: str | None,
    role: Role | None,
    is_active: bool | None,
) -> tuple[list[User], str | None]:
    stmt = select(User)
    if role is not None:
        stmt = stmt.where(User.role == role.value)
    if is_active is not None:
        stmt = stmt.where(User.is_active == is_active)
    return await page_by_id(session, stmt, User.id, limit=limit, cursor=cursor)


async def admin_update_user(
    session: AsyncSession, auth: Auth, admin: Principal, user: User, data: UserAdminUpdate
) -> User:
    changes = data.changes()
    if user.id == admin.user_id and (
        changes.get("is_active") is False or changes.get("role", Role.admin) != Role.admin
    ):
        raise Conflict("Administrators cannot demote or deactivate themselves")
    ends_sessions = (changes.get("is_active") is False and user.is_active) or (
        "role" in changes and changes["role"] != user.role
    )
    for key, value in changes.items():
        setattr(user, key, value.value if isinstance(value, Role) else value)
    await session.flush()
    if ends_sessions:
        # Deactivation, and a role change (tokens carry the role), end every session at once.
        await end_all_sessions(session, auth, user.id)
    return user


# --------------------------------------------------------------------------- API keys


def _new_key_secret() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


async def create_api_key(
    session: AsyncSession, principal: Principal, data: ApiKeyCreate
) -> tuple[ApiKey, str]:
    if principal.role not in (Role.admin, Role.seller):
        raise Forbidden("Only sellers and administrators may create API keys")
    if principal.api_key_id is not None:
        raise Forbidden("API keys cannot create other API keys")
    if data.expires_at is not None:
        expires = (
            data.expires_at if data.expires_at.tzinfo else data.expires_at.replace(tzinfo=dt.UTC)
        )
        if expires <= utcnow():
            raise Unprocessable("expires_at must be in the future", loc=["body", "expires_at"])
    assert principal.user_id is not None
    secret = _new_key_secret()
    key = ApiKey(
        owner_id=principal.user_id,
        name=data.name,
        prefix=secret[: len(API_KEY_PREFIX) + 6],
        key_hash=_digest(secret),
        scopes=sorted({s.value for s in data.scopes}),
        expires_at=data.expires_at,
    )
    session.add(key)
    await session.flush()
    return key, secret


async def list_api_keys(
    session: AsyncSession, principal: Principal, *, all_owners: bool
) -> list[ApiKey]:
    stmt = select(ApiKey).order_by(ApiKey.created_at.desc(), ApiKey.id.desc()).limit(500)
    if not (all_owners and principal.is_admin):
        stmt = stmt.where(ApiKey.owner_id == principal.user_id)
    return list((await session.execute(stmt)).scalars())


async def get_api_key(session: AsyncSession, principal: Principal, key_id: uuid.UUID) -> ApiKey:
    key = await session.get(ApiKey, key_id)
    # Another owner's key answers 404, so ids cannot be probed.
    if key is None or (not principal.is_admin and key.owner_id != principal.user_id):
        raise NotFound(f"API key {key_id} not found")
    return key


async def revoke_api_key(session: AsyncSession, key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
    return key


async def rotate_api_key(session: AsyncSession, key: ApiKey) -> tuple[ApiKey, str]:
    """A new secret for the same key id; the old secret stops working at once."""
    if key.revoked_at is not None:
        raise Conflict("A revoked key cannot be rotated")
    secret = _new_key_secret()
    key.key_hash = _digest(secret)
    key.prefix = secret[: len(API_KEY_PREFIX) + 6]
    await session.flush()
    return key, secret


async def principal_for_api_key(session: AsyncSession, secret: str) -> Principal:
    if not secret.startswith(API_KEY_PREFIX) or len(secret) > 128:
        raise Unauthorized("Invalid API key")
    digest = _digest(secret)
    row = (
        await session.execute(
            select(ApiKey, User.role, User.is_active)
            .join(User, User.id == ApiKey.owner_id)
            .where(ApiKey.key_hash == digest)
        )
    ).first()
    if row is None or not hmac.compare_digest(row[0].key_hash, digest):
        raise Unauthorized("Invalid API key")
    key, role, active = row
    now = utcnow()
    if key.revoked_at is not None or not active:
        raise Unauthorized("The API key has been revoked")
    if key.expires_at is not None and key.expires_at <= now:
        raise Unauthorized("The API key has expired")
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        await session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
    scopes = frozenset(Scope(s) for s in key.scopes if s in {x.value for x in Scope})
    return Principal(
        user_id=key.owner_id, role=Role(role), scopes=scopes & ALL_SCOPES, api_key_id=key.id
    )


async def principal_for_token(auth: Auth, token: str, *, fail_open: bool) -> Principal:
    try:
        claims = auth.tokens.decode(token)
    except InvalidToken as exc:
        raise Unauthorized("Invalid or expired access token") from exc
    try:
        revoked = await auth.revocations.is_revoked(
            claims.jti, claims.user_id, claims.family_id, claims.issued_at_ms
        )
    except Exception as exc:
        if not fail_open:
            raise ServiceUnavailable(
                "Sign-in state cannot be checked right now; try again shortly",
                headers={"Retry-After": "5"},
            ) from exc
        log.warning("revocation_store_unavailable", error=str(exc))
        revoked = False
    if revoked:
        raise Unauthorized("The access token has been revoked")
    try:
        role = Role(claims.role)
    except ValueError as exc:
        raise Unauthorized("Invalid access token") from exc
    return Principal(
        user_id=claims.user_id,
        role=role,
        scopes=ALL_SCOPES,
        token_jti=claims.jti,
        token_expires_at=claims.expires_at,
        family_id=claims.family_id,
    )
