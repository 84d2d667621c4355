"""All tenants' jobs through the admin API: filters, events, cancel, retry and priority in the broker."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import redis.asyncio as aioredis

from app.core.database import utcnow
from app.jobs.tables import Checkpoint, Job
from tests.admin.conftest import Cast, Seeder


async def _gpu_messages(settings, job_id: str, timeout: float = 10) -> list[int]:  # type: ignore[no-untyped-def]
    """Priorities of the job's run messages waiting in the gpu queue (once the outbox has published)."""
    from app.core.celery_app import GPU_QUEUE, TASK_RUN_FINETUNE
    from app.fleet.queues import waiting

    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = [
                m.priority
                for m in await waiting(client, GPU_QUEUE)
                if m.task == TASK_RUN_FINETUNE and m.args == [job_id]
            ]
            if found or asyncio.get_running_loop().time() > deadline:
                return found
            await asyncio.sleep(0.2)
    finally:
        await client.aclose()


async def test_list_with_filters_and_retrieve_with_events(
    as_admin: httpx.Client, cast: Cast, seed: Seeder, make_user, gpu_queue_held
) -> None:  # type: ignore[no-untyped-def]
    other = await make_user("bob@globex.example.com", "globex")
    await seed.base_model("model-a")
    await seed.base_model("model-b")
    alice_file = (await seed.training_file(cast.user)).id
    bob_file = (await seed.training_file(other)).id  # type: ignore[arg-type]
    a1 = await seed.job(cast.user, "model-a", alice_file, "failed")
    a2 = await seed.job(cast.user, "model-b", alice_file, "running")
    b1 = await seed.job(other, "model-a", bob_file, "queued")  # type: ignore[arg-type]

    def ids(**params: Any) -> list[str]:
        response = as_admin.get("/admin/v1/jobs", params=params)
        assert response.status_code == 200, response.text
        return [job["id"] for job in response.json()["data"]]

    assert ids() == [b1.id, a2.id, a1.id]
    assert ids(user_id=cast.user.id) == [a2.id, a1.id]
    assert ids(organization_id=other.organization_id) == [b1.id]
    assert ids(model="model-a") == [b1.id, a1.id]
    assert ids(status=["failed", "queued"]) == [b1.id, a1.id]
    assert ids(created_after=(utcnow() + timedelta(minutes=1)).isoformat()) == []
    assert ids(created_before=(utcnow() + timedelta(minutes=1)).isoformat(), limit=1) == [b1.id]

    as_admin.post(f"/admin/v1/jobs/{b1.id}/priority", json={"priority": 2})
    detail = as_admin.get(f"/admin/v1/jobs/{b1.id}").json()
    assert detail["owner_id"] == other.id and detail["priority"] == 2
    assert [event["message"] for event in detail["events"]] == ["Priority changed from 5 to 2 by an administrator"]
    assert as_admin.get("/admin/v1/jobs/ftjob-missing").status_code == 404


async def test_cancel_any_tenants_job(as_admin: httpx.Client, cast: Cast, seed: Seeder) -> None:
    model = (await seed.base_model()).id
    training = (await seed.training_file(cast.user)).id
    running = await seed.job(cast.user, model, training, "running")
    queued = await seed.job(cast.user, model, training, "queued")

    asked = as_admin.post(f"/admin/v1/jobs/{running.id}/cancel").json()
    # Answered `cancelled` at once, as OpenAI does; the row stays the worker's until its trainer has checkpointed.
    assert asked["status"] == "cancelled" and asked["cancel_requested"] is True and asked["progress"]["stopping"]
    assert (await seed.get(Job, running.id)).status == "running"
    assert as_admin.post(f"/admin/v1/jobs/{running.id}/cancel").status_code == 409  # already cancelled
    assert as_admin.post(f"/admin/v1/jobs/{queued.id}/cancel").json()["status"] == "cancelled"
    assert as_admin.post(f"/admin/v1/jobs/{queued.id}/cancel").status_code == 409


async def test_operators_control_jobs_they_cannot_read_through_the_user_api(
    as_operator: httpx.Client, user_api: str, cast: Cast, seed: Seeder, gpu_queue_held
) -> None:  # type: ignore[no-untyped-def]
    """Job control is operating: cancel, retry and priority through the admin API (policies/README.md)."""
    model = (await seed.base_model()).id
    training = (await seed.training_file(cast.user)).id
    queued = await seed.job(cast.user, model, training, "queued")
    failed = await seed.job(cast.user, model, training, "failed", attempt=1, resolved_hyperparameters={"n_epochs": 1})
    assert as_operator.post(f"/admin/v1/jobs/{queued.id}/priority", json={"priority": 1}).json()["priority"] == 1
    assert as_operator.post(f"/admin/v1/jobs/{queued.id}/cancel").json()["status"] == "cancelled"
    assert as_operator.post(f"/admin/v1/jobs/{failed.id}/retry").json()["status"] == "queued"
    # The same operator reads none of the tenant's objects through the user API.
    user_api_view = httpx.get(f"{user_api}/v1/fine_tuning/jobs/{queued.id}", headers=cast.operator.headers)
    assert user_api_view.status_code == 404


