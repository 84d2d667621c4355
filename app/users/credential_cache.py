"""API keys an API process has checked, kept for a short time and dropped the moment anything changes.

Why it is never stale (a revoked key, a shortened expiry, a disabled or demoted user is refused on
the very next request, whoever made the change: the admin API, a script, `psql`):

1. PostgreSQL announces every change that matters. Triggers on `api_keys` (revoked_at, expires_at,
   user_id, secret_hash, lookup_prefix; deletes; truncates) and on `users` (roles, disabled,
   organization_id; deletes; truncates) send `NOTIFY credentials_changed` (alembic revision
   `b7d3e1f4a925`). A notice is sent when, and only if, the change commits.
2. Every connection of the process's pool LISTENs on that channel, from the moment it is opened;
   opening one also empties the cache (what was committed before it listened never reaches it).
3. A request reads the cache only right after checking its connection out of the pool, and the
   pool pings a connection at checkout (`pool_pre_ping`). A backend hands its client every notice
   committed before it ends a transaction, ahead of the answer (PostgreSQL: "the notification event
   will not be delivered until just after the transaction is completed"; the ping is one), and
   asyncpg schedules the listener callback before the ping's answer resumes the request. So a change
   committed before the request began has emptied the cache before the request looks.
4. An entry read from the database is stored only if no notice arrived while it was being read
   (`generation`), so a lookup racing a change cannot put the old state back.

Expiry needs no notice: it is compared with the clock on every request. Without `pool_pre_ping`,
or with `CREDENTIAL_CACHE_SECONDS=0`, nothing is kept and every request asks PostgreSQL.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger(__name__)

CHANNEL = "credentials_changed"
MAX_ENTRIES = 10_000


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


class CredentialCache:
    """Keyed by the secret's HMAC (the stored hash), so an entry answers only the exact secret."""

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds
        self.enabled = ttl_seconds > 0
        # Bumped by every notice and every new connection: a lookup that started before may not store.
        self.generation = 0
        self._entries: dict[str, tuple[float, Credential]] = {}

    @classmethod
    def attach(cls, engine: AsyncEngine, ttl_seconds: float) -> CredentialCache:
        """A cache fed by the notices that reach `engine`'s connections (call before the first query)."""
        cache = cls(ttl_seconds)
        # The pool's pre-ping is the barrier of point 3 above: without it the cache could serve a revoked key.
        if cache.enabled and not getattr(engine.pool, "_pre_ping", False):
            logger.warning("the database pool does not ping on checkout: API keys are not cached")
            cache.enabled = False
        if cache.enabled:
            event.listen(engine.sync_engine, "connect", cache._listen_on_new_connection)
        return cache

    def get(self, digest: str) -> Credential | None:
        found = self._entries.get(digest)
        if found is None:
            return None
        stored_at, credential = found
        if time.monotonic() - stored_at > self.ttl_seconds:
            del self._entries[digest]
            return None
        return credential

    def put(self, digest: str, credential: Credential, generation: int) -> None:
        """Keep `credential`, read when the cache was at `generation`, unless a change was announced since."""
        if not self.enabled or generation != self.generation:
            return
        if len(self._entries) >= MAX_ENTRIES and digest not in self._entries:
            del self._entries[next(iter(self._entries))]  # the oldest: dicts keep insertion order
        self._entries[digest] = (time.monotonic(), credential)

    def clear(self) -> None:
        self._entries.clear()
        self.generation += 1

    def __len__(self) -> int:
        return len(self._entries)

    def _listen_on_new_connection(self, dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.run_async(lambda connection: connection.add_listener(CHANNEL, self._changed))
        self.clear()

    def _changed(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        logger.debug("credentials changed (%s): cache emptied", payload)
        self.clear()
