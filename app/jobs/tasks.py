"""Celery tasks of the jobs domain. Tasks take ids only and re-read the row (Celery only delivers)."""

from __future__ import annotations

import logging
import socket
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from celery import Task

from app.catalog import repository as catalog
from app.catalog.sources import unavailable
from app.core.celery_app import (
    TASK_COUNT_TOKENS,
    TASK_RECONCILE,
    TASK_RUN_FINETUNE,
    TASK_VALIDATE_JOB,
    celery_app,
)
from app.core.database import utcnow
from app.core.outbox import OutboxMessage, enqueue, relay
from app.core.worker_context import WorkerContext, run_in_context
from app.datasets.codes import TokenizerErrorCode
from app.files import repository as files
from app.files.service import storage_path
from app.files.tasks import overlap_report
from app.jobs import events, queue_state, repository
from app.jobs.estimates import count_request, finish_time, resolve_and_estimate
from app.jobs.events import NewEvent
from app.jobs.tables import Job
from app.training.tokenize_report import token_report

logger = logging.getLogger(__name__)


def count_tokens_now(request: dict[str, Any]) -> dict[str, Any]:
    report = token_report(
        Path(request["path"]),
        request["base_model"],
        request["method"],
        int(request["max_seq_length"]),
        bool(request["truncate"]),
        chat_template=request.get("chat_template"),
        revision=request.get("revision"),
    )
    errors = [{"line": e.line, "code": e.code, "message": e.message} for e in report.errors]
    if not report.truncate and report.n_over_length:
        errors += [
            {
                "line": o.line,
                "code": TokenizerErrorCode.EXAMPLE_TOO_LONG,
                "message": f"{o.n_tokens} tokens, over max_seq_length {report.max_seq_length}",
            }
            for o in report.over_length
        ]
    return {
        "examples": report.n_examples,
        "tokens": report.total_tokens,
        "too_long": [asdict(o) for o in report.over_length],
        "n_too_long": report.n_over_length,
        "errors": errors,
    }


@celery_app.task(name=TASK_COUNT_TOKENS)
def count_tokens(request: dict[str, Any]) -> dict[str, Any]:
    return count_tokens_now(request)


@celery_app.task(name=TASK_VALIDATE_JOB, bind=True, acks_late=True)
def validate_files(self: Task, job_id: str) -> str:
    return run_in_context(lambda context: validate_job(context, job_id))


async def validate_job(context: WorkerContext, job_id: str) -> str:
    """`validating_files` -> `queued` (with resolved hyperparameters and an estimate) or `failed`."""
    async with context.sessionmaker() as session:
        job = await repository.get(session, job_id)
        if job is None or job.status != "validating_files":
            return "skipped"
        entry = await catalog.get(session, job.model)
        rows = await files.by_ids(session, job.file_ids())
    if entry is None:
        return await _fail_validation(
            context, job, "model_not_found", f"Model '{job.model}' left the catalog.", "model"
        )
    if problem := unavailable(entry.id, entry.source, f"the CPU worker on {socket.gethostname()}"):
        return await _fail_validation(context, job, "base_model_unavailable", problem, "model")
    requested = job.hyperparameters
    max_len = int(requested.get("max_seq_length") or entry.max_seq_length)
    truncate = context.settings.truncate_long_examples
    counts: dict[str, dict[str, Any]] = {}
    for param, file_id in (("training_file", job.training_file), ("validation_file", job.validation_file)):
        if file_id is None:
            continue
        row = rows.get(file_id)
        if row is None or row.deleted_at is not None:
            return await _fail_validation(context, job, "file_not_found", f"File '{file_id}' was deleted.", param)
        counts[param] = count_tokens_now(
            count_request(entry, str(storage_path(context.settings, row)), job.method, max_len, truncate)
        )
        if counts[param]["errors"]:
            listed = "; ".join(f"line {e['line']}: {e['message']}" for e in counts[param]["errors"][:20])
            return await _fail_validation(
                context,
                job,
                str(counts[param]["errors"][0]["code"]),
                f"{param} has {len(counts[param]['errors'])} problem(s): {listed}",
                param,
            )
    train = counts["training_file"]
    try:
        resolved, figures = resolve_and_estimate(
            context.settings, job.method, requested, entry, train["examples"], train["tokens"]
        )
    except ValueError as error:
        return await _fail_validation(context, job, "invalid_hyperparameters", str(error), "hyperparameters")
    notes = []
    overlap = await _overlap(context, job)
    if overlap and overlap["count"]:
        shown = ", ".join(f"{pair['validation_line']}~{pair['training_line']}" for pair in overlap["pairs"][:10])
        notes.append(
            f"{overlap['count']} of {overlap['validation_lines']} validation examples are near-duplicates "
            f"of training examples (validation line~training line: {shown}); validation loss will look "
            "better than it is"
        )
    if train["n_too_long"]:
        notes.append(f"{train['n_too_long']} training example(s) exceed max_seq_length {max_len} and will be truncated")
    async with context.sessionmaker() as session:
        locked = await repository.get(session, job_id, for_update=True)
        if locked is None or locked.status != "validating_files":
            return "skipped"
        locked.status = "queued"
        locked.resolved_hyperparameters = resolved
        locked.estimate = {**figures, "training_tokens": train["tokens"], "training_examples": train["examples"]}
        if overlap is not None:
            locked.estimate["validation_overlap"] = {**overlap, "pairs": overlap["pairs"][:50]}
        locked.total_steps = figures["total_steps"]
        locked.estimated_finish = finish_time(figures)
        locked.enqueued_at = utcnow()
        validated = NewEvent(
            f"Files validated: {train['examples']} training examples, "
            f"{train['tokens']} tokens; about {figures['total_steps']} steps",
            data={"estimate": locked.estimate},
        )
        said = [validated, *(NewEvent(note, level="warn") for note in notes), NewEvent("Job queued for a GPU worker")]
        added = [repository.add_event(session, job_id, event) for event in said]
        message = enqueue(session, None, TASK_RUN_FINETUNE, [job_id], priority=locked.priority)
        await session.commit()
    await relay(context.sessionmaker, [message.id])
    for event in added:
        await events.publish(context.redis, event)
    return "queued"


