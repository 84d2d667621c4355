"""The CPU queue serves the reconcilers before a backlog of uploads to index.

One burst of uploads once held the reconcilers (beat's messages) behind hundreds of
indexing messages for minutes: a job's unsent validation message was relayed by no one.
The messages are published here as the platform publishes them (the outbox's options,
beat's options) to a database of the test Valkey that no worker reads, and read back in
the order a worker takes them.
"""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from celery import Celery

from app.core.celery_app import (
    TASK_COUNT_TOKENS,
    TASK_INDEX_FILE,
    TASK_RECONCILE,
    TASK_RECONCILE_EVALS,
    TASK_VALIDATE_JOB,
    queue_for,
)
from app.fleet.queues import waiting
from tests.brokers import celery_app_on, unread_database_url

UNREAD_DB = 9  # the platform uses database 0


@pytest.fixture
def broker_url(stack) -> str:  # type: ignore[no-untyped-def]
    return unread_database_url(stack, UNREAD_DB)


@pytest.fixture
def app(broker_url: str) -> Celery:
    return celery_app_on(broker_url)


def _publish_as_the_outbox(app: Celery, task: str, args: list[object]) -> None:
    """What app.core.outbox.publish sends for a row without a priority of its own."""
    queue = queue_for(task)
    app.send_task(task, args=args, queue=queue, routing_key=queue, priority=None, ignore_result=True)


def _publish_as_beat(app: Celery, entry: str) -> None:
    schedule = app.conf.beat_schedule[entry]
    app.send_task(schedule["task"], **schedule["options"])


async def test_the_reconcilers_are_served_before_a_backlog_of_uploads(app: Celery, broker_url: str) -> None:
    broker = aioredis.Redis.from_url(broker_url)
    await broker.flushdb()
    try:
        for number in range(30):
            _publish_as_the_outbox(app, TASK_INDEX_FILE, [f"file-{number}"])
        _publish_as_the_outbox(app, TASK_VALIDATE_JOB, ["ftjob-1"])
        queue = queue_for(TASK_COUNT_TOKENS)
        app.send_task(TASK_COUNT_TOKENS, args=[{}], queue=queue)  # the estimate's RPC (app/jobs/estimates.py)
        _publish_as_beat(app, "reconcile-jobs")
        _publish_as_beat(app, "reconcile-evals")
        order = [message.task for message in await waiting(broker, "cpu")]
    finally:
        await broker.flushdb()
        await broker.aclose()
    assert order[:4] == [TASK_RECONCILE, TASK_RECONCILE_EVALS, TASK_COUNT_TOKENS, TASK_VALIDATE_JOB], order
    assert order[4:] == [TASK_INDEX_FILE] * 30, order
