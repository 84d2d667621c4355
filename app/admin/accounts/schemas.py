"""Organizations, users and API keys as the admin API reads and writes them.

No object here carries a key's secret or hash; `IssuedKeyObject` alone holds the
secret, in the one response that creates it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from app.admin.timestamps import unix
from app.core.database import utcnow
from app.users.tables import ApiKey, Organization, User

Role = Literal["user", "operator", "admin"]
# Enough to catch typos; ownership of an address is not this API's business.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class OrganizationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)


class OrganizationObject(BaseModel):
    object: Literal["organization"] = "organization"
    id: str
    name: str
    created_at: int
    user_count: int

    @classmethod
    def of(cls, row: Organization, user_count: int) -> OrganizationObject:
        return cls(id=row.id, name=row.name, created_at=unix(row.created_at) or 0, user_count=user_count)


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    organization_id: str = Field(min_length=1, max_length=64)
    email: str = Field(max_length=320, pattern=EMAIL_PATTERN)
    name: str = Field(default="", max_length=200)
    roles: list[Role] = Field(default=["user"], min_length=1)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    roles: list[Role] | None = Field(default=None, min_length=1)


class UserDisable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Running jobs keep running unless asked: disabling someone is not a reason to waste GPU hours.
    cancel_jobs: StrictBool = False


class UserObject(BaseModel):
    object: Literal["user"] = "user"
    id: str
    organization_id: str
    email: str
    name: str
    roles: list[str]
    disabled: bool
    created_at: int

    @classmethod
    def of(cls, row: User) -> UserObject:
        return cls(
            id=row.id, organization_id=row.organization_id, email=row.email, name=row.name,
            roles=list(row.roles), disabled=row.disabled, created_at=unix(row.created_at) or 0,
        )  # fmt: skip


class UserDisabled(BaseModel):
    user: UserObject
    cancelled_jobs: list[str]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="", max_length=200)
    expires_at: datetime | None = None
    expires_in_days: StrictInt | None = Field(default=None, ge=1, le=3650)

    @model_validator(mode="after")
    def _one_expiry(self) -> KeyCreate:
        if self.expires_at is not None and self.expires_in_days is not None:
            raise ValueError("give expires_at or expires_in_days, not both")
        if self.expires_at is not None:
            _check_future(self.expires_at)
        return self


class KeyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    # An explicit null removes the expiry; leaving the field out keeps it.
    expires_at: datetime | None = None

    @model_validator(mode="after")
    def _future(self) -> KeyUpdate:
        if self.expires_at is not None:
            _check_future(self.expires_at)
        return self


def _check_future(moment: datetime) -> None:
    if moment.tzinfo is None:
        raise ValueError("expires_at needs a time zone (e.g. 2030-01-01T00:00:00Z)")
    if moment <= utcnow():
        raise ValueError("expires_at must be in the future")


class KeyObject(BaseModel):
    object: Literal["api_key"] = "api_key"
    id: str
    user_id: str
    name: str
    prefix: str
    status: Literal["active", "expired", "revoked"]
    created_at: int
    last_used_at: int | None
    expires_at: int | None
    revoked_at: int | None

    @classmethod
    def of(cls, row: ApiKey) -> KeyObject:
        return cls(
            id=row.id, user_id=row.user_id, name=row.name, prefix=row.lookup_prefix, status=key_status(row),
            created_at=unix(row.created_at) or 0, last_used_at=unix(row.last_used_at),
            expires_at=unix(row.expires_at), revoked_at=unix(row.revoked_at),
        )  # fmt: skip


class IssuedKeyObject(KeyObject):
    # Shown once: only its hash is stored, so it can never be shown again.
    secret: str


def key_status(row: ApiKey) -> Literal["active", "expired", "revoked"]:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= utcnow():
        return "expired"
    return "active"
