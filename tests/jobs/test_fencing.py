"""The claim and the fence on PostgreSQL: one claim wins however many race, and a stale attempt writes nothing.

These call the repository and the worker's write helpers directly, with concurrent sessions on
the harness's PostgreSQL, so a broken `WHERE` in `claim` or `update_fenced` fails here every
time (the end-to-end forms, with real worker processes, are in tests/jobs/test_job_control.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import func, select, update

from app.core.worker_context import WorkerContext
from app.jobs import repository
from app.jobs.events import NewEvent
from app.jobs.tables import Checkpoint, Job, JobEvent
from app.jobs.worker import outcome, progress, record
from app.jobs.worker.state import RunState
from app.training.callbacks import CheckpointInfo, StepProgress, TrainingOutputs
from tests.jobs.helpers import seeded_job

CLAIMANTS = 8


async def _queued_job(sessionmaker: Any, make_user: Any) -> Job:
    job = await seeded_job(sessionmaker, await make_user("fence@example.com"))
    await _requeue(sessionmaker, job.id, attempt=0)
    return job


async def _requeue(sessionmaker: Any, job_id: str, attempt: int | None = None) -> None:
    """What the reconciler does to a job whose lease expired: back to queued, the attempt kept."""
    values: dict[str, Any] = {"status": "queued", "lease_until": None}
    if attempt is not None:
        values["attempt"] = attempt
    async with sessionmaker() as session:
        await session.execute(update(Job).where(Job.id == job_id).values(**values))
        await session.commit()


async def _claim(sessionmaker: Any, job_id: str, worker: str, ready: asyncio.Barrier) -> int | None:
    async with sessionmaker() as session:
        await session.execute(select(1))  # connected and inside a transaction before anyone claims
        await ready.wait()
        attempt = await repository.claim(session, job_id, worker, lease_seconds=60)
        await session.commit()
        return attempt


async def _row(sessionmaker: Any, job_id: str) -> Job:
    async with sessionmaker() as session:
        row = await session.get(Job, job_id)
        assert row is not None
        return row


async def _count(sessionmaker: Any, table: Any, job_id: str, attempt: int) -> int:
    async with sessionmaker() as session:
        query = select(func.count()).select_from(table).where(table.job_id == job_id, table.attempt == attempt)
        return int(await session.scalar(query) or 0)


async def test_concurrent_claims_of_one_job_have_one_winner(sessionmaker, make_user) -> None:  # type: ignore[no-untyped-def]
    job = await _queued_job(sessionmaker, make_user)
    ready = asyncio.Barrier(CLAIMANTS)
    won = await asyncio.gather(*(_claim(sessionmaker, job.id, f"worker-{n}", ready) for n in range(CLAIMANTS)))
    assert sorted(won, key=str) == [1] + [None] * (CLAIMANTS - 1), won
    row = await _row(sessionmaker, job.id)
    assert (row.status, row.attempt, row.worker) == ("running", 1, f"worker-{won.index(1)}")

    # Re-queued (its lease expired), it is claimed again by exactly one of them, as attempt 2.
    await _requeue(sessionmaker, job.id)
    ready = asyncio.Barrier(CLAIMANTS)
    again = await asyncio.gather(*(_claim(sessionmaker, job.id, f"worker-{n}", ready) for n in range(CLAIMANTS)))
    assert sorted(again, key=str) == [2] + [None] * (CLAIMANTS - 1), again


async def test_a_stale_attempt_is_fenced_out_of_every_write(sessionmaker, make_user) -> None:  # type: ignore[no-untyped-def]
    job = await _queued_job(sessionmaker, make_user)
    ready = asyncio.Barrier(1)
    assert await _claim(sessionmaker, job.id, "first", ready) == 1
    await _requeue(sessionmaker, job.id)
    assert await _claim(sessionmaker, job.id, "second", asyncio.Barrier(1)) == 2

    async with sessionmaker() as session:
        assert await repository.update_fenced(session, job.id, 1, current_step=99) is False
        assert await repository.add_fenced_event(session, job.id, 1, NewEvent("stale")) is None
        assert await repository.heartbeat(session, job.id, 1, lease_seconds=60) is None
        await session.commit()
    row = await _row(sessionmaker, job.id)
    assert (row.current_step, row.worker, row.attempt) == (0, "second", 2)
    assert await _count(sessionmaker, JobEvent, job.id, 1) == 0

    # The owner's writes go through: the refusals above are the fence, not a broken statement.
    async with sessionmaker() as session:
        assert await repository.update_fenced(session, job.id, 2, current_step=3) is True
        assert await repository.add_fenced_event(session, job.id, 2, NewEvent("owner")) is not None
        assert await repository.heartbeat(session, job.id, 2, lease_seconds=60) == (False, False)
        await session.commit()
    assert (await _row(sessionmaker, job.id)).current_step == 3


def _step(step: int) -> StepProgress:
    return StepProgress(step=step, total_steps=40, epoch=0.1, train_loss=1.0, learning_rate=1e-4,
                        tokens_per_second=1.0, eta_seconds=1.0, trained_tokens=step, token_accuracy=0.5)  # fmt: skip


async def test_the_worker_of_a_stale_attempt_records_nothing(sessionmaker, settings, make_user, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The worker side of the fence: steps, checkpoints and success of attempt 1 after attempt 2 claimed."""
    job = await _queued_job(sessionmaker, make_user)
    assert await _claim(sessionmaker, job.id, "first", asyncio.Barrier(1)) == 1
    await _requeue(sessionmaker, job.id)
    assert await _claim(sessionmaker, job.id, "second", asyncio.Barrier(1)) == 2
    redis = aioredis.Redis.from_url(settings.redis_url)
    context = WorkerContext(settings=settings, engine=sessionmaker.kw["bind"], sessionmaker=sessionmaker, redis=redis)
    model_dir = tmp_path / "output" / "model"
    model_dir.mkdir(parents=True)
    stale = RunState(job=await _row(sessionmaker, job.id), attempt=1, work_dir=tmp_path)
    try:
        await progress.on_message(context, stale, _step(7))
        assert stale.fenced_out, "a refused step write marks the attempt fenced out"
        # Each kind of write on its own (a fresh state: one not yet told it is fenced out).
        for message in (_step(8), CheckpointInfo(step=8, path=str(tmp_path / "checkpoint-8"), metrics={})):
            await progress.on_message(context, RunState(job=stale.job, attempt=1, work_dir=tmp_path), message)
        unaware = RunState(job=stale.job, attempt=1, work_dir=tmp_path)
        await record.add_event(context, unaware, NewEvent("a stale attempt's event"))
        assert unaware.fenced_out
        stale.done = TrainingOutputs(output_dir=str(tmp_path / "output"), adapter_dir=None, merged_dir=None,
                                     model_dir=str(model_dir), trained_tokens=8, metrics_csv="")  # fmt: skip
        stale.last_step = 8
        await outcome.finish_success(context, stale)
    finally:
        await redis.aclose()
    row = await _row(sessionmaker, job.id)
    assert (row.status, row.attempt, row.current_step, row.fine_tuned_model) == ("running", 2, 0, None)
    assert await _count(sessionmaker, JobEvent, job.id, 1) == 0
    assert await _count(sessionmaker, Checkpoint, job.id, 1) == 0


