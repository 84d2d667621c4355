"""OpenAI's fine-tuning job, event and checkpoint objects, and the create body (with our superset)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.core.redaction import user_readable
from app.jobs.tables import Checkpoint, Job, JobEvent

TERMINAL_STATUSES = ("succeeded", "failed", "cancelled")
# OpenAI: `estimated_finish` "will be null if the fine-tuning job is not running" (we keep it while it waits too).
ESTIMATED_STATUSES = ("validating_files", "queued", "running")
# A job-list metadata filter: key/values every job must carry, jobs without metadata, or none.
NULL_METADATA: Literal["null"] = "null"
MetadataFilter = dict[str, str] | Literal["null"] | None


@dataclass(frozen=True)
class JobFilters:
    """The admin list's filters over every tenant's jobs."""

    statuses: list[str] | None = None
    owner_id: str | None = None
    organization_id: str | None = None
    model: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


class MethodHyperparameters(BaseModel):
    """OpenAI's fields plus the platform's superset; values may be "auto"."""

    model_config = ConfigDict(extra="forbid")

    n_epochs: int | Literal["auto"] | None = None
    batch_size: int | Literal["auto"] | None = None
    learning_rate_multiplier: float | Literal["auto"] | None = None
    beta: float | Literal["auto"] | None = None
    learning_rate: float | Literal["auto"] | None = None
    lora_r: int | None = None
    lora_alpha: int | None = None
    lora_dropout: float | None = None
    target_modules: list[str] | Literal["all-linear"] | None = None
    quantization: Literal["qlora", "none"] | None = None
    fine_tune_type: Literal["lora", "full"] | None = None
    max_seq_length: int | None = None
    packing: bool | None = None
    warmup_ratio: float | None = None
    gradient_accumulation_steps: int | None = None
    eval_steps: int | None = None
    weight_decay: float | None = None
    lr_scheduler_type: str | None = None
    optimizer: Literal["adamw_torch", "adamw_8bit", "paged_adamw_8bit"] | None = None
    activation_offloading: bool | None = None


class MethodSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hyperparameters: MethodHyperparameters = Field(default_factory=MethodHyperparameters)


class Method(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["supervised", "dpo"]
    supervised: MethodSection | None = None
    dpo: MethodSection | None = None


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=200)
    training_file: str = Field(min_length=1, max_length=64)
    validation_file: str | None = Field(default=None, max_length=64)
    hyperparameters: MethodHyperparameters | None = None  # OpenAI's deprecated top-level form
    method: Method | None = None
    suffix: str | None = Field(default=None, min_length=1, max_length=64)  # OpenAI's bounds: "" is refused
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    metadata: dict[str, str] | None = None
    integrations: list[dict[str, Any]] | None = None

    @field_validator("suffix")
    @classmethod
    def _suffix_chars(cls, value: str | None) -> str | None:
        if value is not None and not all(ch.isalnum() or ch in "-_" for ch in value):
            raise ValueError("may contain only letters, digits, '-' and '_'")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata_limits(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None:
            if len(value) > 16:
                raise ValueError("at most 16 keys")
            for key, item in value.items():
                if len(key) > 64 or len(item) > 512:
                    raise ValueError("keys are at most 64 characters and values at most 512")
        return value

    def method_type(self) -> str:
        return self.method.type if self.method else "supervised"

    def requested_hyperparameters(self) -> dict[str, Any]:
        section = None
        if self.method is not None:
            section = self.method.supervised if self.method.type == "supervised" else self.method.dpo
        chosen = section.hyperparameters if section else (self.hyperparameters or MethodHyperparameters())
        return chosen.model_dump(exclude_none=True)

    def hyperparameters_param(self) -> str:
        if self.method is None:
            return "hyperparameters"
        return f"method.{self.method.type}.hyperparameters"


class JobError(BaseModel):
    code: str
    message: str
    param: str | None = None


class JobObject(BaseModel):
    object: Literal["fine_tuning.job"] = "fine_tuning.job"
    id: str
    model: str
    created_at: int
    finished_at: int | None
    fine_tuned_model: str | None
    organization_id: str
    result_files: list[str]
    status: str
    validation_file: str | None
    training_file: str
    hyperparameters: dict[str, Any]
    trained_tokens: int | None
    error: JobError | None
    user_provided_suffix: str | None
    seed: int
    estimated_finish: int | None
    integrations: list[dict[str, Any]] = Field(default_factory=list)
    metadata: dict[str, str] | None
    method: dict[str, Any]
    # Beyond OpenAI:
    estimate: dict[str, Any] | None = None
    progress: dict[str, Any] | None = None
    priority: int = 5
    # The fine-tuned model against its base on the validation file (app/evals/comparison.py).
    comparison: dict[str, Any] | None = None

    @classmethod
    def of(cls, job: Job) -> JobObject:
        return cls.model_validate(job_view(job))


def job_view(job: Job) -> dict[str, Any]:
    """A job as OpenAI's wire object: exactly `JobObject.of(job).model_dump(mode="json")`, key order included.

    A page of jobs answers with these dicts as they are (tests/jobs/test_job_view.py holds them equal to the
    validated model's dump for every kind of job): constructing and validating twenty models was about a
    tenth of a job list's time in the API process (py-spy, docs/evidence.md §8, session 35). A single job is
    still answered through `JobObject`, validated.
    """
    shown = job.resolved_hyperparameters or job.hyperparameters
    status = shown_status(job)
    openai_view = {
        "n_epochs": shown.get("n_epochs", "auto"),
        "batch_size": shown.get("batch_size", "auto"),
        "learning_rate_multiplier": shown.get("learning_rate_multiplier", "auto"),
    }
    if job.method == "dpo":
        openai_view["beta"] = shown.get("beta", "auto")
    error = job.error
    return {
        "object": "fine_tuning.job",
        "id": job.id,
        "model": job.model,
        "created_at": _ts(job.created_at),
        "finished_at": _ts(job.finished_at) if job.finished_at else None,
        "fine_tuned_model": job.fine_tuned_model,
        "organization_id": job.organization_id,
        "result_files": list(job.result_files or []),
        "status": status,
        "validation_file": job.validation_file,
        "training_file": job.training_file,
        "hyperparameters": openai_view,
        # OpenAI: null while the job runs; the running count is in `progress`.
        "trained_tokens": job.trained_tokens if job.status in TERMINAL_STATUSES else None,
        "error": {"code": error["code"], "message": user_readable(error["message"]), "param": error.get("param")}
        if error
        else None,
        "user_provided_suffix": job.suffix,
        "seed": job.seed,
        "estimated_finish": _ts(job.estimated_finish)
        if job.estimated_finish and status in ESTIMATED_STATUSES
        else None,
        "integrations": [],
        "metadata": job.metadata_,
        "method": {"type": job.method, job.method: {"hyperparameters": shown}},
        "estimate": job.estimate,
        "progress": {
            "step": job.current_step,
            "total_steps": job.total_steps,
            "attempt": job.attempt,
            "trained_tokens": job.trained_tokens,
            "stopping": status != job.status,
        },
        "priority": job.priority,
        "comparison": job.comparison,
    }


def shown_status(job: Job) -> str:
    """The state a request produced: a running job asked to cancel (or pause) is `cancelled` (`paused`) at once.

    Its worker still holds it meanwhile: it signals the trainer, which saves a checkpoint, and then
    writes the row itself through its fenced writes (`progress.stopping` is true until it has), so
    crash-safety and the event trail ("Cancellation requested" ... "Job cancelled") are unchanged.
    """
    if job.status == "running" and job.cancel_requested:
        return "cancelled"
    if job.status == "running" and job.pause_requested:
        return "paused"
    return job.status


class EventObject(BaseModel):
    object: Literal["fine_tuning.job.event"] = "fine_tuning.job.event"
    id: str
    created_at: int
    level: str
    message: str
    data: dict[str, Any] = {}  # OpenAI's schema: an object, never null
    type: str = "message"

    @classmethod
    def of(cls, event: JobEvent) -> EventObject:
        return cls.model_validate(event_view(event))


def event_view(event: JobEvent) -> dict[str, Any]:
    """An event as OpenAI's wire object, exactly `EventObject.of(event).model_dump()`: a page answers with these."""
    return {
        "object": "fine_tuning.job.event",
        "id": event.id,
        "created_at": _ts(event.created_at),
        "level": event.level,
        "message": user_readable(event.message),
        "data": event.data or {},
        "type": event.type,
    }


def fine_tuned_model_name(job: Job, organization_name: str) -> str:
    """OpenAI's `ft:{base}:{org}:{suffix}:{id}`: the model a succeeded job names, and its checkpoints' prefix."""
    return f"ft:{job.model}:{organization_name}:{job.suffix or ''}:{job.id[-8:]}"


CHECKPOINT_MODEL_MARK = ":ckpt-step-"


def checkpoint_model_name(model_name: str, step: int) -> str:
    """OpenAI's checkpoint model `ft:…:ckpt-step-N`: a model of its own once its job has succeeded."""
    return f"{model_name}{CHECKPOINT_MODEL_MARK}{step}"


def split_checkpoint_model(model_id: str) -> tuple[str, int] | None:
    """(the fine-tuned model, the step) a checkpoint model id names; None for any other id."""
    parent, mark, step = model_id.rpartition(CHECKPOINT_MODEL_MARK)
    return (parent, int(step)) if mark and parent and step.isdigit() else None


class CheckpointObject(BaseModel):
    object: Literal["fine_tuning.job.checkpoint"] = "fine_tuning.job.checkpoint"
    id: str
    created_at: int
    fine_tuned_model_checkpoint: str
    fine_tuning_job_id: str
    metrics: dict[str, Any]
    step_number: int

    @classmethod
    def of(cls, checkpoint: Checkpoint, model_name: str) -> CheckpointObject:
        return cls(
            id=checkpoint.id,
            created_at=_ts(checkpoint.created_at),
            fine_tuned_model_checkpoint=checkpoint_model_name(model_name, checkpoint.step_number),
            fine_tuning_job_id=checkpoint.job_id,
            # OpenAI's metrics are numbers: one not known yet (no evaluation, a NaN loss) is left out.
            metrics={**_known(checkpoint.metrics), "step": checkpoint.step_number},
            step_number=checkpoint.step_number,
        )


class EstimateObject(BaseModel):
    object: Literal["fine_tuning.job.estimate"] = "fine_tuning.job.estimate"
    model: str
    method: str
    training_examples: int
    training_tokens: int
    validation_examples: int | None
    validation_tokens: int | None
    too_long_examples: int
    total_steps: int
    trained_tokens: int
    estimated_seconds: float
    estimated_gpu_hours: float
    # How the job is spread (single | ddp | fsdp2, app/training/strategy.py) and what it holds per GPU:
    # weights, gradients, optimizer_states, activations, total in GiB; null when the model's size is unknown.
    training_processes: int
    strategy: str
    memory_per_gpu_gib: dict[str, float] | None
    hyperparameters: dict[str, Any]


def _known(metrics: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in metrics.items() if value is not None}


def _ts(value: Any) -> int:
    return int(value.timestamp())
