"""The broker and the database go away and come back while jobs are queued and running.

Valkey (the Redis-protocol broker) and PostgreSQL are the embedded servers of the harness,
restarted on the same port and data directory; a configured one (DATABASE_URL, REDIS_URL) is
cut off by the proxy the harness puts in front of it (tests/faultproxy.py). `make test` stops
each cleanly, SIGKILLs PostgreSQL, and starts Valkey on an empty data directory after a SIGKILL
(a broker that lost every queued message: only the reconciler's re-publish brings the queued job
back); the full form (FULL_CHAOS=1) adds the SIGKILL of Valkey that keeps its data. Through all
of it: no job lost, none trained twice at once, and the APIs answer 503 with Retry-After while
the database is away, never 500.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.chaos.conftest import Outage, outage_of, start_short_job
from tests.chaos.evidence import full_chaos, record
from tests.chaos.faults import ApiProbe, TrainerWatch, job_row
from tests.jobs.datasets import chat_lines, jsonl
from tests.jobs.helpers import TERMINAL, start_long_job, steps_by_attempt, wait_for_checkpoint, wait_status

pytestmark = pytest.mark.slow
OUTAGE_SECONDS = 3.0
FULL_ONLY = [pytest.mark.chaos_full, pytest.mark.skipif(not full_chaos(), reason="full fault form: FULL_CHAOS=1")]


def _take_down(outage: Outage, how: str) -> None:
    {"stop": outage.stop, "kill": outage.kill, "lose_data": outage.lose_data}[how]()


def _user_operations(job_id: str) -> dict[str, Callable[[httpx.Client], httpx.Response]]:
    small = jsonl(chat_lines(2))
    return {
        "list_jobs": lambda http: http.get("/v1/fine_tuning/jobs"),
        "retrieve_job": lambda http: http.get(f"/v1/fine_tuning/jobs/{job_id}"),
        "list_events": lambda http: http.get(f"/v1/fine_tuning/jobs/{job_id}/events"),
        "upload_file": lambda http: http.post("/v1/files", data={"purpose": "fine-tune"},
                                              files={"file": ("probe.jsonl", small)}),
    }  # fmt: skip


def _try_create(client: OpenAI, model: str, training_file: str) -> tuple[int, str | None]:
    """Create a job while a server is away: what the client is told."""
    try:
        job = client.fine_tuning.jobs.create(model=model, training_file=training_file)
    except openai.APIStatusError as error:
        return error.status_code, None
    return 200, job.id


async def _outcome(client: OpenAI, sessionmaker: Any, job_ids: list[str]) -> dict[str, Any]:
    finals = {job_id: wait_status(client, job_id, TERMINAL, timeout=420).status for job_id in job_ids}
    attempts = {job_id: (await job_row(sessionmaker, job_id)).attempt for job_id in job_ids}
    listed = {job.id for job in client.fine_tuning.jobs.list(limit=100)}
    return {
        "final_states": finals,
        "attempts": attempts,
        "jobs_lost": sum(1 for status in finals.values() if status != "succeeded"),
        "jobs_listed_by_the_api": len(listed),
    }


async def _whereabouts(sessionmaker: Any, stack: Any, job_id: str) -> dict[str, Any]:
    """The outbox rows that name the job, and what the broker's queues hold now."""
    import redis
    from sqlalchemy import select

    from app.core.outbox import OutboxMessage

    async with sessionmaker() as session:
        rows = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    named = [{"task": row.task_name, "created": str(row.created_at), "sent": str(row.sent_at), "error": row.error}
             for row in rows if job_id in json.dumps(row.args)]  # fmt: skip
    broker = redis.Redis.from_url(stack.env["REDIS_URL"])
    try:
        queues = {name.decode(): broker.llen(name) for name in broker.scan_iter("cpu*") if broker.type(name) == b"list"}
        unacked = broker.hlen("unacked")
    finally:
        broker.close()
    return {"outbox": named, "cpu_queues": queues, "unacked": unacked}


