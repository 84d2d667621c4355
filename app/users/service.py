"""Organizations, users and API keys: creation and authentication."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import ids
from app.core.config import Settings
from app.core.database import utcnow
from app.core.errors import Unauthorized
from app.users import keys
from app.users.tables import ApiKey, Organization, User

# Writing last_used_at on every request would turn each read into a write; a minute is precise enough.
LAST_USED_RESOLUTION = timedelta(seconds=60)


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


async def authenticate(session: AsyncSession, settings: Settings, authorization: str | None) -> User:
    """The user behind an `Authorization: Bearer <key>` header, or 401."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Unauthorized("Missing API key. Send it as 'Authorization: Bearer <key>'.")
    secret = authorization[7:].strip()
    invalid = Unauthorized("Incorrect API key provided.")
    if not secret.startswith(settings.api_key_prefix):
        raise invalid
    row = await session.scalar(
        select(ApiKey).where(ApiKey.lookup_prefix == keys.lookup_prefix(secret, settings.api_key_prefix))
    )
    if row is None or not keys.secret_matches(secret, row.secret_hash, settings.pepper):
        raise invalid
    now = utcnow()
    if row.revoked_at is not None:
        raise Unauthorized("This API key has been revoked.", code="revoked_api_key")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthorized("This API key has expired.", code="expired_api_key")
    user = await session.get(User, row.user_id)
    if user is None or user.disabled:
        raise Unauthorized("The account of this API key is disabled.", code="account_disabled")
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        await session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
    return user
