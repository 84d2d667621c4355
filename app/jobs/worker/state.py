"""What the worker knows about one attempt while it runs, and the trainer's messages as it reads them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from app.core.worker_context import WorkerContext
from app.jobs.tables import Job
from app.training.callbacks import MESSAGE_KINDS, RunFailed, TrainerMessage, TrainingOutputs


@dataclass
class RunState:
    job: Job
    attempt: int
    work_dir: Path
    stop_sent: bool = False
    fenced_out: bool = False  # another attempt owns the job now: write nothing more
    cancel: bool = False
    pause: bool = False
    shutdown: bool = False  # the worker is shutting down: the trainer was stopped to hand the job back
    done: TrainingOutputs | None = None
    error: RunFailed | None = None
    last_step: int = 0
    metrics: list[tuple[str, float, int]] = field(default_factory=list)  # (key, value, step) not yet in MLflow
    run_id: str | None = None
    last_flush: float = 0.0


def decode(line: bytes | str) -> TrainerMessage | None:
    """One line of the trainer's stream or journal as its typed message; None for anything else.

    A journal's last line may be cut short (the trainer was killed mid-write): that is None too.
    """
    try:
        fields = json.loads(line)
    except ValueError:
        return None
    if not isinstance(fields, dict):
        return None
    kind = fields.pop("event", None)
    message_type = MESSAGE_KINDS.get(kind) if isinstance(kind, str) else None
    if message_type is None:
        return None
    try:
        return message_type(**fields)
    except TypeError:  # fields missing or unknown: not a message this worker understands
        return None


def work_dir_of(context: WorkerContext, job_id: str) -> Path:
    return context.settings.models_path / job_id


def rank_errors_of(work_dir: Path, attempt: int) -> Path:
    """Where each failing rank of that attempt writes its own error (`rank-<rank>.json`)."""
    return work_dir / f"rank-errors-attempt-{attempt}"


def first_failure(reported: RunFailed | None, rank_errors: Path) -> RunFailed | None:
    """The failure that came first: a rank whose peer died fails later, and only because of the first."""
    failures = [reported] if reported is not None else []
    for path in sorted(rank_errors.glob("rank-*.json")):
        message = decode(path.read_text(encoding="utf-8"))
        if isinstance(message, RunFailed):
            failures.append(message)
    if not failures:
        return None
    return min(failures, key=lambda failure: failure.at if failure.at is not None else float("inf"))


def journal_of(work_dir: Path, attempt: int) -> Path:
    """Where the trainer of that attempt appends every event before sending it to the worker."""
    return work_dir / f"progress-attempt-{attempt}.jsonl"
