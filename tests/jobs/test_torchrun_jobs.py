"""Jobs on two training processes under torchrun (CPU, gloo, FSDP2) through the real GPU worker.

The worker of this module runs with TRAINING_PROCESSES=2 and tests/jobs/rank_fault on its PYTHONPATH
(a rank-1 stdout line that must never become an event; a simulated CUDA OOM on rank 1 for one seed).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from openai import OpenAI
from sqlalchemy import select

from app.jobs.tables import JobEvent
from tests.conftest import WorkerHandle
from tests.jobs.datasets import chat_lines, jsonl
from tests.jobs.helpers import TERMINAL, checkpoints, start_long_job, steps_by_attempt, wait_for_checkpoint, wait_status
from tests.jobs.test_job_control import assert_resumed_without_repeats

pytestmark = pytest.mark.slow
FAULT_OOM_SEED = 4242
FAULT_DIR = Path(__file__).parent / "rank_fault"


@pytest.fixture(scope="module")
def torchrun_worker(stack: Any) -> Iterator[WorkerHandle]:
    """A GPU-queue worker whose jobs run on two ranks; the session's one-process worker is stopped meanwhile."""
    for process in stack.processes:
        if process.name == "worker-gpu" and not process.exited():
            process.stop()
    python_path = os.pathsep.join([str(FAULT_DIR), os.environ.get("PYTHONPATH", "")])
    extra = {"TRAINING_PROCESSES": "2", "PYTHONPATH": python_path, "FAULT_OOM_SEED": str(FAULT_OOM_SEED)}
    original = stack.start_worker

    def start_torchrun_worker(queue: str, extra_env: dict[str, str] | None = None) -> Any:
        return original(queue, {**extra, **(extra_env or {})})

    stack.start_worker = start_torchrun_worker
    try:
        handle = WorkerHandle(stack, "gpu")
    finally:
        stack.start_worker = original
    yield handle
    handle.process.stop()


@pytest.fixture
async def client(user_api: str, make_user: Any, cpu_worker: Any) -> OpenAI:
    user = await make_user("ranks@example.com")
    return OpenAI(base_url=f"{user_api}/v1", api_key=user.key, max_retries=0)


def ranks(worker_pid: int) -> dict[int, psutil.Process]:
    """The live training ranks under the worker, by their RANK."""
    found = {}
    for child in psutil.Process(worker_pid).children(recursive=True):
        try:
            rank = child.environ().get("RANK")
            if rank is not None and "app.training" in " ".join(child.cmdline()):
                found[int(rank)] = child
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


async def messages(sessionmaker: Any, job_id: str) -> list[tuple[int, str]]:
    async with sessionmaker() as session:
        rows = await session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id))
        return [(row.attempt, row.message) for row in rows]


async def test_a_killed_rank_resumes_from_the_checkpoint_without_tokenizing_again(
    client: OpenAI, torchrun_worker: WorkerHandle, tiny_model: str, sessionmaker: Any, settings: Any
) -> None:
    job_id = start_long_job(client, tiny_model, examples=24, epochs=2)
    await wait_for_checkpoint(sessionmaker, job_id)
    running = ranks(torchrun_worker.pid)
    assert sorted(running) == [0, 1], running
    os.kill(running[1].pid, signal.SIGKILL)
    done = wait_status(client, job_id, TERMINAL)
    assert done.status == "succeeded", done.error
    saved = [c.step_number for c in await checkpoints(sessionmaker, job_id)]
    assert_resumed_without_repeats(await steps_by_attempt(sessionmaker, job_id), saved, settings.checkpoint_every_steps)
    said = await messages(sessionmaker, job_id)
    tokenized = [attempt for attempt, text in said if text.startswith("training_file: tokenized")]
    reused = [attempt for attempt, text in said if text.startswith("training_file:") and "reused" in text]
    assert tokenized == [1] and reused and min(reused) > 1, said
    assert any("fsdp2" in text for _, text in said if text.startswith("loaded"))
    assert not any("printed by rank 1" in text for _, text in said), "a rank's stdout reached the events"


async def test_an_out_of_memory_on_rank_one_fails_the_job_with_its_own_code(
    client: OpenAI, torchrun_worker: WorkerHandle, tiny_model: str, sessionmaker: Any
) -> None:
    training = client.files.create(file=("train.jsonl", jsonl(chat_lines(16))), purpose="fine-tune")
    hyperparameters = {"n_epochs": 2, "batch_size": 1, "packing": False, "lora_r": 4}
    job_id = client.fine_tuning.jobs.create(
        model=tiny_model,
        training_file=training.id,
        seed=FAULT_OOM_SEED,
        extra_body={"method": {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}}},
    ).id
    failed = wait_status(client, job_id, TERMINAL)
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.code == "out_of_memory", failed.error
    assert failed.error.message.startswith("rank 1: CUDA ran out of memory") and "batch_size" in failed.error.message
    assert list(await steps_by_attempt(sessionmaker, job_id)) == [1], await messages(sessionmaker, job_id)
    assert not ranks(torchrun_worker.pid)


async def test_cancel_reaches_every_rank_and_ends_within_10s_with_a_checkpoint(
    client: OpenAI, torchrun_worker: WorkerHandle, tiny_model: str, sessionmaker: Any
) -> None:
    job_id = start_long_job(client, tiny_model, examples=24, epochs=4)
    await wait_for_checkpoint(sessionmaker, job_id)
    before = len(await checkpoints(sessionmaker, job_id))
    asked = time.monotonic()
    client.fine_tuning.jobs.cancel(job_id)
    job = wait_status(client, job_id, TERMINAL, timeout=30)
    assert job.status == "cancelled"
    assert time.monotonic() - asked < 10
    assert len(await checkpoints(sessionmaker, job_id)) > before, "a checkpoint is saved on cancel"
    assert not ranks(torchrun_worker.pid)