async def test_a_stale_write_racing_a_claim_waits_for_it_and_is_refused(sessionmaker, settings, make_user) -> None:  # type: ignore[no-untyped-def]
    """Attempt 1 writes an event and a checkpoint row while attempt 2's claim is not yet committed."""
    job = await _queued_job(sessionmaker, make_user)
    assert await _claim(sessionmaker, job.id, "first", asyncio.Barrier(1)) == 1
    redis = aioredis.Redis.from_url(settings.redis_url)
    context = WorkerContext(settings=settings, engine=sessionmaker.kw["bind"], sessionmaker=sessionmaker, redis=redis)
    stale = RunState(job=await _row(sessionmaker, job.id), attempt=1, work_dir=Path("/nonexistent"))

    async def stale_event() -> object:
        async with sessionmaker() as session:
            added = await repository.add_fenced_event(session, job.id, 1, NewEvent("written during the claim"))
            await session.commit()
            return added

    checkpoint = CheckpointInfo(step=4, path="/nonexistent/checkpoint-4", metrics={})
    try:
        async with sessionmaker() as claiming:
            await claiming.execute(update(Job).where(Job.id == job.id).values(status="queued"))
            assert await repository.claim(claiming, job.id, "second", lease_seconds=60) == 2
            # Both writes start while the claim is in flight (its transaction open, the row locked).
            writes = asyncio.gather(stale_event(), progress.on_message(context, stale, checkpoint))
            await asyncio.sleep(1.0)
            await claiming.commit()
        added, _ = await writes
    finally:
        await redis.aclose()
    assert added is None, "the stale event was written after the claim"
    assert await _count(sessionmaker, Checkpoint, job.id, 1) == 0, "the stale checkpoint row was written"
    assert await _count(sessionmaker, JobEvent, job.id, 1) == 0
