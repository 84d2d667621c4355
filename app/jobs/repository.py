"""Every statement on jobs, their events and checkpoints; services, tasks and the worker call these.

A worker's writes are fenced: they name the attempt that claimed the job and change nothing once
another attempt owns it (DESIGN.md §2 rule 1). Nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import ids
from app.core.database import utcnow
from app.core.pagination import fetch_page
from app.core.reads import EntityRows
from app.jobs.events import NewEvent
from app.jobs.schemas import NULL_METADATA, JobFilters, MetadataFilter
from app.jobs.tables import Checkpoint, Job, JobEvent

# ---- jobs ------------------------------------------------------------------------------------


async def add(session: AsyncSession, job: Job) -> Job:
    session.add(job)
    await session.flush()
    return job


async def get(session: AsyncSession, job_id: str, *, for_update: bool = False) -> Job | None:
    return await session.get(Job, job_id, with_for_update=for_update)


async def status_of(session: AsyncSession, job_id: str) -> str | None:
    return await session.scalar(select(Job.status).where(Job.id == job_id))


# The API's read paths (a job retrieved, a page of the list or of a job's events): rows as named
# tuples through statements compiled once (app/core/reads.py). Whatever changes a job loads it with `get`.
JOB_ROWS = EntityRows(Job)
EVENT_ROWS = EntityRows(JobEvent)


def _job_by_id() -> Select[Any]:
    return JOB_ROWS.select().where(Job.id == bindparam("job_id"))


def _events_of_job() -> Select[Any]:
    return EVENT_ROWS.select().where(JobEvent.job_id == bindparam("job_id"))


async def read(session: AsyncSession, job_id: str) -> Any | None:
    """The job's row, read-only (`JOB_ROWS.row`), or None."""
    return await JOB_ROWS.one_or_none(session, "by_id", _job_by_id, {"job_id": job_id})


async def visible_page(
    session: AsyncSession, visible: ColumnElement[bool], metadata: MetadataFilter, after: str | None, limit: int
) -> tuple[list[Any], bool]:
    """A page of the jobs `visible` selects (a plan's condition: kept by `TranslatedPlans`, so the same
    object for the same answer, which is what lets its compiled statement be kept too)."""
    mode = "null" if metadata == NULL_METADATA else "contains" if metadata else None

    def build() -> Select[Any]:
        query = JOB_ROWS.select().where(visible)
        if mode == "null":
            # Stored either as SQL NULL or as JSON null, depending on how the row was written.
            query = query.where(or_(Job.metadata_.is_(None), func.jsonb_typeof(Job.metadata_) == "null"))
        elif mode == "contains":
            query = query.where(Job.metadata_.contains(bindparam("metadata", type_=Job.metadata_.type)))
        return query

    values = {"metadata": metadata} if mode == "contains" else {}
    key = ("visible", id(visible), mode)
    return await JOB_ROWS.page(session, key, build, values, after=after, limit=limit, anchors=(visible,))


async def filtered_page(
    session: AsyncSession, filters: JobFilters, after: str | None, limit: int
) -> tuple[Sequence[Job], bool]:
    query = select(Job)
    if filters.statuses:
        query = query.where(Job.status.in_(filters.statuses))
    if filters.owner_id:
        query = query.where(Job.owner_id == filters.owner_id)
    if filters.organization_id:
        query = query.where(Job.organization_id == filters.organization_id)
    if filters.model:
        query = query.where(Job.model == filters.model)
    if filters.created_after:
        query = query.where(Job.created_at >= filters.created_after)
    if filters.created_before:
        query = query.where(Job.created_at < filters.created_before)
    return await fetch_page(session, query, Job.id, after=after, limit=limit)


async def transition(session: AsyncSession, job: Job, allowed_from: tuple[str, ...], values: dict[str, Any]) -> bool:
    """Change the row only while its status is one of `allowed_from` (a worker may be changing it too).

    `job` is read again either way: it shows the change, or what the row is instead.
    """
    result = await session.execute(
        update(Job).where(Job.id == job.id, Job.status.in_(allowed_from)).values(**values).returning(Job.id)
    )
    changed = result.scalar_one_or_none() is not None
    await session.refresh(job)
    return changed


async def ids_of_owner(session: AsyncSession, owner_id: str, statuses: tuple[str, ...]) -> list[str]:
    query = select(Job.id).where(Job.owner_id == owner_id, Job.status.in_(statuses)).order_by(Job.id)
    return list((await session.scalars(query)).all())


async def count_made_from(session: AsyncSession, model_id: str) -> int:
    """Jobs made from a base model, whatever their status."""
    return int(await session.scalar(select(func.count()).select_from(Job).where(Job.model == model_id)) or 0)


async def running(session: AsyncSession) -> Sequence[Job]:
    return (await session.scalars(select(Job).where(Job.status == "running").order_by(Job.id))).all()


async def has_live_running(session: AsyncSession, within: timedelta) -> bool:
    """A job heartbeating now proves a GPU worker is alive even when it cannot answer a ping."""
    query = select(Job.id).where(Job.status == "running", Job.heartbeat_at > utcnow() - within).limit(1)
    return await session.scalar(query) is not None


