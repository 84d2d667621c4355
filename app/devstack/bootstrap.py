"""First start of the embedded stack: a first admin, a demo user, and the tiny demo base model."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from app.catalog.tables import CatalogEntry
from app.core.config import Settings
from app.users import service
from app.users.bootstrap import ensure_admin
from app.users.tables import User

DEMO_MODEL_ID = "tiny-llama-demo"


@dataclass
class FirstKeys:
    admin: str
    user: str


async def bootstrap(settings: Settings, keys_file: Path, demo_model_path: Path) -> FirstKeys | None:
    """Create the first accounts only on an empty database; register the demo model if missing."""
    engine = create_async_engine(settings.async_database_url, poolclass=NullPool)
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    try:
        async with sessionmaker() as session:
            if await session.get(CatalogEntry, DEMO_MODEL_ID) is None:
                session.add(
                    CatalogEntry(
                        id=DEMO_MODEL_ID,
                        source=str(demo_model_path),
                        max_seq_length=512,
                        parameter_count=None,
                        allowed=True,
                        download_status="ready",
                        owned_by="platform-demo",
                    )
                )
            first_run = (await session.scalar(select(func.count()).select_from(User))) == 0
            keys = None
            if first_run:
                admin = await ensure_admin(session, settings, "admin@localhost", name="Admin")
                demo_org = await service.create_organization(session, "demo")
                demo = await service.create_user(session, demo_org.id, "demo@localhost", "Demo user", ["user"])
                user_key = await service.issue_key(session, settings, demo.id, "demo key")
                assert admin.key is not None  # a new account always gets its first key
                keys = FirstKeys(admin=admin.key, user=user_key.secret)
            await session.commit()
    finally:
        await engine.dispose()
    if keys is not None:
        keys_file.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(keys_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(f"ADMIN_API_KEY={keys.admin}\nUSER_API_KEY={keys.user}\n")
    return keys
