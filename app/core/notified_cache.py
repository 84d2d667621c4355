"""Rows an API process has read, kept for a short time and dropped the moment PostgreSQL says they changed.

Why an entry is never stale (a change is seen by the very next request, whoever made it: an API,
a worker, a script, `psql`):

1. PostgreSQL announces every change that matters: triggers on the cached tables send
   `NOTIFY <channel>` (an alembic revision per channel). A notice is sent when, and only if, the
   change commits.
2. Every connection of the process's pool LISTENs on the channel from the moment it is opened;
   opening one also empties the cache (what was committed before it listened never reaches it).
3. A request reads the cache only after it has checked its connection out of the pool, and the pool
   pings a connection at checkout (`app.core.database.create_engine`). A backend hands its client every notice
   committed before it ends a transaction, ahead of the answer (PostgreSQL: "the notification
   event will not be delivered until just after the transaction is completed"; the ping is one),
   and asyncpg schedules the listener callback before the ping's answer resumes the request. So a
   change committed before the request began has emptied the cache before the request looks.
4. An entry read from the database is stored only if no notice arrived while it was being read
   (`generation`), so a read racing a change cannot put the old state back.

Without that ping (`pool_pre_ping=False`), or with a time to live of 0, nothing is kept and every request asks
PostgreSQL.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Generic, Self, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import pings_on_checkout

logger = logging.getLogger(__name__)

MAX_ENTRIES = 10_000
V = TypeVar("V")


class NotifiedCache(Generic[V]):
    channel: str = ""  # set by each subclass: the NOTIFY channel its triggers announce changes on

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds
        self.enabled = ttl_seconds > 0
        # Bumped by every notice and every new connection: a read that started before may not store.
        self.generation = 0
        self._entries: dict[str, tuple[float, V]] = {}

    @classmethod
    def attach(cls, engine: AsyncEngine, ttl_seconds: float) -> Self:
        """A cache fed by the notices that reach `engine`'s connections (call before the first query)."""
        cache = cls(ttl_seconds)
        # The checkout ping is the barrier of point 3 above: without it the cache could serve a changed row.
        if cache.enabled and not pings_on_checkout(engine):
            logger.warning("the database pool does not ping on checkout: nothing is cached on %s", cls.channel)
            cache.enabled = False
        if cache.enabled:
            event.listen(engine.sync_engine, "connect", cache._listen_on_new_connection)
        return cache

    def get(self, key: str) -> V | None:
        found = self._entries.get(key)
        if found is None:
            return None
        stored_at, value = found
        if time.monotonic() - stored_at > self.ttl_seconds:
            del self._entries[key]
            return None
        return value

    def put(self, key: str, value: V, generation: int) -> None:
        """Keep `value`, read when the cache was at `generation`, unless a change was announced since."""
        if not self.enabled or generation != self.generation:
            return
        if len(self._entries) >= MAX_ENTRIES and key not in self._entries:
            del self._entries[next(iter(self._entries))]  # the oldest: dicts keep insertion order
        self._entries[key] = (time.monotonic(), value)

    def clear(self) -> None:
        self._entries.clear()
        self.generation += 1

    def __len__(self) -> int:
        return len(self._entries)

    def _listen_on_new_connection(self, dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.run_async(lambda connection: connection.add_listener(self.channel, self._changed))
        self.clear()

    def _changed(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        logger.debug("%s (%s): cache emptied", self.channel, payload)
        self.clear()
