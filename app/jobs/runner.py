"""The GPU worker's adapter around one training run (DESIGN.md §2 rules 1-2).

It claims the job (one fenced UPDATE), writes the typed config, spawns the
training process (torchrun when several GPUs are visible), heartbeats the
lease, relays progress into events, checkpoints and MLflow, turns cancel and
pause requests into SIGTERM, and records how the run ended. The worker never
imports torch: every job gets a fresh process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from app.catalog.tables import CatalogEntry
from app.core import ids
from app.core.celery_app import TASK_RUN_FINETUNE
from app.core.database import utcnow
from app.core.outbox import enqueue
from app.core.worker_context import WorkerContext
from app.files.tables import File
from app.jobs import events, lifecycle, tracking
from app.jobs.results import finish_success
from app.jobs.tables import Checkpoint, Job, JobEvent
from app.training.config import Hyperparameters, TrainingConfig
from app.training.process import set_parent_death_signal

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_ERROR, EXIT_STOPPED = 0, 1, 3
REPLAYED = frozenset({"step", "eval", "checkpoint"})  # trainer messages a later attempt records from the journal
STOP_GRACE_SECONDS = 120


@dataclass
class RunState:
    job: Job
    attempt: int
    work_dir: Path
    stop_sent: bool = False
    fenced_out: bool = False
    cancel: bool = False
    pause: bool = False
    done: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    last_step: int = 0
    metrics: list[tuple[str, float, int]] = field(default_factory=list)
    run_id: str | None = None
    last_flush: float = 0.0
    last_train: dict[str, Any] = field(default_factory=dict)


def visible_gpu_count() -> int:
    """GPUs this worker may use, read through NVML so CUDA is never initialised here."""
    selected = os.environ.get("CUDA_VISIBLE_DEVICES")
    if selected is not None:
        return len([part for part in selected.split(",") if part.strip() not in ("", "-1")])
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        return 0


def training_command(config_path: Path, gpus: int, journal: Path | None = None) -> list[str]:
    module = ["-m", "app.training", "--config", str(config_path), "--progress-fd", "1"]
    if journal is not None:
        module += ["--progress-journal", str(journal)]
    if gpus > 1:
        torchrun = str(Path(sys.executable).parent / "torchrun")
        return [torchrun, f"--nproc_per_node={gpus}", "--standalone", *module]
    return [sys.executable, *module]


def work_dir_of(context: WorkerContext, job_id: str) -> Path:
    return context.settings.models_path / job_id


def journal_of(work_dir: Path, attempt: int) -> Path:
    """Where the trainer of that attempt appends every event before sending it to the worker."""
    return work_dir / f"progress-attempt-{attempt}.jsonl"


def build_config(context: WorkerContext, job: Job, entry: CatalogEntry, files: dict[str, File]) -> TrainingConfig:
    from app.files.service import storage_path

    resolved = dict(job.resolved_hyperparameters or {})
    fine_tune_type = resolved.pop("fine_tune_type", "lora")
    quantization = resolved.pop("quantization", None)
    work = work_dir_of(context, job.id)
    return TrainingConfig(
        job_id=job.id,
        base_model=entry.source,
        revision=entry.revision,
        chat_template=entry.chat_template,
        training_file=storage_path(context.settings, files[job.training_file]),
        validation_file=storage_path(context.settings, files[job.validation_file]) if job.validation_file else None,
        method=job.method,  # type: ignore[arg-type]
        fine_tune_type=fine_tune_type,
        quantization=quantization,
        hyperparameters=Hyperparameters(**{k: v for k, v in resolved.items() if k in Hyperparameters.model_fields}),
        seed=job.seed,
        output_dir=work / "output",
        checkpoint_dir=work / "checkpoints",
        checkpoint_every_steps=context.settings.checkpoint_every_steps,
        keep_checkpoints=context.settings.keep_checkpoints,
        truncate_long_examples=context.settings.truncate_long_examples,
    )


async def run_job(context: WorkerContext, job_id: str) -> str:
    """Claim and run one job; returns what happened (for logs and tests)."""
    settings = context.settings
    worker_name = f"{socket.gethostname()}:{os.getpid()}"
    async with context.sessionmaker() as session:
        attempt = await lifecycle.claim(session, job_id, worker_name, settings.job_lease_seconds)
        await session.commit()
    if attempt is None:
        logger.info("job %s not claimable (duplicate delivery or no longer queued)", job_id)
        return "not_claimed"

    async def load() -> tuple[Job, CatalogEntry | None, dict[str, File]]:
        async with context.sessionmaker() as session:
            job = await session.get(Job, job_id)
            assert job is not None
            entry = await session.get(CatalogEntry, job.model)
            file_ids = [job.training_file] + ([job.validation_file] if job.validation_file else [])
            files = {row.id: row for row in (await session.scalars(select(File).where(File.id.in_(file_ids)))).all()}
            return job, entry, files

    job, entry, files = await context.write(load, f"job {job_id}: load")
    if attempt > lifecycle.attempt_limit(job, settings.max_job_attempts):
        await _fail(
            context, job, attempt, "max_attempts_exceeded", f"The job did not finish after {attempt - 1} attempts."
        )
        return "failed"
    assert entry is not None
    state = RunState(job=job, attempt=attempt, work_dir=work_dir_of(context, job_id))
    state.work_dir.mkdir(parents=True, exist_ok=True)
    config = build_config(context, job, entry, files)
    config_path = config.write(state.work_dir / f"config-attempt-{attempt}.json")
    run_id = await tracking.ensure_run(context, job, attempt)
    state.run_id = run_id
    await context.write(lambda: replay_unrelayed_progress(context, state), f"job {job_id}: replay journals")
    await context.write(lambda: record_checkpoints_on_disk(context, state), f"job {job_id}: checkpoints on disk")
    resuming = any((state.work_dir / "checkpoints").glob("checkpoint-*"))
    await _event(
        context,
        state,
        f"Training started (attempt {attempt})" + (", resuming from the latest checkpoint" if resuming else ""),
        data={"attempt": attempt, "mlflow_run_id": run_id},
    )
    return await _supervise(context, state, config_path)


async def replay_unrelayed_progress(context: WorkerContext, state: RunState) -> None:
    """A worker killed while its trainer ran loses what was still in the pipe: replay it from the journals.

    Each earlier attempt's journal holds every event its trainer sent; steps, evaluations and
    checkpoints with no event yet are recorded now, under the attempt that produced them.
    """
    job_id = state.job.id
    for attempt in range(1, state.attempt):
        journal = journal_of(state.work_dir, attempt)
        if not journal.exists():
            continue
        async with context.sessionmaker() as session:
            known = {
                _recorded_kind(event.data)
                for event in (
                    await session.scalars(
                        select(JobEvent).where(
                            JobEvent.job_id == job_id, JobEvent.attempt == attempt, JobEvent.data.is_not(None)
                        )
                    )
                ).all()
            }
            replayed: list[JobEvent] = []
            metrics = RunState(job=state.job, attempt=attempt, work_dir=state.work_dir, run_id=state.run_id)
            for message in _read_journal(journal):
                if message.get("event") not in REPLAYED:
                    continue
                text, data, event_type = _describe(message)
                if _recorded_kind(data) in known:
                    continue
                known.add(_recorded_kind(data))
                replayed.append(events.add_event(session, job_id, text, "info", data, event_type, attempt=attempt))
                tracking.queue_metrics(metrics, data, int(data["step"]))
            if replayed:
                events.add_event(
                    session,
                    job_id,
                    f"Recorded {len(replayed)} progress events of attempt {attempt} that its worker "
                    "did not relay before it stopped",
                    level="warn",
                    attempt=attempt,
                )
            await session.commit()
        for event in replayed:
            await events.publish(context.redis, event)
        await tracking.flush_metrics(context, metrics)


def _read_journal(path: Path) -> list[dict[str, Any]]:
    messages = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            message = json.loads(line)
        except ValueError:  # the last line of a trainer killed mid-write
            continue
        if isinstance(message, dict):
            messages.append(message)
    return messages


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


def _describe(message: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
    """The event a trainer message of a REPLAYED kind becomes: (text, data, type)."""
    kind = message.get("event")
    if kind == "step":
        step = int(message["step"])
        data = {
            "step": step,
            "total_steps": int(message.get("total_steps") or 0),
            "epoch": message.get("epoch"),
            "train_loss": message.get("train_loss"),
            "train_mean_token_accuracy": message.get("token_accuracy"),
            "learning_rate": message.get("learning_rate"),
            "tokens_per_second": message.get("tokens_per_second"),
            "eta_seconds": message.get("eta_seconds"),
            "trained_tokens": message.get("trained_tokens"),
        }
        return f"Step {step}/{data['total_steps']}: training loss={_fmt(message.get('train_loss'))}", data, "metrics"
    if kind == "eval":
        step = int(message["step"])
        data = {
            "step": step,
            "valid_loss": message.get("valid_loss"),
            "valid_mean_token_accuracy": message.get("valid_mean_token_accuracy"),
        }
        return f"Step {step}: validation loss={_fmt(message.get('valid_loss'))}", data, "metrics"
    if kind == "checkpoint":
        step = int(message["step"])
        return f"Checkpoint saved at step {step}", {"step": step, "path_name": Path(message["path"]).name}, "message"
    raise ValueError(f"no event describes a {kind!r} message")


async def record_checkpoints_on_disk(context: WorkerContext, state: RunState) -> None:
    """A worker killed between the trainer's save and its relay leaves a checkpoint with no row: add it.

    The new attempt resumes from the newest complete checkpoint on disk, so its row must exist.
    """
    from app.training.checkpoints import CHECKPOINT_PATTERN, METRICS_FILE

    root = state.work_dir / "checkpoints"
    if not root.is_dir():
        return
    async with context.sessionmaker() as session:
        known = set((await session.scalars(select(Checkpoint.path).where(Checkpoint.job_id == state.job.id))).all())
        for path in sorted(root.iterdir()):
            match = CHECKPOINT_PATTERN.match(path.name)
            if not match or str(path) in known or not (path / "trainer_state.json").exists():
                continue
            metrics_file = path / METRICS_FILE
            metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
            session.add(
                Checkpoint(
                    id=ids.checkpoint_id(),
                    job_id=state.job.id,
                    attempt=state.attempt - 1,
                    step_number=int(match.group(1)),
                    path=str(path),
                    metrics=metrics,
                )
            )
        await session.commit()


async def _supervise(context: WorkerContext, state: RunState, config_path: Path) -> str:
    settings = context.settings
    log_dir = settings.logs_path / state.job.id
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with (log_dir / f"attempt-{state.attempt}.log").open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            *training_command(config_path, visible_gpu_count(), journal_of(state.work_dir, state.attempt)),
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            stdin=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            # torchrun too must die with this worker, or a re-queued attempt would race a zombie.
            preexec_fn=set_parent_death_signal,
        )
        assert process.stdout is not None
        reader = asyncio.create_task(_relay(context, state, process.stdout))
        control = asyncio.create_task(_control_loop(context, state, process))
        return_code = await process.wait()
        await reader
        control.cancel()
    elapsed = time.monotonic() - started
    await tracking.flush_metrics(context, state)
    return await _conclude(context, state, return_code, elapsed)


async def _relay(context: WorkerContext, state: RunState, stream: asyncio.StreamReader) -> None:
    while line := await stream.readline():
        try:
            message = json.loads(line)
        except ValueError:
            logger.warning("job %s: ignoring a non-JSON line from the trainer: %r", state.job.id, line[:200])
            continue
        try:
            await _on_progress(context, state, message)
        except Exception:
            logger.exception("job %s: could not record progress %s", state.job.id, message.get("event"))


async def _control_loop(context: WorkerContext, state: RunState, process: asyncio.subprocess.Process) -> None:
    """Heartbeat the lease; SIGTERM the trainer on cancel, pause, or a lost lease."""
    settings = context.settings
    last_heartbeat = 0.0
    while process.returncode is None:
        now = time.monotonic()
        try:
            async with context.sessionmaker() as session:
                flags = await lifecycle.heartbeat(session, state.job.id, state.attempt, settings.job_lease_seconds)
                await session.commit()
            last_heartbeat = now
        except Exception:
            logger.exception("job %s: heartbeat failed", state.job.id)
            flags = (False, False) if now - last_heartbeat < settings.job_lease_seconds else None
        if flags is None:
            state.fenced_out = True
        else:
            state.cancel, state.pause = flags
        if (state.fenced_out or state.cancel or state.pause) and not state.stop_sent:
            state.stop_sent = True
            process.send_signal(signal.SIGTERM)
        await asyncio.sleep(settings.job_control_poll_seconds)


async def _on_progress(context: WorkerContext, state: RunState, message: dict[str, Any]) -> None:
    kind = message.get("event")
    if state.fenced_out:
        return
    if kind == "started":
        await _update(context, state, total_steps=message.get("total_steps"))
        resumed = message.get("resumed_from_step")
        if resumed:
            await _event(context, state, f"Resumed from checkpoint at step {resumed}", data={"step": resumed})
    elif kind == "step":
        await _on_step(context, state, message)
    elif kind == "eval":
        text, data, event_type = _describe(message)
        tracking.queue_metrics(state, data, data["step"])
        await _event(context, state, text, data=data, event_type=event_type)
    elif kind == "checkpoint":
        await _on_checkpoint(context, state, message)
    elif kind == "checkpoint_pruned":

        async def mark_deleted() -> None:
            async with context.sessionmaker() as session:
                await session.execute(
                    update(Checkpoint)
                    .where(Checkpoint.job_id == state.job.id, Checkpoint.path == message["path"])
                    .values(deleted=True)
                )
                await session.commit()

        await context.write(mark_deleted, f"job {state.job.id}: checkpoint pruned")
    elif kind == "message":
        await _event(context, state, str(message.get("message", "")), level=message.get("level", "info"))
    elif kind == "done":
        state.done = message
    elif kind == "error":
        state.error = message


async def _on_step(context: WorkerContext, state: RunState, message: dict[str, Any]) -> None:
    text, data, event_type = _describe(message)
    step = data["step"]
    state.last_step = step
    state.last_train = message
    tracking.queue_metrics(state, data, step)
    eta = message.get("eta_seconds")
    await _update(
        context,
        state,
        current_step=step,
        trained_tokens=message.get("trained_tokens"),
        estimated_finish=utcnow() + _seconds(eta) if eta is not None else None,
    )
    await _event(context, state, text, data=data, event_type=event_type)
    await tracking.maybe_flush(context, state)


async def _on_checkpoint(context: WorkerContext, state: RunState, message: dict[str, Any]) -> None:
    step = int(message["step"])
    metrics = dict(message.get("metrics") or {})

    async def add_row() -> bool:
        async with context.sessionmaker() as session:
            owner = await session.scalar(select(Job.attempt).where(Job.id == state.job.id))
            if owner != state.attempt:
                return False
            path = str(message["path"])
            known = await session.scalar(
                select(Checkpoint.id).where(Checkpoint.job_id == state.job.id, Checkpoint.path == path)
            )
            if known is None:  # a try whose commit reached the server before the connection broke
                session.add(
                    Checkpoint(
                        id=ids.checkpoint_id(),
                        job_id=state.job.id,
                        attempt=state.attempt,
                        step_number=step,
                        path=path,
                        metrics=metrics,
                    )
                )
            await session.commit()
            return True

    if not await context.write(add_row, f"job {state.job.id}: checkpoint at step {step}"):
        return
    text, data, event_type = _describe(message)
    await _event(context, state, text, data=data, event_type=event_type)


async def _conclude(context: WorkerContext, state: RunState, return_code: int, elapsed: float) -> str:
    job = state.job

    async def count_gpu_time() -> None:
        async with context.sessionmaker() as session:
            await session.execute(
                update(Job)
                .where(Job.id == job.id)
                .values(gpu_seconds=Job.gpu_seconds + elapsed * max(1, visible_gpu_count()))
            )
            await session.commit()

    await context.write(count_gpu_time, f"job {job.id}: GPU time")
    if state.fenced_out:
        logger.warning("job %s attempt %s lost its lease; another attempt owns it now", job.id, state.attempt)
        return "fenced_out"
    if return_code == EXIT_OK and state.done is not None:
        await finish_success(context, state)
        return "succeeded"
    await _refresh_flags(context, state)
    # A stop request wins whatever the exit code: the trainer may have been signalled before
    # it could install its handler, and a cancelled job must never be re-queued.
    if return_code != EXIT_OK and (state.cancel or state.pause):
        status = "cancelled" if state.cancel else "paused"
        values: dict[str, Any] = {"status": status, "lease_until": None}
        if status == "cancelled":
            values["finished_at"] = utcnow()
        await _update(context, state, **values)
        await _event(
            context,
            state,
            "Job cancelled"
            if state.cancel
            else f"Job paused at step {state.last_step}; resume continues from its checkpoint",
        )
        await events.publish_status(context.redis, job.id, status)
        return status
    if state.error is not None:
        code = str(state.error.get("code") or "training_error")
        if code in ("out_of_memory", "invalid_config", "missing_chat_template") or return_code == EXIT_ERROR:
            await _fail(context, job, state.attempt, code, str(state.error.get("message", "")))
            return "failed"
    return await _retry_or_fail(context, state, return_code)


async def _refresh_flags(context: WorkerContext, state: RunState) -> None:
    """Read cancel/pause once more: the trainer may have ended between two control polls."""

    async def read() -> Job | None:
        async with context.sessionmaker() as session:
            return await session.get(Job, state.job.id)

    job = await context.write(read, f"job {state.job.id}: stop flags")
    if job is not None and job.attempt == state.attempt:
        state.cancel = state.cancel or job.cancel_requested
        state.pause = state.pause or job.pause_requested


async def _retry_or_fail(context: WorkerContext, state: RunState, return_code: int) -> str:
    """The trainer died without saying why (killed, crashed): try again from the last checkpoint."""
    job = state.job
    if state.attempt >= lifecycle.attempt_limit(job, context.settings.max_job_attempts):
        await _fail(
            context,
            job,
            state.attempt,
            "max_attempts_exceeded",
            f"The training process ended with code {return_code} on attempt {state.attempt}, the last allowed.",
        )
        return "failed"

    async def requeue() -> None:
        async with context.sessionmaker() as session:
            requeued = await lifecycle.update_fenced(
                session, job.id, state.attempt, status="queued", lease_until=None, enqueued_at=utcnow()
            )
            if requeued:
                events.add_event(
                    session,
                    job.id,
                    f"Training process ended unexpectedly (code {return_code}); "
                    "re-queued to resume from the latest checkpoint",
                    level="warn",
                    attempt=state.attempt,
                )
                enqueue(session, None, TASK_RUN_FINETUNE, [job.id], priority=job.priority)
            await session.commit()

    await context.write(requeue, f"job {job.id}: re-queue")
    from app.core.outbox import relay

    try:
        await relay(context.sessionmaker)
    except Exception:  # the message is in the outbox: the reconciler publishes it
        logger.exception("job %s: re-queue message not published now; the reconciler will", job.id)
    return "requeued"


async def _fail(context: WorkerContext, job: Job, attempt: int, code: str, message: str) -> None:
    async def record() -> JobEvent | None:
        async with context.sessionmaker() as session:
            done = await lifecycle.update_fenced(
                session,
                job.id,
                attempt,
                status="failed",
                finished_at=utcnow(),
                lease_until=None,
                error={"code": code, "message": message, "param": None},
            )
            if not done:
                return None
            event = events.add_event(session, job.id, f"Job failed: {message}", level="error", attempt=attempt)
            await session.commit()
            return event

    event = await context.write(record, f"job {job.id}: failure")
    if event is not None:
        await events.publish(context.redis, event)
        await events.publish_status(context.redis, job.id, "failed")
    shutil.rmtree(work_dir_of(context, job.id) / "output", ignore_errors=True)


async def _update(context: WorkerContext, state: RunState, **values: Any) -> None:
    values = {key: value for key, value in values.items() if value is not None or key == "lease_until"}

    async def update_row() -> bool:
        async with context.sessionmaker() as session:
            owned = await lifecycle.update_fenced(session, state.job.id, state.attempt, **values)
            await session.commit()
            return owned

    if not await context.write(update_row, f"job {state.job.id}: update"):
        state.fenced_out = True


async def _event(
    context: WorkerContext,
    state: RunState,
    message: str,
    level: str = "info",
    data: dict[str, Any] | None = None,
    event_type: str = "message",
) -> None:
    async def add() -> JobEvent | None:
        async with context.sessionmaker() as session:
            event = await events.add_fenced_event(
                session, state.job.id, state.attempt, message, level, data, event_type
            )
            await session.commit()
            return event

    event = await context.write(add, f"job {state.job.id}: event")
    if event is None:
        state.fenced_out = True
        return
    await events.publish(context.redis, event)


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "n/a"


def _seconds(value: Any) -> Any:
    from datetime import timedelta

    return timedelta(seconds=float(value))
