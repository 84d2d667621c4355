"""What the trainer reports, recorded: steps, evaluations and checkpoints become job rows, events and metrics.

Also what a killed worker left unrecorded: the steps, evaluations and checkpoints of earlier
attempts still in their journals, and checkpoints on disk with no row.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from app.core.database import utcnow
from app.core.worker_context import WorkerContext
from app.jobs import events, repository
from app.jobs.events import NewEvent
from app.jobs.tables import JobEvent
from app.jobs.worker import mlflow_run, record
from app.jobs.worker.state import RunState, decode, journal_of
from app.training.callbacks import (
    CheckpointInfo,
    CheckpointPruned,
    EvalResult,
    LogMessage,
    RunFailed,
    Started,
    StepProgress,
    TrainerMessage,
    TrainingOutputs,
)
from app.training.checkpoints import CHECKPOINT_PATTERN, METRICS_FILE

logger = logging.getLogger(__name__)

# What a later attempt records from an earlier attempt's journal.
Replayed = StepProgress | EvalResult | CheckpointInfo


async def on_message(context: WorkerContext, state: RunState, message: TrainerMessage) -> None:
    if state.fenced_out:
        return
    match message:
        case Started(total_steps=total_steps, resumed_from_step=resumed):
            await record.update_job(context, state, total_steps=total_steps)
            if resumed:
                await record.add_event(
                    context, state, NewEvent(f"Resumed from checkpoint at step {resumed}", data={"step": resumed})
                )
        case StepProgress():
            await _on_step(context, state, message)
        case EvalResult():
            event = describe(message)
            mlflow_run.queue_metrics(state, event.data or {}, message.step)
            await record.add_event(context, state, event)
        case CheckpointInfo():
            await _on_checkpoint(context, state, message)
        case CheckpointPruned(path=path):
            await context.write(lambda: _mark_pruned(context, state, path), f"job {state.job.id}: checkpoint pruned")
        case LogMessage(level=level, message=text):
            await record.add_event(context, state, NewEvent(str(text), level=level))
        case TrainingOutputs():
            state.done = message
        case RunFailed():
            state.error = message


def describe(message: Replayed) -> NewEvent:
    """The event a step, an evaluation or a checkpoint becomes."""
    if isinstance(message, StepProgress):
        data = {
            "step": message.step,
            "total_steps": int(message.total_steps or 0),
            "epoch": message.epoch,
            "train_loss": message.train_loss,
            "train_mean_token_accuracy": message.token_accuracy,
            "learning_rate": message.learning_rate,
            "tokens_per_second": message.tokens_per_second,
            "eta_seconds": message.eta_seconds,
            "trained_tokens": message.trained_tokens,
        }
        text = f"Step {message.step}/{data['total_steps']}: training loss={_fmt(message.train_loss)}"
        return NewEvent(text, data=data, type="metrics")
    if isinstance(message, EvalResult):
        data = {
            "step": message.step,
            "valid_loss": message.valid_loss,
            "valid_mean_token_accuracy": message.valid_mean_token_accuracy,
        }
        return NewEvent(f"Step {message.step}: validation loss={_fmt(message.valid_loss)}", data=data, type="metrics")
    step = int(message.step)
    return NewEvent(f"Checkpoint saved at step {step}", data={"step": step, "path_name": Path(message.path).name})


async def _on_step(context: WorkerContext, state: RunState, message: StepProgress) -> None:
    event = describe(message)
    state.last_step = message.step
    mlflow_run.queue_metrics(state, event.data or {}, message.step)
    eta = message.eta_seconds
    await record.update_job(
        context,
        state,
        current_step=message.step,
        trained_tokens=message.trained_tokens,
        estimated_finish=utcnow() + timedelta(seconds=float(eta)) if eta is not None else None,
    )
    await record.add_event(context, state, event)
    await mlflow_run.maybe_flush(context, state)


async def _on_checkpoint(context: WorkerContext, state: RunState, message: CheckpointInfo) -> None:
    step, path = int(message.step), str(message.path)

    async def add_row() -> bool:
        async with context.sessionmaker() as session:
            if await repository.owning_attempt(session, state.job.id) != state.attempt:
                return False
            # A try whose commit reached the server before the connection broke has added it already.
            if path not in await repository.checkpoint_paths(session, state.job.id):
                repository.add_checkpoint(session, state.job.id, state.attempt, step, path, dict(message.metrics))
            await session.commit()
            return True

    if await context.write(add_row, f"job {state.job.id}: checkpoint at step {step}"):
        await record.add_event(context, state, describe(message))


async def _mark_pruned(context: WorkerContext, state: RunState, path: str) -> None:
    async with context.sessionmaker() as session:
        await repository.mark_checkpoint_deleted(session, state.job.id, path)
        await session.commit()


async def replay_unrelayed_progress(context: WorkerContext, state: RunState) -> None:
    """A worker killed while its trainer ran loses what was still in the pipe: replay it from the journals.

    Each earlier attempt's journal holds every event its trainer sent; steps, evaluations and
    checkpoints with no event yet are recorded now, under the attempt that produced them.
    """
    for attempt in range(1, state.attempt):
        journal = journal_of(state.work_dir, attempt)
        if not journal.exists():
            continue
        replayed = await _replay_journal(context, state, attempt, journal)
        for event in replayed:
            await events.publish(context.redis, event)
        metrics = RunState(job=state.job, attempt=attempt, work_dir=state.work_dir, run_id=state.run_id)
        for event in replayed:
            mlflow_run.queue_metrics(metrics, event.data or {}, int((event.data or {})["step"]))
        await mlflow_run.flush_metrics(context, metrics)


async def _replay_journal(context: WorkerContext, state: RunState, attempt: int, journal: Path) -> list[JobEvent]:
    """Record the journal's steps, evaluations and checkpoints that have no event yet; the events added."""
    job_id = state.job.id
    async with context.sessionmaker() as session:
        known = {_recorded_kind(event.data) for event in await repository.events_with_data(session, job_id, attempt)}
        replayed: list[JobEvent] = []
        for message in _read_journal(journal):
            event = describe(message)
            if _recorded_kind(event.data) in known:
                continue
            known.add(_recorded_kind(event.data))
            replayed.append(repository.add_event(session, job_id, event, attempt=attempt))
        if replayed:
            note = NewEvent(
                f"Recorded {len(replayed)} progress events of attempt {attempt} that its worker "
                "did not relay before it stopped",
                level="warn",
            )
            repository.add_event(session, job_id, note, attempt=attempt)
        await session.commit()
    return replayed