@pytest.mark.parametrize("how", ["stop", pytest.param("kill", marks=FULL_ONLY), "lose_data"])
async def test_valkey_restart_with_jobs_queued_and_running(  # type: ignore[no-untyped-def]
    how,
    stack,
    client,
    chaos_user,
    user_api,
    admin_api,
    gpu_worker,
    cpu_worker,
    worker_supervisor,
    tiny_model,
    sessionmaker,
) -> None:
    valkey = outage_of(stack, "EmbeddedValkey")
    running = start_long_job(client, tiny_model, examples=16, epochs=2)
    await wait_for_checkpoint(sessionmaker, running)
    queued = start_short_job(client, tiny_model)
    wait_status(client, queued, {"queued"}, timeout=120)
    training_file = client.fine_tuning.jobs.retrieve(queued).training_file
    created_reached = None
    with (
        worker_supervisor.watching() as restarts,
        TrainerWatch() as watch,
        ApiProbe(user_api, chaos_user.key, _user_operations(running)) as probe,
    ):
        down = time.time()
        _take_down(valkey, how)
        created_status, created = _try_create(client, tiny_model, training_file)
        time.sleep(OUTAGE_SECONDS)
        valkey.start()
        up = time.time()
        if created:  # delivered once the broker is back: validated and queued; cancelled there to save time
            try:
                created_reached = wait_status(client, created, {"queued", "running"} | TERMINAL, timeout=120).status
            except AssertionError as stuck:  # say where its message is: never sent, sent and not consumed
                raise AssertionError(f"{stuck}; {await _whereabouts(sessionmaker, stack, created)}") from None
            client.fine_tuning.jobs.cancel(created)
        outcome = await _outcome(client, sessionmaker, [running, queued])
    queued_row = await job_row(sessionmaker, queued)
    running_row = await job_row(sessionmaker, running)
    assert queued_row.started_at is not None and running_row.finished_at is not None
    # Once the broker is back, the APIs' own Redis connections are too: no pooled socket stays stale.
    ready = [httpx.get(f"{base}/ready", timeout=10).status_code for base in (user_api, admin_api) for _ in range(12)]
    figures = {
        "how": how,
        "outage_seconds": round(up - down, 1),
        "api_answers_during_outage": probe.tally(probe.between(down, up)),
        "create_during_outage": {"status": created_status, "job_created": created is not None,
                                 "then_reached": created_reached},
        "jobs_trained_twice_concurrently": watch.concurrent_runs(),
        "worker_processes_restarted": restarts,
        "ready_answers_after_restart": dict(Counter(ready)),
        # The solo GPU worker takes the queued job once the running one ends (or at once, if it ended before).
        "seconds_restart_to_queued_job_claimed": round(
            queued_row.started_at.timestamp() - max(up, running_row.finished_at.timestamp()), 1),
        **outcome,
    }  # fmt: skip
    record(f"valkey_restart_{how}", figures)
    assert outcome["jobs_lost"] == 0 and watch.concurrent_runs() == 0, figures
    assert outcome["attempts"][running] == 1, "the running job was not disturbed by the broker restart"
    assert set(ready) == {200}, figures
    # The workers reconnect by themselves: none died of the broker's restart (kombu's transport used to
    # kill them: app/core/broker_transport.py), so beat's reconcilers never stopped.
    assert restarts == [], figures
    assert all(status in ("200", "201") for status in figures["api_answers_during_outage"]), figures
    # A job created during the outage is either refused (503, and nothing made) or made and run: a 503
    # for a job that was made anyway would make the client's retry a second job.
    assert created_status in (200, 503), figures
    assert outcome["jobs_listed_by_the_api"] == 2 + (created is not None), figures
    assert created is None or created_reached in ("queued", "running"), figures


@pytest.mark.parametrize("how", ["stop", "kill"])
async def test_postgres_restart_while_the_apis_serve_and_a_job_runs(  # type: ignore[no-untyped-def]
    how, stack, client, chaos_user, make_user, user_api, admin_api, gpu_worker, cpu_worker, worker_supervisor,
    tiny_model, sessionmaker, settings,
) -> None:  # fmt: skip
    postgres = outage_of(stack, "EmbeddedPostgres")
    admin = await make_user("dba@ops.example.com", "ops", ["admin"])
    running = start_long_job(client, tiny_model, examples=16, epochs=2)
    await wait_for_checkpoint(sessionmaker, running)
    admin_operations = {"admin_list_jobs": lambda http: http.get("/admin/v1/jobs")}
    with (
        worker_supervisor.watching() as restarts,
        TrainerWatch() as watch,
        ApiProbe(user_api, chaos_user.key, _user_operations(running)) as probe,
        ApiProbe(admin_api, admin.key, admin_operations) as admin_probe,
    ):
        time.sleep(1.0)
        down = time.time()
        _take_down(postgres, how)
        time.sleep(OUTAGE_SECONDS)
        postgres.start()
        up = time.time()
        while probe.first_success_after(up) is None and time.time() - up < 60:
            time.sleep(0.2)
        time.sleep(1.0)
    answers = probe.between(down, up) + admin_probe.between(down, up)
    outcome = await _outcome(client, sessionmaker, [running])
    recovered = probe.first_success_after(up)
    # Every step the trainer reported during the outage is recorded once PostgreSQL is back.
    reported = {step for steps in (await steps_by_attempt(sessionmaker, running)).values() for step in steps}
    step_events_missing = sorted(set(range(1, max(reported, default=0) + 1)) - reported)
    figures = {
        "how": how,
        "outage_seconds": round(up - down, 1),
        "api_answers_during_outage": probe.tally(answers),
        "answers_during_outage_by_operation": {
            name: probe.tally([a for a in answers if a.operation == name])
            for name in sorted({a.operation for a in answers})
        },
        "server_errors_500": sum(1 for a in probe.answers + admin_probe.answers if a.status == 500),
        "answers_503_without_retry_after": sum(1 for a in answers if a.status == 503 and not a.retry_after),
        "no_http_answer": sum(1 for a in answers if a.status == 0),
        "seconds_restart_to_first_api_success": round(recovered - up, 2) if recovered else None,
        "jobs_trained_twice_concurrently": watch.concurrent_runs(),
        "worker_processes_restarted": restarts,
        "step_events_missing": step_events_missing,
        "job_lease_seconds": settings.job_lease_seconds,
        **outcome,
    }
    record(f"postgres_restart_{how}", figures)
    assert figures["server_errors_500"] == 0 and figures["answers_503_without_retry_after"] == 0, figures
    assert figures["no_http_answer"] == 0 and recovered is not None, figures
    assert "503" in figures["api_answers_during_outage"], "the outage was not observed by the probes"
    assert outcome["jobs_lost"] == 0 and watch.concurrent_runs() == 0, figures
    assert step_events_missing == [], figures
    assert restarts == [], "a worker died of the database's restart: " + json.dumps(figures, default=str)
