"""Shared steps of the job tests: a job long enough to act on mid-training, and what its rows say."""

from __future__ import annotations

import itertools
import os
import signal
import time
from typing import Any

import psutil
from openai import OpenAI
from sqlalchemy import select

from app.catalog.tables import CatalogEntry
from app.core import ids
from app.files.tables import File
from app.jobs.tables import Checkpoint, Job, JobEvent
from tests.jobs.datasets import chat_lines, jsonl

TERMINAL = {"succeeded", "failed", "cancelled"}


def start_long_job(client: OpenAI, model: str, examples: int = 48, epochs: int = 3, **extra: Any) -> str:
    """Unpacked, batch 1: one step per example, so there are many steps and checkpoints to act between."""
    training = client.files.create(file=("train.jsonl", jsonl(chat_lines(examples))), purpose="fine-tune")
    hyperparameters = {
        "n_epochs": epochs,
        "batch_size": 1,
        "packing": False,
        "lora_r": 4,
        "gradient_accumulation_steps": 1,
        **extra,
    }
    job = client.fine_tuning.jobs.create(
        model=model,
        training_file=training.id,
        extra_body={"method": {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}}},
    )
    return job.id


def wait_status(client: OpenAI, job_id: str, statuses: set[str], timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    job = client.fine_tuning.jobs.retrieve(job_id)
    while job.status not in statuses:
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job.status} after {timeout}s (wanted {statuses})")
        time.sleep(0.5)
        job = client.fine_tuning.jobs.retrieve(job_id)
    return job


async def steps_by_attempt(sessionmaker: Any, job_id: str) -> dict[int, list[int]]:
    async with sessionmaker() as session:
        rows = (
            await session.scalars(
                select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.type == "metrics").order_by(JobEvent.id)
            )
        ).all()
    steps: dict[int, list[int]] = {}
    for row in rows:
        if row.data and "train_loss" in row.data:
            steps.setdefault(row.attempt, []).append(int(row.data["step"]))
    return steps


async def checkpoints(sessionmaker: Any, job_id: str) -> list[Checkpoint]:
    async with sessionmaker() as session:
        return list(
            (
                await session.scalars(
                    select(Checkpoint).where(Checkpoint.job_id == job_id).order_by(Checkpoint.step_number)
                )
            ).all()
        )


async def wait_for_checkpoint(sessionmaker: Any, job_id: str, timeout: float = 240) -> Checkpoint:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        saved = await checkpoints(sessionmaker, job_id)
        if saved:
            return saved[-1]
        time.sleep(0.5)
    raise AssertionError(f"no checkpoint of {job_id} after {timeout}s")


def trainer_processes(worker_pid: int) -> list[psutil.Process]:
    """Live training processes under the worker (one that just exited is a zombie: not training)."""
    trainers = []
    for child in psutil.Process(worker_pid).children(recursive=True):
        try:
            if "app.training" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                trainers.append(child)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
    return trainers


def kill_trainer(worker_pid: int) -> int:
    trainers = trainer_processes(worker_pid)
    assert trainers, "no training process is running under the worker"
    os.kill(trainers[0].pid, signal.SIGKILL)
    return trainers[0].pid


def assert_resumed_from_a_checkpoint(steps: dict[int, list[int]], checkpoint_steps: list[int], interval: int) -> None:
    """Each later attempt starts right after a checkpoint of the one before, and every step is trained.

    What is trained twice is the design's allowance and no more: the steps the earlier attempt ran
    past its last checkpoint, at most CHECKPOINT_EVERY_STEPS (`interval`).
    """
    attempts = sorted(steps)
    assert len(attempts) >= 2, steps
    for earlier, later in itertools.pairwise(attempts):
        resumed_at = min(steps[later]) - 1
        assert resumed_at in checkpoint_steps, (resumed_at, checkpoint_steps)
        redone = max(steps[earlier]) - resumed_at
        assert 0 <= redone <= interval, (redone, steps)
    final = sorted(set(step for attempt in attempts for step in steps[attempt]))
    assert final == list(range(1, max(final) + 1)), "every step trained at least once"


async def seeded_job(sessionmaker: Any, user: Any, status: str = "running", attempt: int = 2) -> Job:
    """A job row written straight to the database (model `journal-llama`, a one-line file), for worker-side tests."""
    async with sessionmaker() as session:
        if await session.get(CatalogEntry, "journal-llama") is None:
            session.add(CatalogEntry(id="journal-llama", source="/models/journal-llama", max_seq_length=256,
                                     allowed=True, download_status="ready"))  # fmt: skip
        file = File(id=ids.file_id(), owner_id=user.id, organization_id=user.organization_id, filename="t.jsonl",
                    purpose="fine-tune", bytes=10, sha256="0" * 64, storage_name=f"{ids.file_id()}.jsonl",
                    status="processed")  # fmt: skip
        session.add(file)
        await session.flush()
        job = Job(id=ids.job_id(), owner_id=user.id, organization_id=user.organization_id, model="journal-llama",
                  training_file=file.id, method="supervised", hyperparameters={}, seed=1, status=status,
                  attempt=attempt)  # fmt: skip
        session.add(job)
        await session.commit()
    return job
