"""Evaluation rows: an eval (its data source config and testing criteria), its runs, and each run's output items."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, utcnow

# JSON, not JSONB: what a caller sent (criteria, schemas, items) is shown back with its keys in its own order,
# and nothing queries inside these documents. Python None is stored as SQL NULL, not JSON `null`.
Document = JSON(none_as_null=True)


class Eval(Base):
    __tablename__ = "evals"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(256))
    data_source_config: Mapped[dict[str, Any]] = mapped_column(Document)
    testing_criteria: Mapped[list[dict[str, Any]]] = mapped_column(Document)
    metadata_: Mapped[dict[str, str] | None] = mapped_column("metadata", Document, default=None)
    # The fine-tuning job whose automatic comparison with its base model made this eval, if one did.
    fine_tuning_job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


class EvalRun(Base):
    """One run of an eval: a job of the `evals` queue, claimed with a fenced attempt like a fine-tuning job."""

    __tablename__ = "eval_runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    eval_id: Mapped[str] = mapped_column(ForeignKey("evals.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(256))
    model: Mapped[str | None] = mapped_column(String(300), default=None)  # the sampled model (completions)
    data_source: Mapped[dict[str, Any]] = mapped_column(Document)
    metadata_: Mapped[dict[str, str] | None] = mapped_column("metadata", Document, default=None)
    # queued | in_progress | completed | canceled | failed (OpenAI's run statuses)
    status: Mapped[str] = mapped_column(String(16), index=True, default="queued")
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    enqueued_at: Mapped[datetime | None] = mapped_column(default=None)
    total_items: Mapped[int] = mapped_column(Integer, default=0)
    result_counts: Mapped[dict[str, int]] = mapped_column(Document, default=dict)
    per_model_usage: Mapped[list[dict[str, Any]]] = mapped_column(Document, default=list)
    per_testing_criteria_results: Mapped[list[dict[str, Any]]] = mapped_column(Document, default=list)
    error: Mapped[dict[str, Any] | None] = mapped_column(Document, default=None)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # The fine-tuning job this run's metrics belong to in MLflow (its model is that job's, or its base).
    fine_tuning_job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


class EvalOutputItem(Base):
    """One graded data source item of a run; (run, item index) is unique: an item is stored exactly once."""

    __tablename__ = "eval_output_items"
    __table_args__ = (UniqueConstraint("run_id", "datasource_item_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("eval_runs.id", ondelete="CASCADE"))
    eval_id: Mapped[str] = mapped_column(String(64))
    datasource_item_id: Mapped[int] = mapped_column(Integer)
    datasource_item: Mapped[dict[str, Any]] = mapped_column(Document)
    status: Mapped[str] = mapped_column(String(8))  # pass | fail | error
    results: Mapped[list[dict[str, Any]]] = mapped_column(Document)
    sample: Mapped[dict[str, Any]] = mapped_column(Document)
    attempt: Mapped[int] = mapped_column(Integer)  # the run attempt that stored it
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    error: Mapped[str | None] = mapped_column(Text, default=None)
