"""Changes a test makes to the database as another process would: the admin API, a worker, a script, `psql`."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


async def change(sessionmaker: async_sessionmaker[AsyncSession], statement: Any) -> None:
    """Another process's committed change (the test's own engine, not the API's)."""
    async with sessionmaker() as session:
        await session.execute(statement)
        await session.commit()
