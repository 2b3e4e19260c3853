"""Who is calling: a user (access token), an API key acting for its owner, or nobody."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from catalog.models import Role


class Scope(StrEnum):
    catalog_read = "catalog:read"
    catalog_write = "catalog:write"
    analytics_read = "analytics:read"


ALL_SCOPES = frozenset(Scope)


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: uuid.UUID | None = None
    role: Role | None = None
    scopes: frozenset[Scope] = field(default_factory=frozenset)
    api_key_id: uuid.UUID | None = None
    token_jti: str | None = None
    token_expires_at: int | None = None
    family_id: uuid.UUID | None = None

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None

    @property
    def is_admin(self) -> bool:
        return self.role == Role.admin

    def has(self, scope: Scope) -> bool:
        return scope in self.scopes


ANONYMOUS = Principal()
