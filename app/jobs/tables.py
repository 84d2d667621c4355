from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, utcnow


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    model: Mapped[str] = mapped_column(ForeignKey("base_models.id"))
    training_file: Mapped[str] = mapped_column(ForeignKey("files.id"))
    validation_file: Mapped[str | None] = mapped_column(ForeignKey("files.id"), default=None)
    method: Mapped[str] = mapped_column(String(16))  # supervised | dpo
    # Hyperparameters as the user sent them ("auto" kept), and as resolved before training.
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    resolved_hyperparameters: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    suffix: Mapped[str | None] = mapped_column(String(64), default=None)
    seed: Mapped[int] = mapped_column(Integer)
    metadata_: Mapped[dict[str, str] | None] = mapped_column("metadata", JSONB, default=None)

    # validating_files | queued | running | succeeded | failed | cancelled | paused
    status: Mapped[str] = mapped_column(String(24), index=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    # The last attempt that may run; null means MAX_JOB_ATTEMPTS. An admin retry raises it.
    attempts_allowed: Mapped[int | None] = mapped_column(Integer, default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    worker: Mapped[str | None] = mapped_column(String(200), default=None)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    pause_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    priority: Mapped[int] = mapped_column(Integer, default=5)  # 0 (first) .. 9 (last), as Celery's Redis transport
    enqueued_at: Mapped[datetime | None] = mapped_column(default=None)

    trained_tokens: Mapped[int | None] = mapped_column(BigInteger, default=None)
    total_steps: Mapped[int | None] = mapped_column(Integer, default=None)
    current_step: Mapped[int] = mapped_column(Integer, default=0)
    estimate: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    estimated_finish: Mapped[datetime | None] = mapped_column(default=None)
    fine_tuned_model: Mapped[str | None] = mapped_column(String(300), default=None)
    result_files: Mapped[list[str]] = mapped_column(JSONB, default=list)
    output_dir: Mapped[str | None] = mapped_column(Text, default=None)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    # The automatic comparison of the fine-tuned model with its base on the validation file (app/evals).
    comparison: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True), default=None)
    gpu_seconds: Mapped[float] = mapped_column(default=0.0)

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)

    def file_ids(self) -> list[str]:
        """The training file, then the validation file when there is one."""
        return [self.training_file] + ([self.validation_file] if self.validation_file else [])

    def last_allowed_attempt(self, max_job_attempts: int) -> int:
        """The last attempt that may run: `attempts_allowed`, or the platform's `MAX_JOB_ATTEMPTS`."""
        return self.attempts_allowed or max_job_attempts


class JobEvent(Base):
    """Append-only: rows are inserted, never updated or deleted (except with their job)."""

    __tablename__ = "job_events"
    __table_args__ = (Index("ix_job_events_job_id_id", "job_id", "id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    level: Mapped[str] = mapped_column(String(8), default="info")  # info | warn | error
    type: Mapped[str] = mapped_column(String(16), default="message")  # message | metrics
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Checkpoint(Base):
    __tablename__ = "checkpoints"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    step_number: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # Checkpoints pruned from disk (keep-last-K) stay listed, marked as gone.
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