def _of_subject(query: Select[Any], owner_id: str | None, organization_id: str | None) -> Select[Any]:
    if owner_id is not None:
        query = query.where(Job.owner_id == owner_id)
    if organization_id is not None:
        query = query.where(Job.organization_id == organization_id)
    return query


async def count_in_status(
    session: AsyncSession, statuses: tuple[str, ...], *, owner_id: str | None = None, organization_id: str | None = None
) -> int:
    query = select(func.count()).select_from(Job).where(Job.status.in_(statuses))
    return int(await session.scalar(_of_subject(query, owner_id, organization_id)) or 0)


async def gpu_seconds_since(
    session: AsyncSession, since: datetime, *, owner_id: str | None = None, organization_id: str | None = None
) -> float:
    """GPU seconds of the jobs created since `since`."""
    query = select(func.coalesce(func.sum(Job.gpu_seconds), 0.0)).where(Job.created_at >= since)
    return float(await session.scalar(_of_subject(query, owner_id, organization_id)) or 0.0)


# ---- a worker's fenced writes ----------------------------------------------------------------


async def claim(session: AsyncSession, job_id: str, worker: str, lease_seconds: int) -> int | None:
    """Take a queued job: one UPDATE bumps `attempt` and sets the lease. None if someone else has it."""
    now = utcnow()
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "queued", Job.cancel_requested.is_(False))
        .values(
            status="running",
            attempt=Job.attempt + 1,
            lease_until=now + timedelta(seconds=lease_seconds),
            heartbeat_at=now,
            worker=worker,
            pause_requested=False,
            started_at=now,
        )
        .returning(Job.attempt)
    )
    return result.scalar_one_or_none()


async def heartbeat(session: AsyncSession, job_id: str, attempt: int, lease_seconds: int) -> tuple[bool, bool] | None:
    """Extend the lease; returns (cancel_requested, pause_requested), or None when fenced out."""
    now = utcnow()
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.attempt == attempt, Job.status == "running")
        .values(heartbeat_at=now, lease_until=now + timedelta(seconds=lease_seconds))
        .returning(Job.cancel_requested, Job.pause_requested)
    )
    row = result.one_or_none()
    return None if row is None else (bool(row[0]), bool(row[1]))


async def update_fenced(
    session: AsyncSession, job_id: str, attempt: int, *, unless_stopping: bool = False, **values: Any
) -> bool:
    """Change the row while `attempt` owns it; with `unless_stopping`, only if no cancel or pause was asked."""
    query = update(Job).where(Job.id == job_id, Job.attempt == attempt)
    if unless_stopping:
        query = query.where(Job.cancel_requested.is_(False), Job.pause_requested.is_(False))
    result = await session.execute(query.values(**values).returning(Job.id))
    return result.scalar_one_or_none() is not None


async def owning_attempt(session: AsyncSession, job_id: str) -> int | None:
    """The attempt that owns the job, the row share-locked until the caller's transaction ends.

    The lock is the fence of a write that follows the read: a claim committing in between would
    otherwise let a stale attempt write after it (FOR SHARE waits for that claim, then reads it).
    """
    return await session.scalar(select(Job.attempt).where(Job.id == job_id).with_for_update(read=True))


async def add_gpu_seconds(session: AsyncSession, job_id: str, seconds: float) -> None:
    await session.execute(update(Job).where(Job.id == job_id).values(gpu_seconds=Job.gpu_seconds + seconds))


async def expired_leases(session: AsyncSession) -> list[Job]:
    query = select(Job).where(Job.status == "running", Job.lease_until < utcnow()).with_for_update(skip_locked=True)
    return list((await session.scalars(query)).all())


async def waiting_since(session: AsyncSession, older_than: timedelta) -> list[Job]:
    """Jobs queued or validating for longer than `older_than` (their message may be lost)."""
    query = select(Job).where(
        and_(Job.status.in_(("queued", "validating_files")), Job.enqueued_at < utcnow() - older_than)
    )
    return list((await session.scalars(query)).all())


# ---- events ----------------------------------------------------------------------------------


def _event_row(job_id: str, attempt: int, event: NewEvent) -> JobEvent:
    return JobEvent(
        id=ids.event_id(),
        job_id=job_id,
        attempt=attempt,
        level=event.level,
        type=event.type,
        message=event.message,
        data=event.data,
        created_at=utcnow(),
    )


def add_event(session: AsyncSession, job_id: str, event: NewEvent, attempt: int = 0) -> JobEvent:
    row = _event_row(job_id, attempt, event)
    session.add(row)
    return row


async def add_fenced_event(session: AsyncSession, job_id: str, attempt: int, event: NewEvent) -> JobEvent | None:
    """Insert only while `attempt` still owns the job: a worker that lost its lease writes nothing."""
    row = _event_row(job_id, attempt, event)
    columns = JobEvent.__table__.c
    names = ("id", "job_id", "attempt", "level", "type", "message", "data", "created_at")
    # INSERT ... SELECT from the job row: no row is selected (none inserted) once another attempt owns it.
    # FOR SHARE: a claim in flight is waited for and then seen, never raced.
    values = [Job.id if name == "job_id" else literal(getattr(row, name), type_=columns[name].type) for name in names]
    source = select(*values).where(Job.id == job_id, Job.attempt == attempt).with_for_update(read=True)
    result = await session.execute(insert(JobEvent).from_select(list(names), source).returning(JobEvent.id))
    return row if result.scalar_one_or_none() is not None else None


