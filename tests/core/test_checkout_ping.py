"""The pool's checkout ping on a real PostgreSQL: a connection the server closed while it sat in the pool is
replaced before anyone uses it, and a healthy one is pinged with one statement."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.config import Settings
from app.core.database import create_engine, pings_on_checkout


async def backend_pid(engine) -> int:  # type: ignore[no-untyped-def]
    async with engine.connect() as connection:
        return int(await connection.scalar(text("SELECT pg_backend_pid()")))


async def terminate(sessionmaker, pid: int) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:  # another process's connection, as an operator's or a failover's
        assert await session.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


async def test_a_connection_closed_in_the_pool_is_replaced_at_checkout(settings: Settings, sessionmaker) -> None:  # type: ignore[no-untyped-def]
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        assert pings_on_checkout(engine)
        first = await backend_pid(engine)
        assert await backend_pid(engine) == first  # pinged and reused
        await terminate(sessionmaker, first)
        second = await backend_pid(engine)  # the ping fails, the pool reconnects, the statement never sees it
        assert second != first
        assert await backend_pid(engine) == second
    finally:
        await engine.dispose()


async def test_without_the_ping_the_closed_connection_reaches_the_caller(settings: Settings, sessionmaker) -> None:  # type: ignore[no-untyped-def]
    engine = create_engine(settings, pool_size=1, max_overflow=0, pool_pre_ping=False)
    try:
        assert not pings_on_checkout(engine)
        await terminate(sessionmaker, await backend_pid(engine))
        with pytest.raises(DBAPIError):
            await backend_pid(engine)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("ours", [True, False])
async def test_the_ping_is_one_statement(settings: Settings, ours: bool) -> None:
    """What a checkout sends before the caller's statement, read by asyncpg's own query logger:
    ours sends `SELECT 1`; SQLAlchemy's asyncpg pre-ping, shown for comparison, sends three."""
    if ours:
        engine = create_engine(settings, pool_size=1, max_overflow=0)
    else:
        engine = create_async_engine(settings.async_database_url, pool_size=1, max_overflow=0, pool_pre_ping=True)
    sent: list[str] = []
    try:
        async with engine.connect() as connection:  # opened (a fresh connection is not pinged)
            raw = (await connection.get_raw_connection()).driver_connection
            assert raw is not None
            raw.add_query_logger(lambda record: sent.append(record.query))
        sent.clear()
        async with engine.connect() as connection:  # checked out again: the ping
            await asyncio.sleep(0.05)  # asyncpg calls its query loggers soon after, not during, each query
            pinged = list(sent)
            await connection.scalar(text("SELECT 2"))
        assert pinged == (["SELECT 1"] if ours else ["BEGIN;", ";", "ROLLBACK;"])
    finally:
        await engine.dispose()
