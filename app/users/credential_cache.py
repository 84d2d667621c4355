"""API keys an API process has checked, kept for a short time and dropped the moment anything changes.

A revoked key, a shortened expiry, a disabled or demoted user is refused on the very next request,
whoever made the change (the admin API, a script, `psql`): triggers on `api_keys` (revoked_at,
expires_at, user_id, secret_hash, lookup_prefix; deletes; truncates) and on `users` (roles,
disabled, organization_id; deletes; truncates) send `NOTIFY credentials_changed` (alembic revision
`b7d3e1f4a925`), and `app/core/notified_cache.py` says why a notice always arrives before the next
request reads the cache.

Expiry needs no notice: it is compared with the clock on every request. Without `pool_pre_ping`,
or with `CREDENTIAL_CACHE_SECONDS=0`, nothing is kept and every request asks PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.core.notified_cache import NotifiedCache


@dataclass(frozen=True)
class Credential:
    """What authentication needs of a key and its user, as read in one indexed lookup."""

    key_id: str
    user_id: str
    organization_id: str
    roles: tuple[str, ...]
    disabled: bool
    revoked_at: datetime | None
    expires_at: datetime | None
    last_used_at: datetime | None


class CredentialCache(NotifiedCache[Credential]):
    """Keyed by the secret's HMAC (the stored hash), so an entry answers only the exact secret."""

    channel = "credentials_changed"
