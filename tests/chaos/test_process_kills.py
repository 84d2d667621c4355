"""kill -9 of the training process and of the GPU worker at a random step, while the job trains.

`make test` kills once of each kind; the full form (FULL_CHAOS=1) KILLS_PER_KIND times, each on a
fresh job at a random step past a checkpoint and in the first half of the job, so the next
attempt has steps left to train even when the kill lands late: the trainer runs ahead of the
progress the worker has relayed (6 steps once on a loaded CI machine, where a kill at the 26th
of 32 steps found the trainer done and the round tested nothing). Every round is measured: the job ends succeeded,
it never trains twice at once, the next attempt resumes from a checkpoint the killed one saved,
the steps trained twice are those the killed attempt ran past that checkpoint (at most
CHECKPOINT_EVERY_STEPS: a SIGKILL leaves no time to save the step it is on, and a killed
worker's trainer gets SIGKILL too, from the parent-death signal), and how long it took from the
kill to the next attempt's first step. A round whose next attempt reports no step is described
(`what_happened`) rather than left as a missing number.
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
    assert_resumed_from_a_checkpoint,
    checkpoints,
    kill_trainer,
    start_long_job,
    steps_by_attempt,
    wait_for_checkpoint,
    wait_status,
)

pytestmark = [pytest.mark.slow, *([pytest.mark.chaos_full] if full_chaos() else [])]
KILLS_PER_KIND = 5 if full_chaos() else 1
EXAMPLES, EPOCHS = 16, 4  # batch 1, unpacked: one step per example
TOTAL_STEPS = EXAMPLES * EPOCHS


async def resumed_from(sessionmaker: Any, job_id: str) -> dict[int, int]:
    """attempt -> the step its trainer resumed from (the runner's "Resumed from checkpoint" event)."""
    async with sessionmaker() as session:
        rows = (await session.scalars(
            select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.message.like("Resumed from checkpoint%"))
        )).all()  # fmt: skip
    return {row.attempt: int(row.data["step"]) for row in rows if row.data}


async def warnings_of(sessionmaker: Any, job_id: str) -> list[str]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.level != "info").order_by(JobEvent.id)
        )
        return [f"attempt {row.attempt}: {row.message}" for row in rows]


def what_happened(final_status: str, attempts: int, killed_attempt: int, resumed: int | None, stepped: bool) -> str:
    """One word for a round, so a round without a next-attempt step says why instead of crashing the summary."""
    if final_status != "succeeded":
        return f"lost ({final_status})"
    if attempts == killed_attempt:
        return "no next attempt (the kill landed after the job had ended)"
    if stepped:
        extra = attempts - killed_attempt - 1
        return "recovered" if not extra else f"recovered, then {extra} more attempt(s)"
    if resumed is not None and resumed >= TOTAL_STEPS:
        return "next attempt resumed at the last step and trained nothing"
    return "next attempt trained nothing (it lost its claim before training: see warnings)"


async def kill_round(kind: str, client: OpenAI, worker: Any, model: str, sessionmaker: Any, interval: int,
                     rng: random.Random) -> dict[str, Any]:  # fmt: skip
    job_id = start_long_job(client, model, examples=EXAMPLES, epochs=EPOCHS)
    first = await wait_for_checkpoint(sessionmaker, job_id)
    # Past a checkpoint, in the first half: the next attempt has steps to train however late the kill lands.
    latest = TOTAL_STEPS // 2
    target = rng.randint(min(first.step_number + 1, latest), min(first.step_number + 2 * interval, latest))
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
    attempts = (await job_row(sessionmaker, job_id)).attempt
    return {
        "job": job_id,
        "target_step": target,
        "step_seen_before_kill": seen_step,
        # Steps run fast: the trainer is often a few steps past the target when the signal lands.
        "killed_after_step": last_reported,
        "final_status": done.status,
        "attempts": attempts,
        "what_happened": what_happened(done.status, attempts, attempt, resumed, next_step is not None),
        "resumed_from_step": resumed,
        # Trained by the killed attempt and again by the next: those after the checkpoint it resumed from.
        "steps_redone": max(0, last_reported - resumed) if resumed is not None else None,
        "seconds_kill_to_next_attempt_first_step": round(next_step.timestamp() - killed_at, 1) if next_step else None,
        "warnings": await warnings_of(sessionmaker, job_id),
        "steps": steps,
        "checkpoint_steps": [c.step_number for c in await checkpoints(sessionmaker, job_id)],
    }


def summarize(kind: str, rounds: list[dict[str, Any]], watch: TrainerWatch, interval: int) -> dict[str, Any]:
    recoveries = [r["seconds_kill_to_next_attempt_first_step"] for r in rounds]
    measured = [seconds for seconds in recoveries if seconds is not None]
    redone = [r["steps_redone"] for r in rounds if r["steps_redone"] is not None]
    return {
        "kind": kind,
        "kills": len(rounds),
        "jobs_lost": sum(1 for r in rounds if r["final_status"] != "succeeded"),
        "jobs_trained_twice_concurrently": watch.concurrent_runs(),
        "rounds_without_a_next_attempt_step": sum(1 for seconds in recoveries if seconds is None),
        "steps_redone_max": max(redone, default=None),
        "checkpoint_interval": interval,
        "seconds_to_recover_median": statistics.median(measured) if measured else None,
        "seconds_to_recover_max": max(measured, default=None),
        "rounds": [{k: v for k, v in r.items() if k not in ("steps",)} for r in rounds],
    }


@pytest.mark.parametrize("kind", ["trainer", "worker"])
async def test_kills_never_lose_or_double_a_job(  # type: ignore[no-untyped-def]
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
    record(f"kill_{kind}_repeated" if full_chaos() else f"kill_{kind}", summary)
    assert summary["jobs_lost"] == 0 and summary["jobs_trained_twice_concurrently"] == 0, summary
    for outcome in rounds:
        assert outcome["what_happened"] == "recovered", outcome
        assert outcome["resumed_from_step"] in outcome["checkpoint_steps"] and outcome["attempts"] == 2, outcome
        assert 0 <= outcome["steps_redone"] <= interval, outcome
        # Every step and checkpoint is recorded: by the runner that outlived its trainer, or, after a
        # worker kill, from the killed trainer's journal and checkpoint folders by the next attempt.
        assert_resumed_from_a_checkpoint(outcome["steps"], outcome["checkpoint_steps"], interval)
        if kind == "worker":  # recovered by lease expiry and the reconciler, with the worker restarted
            assert outcome["seconds_kill_to_next_attempt_first_step"] < 120, outcome
