"""Who is asking: the part of a user that the policies read."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from cerbos.sdk.model import Principal as CerbosPrincipal


class UserRow(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def roles(self) -> Collection[str]: ...
    @property
    def organization_id(self) -> str | None: ...
    @property
    def disabled(self) -> bool: ...


@dataclass(frozen=True)
class Principal:
    id: str
    roles: Collection[str]  # "user", "operator" (read-only admin), "admin"
    organization_id: str | None

    @classmethod
    def from_user(cls, user: UserRow) -> Principal:
        # A disabled user keeps no role, so every decision denies even if authentication slipped.
        roles = () if user.disabled else tuple(user.roles or ())
        return cls(id=user.id, roles=roles, organization_id=user.organization_id)

    def to_cerbos(self) -> CerbosPrincipal:
        return CerbosPrincipal(id=self.id, roles=set(self.roles), attr={"organization_id": self.organization_id})
