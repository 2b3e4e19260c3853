"""Revoked access tokens, shared by every worker: Redis in the production profile, process
memory in the embedded one. Entries expire with the tokens they revoke."""

from __future__ import annotations

import time
import uuid
from typing import Protocol

from redis.asyncio import Redis


class RevocationStore(Protocol):
    async def revoke_token(self, jti: str, expires_at: int) -> None: ...

    async def revoke_user(self, user_id: uuid.UUID) -> None:
        """Every access token of the user issued until now stops working."""

    async def revoke_family(self, family_id: uuid.UUID) -> None:
        """Every access token of one login session (refresh family) stops working."""

    async def is_revoked(
        self, jti: str, user_id: uuid.UUID, family_id: uuid.UUID | None, issued_at_ms: int
    ) -> bool: ...


class MemoryRevocationStore:
    def __init__(self, access_ttl: int) -> None:
        self._tokens: dict[str, int] = {}
        self._users: dict[uuid.UUID, int] = {}
        self._families: set[uuid.UUID] = set()
        self._ttl = access_ttl

    def _prune(self, now: int) -> None:
        if len(self._tokens) > 10_000:
            self._tokens = {k: v for k, v in self._tokens.items() if v > now}

    async def revoke_token(self, jti: str, expires_at: int) -> None:
        now = int(time.time())
        self._prune(now)
        self._tokens[jti] = expires_at

    async def revoke_user(self, user_id: uuid.UUID) -> None:
        self._users[user_id] = time.time_ns() // 1_000_000

    async def revoke_family(self, family_id: uuid.UUID) -> None:
        self._families.add(family_id)

    async def is_revoked(
        self, jti: str, user_id: uuid.UUID, family_id: uuid.UUID | None, issued_at_ms: int
    ) -> bool:
        if jti in self._tokens or (family_id is not None and family_id in self._families):
            return True
        before = self._users.get(user_id)
        return before is not None and issued_at_ms <= before


class RedisRevocationStore:
    def __init__(self, redis: Redis, prefix: str, access_ttl: int) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl = access_ttl

    def _token_key(self, jti: str) -> str:
        return f"{self._prefix}revoked:jti:{jti}"

    def _user_key(self, user_id: uuid.UUID) -> str:
        return f"{self._prefix}revoked:user:{user_id}"

    async def revoke_token(self, jti: str, expires_at: int) -> None:
        ttl = max(1, expires_at - int(time.time()) + 10)
        await self._redis.set(self._token_key(jti), b"1", ex=ttl)

    async def revoke_user(self, user_id: uuid.UUID) -> None:
        await self._redis.set(
            self._user_key(user_id), str(time.time_ns() // 1_000_000).encode(), ex=self._ttl + 60
        )

    def _family_key(self, family_id: uuid.UUID | None) -> str:
        return f"{self._prefix}revoked:fam:{family_id}"

    async def revoke_family(self, family_id: uuid.UUID) -> None:
        await self._redis.set(self._family_key(family_id), b"1", ex=self._ttl + 60)

    async def is_revoked(
        self, jti: str, user_id: uuid.UUID, family_id: uuid.UUID | None, issued_at_ms: int
    ) -> bool:
        token, before, family = await self._redis.mget(
            self._token_key(jti), self._user_key(user_id), self._family_key(family_id)
        )
        if token is not None or (family_id is not None and family is not None):
            return True
        return before is not None and issued_at_ms <= int(before)
