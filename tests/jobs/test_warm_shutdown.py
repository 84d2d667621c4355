"""`docker compose stop celery-worker` while a job trains: checkpointed where it is, queued again at once.

Compose sends SIGTERM to the container's init (`init: true`), which passes it to Celery only, and
SIGKILLs whatever is left when `stop_grace_period` ends. The worker here gets the same: SIGTERM to
the Celery process alone (not its trainer), then SIGKILL once the grace period of the compose file
has passed.
"""

from __future__ import annotations

import re
import signal
import time
from datetime import timedelta

import pytest
from openai import OpenAI
from sqlalchemy import select

from app.core.outbox import OutboxMessage
from app.jobs.tables import Job, JobEvent
from tests.deploy import compose_rules as rules
from tests.jobs.helpers import (
    TERMINAL,
    checkpoints,
    start_long_job,
    steps_by_attempt,
    trainer_processes,
    wait_for_checkpoint,
    wait_status,
)

pytestmark = pytest.mark.slow
DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def grace_period_seconds(service: str = "celery-worker") -> int:
    """The compose file's `stop_grace_period` of the GPU worker ("10m", "90s", "1m30s")."""
    value = str(rules.services(rules.load_compose())[service]["stop_grace_period"])
    match = DURATION.match(value)
    assert match and any(match.groups()), f"unexpected stop_grace_period {value!r}"
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


@pytest.fixture
async def client(user_api, make_user) -> OpenAI:  # type: ignore[no-untyped-def]
    user = await make_user("shutdown@example.com")
    return OpenAI(base_url=f"{user_api}/v1", api_key=user.key, max_retries=0)


async def job_row(sessionmaker, job_id: str) -> Job:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        return job


async def test_compose_stop_hands_the_running_job_back_checkpointed(  # type: ignore[no-untyped-def]
    client, gpu_worker, cpu_worker, tiny_model, sessionmaker, settings, stack
) -> None:
    job_id = start_long_job(client, tiny_model, examples=24, epochs=3)
    first = await wait_for_checkpoint(sessionmaker, job_id)
    # Some steps past the periodic checkpoint: what a SIGKILL at the end of the grace period would lose.
    deadline = time.monotonic() + 60
    while (await job_row(sessionmaker, job_id)).current_step < first.step_number + 2:
        assert time.monotonic() < deadline, "the job stopped making progress"
        time.sleep(0.2)
    assert trainer_processes(gpu_worker.pid), "the job trains in a child of the worker"

    grace = grace_period_seconds()
    gpu_worker.process.stop(signal.SIGTERM, timeout=grace)  # SIGTERM to Celery alone, SIGKILL after the grace
    assert gpu_worker.process.returncode() == 0, f"the worker was killed after the {grace}s grace period"

    job = await job_row(sessionmaker, job_id)
    assert job.status == "queued" and job.lease_until is None and job.attempt == 1, (job.status, job.attempt)
    assert job.enqueued_at is not None and job.heartbeat_at is not None
    saved = [c.step_number for c in await checkpoints(sessionmaker, job_id)]
    assert max(saved) == job.current_step > first.step_number, (saved, job.current_step)
    async with sessionmaker() as session:
        told = (await session.scalars(select(JobEvent).where(JobEvent.job_id == job_id))).all()
        message = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.args == [job_id]).order_by(OutboxMessage.id.desc())
        )
    # Who queued it again, by what it wrote (not by how long it took: saving a checkpoint on loaded cores
    # can outlast JOB_LEASE_SECONDS, and the worker heartbeats the lease until its trainer has exited).
    handed = [e for e in told if (e.data or {}).get("reason") == "worker_shutdown"]
    assert len(handed) == 1 and handed[0].attempt == 1, [(e.attempt, e.message) for e in told]
    assert handed[0].message.startswith(f"Worker shutting down: stopped at step {job.current_step}"), handed[0].message
    # The reconciler (every RECONCILE_INTERVAL_SECONDS here) re-queues a job only once its lease has lapsed,
    # and says so: it never did, and the worker handed the job back while its last heartbeat's lease held.
    lost = [e.message for e in told if e.message.startswith("Worker lost")]
    assert lost == [], lost
    lease_held_until = job.heartbeat_at + timedelta(seconds=settings.job_lease_seconds)
    assert handed[0].created_at < lease_held_until, (handed[0].created_at, job.heartbeat_at)
    assert message is not None and message.sent_at is not None
    # The reconciler relays only rows older than OUTBOX_RELAY_AFTER_SECONDS: this one the worker published.
    assert (message.sent_at - message.created_at).total_seconds() < settings.outbox_relay_after_seconds
    assert job.attempts_allowed == settings.max_job_attempts + 1, "a handed-back attempt is not counted as a failure"

    gpu_worker.ensure_running()  # the next GPU worker continues from that checkpoint
    done = wait_status(client, job_id, TERMINAL)
    assert done.status == "succeeded", done.error
    steps = await steps_by_attempt(sessionmaker, job_id)
    assert sorted(steps) == [1, 2], steps
    assert min(steps[2]) == max(saved) + 1, "nothing trained twice: attempt 2 starts after the handed-back step"
    assert max(steps[1]) == max(saved), "every step the first attempt trained is in its checkpoint"
