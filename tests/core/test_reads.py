"""The read paths of app/core/reads.py against a real PostgreSQL: the same rows, values and pages as
the ORM, one statement and no transaction, a kept statement never reused for another condition,
and driver errors answered as SQLAlchemy's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, inspect, or_, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.api.errors import refused_value
from app.catalog.tables import CatalogEntry
from app.core import ids
from app.core.config import Settings
from app.core.database import create_engine, create_sessionmaker, utcnow
from app.core.pagination import fetch_page
from app.core.reads import EntityRows
from app.files import repository as files
from app.files.tables import File
from app.jobs import repository as jobs
from app.jobs.schemas import NULL_METADATA
from app.jobs.tables import Job, JobEvent
from app.users import service as users

# What the columns can hold, each kind at least once: nulls, JSON null, big and long numbers, nested json.
METADATA = [None, {"team": "søk", "run": "a"}, {"team": "søk"}, {"team": "other"}, None]
HYPERPARAMETERS = [{}, {"n_epochs": 3, "learning_rate_multiplier": 0.1}, {"big": 123456789012345678901234567890},
                   {"nested": [1, {"two": 2.5}], "none": None}, {"batch_size": "auto"}]  # fmt: skip


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    yield engine
    await engine.dispose()


@pytest.fixture
async def seeded(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """Two users of two organizations, each with files and five jobs of varied rows."""
    made: dict[str, Any] = {"jobs": {}, "files": {}}
    async with sessionmaker() as session:
        model = f"reads-model-{ids.file_id()[-6:]}"
        session.add(CatalogEntry(id=model, source="/models/reads", max_seq_length=256, allowed=True,
                                 download_status="ready"))  # fmt: skip
        for name in ("a", "b"):
            org = await users.create_organization(session, f"reads-{name}-{ids.file_id()[-6:]}")
            user = await users.create_user(session, org.id, f"reads-{name}-{ids.file_id()[-6:]}@example.com")
            file_rows = [File(id=ids.file_id(), owner_id=user.id, organization_id=org.id, filename=f"f{n}.jsonl",
                              purpose="fine-tune" if n % 2 else "batch", bytes=10 + n, sha256="0" * 64,
                              storage_name=f"{name}-{ids.file_id()}.jsonl", status="processed", data_format="chat",
                              statistics={"examples": n} if n else None, index_status="pending",
                              duplicate_report={"counts": {"exact_duplicate_lines": n}} if n == 2 else None,
                              deleted_at=utcnow() if n == 3 else None) for n in range(5)]  # fmt: skip
            session.add_all(file_rows)
            await session.flush()
            job_ids = []
            for n in range(5):
                job = Job(id=ids.job_id(), owner_id=user.id, organization_id=org.id, model=model,
                          training_file=file_rows[0].id, method="dpo" if n == 1 else "supervised",
                          hyperparameters=HYPERPARAMETERS[n], metadata_=METADATA[n], seed=n,
                          status=["queued", "running", "succeeded", "failed", "cancelled"][n],
                          error={"code": "x", "message": "m"} if n == 3 else None,
                          trained_tokens=2**40 + n if n == 2 else None, gpu_seconds=0.25 * n,
                          finished_at=utcnow() - timedelta(minutes=n) if n >= 2 else None,
                          result_files=[file_rows[1].id] if n == 2 else [])  # fmt: skip
                session.add(job)
                await session.flush()
                job_ids.append(job.id)
                session.add_all(JobEvent(id=ids.event_id(), job_id=job.id, message=f"step {step}",
                                         data={"step": step} if step % 2 else None) for step in range(4))  # fmt: skip
            made["jobs"][name] = job_ids
            made["files"][name] = [row.id for row in file_rows]
            made[name] = user
        await session.commit()
    return made


def as_values(orm_object: Any) -> dict[str, Any]:
    return {attribute.key: getattr(orm_object, attribute.key) for attribute in inspect(type(orm_object)).column_attrs}


async def test_rows_hold_what_the_orm_holds(engine: AsyncEngine, seeded: dict[str, Any]) -> None:
    sessions = create_sessionmaker(engine)
    for name in ("a", "b"):
        for job_id in seeded["jobs"][name]:
            async with sessions() as session:
                row = await jobs.read(session, job_id)
                orm = await session.get(Job, job_id)
            assert row is not None and orm is not None
            assert row._asdict() == as_values(orm)
            assert type(row.trained_tokens) is type(orm.trained_tokens)
        async with sessions() as session:
            for file_id in seeded["files"][name]:
                row = await files.read_live(session, file_id)
                orm = await files.get_live(session, file_id)
                assert (row is None) == (orm is None)
                if orm is not None:
                    assert row._asdict() == as_values(orm)
    async with sessions() as session:
        assert await jobs.read(session, "ftjob-none") is None


@pytest.mark.parametrize("metadata", [None, NULL_METADATA, {"team": "søk"}, {"team": "søk", "run": "a"}])
async def test_pages_match_the_orm_pages(engine: AsyncEngine, seeded: dict[str, Any], metadata: Any) -> None:
    sessions = create_sessionmaker(engine)
    owner = seeded["a"]
    visible = Job.owner_id == owner.id
    everything = seeded["jobs"]["a"][::-1]
    for limit in (1, 2, 5, 10):
        for after in (None, *everything):
            async with sessions() as session:
                rows, more = await jobs.visible_page(session, visible, metadata, after, limit)
                query = select(Job).where(visible)
                if metadata == NULL_METADATA:  # written as SQL NULL or as JSON null
                    query = query.where(or_(Job.metadata_.is_(None), func.jsonb_typeof(Job.metadata_) == "null"))
                elif metadata:
                    query = query.where(Job.metadata_.contains(metadata))
                expected, expected_more = await fetch_page(session, query, Job.id, after=after, limit=limit)
            assert [row._asdict() for row in rows] == [as_values(job) for job in expected]
            assert more == expected_more
    async with sessions() as session:
        events, _ = await jobs.events_page(session, everything[0], None, 10)
    assert [event.message for event in events] == ["step 3", "step 2", "step 1", "step 0"]


async def test_file_pages_in_both_orders_skip_deleted_files(engine: AsyncEngine, seeded: dict[str, Any]) -> None:
    sessions = create_sessionmaker(engine)
    visible = File.organization_id == seeded["b"].organization_id
    async with sessions() as session:
        newest_first, _ = await files.list_page(session, visible, None, None, 10, descending=True)
        oldest_first, _ = await files.list_page(session, visible, None, None, 10, descending=False)
        batch, _ = await files.list_page(session, visible, "batch", None, 10, descending=True)
    live = [file_id for n, file_id in enumerate(seeded["files"]["b"]) if n != 3]
    assert [row.id for row in oldest_first] == live
    assert [row.id for row in newest_first] == live[::-1]
    assert [row.id for row in batch] == [seeded["files"]["b"][4], seeded["files"]["b"][2], seeded["files"]["b"][0]]


async def test_a_kept_statement_is_never_reused_for_another_condition(
    engine: AsyncEngine, seeded: dict[str, Any]
) -> None:
    """Shapes are kept by a key naming the condition by `id`: the anchor check makes a new object under a
    reused id compile its own statement, rather than answer with another user's rows."""
    reads = EntityRows(Job)
    sessions = create_sessionmaker(engine)
    seen = {}
    for name in ("a", "b", "a"):
        condition = Job.owner_id == seeded[name].id
        async with sessions() as session:
            rows = await reads.all(session, "same key", lambda c=condition: reads.select().where(c), {},  # type: ignore[misc]
                                   anchors=(condition,))  # fmt: skip
        seen.setdefault(name, []).append(sorted(row.id for row in rows))
    assert seen["a"][0] == sorted(seeded["jobs"]["a"]) == seen["a"][1]
    assert seen["b"][0] == sorted(seeded["jobs"]["b"])
    kept = Job.owner_id == seeded["a"].id
    for _ in range(3):  # the same object: compiled once
        async with sessions() as session:
            await reads.all(session, "kept", lambda: reads.select().where(kept), {}, anchors=(kept,))
    assert reads.shape("kept", lambda: pytest.fail("compiled again"), (), engine.dialect, (kept,)) is not None


