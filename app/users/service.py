"""Organizations, users and API keys: creation (authentication is in `app.users.authentication`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import ids
from app.core.config import Settings
from app.users import keys
from app.users.tables import ApiKey, Organization, User


@dataclass(frozen=True)
class IssuedKey:
    row: ApiKey
    secret: str


async def create_organization(session: AsyncSession, name: str) -> Organization:
    organization = Organization(id=ids.organization_id(), name=name)
    session.add(organization)
    await session.flush()
    return organization


async def create_user(
    session: AsyncSession, organization_id: str, email: str, name: str = "", roles: list[str] | None = None
) -> User:
    user = User(id=ids.user_id(), organization_id=organization_id, email=email, name=name, roles=roles or ["user"])
    session.add(user)
    await session.flush()
    return user


async def issue_key(
    session: AsyncSession, settings: Settings, user_id: str, name: str = "", expires_at: datetime | None = None
) -> IssuedKey:
    new_key = keys.generate_key(settings.api_key_prefix, settings.pepper)
    row = ApiKey(
        id=ids.api_key_id(),
        user_id=user_id,
        name=name,
        lookup_prefix=new_key.lookup_prefix,
        secret_hash=new_key.secret_hash,
        expires_at=expires_at,
    )
    session.add(row)
    await session.flush()
    return IssuedKey(row=row, secret=new_key.secret)
