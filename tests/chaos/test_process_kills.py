"""kill -9 of the training process and of the GPU worker at random steps, repeated (FULL_CHAOS=1).

The quick form, one kill of each kind, is tests/jobs/test_job_control.py (always run). Here each
kind is repeated KILLS_PER_KIND times, each on a fresh job at a random step past its first
checkpoint, and every round is measured: the job ends succeeded, it never trains twice at once,
it resumes from a checkpoint at most CHECKPOINT_EVERY_STEPS behind the killed step, and how long
it took from the kill to the next attempt's first step.
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

import pytest
from openai import OpenAI
from sqlalchemy import select

from app.jobs.tables import JobEvent
from tests.chaos.evidence import full_chaos, record
from tests.chaos.faults import TrainerWatch, first_step_after, job_row, wait_for_step
from tests.jobs.helpers import (
    TERMINAL,
    checkpoints,
    kill_trainer,
    start_long_job,
    steps_by_attempt,
    wait_for_checkpoint,
    wait_status,
)
from tests.jobs.test_job_control import assert_resumed_without_repeats

pytestmark = [
    pytest.mark.slow,
    pytest.mark.chaos_full,
    pytest.mark.skipif(not full_chaos(), reason="full fault form: FULL_CHAOS=1"),
]
KILLS_PER_KIND = 5


async def resumed_from(sessionmaker: Any, job_id: str) -> dict[int, int]:
    """attempt -> the step its trainer resumed from (the runner's "Resumed from checkpoint" event)."""
    async with sessionmaker() as session:
        rows = (await session.scalars(
            select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.message.like("Resumed from checkpoint%"))
        )).all()  # fmt: skip
    return {row.attempt: int(row.data["step"]) for row in rows if row.data}


async def kill_round(kind: str, client: OpenAI, worker: Any, model: str, sessionmaker: Any, interval: int,
                     rng: random.Random) -> dict[str, Any]:  # fmt: skip
    job_id = start_long_job(client, model, examples=16, epochs=2)
    first = await wait_for_checkpoint(sessionmaker, job_id)
    target = rng.randint(first.step_number + 1, first.step_number + 2 * interval)
    seen_step = await wait_for_step(sessionmaker, job_id, target)
    attempt = (await job_row(sessionmaker, job_id)).attempt
    killed_at = time.time()
    if kind == "trainer":
        kill_trainer(worker.pid)
    else:
        worker.kill()
        worker.ensure_running()
    done = wait_status(client, job_id, TERMINAL, timeout=420)
    steps = await steps_by_attempt(sessionmaker, job_id)
    resumed = (await resumed_from(sessionmaker, job_id)).get(attempt + 1)
    next_step = await first_step_after(sessionmaker, job_id, attempt + 1)
    last_reported = max(steps.get(attempt, [0]))
    return {
        "job": job_id,
        "target_step": target,
        "step_seen_before_kill": seen_step,
        # Steps run fast: the trainer is often a few steps past the target when the signal lands.
        "killed_after_step": last_reported,
        "final_status": done.status,
        "attempts": (await job_row(sessionmaker, job_id)).attempt,
        "resumed_from_step": resumed,
        # A killed worker's trainer gets SIGTERM and checkpoints the step it is on: nothing is redone.
        "steps_redone": max(0, last_reported - resumed) if resumed is not None else None,
        "seconds_kill_to_next_attempt_first_step": round(next_step.timestamp() - killed_at, 1) if next_step else None,
        "steps": steps,
        "checkpoint_steps": [c.step_number for c in await checkpoints(sessionmaker, job_id)],
    }


def summarize(kind: str, rounds: list[dict[str, Any]], watch: TrainerWatch, interval: int) -> dict[str, Any]:
    recoveries = [r["seconds_kill_to_next_attempt_first_step"] for r in rounds]
    return {
        "kind": kind,
        "kills": len(rounds),
        "jobs_lost": sum(1 for r in rounds if r["final_status"] != "succeeded"),
        "jobs_trained_twice_concurrently": watch.concurrent_runs(),
        "steps_redone_max": max(r["steps_redone"] for r in rounds),
        "checkpoint_interval": interval,
        "seconds_to_recover_median": statistics.median(recoveries),
        "seconds_to_recover_max": max(recoveries),
        "rounds": [{k: v for k, v in r.items() if k not in ("steps",)} for r in rounds],
    }


@pytest.mark.parametrize("kind", ["trainer", "worker"])
async def test_repeated_kills_never_lose_or_double_a_job(  # type: ignore[no-untyped-def]
    kind, client, gpu_worker, cpu_worker, tiny_model, sessionmaker, settings
) -> None:
    rng = random.Random(f"kill-{kind}")
    interval = settings.checkpoint_every_steps
    rounds = []
    with TrainerWatch() as watch:
        for _ in range(KILLS_PER_KIND):
            gpu_worker.ensure_running()
            rounds.append(await kill_round(kind, client, gpu_worker, tiny_model, sessionmaker, interval, rng))
    summary = summarize(kind, rounds, watch, interval)
    record(f"kill_{kind}_repeated", summary)
    assert summary["jobs_lost"] == 0 and summary["jobs_trained_twice_concurrently"] == 0, summary
    for outcome in rounds:
        assert outcome["resumed_from_step"] is not None and outcome["attempts"] == 2, outcome
        assert 0 <= outcome["steps_redone"] <= interval, outcome
        if kind == "trainer":  # the runner outlived its trainer and recorded every step and checkpoint
            assert_resumed_without_repeats(outcome["steps"], outcome["checkpoint_steps"], interval)
