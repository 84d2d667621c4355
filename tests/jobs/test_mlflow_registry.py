"""MLflow for a job: one registry version per run, a failed registration tried again and then said, and a
slow MLflow that no longer costs the job its lease. Real MLflow throughout (the harness's), reached through
a `FaultProxy` where a test takes it away or slows it down.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from openai import OpenAI
from sqlalchemy import select

from app.core.worker_context import WorkerContext
from app.finetuned.tables import FineTunedModel
from app.jobs.tables import Job, JobEvent
from app.jobs.worker import mlflow_run
from app.jobs.worker.outcome import finish_success
from app.jobs.worker.state import RunState
from app.training.callbacks import TrainingOutputs
from tests.chaos.conftest import start_short_job
from tests.faultproxy import FaultProxy
from tests.jobs.helpers import TERMINAL, seeded_job, steps_by_attempt, wait_status

NOT_REGISTERED = "The model was not registered in MLflow"


def _weights(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_bytes(b"\0" * 1024)
    return folder


def _context(settings: Any, sessionmaker: Any, redis: Any, **changes: Any) -> WorkerContext:
    return WorkerContext(settings=settings.model_copy(update=changes), engine=sessionmaker.kw["bind"],
                         sessionmaker=sessionmaker, redis=redis)  # fmt: skip


async def test_a_run_is_registered_once_however_often_it_is_recorded(
    sessionmaker, settings, make_user, mlflow, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    user = await make_user("registry@example.com")
    job, other = await seeded_job(sessionmaker, user), await seeded_job(sessionmaker, user)
    redis = aioredis.Redis.from_url(settings.redis_url)
    context = _context(settings, sessionmaker, redis)
    adapter = {"adapter": str(_weights(tmp_path / "adapter"))}
    try:
        run_id = mlflow_run._start_or_continue(context, job)  # a real run on the harness's MLflow
        first = mlflow_run.log_outputs_and_register(context, job, run_id, adapter, [])
        # A retried attempt of the same run (its success write lost, say) records it again.
        again = mlflow_run.log_outputs_and_register(context, job, run_id, adapter, [])
        other_run = mlflow_run._start_or_continue(context, other)
        next_one = mlflow_run.log_outputs_and_register(context, other, other_run, adapter, [])
    finally:
        await redis.aclose()
    assert again == first and next_one == (first[0], first[1] + 1), (first, again, next_one)
    versions = mlflow.search_model_versions(f"name = '{first[0]}'")
    assert sorted((int(v.version), v.run_id) for v in versions) == [(first[1], run_id), (next_one[1], other_run)]
    assert mlflow.get_run(run_id).info.status == "FINISHED"


async def _outcome_of(sessionmaker: Any, job_id: str) -> tuple[Job, FineTunedModel | None, list[JobEvent]]:
    async with sessionmaker() as session:
        job = await session.get(Job, job_id)
        model = await session.scalar(select(FineTunedModel).where(FineTunedModel.job_id == job_id))
        events = list((await session.scalars(select(JobEvent).where(JobEvent.job_id == job_id))).all())
    assert job is not None
    return job, model, events


@pytest.mark.parametrize("back_after", [1.5, None], ids=["mlflow_back_soon", "mlflow_gone"])
async def test_a_failed_registration_is_tried_again_then_said(  # type: ignore[no-untyped-def]
    back_after, sessionmaker, settings, make_user, mlflow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # each call fails at once; the worker retries
    job = await seeded_job(sessionmaker, await make_user("unregistered@example.com"))
    proxy, through = FaultProxy.in_front_of(settings.mlflow_tracking_uri)
    redis = aioredis.Redis.from_url(settings.redis_url)
    context = _context(settings, sessionmaker, redis, mlflow_tracking_uri=through, mlflow_register_retry_seconds=6)
    output = tmp_path / "output"
    done = TrainingOutputs(output_dir=str(output), adapter_dir=str(_weights(output / "adapter")), merged_dir=None,
                           model_dir=str(output / "adapter"), trained_tokens=64, metrics_csv="")  # fmt: skip
    state = RunState(job=job, attempt=2, work_dir=tmp_path, last_step=8, done=done,
                     run_id=mlflow_run._start_or_continue(context, job))  # fmt: skip
    proxy.stop()  # MLflow is away when the job finishes
    if back_after is not None:
        threading.Timer(back_after, proxy.start).start()
    try:
        started = time.monotonic()
        await finish_success(context, state)
        seconds = time.monotonic() - started
    finally:
        proxy.stop()
        await redis.aclose()
    row, model, events = await _outcome_of(sessionmaker, job.id)
    warnings = [event for event in events if event.message.startswith(NOT_REGISTERED)]
    assert row.status == "succeeded" and model is not None, "MLflow is not the truth: the job succeeds either way"
    if back_after is not None:
        assert (model.registry_name, warnings) == (mlflow_run.registry_name(job.model, None), [])
        assert [int(v.version) for v in mlflow.search_model_versions(f"run_id = '{state.run_id}'")] == [
            model.registry_version
        ]
        assert seconds >= back_after, "registered only once MLflow was back"
    else:
        [warning] = warnings
        assert warning.level == "warn" and (warning.data or {})["registry"]["error"], warning.data
        assert (model.registry_name, model.registry_version) == (None, None)
        assert 6 <= seconds < 30, "tried for MLFLOW_REGISTER_RETRY_SECONDS, then gave up"


@pytest.fixture
async def client(user_api, make_user) -> OpenAI:  # type: ignore[no-untyped-def]
    user = await make_user("mlflow-faults@example.com")
    return OpenAI(base_url=f"{user_api}/v1", api_key=user.key, max_retries=0)


async def _first_step(sessionmaker: Any, job_id: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not await steps_by_attempt(sessionmaker, job_id):
        assert time.monotonic() < deadline, f"{job_id} reported no step in {timeout}s"
        await asyncio.sleep(0.2)


@pytest.mark.slow
async def test_mlflow_cut_off_mid_training_the_job_succeeds_and_says_it_is_unregistered(  # type: ignore[no-untyped-def]
    client, gpu_worker, gpu_worker_mlflow, cpu_worker, tiny_model, sessionmaker
) -> None:
    job_id = start_short_job(client, tiny_model)
    await _first_step(sessionmaker, job_id)  # its MLflow run exists
    gpu_worker_mlflow.kill()  # restored for the next test by the gpu_worker fixture
    done = wait_status(client, job_id, TERMINAL, timeout=300)
    assert done.status == "succeeded", done.error
    events = list(client.fine_tuning.jobs.list_events(job_id, limit=100))
    [warning] = [event for event in events if event.message.startswith(NOT_REGISTERED)]
    assert warning.level == "warn"
    _, model, _ = await _outcome_of(sessionmaker, job_id)
    assert model is not None and model.registry_version is None and model.id == done.fine_tuned_model


@pytest.mark.slow
async def test_a_slow_mlflow_while_preparing_does_not_cost_the_job_its_lease(  # type: ignore[no-untyped-def]
    client, gpu_worker, gpu_worker_mlflow, cpu_worker, tiny_model, sessionmaker, settings
) -> None:
    """The run's MLflow setup (a request per parameter) outlasts JOB_LEASE_SECONDS; the lease must hold."""
    gpu_worker_mlflow.delay_seconds = 0.6
    job_id = start_short_job(client, tiny_model)
    wait_status(client, job_id, {"running"} | TERMINAL, timeout=120)
    claimed = time.monotonic()
    await _first_step(sessionmaker, job_id)
    preparing = time.monotonic() - claimed
    gpu_worker_mlflow.delay_seconds = 0.0
    done = wait_status(client, job_id, TERMINAL, timeout=300)
    row, _, events = await _outcome_of(sessionmaker, job_id)
    lost = [event.message for event in events if event.message.startswith("Worker lost")]
    assert preparing > settings.job_lease_seconds, f"preparing took {preparing:.1f}s: the test proves nothing"
    assert (done.status, row.attempt, lost) == ("succeeded", 1, []), (done.status, row.attempt, lost)
