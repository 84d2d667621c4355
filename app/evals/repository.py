"""Every statement on evals, their runs and output items."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import utcnow
from app.core.pagination import fetch_page
from app.evals.tables import Eval, EvalOutputItem, EvalRun

LIVE_STATUSES = ("queued", "in_progress")


async def get_eval(session: AsyncSession, eval_id: str) -> Eval | None:
    return await session.scalar(select(Eval).where(Eval.id == eval_id, Eval.deleted_at.is_(None)))


async def list_evals(
    session: AsyncSession, visible: ColumnElement[bool], after: str | None, limit: int, descending: bool
) -> tuple[Sequence[Eval], bool]:
    query = select(Eval).where(visible, Eval.deleted_at.is_(None))
    return await fetch_page(session, query, Eval.id, after=after, limit=limit, descending=descending)


async def get_run(session: AsyncSession, eval_id: str, run_id: str) -> EvalRun | None:
    query = select(EvalRun).where(EvalRun.id == run_id, EvalRun.eval_id == eval_id, EvalRun.deleted_at.is_(None))
    return await session.scalar(query)


async def run_by_id(session: AsyncSession, run_id: str) -> EvalRun | None:
    return await session.get(EvalRun, run_id)


async def list_runs(
    session: AsyncSession,
    eval_id: str,
    visible: ColumnElement[bool],
    status: str | None,
    after: str | None,
    limit: int,
    descending: bool,
) -> tuple[Sequence[EvalRun], bool]:
    query = select(EvalRun).where(visible, EvalRun.eval_id == eval_id, EvalRun.deleted_at.is_(None))
    if status is not None:
        query = query.where(EvalRun.status == status)
    return await fetch_page(session, query, EvalRun.id, after=after, limit=limit, descending=descending)


async def live_runs_of(session: AsyncSession, eval_id: str) -> Sequence[EvalRun]:
    query = select(EvalRun).where(EvalRun.eval_id == eval_id, EvalRun.status.in_(LIVE_STATUSES))
    return (await session.scalars(query.with_for_update())).all()


async def lock_run(session: AsyncSession, run_id: str) -> EvalRun:
    """The run, locked for this transaction (a cancel and the worker's fenced writes are ordered by it)."""
    row = await session.scalar(
        select(EvalRun).where(EvalRun.id == run_id).with_for_update().execution_options(populate_existing=True)
    )
    assert row is not None
    return row


async def runs_of_job(session: AsyncSession, job_id: str) -> Sequence[EvalRun]:
    query = select(EvalRun).where(EvalRun.fine_tuning_job_id == job_id, EvalRun.deleted_at.is_(None))
    return (await session.scalars(query.order_by(EvalRun.id))).all()


async def list_output_items(
    session: AsyncSession, run_id: str, status: str | None, after: str | None, limit: int, descending: bool
) -> tuple[Sequence[EvalOutputItem], bool]:
    query = select(EvalOutputItem).where(EvalOutputItem.run_id == run_id)
    if status is not None:
        query = query.where(EvalOutputItem.status == status)
    return await fetch_page(session, query, EvalOutputItem.id, after=after, limit=limit, descending=descending)


async def get_output_item(session: AsyncSession, run_id: str, item_id: str) -> EvalOutputItem | None:
    query = select(EvalOutputItem).where(EvalOutputItem.id == item_id, EvalOutputItem.run_id == run_id)
    return await session.scalar(query)


async def stored_item_indexes(session: AsyncSession, run_id: str) -> set[int]:
    query = select(EvalOutputItem.datasource_item_id).where(EvalOutputItem.run_id == run_id)
    return set((await session.scalars(query)).all())


async def count_by_status(session: AsyncSession, run_id: str) -> dict[str, int]:
    """OpenAI's result_counts of the items stored so far."""
    query = select(EvalOutputItem.status, func.count()).where(EvalOutputItem.run_id == run_id)
    counted = dict((await session.execute(query.group_by(EvalOutputItem.status))).tuples().all())
    return {
        "total": sum(counted.values()),
        "errored": counted.get("error", 0),
        "failed": counted.get("fail", 0),
        "passed": counted.get("pass", 0),
    }


async def all_output_items(session: AsyncSession, run_id: str) -> Sequence[EvalOutputItem]:
    query = select(EvalOutputItem).where(EvalOutputItem.run_id == run_id)
    return (await session.scalars(query.order_by(EvalOutputItem.datasource_item_id))).all()


async def add_output_items(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """Insert items not stored yet; an item already stored (by an earlier attempt) is left as it is."""
    if not rows:
        return 0
    statement = (
        insert(EvalOutputItem).values(rows).on_conflict_do_nothing(index_elements=["run_id", "datasource_item_id"])
    )
    result = await session.execute(statement.returning(EvalOutputItem.id))
    return len(result.all())


async def claim(session: AsyncSession, run_id: str, lease: timedelta) -> int | None:
    """Take the run for one attempt (queued, or in progress with a lapsed lease); the attempt, or None."""
    now = utcnow()
    free = (EvalRun.lease_until.is_(None)) | (EvalRun.lease_until < now)
    statement = (
        update(EvalRun)
        .where(EvalRun.id == run_id, EvalRun.status.in_(LIVE_STATUSES), EvalRun.deleted_at.is_(None), free)
        .values(
            status="in_progress",
            attempt=EvalRun.attempt + 1,
            lease_until=now + lease,
            started_at=func.coalesce(EvalRun.started_at, now),
        )
        .returning(EvalRun.attempt)
    )
    return await session.scalar(statement)


async def update_fenced(session: AsyncSession, run_id: str, attempt: int, **values: Any) -> bool:
    """Write the run if this attempt still holds it (not cancelled, deleted or taken over); whether it did."""
    statement = (
        update(EvalRun)
        .where(
            EvalRun.id == run_id,
            EvalRun.attempt == attempt,
            EvalRun.status == "in_progress",
            EvalRun.deleted_at.is_(None),
        )
        .values(**values)
        .returning(EvalRun.id)
    )
    return await session.scalar(statement) is not None


async def lost_runs(session: AsyncSession, republish_after: timedelta) -> Sequence[EvalRun]:
    """Live runs no worker holds (lease lapsed, or queued) whose message is older than `republish_after`."""
    now = utcnow()
    query = select(EvalRun).where(
        EvalRun.status.in_(LIVE_STATUSES),
        EvalRun.deleted_at.is_(None),
        (EvalRun.lease_until.is_(None)) | (EvalRun.lease_until < now),
        (EvalRun.enqueued_at.is_(None)) | (EvalRun.enqueued_at < now - republish_after),
    )
    return (await session.scalars(query.with_for_update(skip_locked=True))).all()