async def test_one_statement_outside_a_transaction(engine: AsyncEngine, seeded: dict[str, Any]) -> None:
    """No BEGIN, no COMMIT: the read is the only statement its session sends after the checkout ping."""
    sessions = create_sessionmaker(engine)
    job_id = seeded["jobs"]["a"][0]
    async with sessions() as session:
        await jobs.read(session, job_id)  # the connection is opened and the statement prepared
    sent: list[str] = []
    async with sessions() as session:
        raw = (await (await session.connection()).get_raw_connection()).driver_connection
        assert raw is not None
        await asyncio.sleep(0.05)

        def log(record: Any) -> None:
            sent.append(record.query)

        raw.add_query_logger(log)
        try:
            assert (await jobs.read(session, job_id)) is not None
            assert not raw.is_in_transaction()
            await session.commit()
            await asyncio.sleep(0.05)  # asyncpg calls its query loggers soon after each query
        finally:
            raw.remove_query_logger(log)
    assert len(sent) == 1 and sent[0].startswith("SELECT") and "WHERE jobs.id = $1" in sent[0]


async def test_a_refused_value_is_sqlalchemys_error(engine: AsyncEngine) -> None:
    """PostgreSQL refuses a NUL in text: the API's handlers see the DBAPIError they answer 400."""
    async with create_sessionmaker(engine)() as session:
        with pytest.raises(DBAPIError) as raised:
            await jobs.read(session, "ftjob-\x00")
    assert refused_value(raised.value)
