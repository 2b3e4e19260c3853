from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import EmailStr, Field, StringConstraints

from catalog.auth.principal import Scope
from catalog.kit.schemas import InputModel, OutputModel, UpdateModel
from catalog.models import Role

Password = Annotated[
    str, Field(min_length=1, max_length=256, json_schema_extra={"format": "password"})
]
FullName = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]


class RegisterIn(InputModel):
    email: Annotated[EmailStr, Field(max_length=320)]
    password: Password
    full_name: FullName


class UserOut(OutputModel):
    id: uuid.UUID
    email: str
    full_name: str
    role: Role
    is_active: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class TokenPair(OutputModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int = Field(description="Seconds until the access token expires")


class RefreshIn(InputModel):
    refresh_token: Annotated[str, Field(min_length=1, max_length=512)]


class LogoutIn(InputModel):
    refresh_token: Annotated[str | None, Field(max_length=512)] = None


class MeUpdate(UpdateModel):
    __non_nullable__ = ("full_name",)

    full_name: FullName | None = None
    password: Password | None = None
    old_password: Password | None = Field(
        default=None, description="Required when changing the password"
    )


class UserAdminUpdate(UpdateModel):
    __non_nullable__ = ("role", "is_active", "full_name")

    role: Role | None = None
    is_active: bool | None = None
    full_name: FullName | None = None


class ApiKeyCreate(InputModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=len(Scope))]
    expires_at: dt.datetime | None = None


class ApiKeyOut(OutputModel):
    id: uuid.UUID
    name: str
    prefix: str = Field(description="First characters of the key, to recognise it")
    owner_id: uuid.UUID
    scopes: list[str]
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    created_at: dt.datetime


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret; shown only in this response")