async def events_page(session: AsyncSession, job_id: str, after: str | None, limit: int) -> tuple[list[Any], bool]:
    """Newest first, as OpenAI lists them; read-only rows (`EVENT_ROWS.row`)."""
    return await EVENT_ROWS.page(session, "of_job", _events_of_job, {"job_id": job_id}, after=after, limit=limit)


async def events_since(session: AsyncSession, job_id: str, after: str | None) -> Sequence[JobEvent]:
    """Oldest first, for a stream's backlog."""
    query = select(JobEvent).where(JobEvent.job_id == job_id)
    if after:
        query = query.where(JobEvent.id > after)
    return (await session.scalars(query.order_by(JobEvent.id))).all()


async def events_with_data(session: AsyncSession, job_id: str, attempt: int) -> Sequence[JobEvent]:
    """An attempt's events that carry figures (steps, evaluations, checkpoints and more)."""
    query = select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.attempt == attempt, JobEvent.data.is_not(None))
    return (await session.scalars(query)).all()


# ---- checkpoints -----------------------------------------------------------------------------


def add_checkpoint(
    session: AsyncSession, job_id: str, attempt: int, step: int, path: str, metrics: dict[str, Any]
) -> Checkpoint:
    row = Checkpoint(
        id=ids.checkpoint_id(), job_id=job_id, attempt=attempt, step_number=step, path=path, metrics=metrics
    )
    session.add(row)
    return row


async def get_checkpoint(session: AsyncSession, job_id: str, checkpoint_id: str) -> Checkpoint | None:
    """The job's checkpoint if it is still on disk."""
    row = await session.get(Checkpoint, checkpoint_id)
    return row if row is not None and row.job_id == job_id and not row.deleted else None


async def checkpoints_page(
    session: AsyncSession, job_id: str, after: str | None, limit: int
) -> tuple[Sequence[Checkpoint], bool]:
    query = select(Checkpoint).where(Checkpoint.job_id == job_id, Checkpoint.deleted.is_(False))
    return await fetch_page(session, query, Checkpoint.id, after=after, limit=limit)


def _checkpoint_models() -> Select[Checkpoint, Job]:
    """Checkpoints that are models of their own: on disk, of a job that succeeded (OpenAI's rule)."""
    query = select(Checkpoint, Job).join(Job, Checkpoint.job_id == Job.id)
    return query.where(Job.status == "succeeded", Checkpoint.deleted.is_(False))


async def checkpoint_models(session: AsyncSession, visible: ColumnElement[bool]) -> list[tuple[Checkpoint, Job]]:
    """The checkpoint models of the jobs `visible` selects, oldest first."""
    query = _checkpoint_models().where(visible).order_by(Checkpoint.created_at, Checkpoint.id)
    return [(checkpoint, job) for checkpoint, job in (await session.execute(query)).all()]


async def checkpoint_model(session: AsyncSession, model_id: str, step: int) -> tuple[Checkpoint, Job] | None:
    query = _checkpoint_models().where(Job.fine_tuned_model == model_id, Checkpoint.step_number == step)
    row = (await session.execute(query.limit(1))).first()
    return (row[0], row[1]) if row else None


async def latest_checkpoint(session: AsyncSession, job_id: str) -> Checkpoint | None:
    query = (
        select(Checkpoint)
        .where(Checkpoint.job_id == job_id, Checkpoint.deleted.is_(False))
        .order_by(Checkpoint.step_number.desc())
        .limit(1)
    )
    return await session.scalar(query)


async def checkpoint_paths(session: AsyncSession, job_id: str) -> set[str]:
    return set((await session.scalars(select(Checkpoint.path).where(Checkpoint.job_id == job_id))).all())


async def mark_checkpoint_deleted(session: AsyncSession, job_id: str, path: str) -> None:
    await session.execute(
        update(Checkpoint).where(Checkpoint.job_id == job_id, Checkpoint.path == path).values(deleted=True)
    )


async def named_by(session: AsyncSession, base_model: str, job_id_tail: str) -> Job | None:
    """The job a model name ends with (`ft:{base}:{org}:{suffix}:{last 8 characters of the job id}`)."""
    if not job_id_tail:
        return None
    query = select(Job).where(Job.model == base_model, Job.id.endswith(job_id_tail, autoescape=True))
    return (await session.scalars(query.limit(1))).first()


async def checkpoint_at_step(session: AsyncSession, job_id: str, step: int) -> Checkpoint | None:
    """The kept checkpoint of `step` (of the latest attempt that saved one)."""
    query = select(Checkpoint).where(
        Checkpoint.job_id == job_id, Checkpoint.step_number == step, Checkpoint.deleted.is_(False)
    )
    return (await session.scalars(query.order_by(Checkpoint.created_at.desc()).limit(1))).first()
