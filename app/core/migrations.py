"""Apply Alembic migrations from code (embedded stack, tests) and check the database is reachable."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.config import Config
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from alembic import command

REPO_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str) -> Config:
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    return config


def upgrade_head(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")


def masked(database_url: str) -> str:
    return make_url(database_url).render_as_string(hide_password=True)


async def ensure_reachable(database_url: str, connect_timeout: float = 5.0) -> None:
    """Fail fast, naming the setting, when the configured database does not answer."""
    engine = create_async_engine(database_url, connect_args={"timeout": connect_timeout}, pool_pre_ping=False)
    try:
        async with engine.connect():
            pass
    except Exception as exc:
        raise SystemExit(
            f"DATABASE_URL: cannot connect to {masked(database_url)}: {type(exc).__name__}: {exc}. "
            "Start that server or fix DATABASE_URL."
        ) from None
    finally:
        await engine.dispose()


def check_database(database_url: str, timeout: float = 5.0) -> None:
    asyncio.run(ensure_reachable(database_url, timeout))
