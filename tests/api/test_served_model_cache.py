"""The user API's cache of served model rows on a real PostgreSQL: read once, never stale after a change.

`api` reads as a user API process does (its pool listens for `served_models_changed`); the
changes are written on the test's own engine, as the admin API, a worker or `psql` would, and
each is followed at once, with no pause, by the next read on `api`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import delete, event, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.catalog.tables import CatalogEntry
from app.core.config import Settings
from app.core.database import create_engine, create_sessionmaker, utcnow
from app.finetuned.tables import FineTunedModel
from app.inference.served_models import BaseModelRow, FineTunedRow, ServedModels
from tests.database import change

ROUNDS = 20  # each change is tried this many times, on fresh rows: a race would show


@dataclass
class ApiProcess:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    models: ServedModels
    reads: list[str]

    async def base_model(self, name: str) -> BaseModelRow | None:
        async with self.sessionmaker() as session:  # one request's session, closed before the next
            return await self.models.base_model(session, name)

    async def fine_tuned(self, name: str) -> FineTunedRow | None:
        async with self.sessionmaker() as session:
            return await self.models.fine_tuned(session, name)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[ApiProcess]:
    engine = create_engine(settings)
    process = ApiProcess(engine, create_sessionmaker(engine), ServedModels.attach(engine, 30.0), [])

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM base_models" in statement or "FROM fine_tuned_models" in statement:
            process.reads.append(statement)

    yield process
    await engine.dispose()


async def base_model(sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    name = f"base-{uuid.uuid4().hex[:8]}"
    async with sessionmaker() as session:
        session.add(CatalogEntry(id=name, source="/models/none", chat_template="{{ messages }}"))
        await session.commit()
    return name


async def fine_tuned(seed: Any, owner: Any) -> str:
    """A fine-tuned model of a base model of its own (so that a test may drop the other one)."""
    base = await base_model(seed.sessionmaker)
    job = await seed.job(owner, base, await seed.file(owner), status="succeeded")
    return str(await seed.model(owner, job, base))


async def test_a_served_model_is_read_once(api: ApiProcess, sessionmaker, seed, make_user) -> None:  # type: ignore[no-untyped-def]
    owner = await make_user("reader@acme.example.com")
    base, model = await base_model(sessionmaker), await fine_tuned(seed, owner)
    for _ in range(5):
        assert await api.base_model(base) == BaseModelRow(allowed=True, chat_template="{{ messages }}")
        row = await api.fine_tuned(model)
        assert row is not None and (row.owner_id, row.organization_id) == (owner.id, owner.organization_id)
        assert row.deleted_at is None and row.adapter_path and row.base_model.startswith("base-")
    assert len(api.reads) == 2
    # A name that matches no row is never kept: it is asked again (the job may make it in a moment).
    for _ in range(3):
        assert await api.fine_tuned("ft:base-of-all:acme::ftjob-none") is None
    assert len(api.reads) == 5


@pytest.mark.parametrize("what", ["delete model", "remove model row", "disallow base", "new template", "drop base"])
async def test_a_change_is_seen_by_the_very_next_read(  # type: ignore[no-untyped-def]
    api: ApiProcess, sessionmaker, seed, make_user, what: str
) -> None:
    owner = await make_user(f"{what.replace(' ', '-')}@acme.example.com")
    for round_number in range(ROUNDS):
        base, model = await base_model(sessionmaker), await fine_tuned(seed, owner)
        for _ in range(3):  # warm: cached after the first
            assert (await api.base_model(base)) is not None and (await api.fine_tuned(model)) is not None
        statements = {
            "delete model": update(FineTunedModel).where(FineTunedModel.id == model).values(deleted_at=utcnow()),
            "remove model row": delete(FineTunedModel).where(FineTunedModel.id == model),
            "disallow base": update(CatalogEntry).where(CatalogEntry.id == base).values(allowed=False),
            "new template": update(CatalogEntry).where(CatalogEntry.id == base).values(chat_template="{{ new }}"),
            "drop base": delete(CatalogEntry).where(CatalogEntry.id == base),
        }
        await change(sessionmaker, statements[what])
        seen_base, seen_model = await api.base_model(base), await api.fine_tuned(model)
        expected = {
            "delete model": seen_model is not None and seen_model.deleted_at is not None,
            "remove model row": seen_model is None,
            "disallow base": seen_base is not None and not seen_base.allowed,
            "new template": seen_base is not None and seen_base.chat_template == "{{ new }}",
            "drop base": seen_base is None,
        }
        assert expected[what], f"round {round_number}: the cache answered {seen_base} / {seen_model}"


async def test_download_progress_sends_no_notice(api: ApiProcess, sessionmaker) -> None:  # type: ignore[no-untyped-def]
    base = await base_model(sessionmaker)
    await api.base_model(base)
    generation = api.models.generation
    await change(sessionmaker, update(CatalogEntry).where(CatalogEntry.id == base).values(download_status="ready"))
    await api.base_model(base)
    assert api.models.generation == generation and len(api.reads) == 1


async def test_without_the_checkout_ping_nothing_is_cached(settings: Settings, sessionmaker) -> None:  # type: ignore[no-untyped-def]
    engine = create_engine(settings, pool_pre_ping=False)
    try:
        models = ServedModels.attach(engine, 30.0)
        assert not models.enabled
        base = await base_model(sessionmaker)
        async with create_sessionmaker(engine)() as session:
            assert await models.base_model(session, base) is not None
        assert len(models) == 0
    finally:
        await engine.dispose()
