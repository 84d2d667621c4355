"""Transactional outbox: a Celery message is stored with the change that needs it.

`enqueue` adds the row in the caller's transaction and asks for it to be
published right after commit. If the process dies in between, the row stays
unsent and the reconciler publishes it (`relay_pending`). A message delivered
twice is harmless: tasks re-read the row and claim the job with fencing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import anyio
from sqlalchemy import BigInteger, Integer, String, Text, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from app.core.celery_app import celery_app, queue_for
from app.core.database import Base, after_commit, utcnow

logger = logging.getLogger(__name__)


class OutboxMessage(Base):
    """A Celery message written in the same transaction as the state change that needs it.

    Published right after commit; the reconciler publishes any row left unsent
    (API killed between commit and publish), so no job waits forever.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    task_name: Mapped[str] = mapped_column(String(200))
    args: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    queue: Mapped[str] = mapped_column(String(32))
    priority: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    error: Mapped[str | None] = mapped_column(Text, default=None)


def enqueue(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession] | None,
    task_name: str,
    args: list[Any],
    priority: int | None = None,
) -> OutboxMessage:
    message = OutboxMessage(task_name=task_name, args=args, queue=queue_for(task_name), priority=priority)
    session.add(message)
    if sessionmaker is not None:

        async def publish_now() -> None:
            try:
                await relay(sessionmaker, [message.id])
            except Exception:  # the reconciler retries; the request itself has succeeded
                logger.exception("could not publish outbox message %s now; the reconciler will", message.id)

        after_commit(session, publish_now)
    return message


def publish(message: OutboxMessage) -> None:
    # No result is ever read for an outbox task (the database says how it went). Without
    # `ignore_result`, a publish first has the result store (Valkey too) expect the result, and with
    # Valkey down that retries for ~20 s before failing: every create waited that long for its answer.
    celery_app.send_task(
        message.task_name,
        args=message.args,
        queue=message.queue,
        routing_key=message.queue,
        priority=message.priority,
        ignore_result=True,
    )


async def relay(
    sessionmaker: async_sessionmaker[AsyncSession], ids: list[int] | None = None, older_than: timedelta | None = None
) -> int:
    """Publish unsent messages (the given ids, or every one older than `older_than`)."""
    async with sessionmaker() as session:
        query = select(OutboxMessage).where(OutboxMessage.sent_at.is_(None))
        if ids is not None:
            query = query.where(OutboxMessage.id.in_(ids))
        if older_than is not None:
            query = query.where(OutboxMessage.created_at < utcnow() - older_than)
        # SKIP LOCKED: an API process and the reconciler never publish the same row at once.
        messages = (
            await session.scalars(query.order_by(OutboxMessage.id).limit(500).with_for_update(skip_locked=True))
        ).all()
        sent = 0
        for message in messages:
            try:
                await anyio.to_thread.run_sync(partial(publish, message))
            except Exception as exc:
                message.error = f"{type(exc).__name__}: {exc}"[:500]
                logger.warning("outbox message %s not published: %s", message.id, exc)
                continue
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id == message.id).values(sent_at=utcnow(), error=None)
            )
            sent += 1
        await session.commit()
        return sent


async def reprioritize_unsent(session: AsyncSession, task_name: str, args: list[Any], priority: int) -> int:
    """Give the not-yet-published messages of `task_name(*args)` a new priority; how many there were."""
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.task_name == task_name, OutboxMessage.sent_at.is_(None), OutboxMessage.args == args)
        .values(priority=priority)
        .returning(OutboxMessage.id)
    )
    return len(result.all())
