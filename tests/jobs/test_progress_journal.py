"""A worker killed while its trainer ran: what the trainer sent but nobody relayed comes back from its journal."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import select

from app.core.worker_context import WorkerContext
from app.jobs import repository
from app.jobs.events import NewEvent
from app.jobs.tables import JobEvent
from app.jobs.worker.progress import replay_unrelayed_progress
from app.jobs.worker.state import RunState, journal_of, work_dir_of
from app.training.callbacks import JsonLinesProgress, StepProgress
from tests.jobs.helpers import seeded_job


def _step(step: int) -> StepProgress:
    return StepProgress(step=step, total_steps=12, epoch=step / 6, train_loss=2.0 - step / 10, learning_rate=1e-4,
                        tokens_per_second=900.0, eta_seconds=12.0 - step, trained_tokens=64 * step,
                        token_accuracy=0.5)  # fmt: skip


async def _recorded(sessionmaker: Any, job_id: str) -> list[JobEvent]:
    async with sessionmaker() as session:
        query = select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
        return list((await session.scalars(query)).all())


async def test_steps_and_checkpoints_the_killed_worker_never_relayed_are_recorded_once(
    sessionmaker, settings, make_user
) -> None:  # type: ignore[no-untyped-def]
    user = await make_user("journal@example.com")
    job = await seeded_job(sessionmaker, user)
    redis = aioredis.Redis.from_url(settings.redis_url)
    context = WorkerContext(settings=settings, engine=sessionmaker.kw["bind"], sessionmaker=sessionmaker, redis=redis)
    work_dir = work_dir_of(context, job.id)
    work_dir.mkdir(parents=True)

    # Attempt 1's trainer wrote steps 1-8 and a checkpoint at 4 and 8, and was killed mid-line;
    # its worker had relayed steps 1-6 and the checkpoint at 4 only.
    journal_path = journal_of(work_dir, 1)
    with journal_path.open("w") as journal, open(work_dir / "stream", "w") as stream:
        progress = JsonLinesProgress(stream, journal)
        progress.on_started(12, None)
        for step in range(1, 9):
            progress.on_step(_step(step))
            if step % 4 == 0:
                progress.emit("checkpoint", step=step, path=str(work_dir / f"checkpoints/checkpoint-{step}"))
        journal.write('{"event":"step","step":9,"total_st')
    relayed = [json.loads(line) for line in journal_path.read_text().splitlines()[:8]]  # started, 1-4, ckpt 4, 5-6
    async with sessionmaker() as session:
        for message in relayed[1:]:
            kind = "checkpoint" if message["event"] == "checkpoint" else "step"
            data = {"step": message["step"], **({"path_name": Path(message["path"]).name} if kind == "checkpoint"
                                                 else {"train_loss": message["train_loss"]})}  # fmt: skip
            repository.add_event(session, job.id, NewEvent(kind, data=data, type="metrics"), attempt=1)
        await session.commit()
    assert [m.get("step") for m in relayed[1:]] == [1, 2, 3, 4, 4, 5, 6]

    state = RunState(job=job, attempt=2, work_dir=work_dir)
    try:
        await replay_unrelayed_progress(context, state)
        await replay_unrelayed_progress(context, state)  # a second worker start adds nothing more
    finally:
        await redis.aclose()

    recorded = await _recorded(sessionmaker, job.id)
    steps = [e.data["step"] for e in recorded if e.data and "train_loss" in e.data]
    assert steps == [1, 2, 3, 4, 5, 6, 7, 8]
    replayed = recorded[7:]
    assert [e.attempt for e in replayed] == [1, 1, 1, 1]
    assert [e.message for e in replayed] == [
        "Step 7/12: training loss=1.3000",
        "Step 8/12: training loss=1.2000",
        "Checkpoint saved at step 8",
        "Recorded 3 progress events of attempt 1 that its worker did not relay before it stopped",
    ]
    assert (replayed[0].data or {})["trained_tokens"] == 448
    assert replayed[2].data == {"step": 8, "path_name": "checkpoint-8"}


def test_a_journal_is_written_before_the_stream(tmp_path: Path) -> None:
    """The order matters: a line the worker read is always in the journal already."""

    class Refusing:
        def write(self, text: str) -> int:
            raise BrokenPipeError("the worker is gone")

        def flush(self) -> None:
            pass

    journal = tmp_path / "journal.jsonl"
    with journal.open("w") as file:
        progress = JsonLinesProgress(Refusing(), file)  # type: ignore[arg-type]
        with contextlib.suppress(BrokenPipeError):
            progress.on_step(_step(3))
    assert json.loads(journal.read_text())["step"] == 3
