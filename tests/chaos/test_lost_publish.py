"""An API process that dies between committing a job and publishing its message loses nothing.

The job is created through the service exactly as the endpoint creates it, and the transaction
is committed, but the after-commit publish never runs (that is what dying there means): the
job row and its outbox row are in PostgreSQL, nothing is in the broker. The reconciler must
publish it, and the job must run to the end.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from app.authz import Principal
from app.authz.resources import Resources
from app.core.outbox import OutboxMessage
from app.jobs import service
from app.jobs.schemas import JobCreate
from tests.chaos.evidence import record
from tests.jobs.datasets import chat_lines, jsonl
from tests.jobs.helpers import TERMINAL, wait_status

pytestmark = pytest.mark.slow


async def _outbox_rows(sessionmaker, job_id: str) -> list[OutboxMessage]:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        rows = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    return [row for row in rows if job_id in row.args]


async def _create_without_publishing(settings, user, body: JobCreate) -> str:  # type: ignore[no-untyped-def]
    resources = Resources.create(settings)
    try:
        async with resources.sessionmaker() as session:
            principal = Principal(id=user.id, roles=user.roles, organization_id=user.organization_id)
            job = await service.create(resources, session, principal, body)
            await session.commit()  # not app.core.database.commit: its after-commit publish never runs
            return job.id
    finally:
        await resources.close()


async def test_job_committed_but_never_published_is_delivered_by_the_reconciler(  # type: ignore[no-untyped-def]
    client, chaos_user, gpu_worker, cpu_worker, tiny_model, sessionmaker, settings
) -> None:
    training = client.files.create(file=("lost.jsonl", jsonl(chat_lines(10))), purpose="fine-tune")
    hyperparameters = {"n_epochs": 1, "batch_size": 1, "packing": False, "lora_r": 4}
    body = JobCreate.model_validate({"model": tiny_model, "training_file": training.id, "method": {
        "type": "supervised", "supervised": {"hyperparameters": hyperparameters}}})  # fmt: skip
    job_id = await _create_without_publishing(settings, chaos_user, body)
    committed = time.monotonic()
    [message] = await _outbox_rows(sessionmaker, job_id)
    assert message.sent_at is None, "the message was published although the publish step never ran"

    while message.sent_at is None:
        assert time.monotonic() - committed < 60, "the reconciler never published the message"
        time.sleep(0.2)
        [message] = [row for row in await _outbox_rows(sessionmaker, job_id) if row.id == message.id]
    delivered = time.monotonic() - committed
    done = wait_status(client, job_id, TERMINAL, timeout=300)
    figures = {
        "seconds_commit_to_published": round(delivered, 1),
        "relay_after_seconds": settings.outbox_relay_after_seconds,
        "reconcile_interval_seconds": settings.reconcile_interval_seconds,
        "seconds_commit_to_succeeded": round(time.monotonic() - committed, 1),
        "final_status": done.status,
        "messages_of_the_job": len(await _outbox_rows(sessionmaker, job_id)),
    }
    record("lost_publish", figures)
    assert done.status == "succeeded", done.error
    # Published after OUTBOX_RELAY_AFTER_SECONDS, by the next reconciler round or the one after.
    assert delivered < settings.outbox_relay_after_seconds + 3 * settings.reconcile_interval_seconds + 10, figures
