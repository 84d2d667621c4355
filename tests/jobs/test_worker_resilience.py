"""The GPU worker's writes outlast a database restart, and a run that resumed at its end still succeeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from app.core.database import database_unavailable, retry_while_unavailable
from app.core.worker_context import WorkerContext
from app.devstack.processes import free_port
from app.jobs.tables import Job
from app.jobs.worker.outcome import finish_success
from app.jobs.worker.state import RunState
from app.training.callbacks import TrainingOutputs
from tests.jobs.helpers import seeded_job


def _dead_database() -> async_sessionmaker[Any]:
    engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none", poolclass=NullPool)
    return async_sessionmaker(engine)


async def _error_of(sessionmaker: async_sessionmaker[Any], statement: str) -> Exception:
    try:
        async with sessionmaker() as session:
            await session.execute(text(statement))
            await session.commit()
    except Exception as error:
        return error
    raise AssertionError(f"{statement} did not fail")


async def test_unreachable_database_is_retried_and_a_refused_statement_is_not(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    unreachable = await _error_of(_dead_database(), "SELECT 1")
    refused = await _error_of(sessionmaker, "INSERT INTO organizations (id) VALUES (NULL)")
    assert database_unavailable(unreachable), repr(unreachable)
    assert isinstance(refused, IntegrityError) and not database_unavailable(refused)

    dead, tries = _dead_database(), []

    async def work() -> int:
        tries.append(1)
        # The database "comes back" on the third try: the live one answers from then on.
        async with (dead if len(tries) < 3 else sessionmaker)() as session:
            return int((await session.execute(text("SELECT 41 + 1"))).scalar_one())

    assert await retry_while_unavailable(work, "test", give_up_after=30, first_wait=0.01) == 42
    assert len(tries) == 3

    tries.clear()

    async def never() -> int:
        tries.append(1)
        async with dead() as session:
            return int((await session.execute(text("SELECT 1"))).scalar_one())

    with pytest.raises(Exception) as raised:
        await retry_while_unavailable(never, "test", give_up_after=0.5, first_wait=0.1)
    assert database_unavailable(raised.value) and 2 <= len(tries) <= 5

    async def refuse() -> None:
        tries.append(1)
        async with sessionmaker() as session:
            await session.execute(text("INSERT INTO organizations (id) VALUES (NULL)"))

    tries.clear()
    with pytest.raises(IntegrityError):
        await retry_while_unavailable(refuse, "test", give_up_after=30, first_wait=0.01)
    assert len(tries) == 1  # a refused statement is not tried again


async def test_an_attempt_that_resumed_at_the_last_checkpoint_succeeds_keeping_the_step_count(
    sessionmaker, settings, make_user, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    user = await make_user("resumed@example.com")
    job = await seeded_job(sessionmaker, user)
    async with sessionmaker() as session:
        await session.execute(text("UPDATE jobs SET current_step = 32 WHERE id = :id"), {"id": job.id})
        await session.commit()
    model_dir = tmp_path / "output" / "model"
    model_dir.mkdir(parents=True)
    (model_dir / "adapter_config.json").write_text("{}")
    metrics_csv = tmp_path / "output" / "step_metrics.csv"
    metrics_csv.write_text("step,train_loss\n32,1.0\n")
    # The trainer found every step done (resumed from the checkpoint at step 32): no step event, only "done".
    state = RunState(job=job, attempt=2, work_dir=tmp_path, last_step=0,
                     done=TrainingOutputs(output_dir=str(tmp_path / "output"), adapter_dir=None, merged_dir=None,
                                          model_dir=str(model_dir), trained_tokens=1788,
                                          metrics_csv=str(metrics_csv)))  # fmt: skip
    redis = aioredis.Redis.from_url(settings.redis_url)
    context = WorkerContext(settings=settings, engine=sessionmaker.kw["bind"], sessionmaker=sessionmaker, redis=redis)
    try:
        await finish_success(context, state)
        await finish_success(context, state)  # the same run recorded twice (a retried write) changes nothing more
    finally:
        await redis.aclose()

    async with sessionmaker() as session:
        row = await session.get(Job, job.id)
        assert row is not None
        completed = (
            await session.scalars(
                text("SELECT message FROM job_events WHERE job_id = :id ORDER BY id").bindparams(id=job.id)
            )
        ).all()
        result_files = await session.execute(text("SELECT count(*) FROM files WHERE purpose = 'fine-tune-results'"))
    assert row.status == "succeeded" and row.current_step == 32 and row.trained_tokens == 1788
    assert row.fine_tuned_model and row.fine_tuned_model.startswith("ft:journal-llama:acme::")
    assert len(row.result_files) == 1 and result_files.scalar_one() == 1
    assert completed == [f"New fine-tuned model created: {row.fine_tuned_model}", "The job has successfully completed"]