async def _overlap(context: WorkerContext, job: Job) -> dict[str, Any] | None:
    """Train/validation overlap from the dataset vectors; a vector-store outage only loses the warning."""
    if not job.validation_file:
        return None
    try:
        return await overlap_report(context, job.training_file, job.validation_file)
    except Exception:
        logger.exception("job %s: train/validation overlap could not be computed", job.id)
        return None


async def _fail_validation(context: WorkerContext, job: Job, code: str, message: str, param: str) -> str:
    async with context.sessionmaker() as session:
        locked = await repository.get(session, job.id, for_update=True)
        if locked is None or locked.status != "validating_files":
            return "skipped"
        locked.status = "failed"
        locked.finished_at = utcnow()
        locked.error = {"code": code, "message": message, "param": param}
        event = repository.add_event(session, job.id, NewEvent(f"Validation failed: {message}", level="error"))
        await session.commit()
    await events.publish(context.redis, event)
    await events.publish_status(context.redis, job.id, "failed")
    return "failed"


@celery_app.task(name=TASK_RUN_FINETUNE, bind=True, acks_late=True)
def run_finetune(self: Task, job_id: str) -> str:
    # Here, not at the top: the GPU worker package brings MLflow (seconds of import), which the
    # CPU worker, importing this module for its own tasks, never needs.
    from app.jobs.worker import run_job

    return run_in_context(lambda context: run_job(context, job_id))


@celery_app.task(name=TASK_RECONCILE)
def reconcile() -> dict[str, int]:
    return run_in_context(reconcile_once)


async def reconcile_once(context: WorkerContext) -> dict[str, int]:
    """Re-publish lost messages, re-queue jobs whose worker died, fail jobs out of attempts.

    It publishes the outbox rows older than OUTBOX_RELAY_AFTER_SECONDS and the ones it adds itself,
    never a younger row of someone else (whose own after-commit publish is still on its way).
    """
    settings = context.settings
    report = {"relayed": 0, "requeued": 0, "failed": 0, "stopped": 0, "republished": 0}
    report["relayed"] = await relay(
        context.sessionmaker, older_than=timedelta(seconds=settings.outbox_relay_after_seconds)
    )
    added: list[OutboxMessage] = []
    async with context.sessionmaker() as session:
        for job in await repository.expired_leases(session):
            if job.cancel_requested or job.pause_requested:
                # It died while stopping as asked: the stop stands (the user was answered so), and a
                # resume continues from the latest checkpoint that was completely written.
                repository.add_event(session, job.id, _settle_stop(job), attempt=job.attempt)
                report["stopped"] += 1
                continue
            if job.attempt >= job.last_allowed_attempt(settings.max_job_attempts):
                job.status, job.finished_at, job.lease_until = "failed", utcnow(), None
                job.error = {
                    "code": "max_attempts_exceeded",
                    "param": None,
                    "message": f"The worker running this job stopped answering on attempt {job.attempt}, "
                    "the last allowed.",
                }
                failed = NewEvent(f"Job failed: {job.error['message']}", level="error")
                repository.add_event(session, job.id, failed, attempt=job.attempt)
                report["failed"] += 1
                continue
            job.status, job.lease_until, job.enqueued_at = "queued", None, utcnow()
            lost = NewEvent(
                f"Worker lost (lease expired on attempt {job.attempt}); re-queued to resume from the latest checkpoint",
                level="warn",
            )
            repository.add_event(session, job.id, lost, attempt=job.attempt)
            added.append(enqueue(session, None, TASK_RUN_FINETUNE, [job.id], priority=job.priority))
            report["requeued"] += 1
        await session.commit()
    republished = await _republish_orphans(context)
    report["republished"] = len(republished)
    added += republished
    if added:
        await relay(context.sessionmaker, [message.id for message in added])
    return report


def _settle_stop(job: Job) -> NewEvent:
    """The row of a job whose worker was lost while it carried out a cancel or a pause."""
    job.lease_until = None
    if job.cancel_requested:
        job.status, job.finished_at = "cancelled", utcnow()
        return NewEvent(f"Job cancelled (its worker stopped answering on attempt {job.attempt} while stopping)")
    job.status = "paused"
    return NewEvent(
        f"Job paused (its worker stopped answering on attempt {job.attempt} while pausing); "
        "resume continues from the latest checkpoint"
    )


async def _republish_orphans(context: WorkerContext) -> list[OutboxMessage]:
    """A queued job with no message in the broker (lost on a broker restart) gets a new one; the new messages."""
    grace = timedelta(seconds=context.settings.republish_after_seconds)
    async with context.sessionmaker() as session:
        candidates = await repository.waiting_since(session, older_than=grace)
        if not candidates:
            return []
        waiting = await queue_state.job_ids_in_broker(context.redis)
        republished = []
        for job in candidates:
            if job.id in waiting:
                continue
            task = TASK_RUN_FINETUNE if job.status == "queued" else TASK_VALIDATE_JOB
            priority = job.priority if job.status == "queued" else None
            republished.append(enqueue(session, None, task, [job.id], priority=priority))
            job.enqueued_at = utcnow()
        await session.commit()
    return republished
