"""Access tokens: short-lived JWTs (PyJWT) with the algorithm pinned by settings."""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from catalog.config import Settings


class InvalidToken(Exception):
    pass


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    role: str
    jti: str
    family_id: uuid.UUID | None
    issued_at_ms: int  # millisecond precision, so a revocation and a new login can share a second
    expires_at: int


class TokenService:
    def __init__(self, settings: Settings) -> None:
        self.algorithm = settings.jwt_algorithm
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.ttl = settings.access_token_ttl_seconds
        if self.algorithm == "HS256":
            self._signing_key: Any = settings.secret_key
            self._verifying_key: Any = settings.secret_key
        else:
            assert settings.jwt_private_key
            assert settings.jwt_public_key
            self._signing_key = settings.jwt_private_key
            self._verifying_key = settings.jwt_public_key

    def issue(
        self, user_id: uuid.UUID, role: str, family_id: uuid.UUID | None
    ) -> tuple[str, AccessClaims]:
        now_ms = time.time_ns() // 1_000_000
        now = now_ms // 1000
        claims = AccessClaims(
            user_id=user_id,
            role=role,
            jti=secrets.token_urlsafe(16),
            family_id=family_id,
            issued_at_ms=now_ms,
            expires_at=now + self.ttl,
        )
        payload: dict[str, Any] = {
            "sub": str(user_id),
            "role": role,
            "jti": claims.jti,
            "iat": now,
            "nbf": now,
            "exp": claims.expires_at,
            "iss": self.issuer,
            "aud": self.audience,
            "typ": "access",
            "iat_ms": now_ms,
        }
        if family_id is not None:
            payload["fam"] = str(family_id)
        return jwt.encode(payload, self._signing_key, algorithm=self.algorithm), claims

    def decode(self, token: str) -> AccessClaims:
        try:
            payload = jwt.decode(
                token,
                self._verifying_key,
                algorithms=[self.algorithm],  # pinned: no alg=none, no algorithm confusion
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "jti", "iss", "aud"]},
                leeway=5,
            )
            if payload.get("typ") != "access":
                raise InvalidToken("not an access token")
            family = payload.get("fam")
            return AccessClaims(
                user_id=uuid.UUID(str(payload["sub"])),
                role=str(payload["role"]),
                jti=str(payload["jti"]),
                family_id=uuid.UUID(str(family)) if family else None,
                issued_at_ms=int(payload.get("iat_ms", int(payload["iat"]) * 1000)),
                expires_at=int(payload["exp"]),
            )
        except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:
            raise InvalidToken(str(exc)) from exc
