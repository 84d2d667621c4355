"""Who is calling: the `Authorization: Bearer <key>` header turned into a principal, or 401.

One indexed lookup (the key by its lookup prefix, joined to its user) in the request's own
session, skipped while the process's `CredentialCache` holds the key; see that module for why a
cached key can never outlive its revocation, its expiry or its user's disabling.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.authz import Principal
from app.core.config import Settings
from app.core.database import commit, utcnow
from app.core.errors import Unauthorized
from app.users import keys, repository
from app.users.credential_cache import Credential, CredentialCache

# Writing last_used_at on every request would turn each read into a write; a minute is precise enough.
LAST_USED_RESOLUTION = timedelta(seconds=60)
BEARER = "bearer "


async def authenticate(
    session: AsyncSession, settings: Settings, cache: CredentialCache, authorization: str | None
) -> Principal:
    """The principal behind the header; the session is the request's, so the lookup costs no extra transaction."""
    secret = _secret(settings, authorization)
    digest = keys.hash_secret(secret, settings.pepper)
    # A session that already holds a connection skipped the checkout ping the cache relies on.
    may_use_cache = cache.enabled and not session.in_transaction()
    await session.connection()  # the checkout (and its ping) happens here, before the cache is read
    generation = cache.generation
    credential = cache.get(digest) if may_use_cache else None
    if credential is None:
        credential = await _lookup(session, settings, secret, digest)
        cache.put(digest, credential, generation)
    now = utcnow()
    _refuse_unusable(credential, now)
    if credential.last_used_at is None or now - credential.last_used_at > LAST_USED_RESOLUTION:
        await _record_use(session, credential, now)
        cache.put(digest, replace(credential, last_used_at=now), generation)
    return Principal(id=credential.user_id, roles=credential.roles, organization_id=credential.organization_id)


def _secret(settings: Settings, authorization: str | None) -> str:
    if not authorization or not authorization[: len(BEARER)].lower() == BEARER:
        raise Unauthorized("Missing API key. Send it as 'Authorization: Bearer <key>'.")
    secret = authorization[len(BEARER) :].strip()
    if not secret.startswith(settings.api_key_prefix):
        raise Unauthorized("Incorrect API key provided.")
    return secret


async def _lookup(session: AsyncSession, settings: Settings, secret: str, digest: str) -> Credential:
    row = await repository.credential_by_prefix(session, keys.lookup_prefix(secret, settings.api_key_prefix))
    if row is None or not keys.digests_match(digest, row[0]):
        raise Unauthorized("Incorrect API key provided.")
    _, key_id, user_id, organization_id, roles, disabled, revoked_at, expires_at, last_used_at = row
    return Credential(key_id=key_id, user_id=user_id, organization_id=organization_id, roles=tuple(roles or ()),
                      disabled=disabled, revoked_at=revoked_at, expires_at=expires_at,
                      last_used_at=last_used_at)  # fmt: skip


def _refuse_unusable(credential: Credential, now: datetime) -> None:
    if credential.revoked_at is not None:
        raise Unauthorized("This API key has been revoked.", code="revoked_api_key")
    if credential.expires_at is not None and credential.expires_at <= now:
        raise Unauthorized("This API key has expired.", code="expired_api_key")
    if credential.disabled:
        raise Unauthorized("The account of this API key is disabled.", code="account_disabled")


async def _record_use(session: AsyncSession, credential: Credential, now: datetime) -> None:
    """At most once a minute per key and process, committed at once: kept even when the request then fails.

    The commit returns the connection to the pool; the handler's first query checks one out again.
    """
    await repository.record_key_use(session, credential.key_id, now)
    await commit(session)