def _read_journal(path: Path) -> list[Replayed]:
    messages = (decode(line) for line in path.read_text(encoding="utf-8", errors="replace").splitlines())
    return [message for message in messages if isinstance(message, StepProgress | EvalResult | CheckpointInfo)]


def _recorded_kind(data: dict[str, Any] | None) -> tuple[str, Any] | None:
    """What an event's data says it records: a training step, an evaluation or a checkpoint, and at which step."""
    if not data or "step" not in data:
        return None
    if "train_loss" in data:
        return ("step", data["step"])
    if "valid_loss" in data:
        return ("eval", data["step"])
    if "path_name" in data:
        return ("checkpoint", data["step"])
    return None


async def record_checkpoints_on_disk(context: WorkerContext, state: RunState) -> None:
    """A worker killed between the trainer's save and its relay leaves a checkpoint with no row: add it.

    The new attempt resumes from the newest complete checkpoint on disk, so its row must exist.
    """
    root = state.work_dir / "checkpoints"
    if not root.is_dir():
        return
    async with context.sessionmaker() as session:
        known = await repository.checkpoint_paths(session, state.job.id)
        for path in sorted(root.iterdir()):
            match = CHECKPOINT_PATTERN.match(path.name)
            if not match or str(path) in known or not (path / "trainer_state.json").exists():
                continue
            metrics_file = path / METRICS_FILE
            metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
            repository.add_checkpoint(session, state.job.id, state.attempt - 1, int(match.group(1)), str(path), metrics)
        await session.commit()


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "n/a"