async def test_retry_requeues_a_failed_job_from_its_checkpoint(
    as_admin: httpx.Client, cast: Cast, seed: Seeder, settings, gpu_queue_held
) -> None:  # type: ignore[no-untyped-def]
    model = (await seed.base_model()).id
    training = (await seed.training_file(cast.user)).id
    failed = await seed.job(cast.user, model, training, "failed", attempt=1, priority=3, finished_at=utcnow(),
                            resolved_hyperparameters={"n_epochs": 1},
                            error={"code": "oom", "message": "CUDA out of memory", "param": None})  # fmt: skip
    await seed.add(Checkpoint(id="ftckpt_a", job_id=failed.id, attempt=1, step_number=40, path="/nowhere"))

    retried = as_admin.post(f"/admin/v1/jobs/{failed.id}/retry")
    assert retried.status_code == 200, retried.text
    body = retried.json()
    assert body["status"] == "queued" and body["error"] is None and body["finished_at"] is None
    row = await seed.get(Job, failed.id)
    assert row.status == "queued" and row.error is None and row.attempt == 1 and not row.cancel_requested
    assert await _gpu_messages(settings, failed.id) == [3]
    events = as_admin.get(f"/admin/v1/jobs/{failed.id}").json()["events"]
    assert (
        events[0]["message"]
        == "Retry requested by an administrator: attempt 2 continues from the checkpoint at step 40"
    )

    assert as_admin.post(f"/admin/v1/jobs/{failed.id}/retry").status_code == 409  # queued now, not failed
    # A job that spent every attempt gets a fresh budget on top of them, so the retry can run.
    spent = await seed.job(cast.user, model, training, "failed", attempt=settings.max_job_attempts,
                           resolved_hyperparameters={"n_epochs": 1})  # fmt: skip
    assert as_admin.post(f"/admin/v1/jobs/{spent.id}/retry").status_code == 200
    row = await seed.get(Job, spent.id)
    assert row.attempts_allowed == 2 * settings.max_job_attempts


async def test_priority_change_moves_the_message_between_priority_lists(
    as_admin: httpx.Client, cast: Cast, seed: Seeder, settings, gpu_queue_held
) -> None:  # type: ignore[no-untyped-def]
    model = (await seed.base_model()).id
    training = (await seed.training_file(cast.user)).id
    job = await seed.job(cast.user, model, training, "failed", attempt=1, resolved_hyperparameters={})
    as_admin.post(f"/admin/v1/jobs/{job.id}/retry")
    assert await _gpu_messages(settings, job.id) == [5]

    changed = as_admin.post(f"/admin/v1/jobs/{job.id}/priority", json={"priority": 0})
    assert changed.status_code == 200 and changed.json()["priority"] == 0
    assert await _gpu_messages(settings, job.id) == [0]  # the old message is gone, the new one is first in line
    queues = as_admin.get("/admin/v1/fleet/queues").json()["queues"]
    gpu = next(queue for queue in queues if queue["name"] == "gpu")
    assert gpu["by_priority"]["0"] == 1 and gpu["by_priority"]["5"] == 0 and gpu["length"] == 1
    assert gpu["next"][0] == {"task": "jobs.run_finetune", "args": [job.id], "priority": 0}

    assert as_admin.post(f"/admin/v1/jobs/{job.id}/priority", json={"priority": 10}).status_code == 400
    running = await seed.job(cast.user, model, training, "running")
    assert as_admin.post(f"/admin/v1/jobs/{running.id}/priority", json={"priority": 1}).status_code == 409


async def test_priority_of_a_message_not_yet_published_is_changed_in_the_outbox(
    as_admin: httpx.Client, cast: Cast, seed: Seeder, settings, gpu_queue_held
) -> None:  # type: ignore[no-untyped-def]
    from app.core.outbox import OutboxMessage, relay

    model = (await seed.base_model()).id
    job = await seed.job(cast.user, model, (await seed.training_file(cast.user)).id, "queued")
    # The reconciler relays rows older than OUTBOX_RELAY_AFTER_SECONDS (2 s here): one stamped an hour
    # ahead stays unsent however slow the request below is, until this test relays it itself.
    unsent = await seed.add(OutboxMessage(task_name="jobs.run_finetune", args=[job.id], queue="gpu", priority=5,
                                          created_at=utcnow() + timedelta(hours=1)))  # fmt: skip

    assert as_admin.post(f"/admin/v1/jobs/{job.id}/priority", json={"priority": 8}).status_code == 200
    assert (await seed.get(OutboxMessage, unsent.id)).priority == 8
    assert await _gpu_messages(settings, job.id, timeout=0) == [], "the endpoint published nothing itself"
    assert await relay(seed.sessionmaker) == 1
    assert await _gpu_messages(settings, job.id) == [8]
