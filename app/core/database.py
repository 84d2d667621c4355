"""Database engine, session dependency and the declarative base.

The engine is built in each process's start-up (API lifespan, worker init),
never at import time, with the pool the specification gives.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import orjson
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from app.core.config import Settings

logger = logging.getLogger(__name__)
T = TypeVar("T")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True)}


def utcnow() -> datetime:
    return datetime.now(UTC)


# A run of 19 digits or more: an integer past 64 bits (orjson would read it as a float) or a long
# decimal. PostgreSQL writes numbers without exponents, so every such number shows as one.
_LONG_NUMBER = re.compile(r"\d{19}")


def json_from_database(text: str) -> Any:
    """A json/jsonb value as Python: orjson (about 4x the standard library on a job's hyperparameters;
    a job list decodes seven columns a row), the standard library where orjson could lose digits."""
    if _LONG_NUMBER.search(text):
        return json.loads(text)
    return orjson.loads(text)


def create_engine(settings: Settings, **overrides: Any) -> AsyncEngine:
    """The process's engine; its pool pings a connection at checkout (`pool_pre_ping=False` turns that off)."""
    ping = overrides.pop("pool_pre_ping", True)
    options: dict[str, Any] = {
        "pool_size": settings.database_pool_size,
        "max_overflow": settings.database_max_overflow,
        "json_deserializer": json_from_database,
    }
    options.update(overrides)
    options = {key: value for key, value in options.items() if value is not None}
    engine = create_async_engine(settings.async_database_url, **options)
    if ping:
        event.listen(engine.sync_engine.pool, "connect", _fresh)
        event.listen(engine.sync_engine.pool, "checkout", _ping_on_checkout)
    return engine


def pings_on_checkout(engine: AsyncEngine) -> bool:
    """Whether a connection is pinged when it is checked out (the barrier app/core/notified_cache.py needs)."""
    return event.contains(engine.sync_engine.pool, "checkout", _ping_on_checkout)


FRESH = "fresh"


def _fresh(_dbapi_connection: Any, record: Any) -> None:
    record.info[FRESH] = True  # just opened: its first checkout needs no ping


def _ping_on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """SQLAlchemy's `pool_pre_ping` in one round trip instead of three.

    Its asyncpg ping sends BEGIN, `;` and ROLLBACK (a prepared statement needs a transaction under
    pgbouncer's transaction mode); `SELECT 1` in the simple query protocol prepares nothing (asyncpg
    cannot run an empty query this way: it fails on the missing command tag). A connection
    that fails it invalidates the pool's older connections (a restarted server closed them all) and
    the pool opens a fresh one, as after a failed pre-ping.
    """
    if record.info.pop(FRESH, False):
        return
    try:
        dbapi_connection.run_async(lambda connection: connection.execute("SELECT 1"))
    except Exception as error:
        logger.info("database connection failed its checkout ping (%r): reconnecting", error)
        raise sa_exc.InvalidatePoolError(str(error)) from error


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


AFTER_COMMIT = "after_commit"


def after_commit(session: AsyncSession, callback: Callable[[], Awaitable[None]]) -> None:
    """Run `callback` once this session's transaction has committed (e.g. publish its outbox rows)."""
    session.info.setdefault(AFTER_COMMIT, []).append(callback)


async def commit(session: AsyncSession) -> None:
    await session.commit()
    callbacks = session.info.pop(AFTER_COMMIT, [])
    for callback in callbacks:
        await callback()


async def session_scope(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Commit when the caller finishes without error, roll back otherwise."""
    async with sessionmaker() as session:
        try:
            yield session
            await commit(session)
        except BaseException:
            session.info.pop(AFTER_COMMIT, None)
            await session.rollback()
            raise


# The driver's ways of saying the server went away (a restart, a failover, a fast shutdown).
CONNECTION_LOST_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.AdminShutdownError,
)


def database_unavailable(error: BaseException) -> bool:
    """The database could not be reached or is restarting: worth trying the same transaction again.

    A refused statement (constraint, bad value) is not: it would fail the same way every time.
    """
    if isinstance(error, TimeoutError | sa_exc.OperationalError | sa_exc.InterfaceError):
        return True
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        if error.orig is not None:  # SQLAlchemy wraps the driver's error, which may wrap the cause
            error = error.orig.__cause__ or error.orig
    return isinstance(error, CONNECTION_LOST_ERRORS)


async def retry_while_unavailable(
    work: Callable[[], Awaitable[T]], what: str, give_up_after: float, first_wait: float = 0.5
) -> T:
    """Run one transaction, again and again while the database is away, for at most `give_up_after` seconds.

    `work` must open its own session: each try starts a fresh transaction.
    """
    deadline = time.monotonic() + give_up_after
    wait = first_wait
    while True:
        try:
            return await work()
        except Exception as error:
            if not database_unavailable(error) or time.monotonic() + wait > deadline:
                raise
            logger.warning("%s: database unavailable (%s); trying again in %.1fs", what, type(error).__name__, wait)
        await asyncio.sleep(wait)
        wait = min(wait * 2, 5.0)
