"""A page of jobs or events answers with `job_view` / `event_view` dicts unvalidated: each must be the model's dump."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.jobs.schemas import EventObject, JobObject, event_view, job_view
from app.jobs.tables import Job, JobEvent

CREATED = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _job(**changes: Any) -> Job:
    values: dict[str, Any] = {
        "id": "ftjob-view", "owner_id": "user-1", "organization_id": "org-1", "model": "tiny-llama",
        "training_file": "file-train", "validation_file": None, "method": "supervised",
        "hyperparameters": {"n_epochs": 2}, "resolved_hyperparameters": None, "suffix": None, "seed": 7,
        "metadata_": None, "status": "validating_files", "attempt": 0, "cancel_requested": False,
        "pause_requested": False, "priority": 5, "trained_tokens": None, "total_steps": None, "current_step": 0,
        "estimate": None, "estimated_finish": None, "fine_tuned_model": None, "result_files": [], "error": None,
        "comparison": None, "created_at": CREATED, "finished_at": None,
    }  # fmt: skip
    values.update(changes)
    return Job(**values)


JOBS = {
    "validating": _job(),
    "queued with an estimate": _job(
        status="queued",
        resolved_hyperparameters={"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 1.5},
        estimate={"gpu_seconds": 12.5, "tokens": 4096},
        estimated_finish=CREATED + timedelta(minutes=3),
        metadata_={"team": "search"},
        validation_file="file-valid",
        priority=2,
    ),
    "running, asked to cancel": _job(
        status="running",
        cancel_requested=True,
        current_step=3,
        total_steps=8,
        attempt=1,
        trained_tokens=900,
        estimated_finish=CREATED + timedelta(hours=1),
    ),
    "running, asked to pause": _job(status="running", pause_requested=True, attempt=2),
    "succeeded dpo": _job(
        method="dpo",
        hyperparameters={"beta": 0.2},
        resolved_hyperparameters={"beta": 0.2, "n_epochs": 1},
        status="succeeded",
        trained_tokens=12_000,
        fine_tuned_model="ft:tiny-llama:acme:x:iew",
        result_files=["file-result"],
        finished_at=CREATED + timedelta(hours=2),
        suffix="x",
        comparison={"base": {"loss": 2.0}, "fine_tuned": {"loss": 1.0}},
    ),
    "failed with a host path in its error": _job(
        status="failed",
        finished_at=CREATED + timedelta(minutes=1),
        error={
            "code": "invalid_training_file",
            "message": "Could not read /srv/data/files/abc.jsonl",
            "param": "training_file",
            "internal": "dropped",
        },
    ),
    "failed without a param": _job(status="failed", error={"code": "internal_error", "message": "worker lost"}),
}


@pytest.mark.parametrize("name", JOBS)
def test_job_view_is_the_validated_models_dump(name: str) -> None:
    view = job_view(JOBS[name])
    dumped = JobObject.model_validate(view).model_dump(mode="json")
    assert list(view.items()) == list(dumped.items())  # values, and the order the wire shows them in
    assert list(view) == list(JobObject.model_fields)


def test_job_view_shows_what_the_user_may_read() -> None:
    failed = job_view(JOBS["failed with a host path in its error"])
    assert failed["error"] == {"code": "invalid_training_file", "message": "Could not read abc.jsonl",
                               "param": "training_file"}  # fmt: skip
    cancelling = job_view(JOBS["running, asked to cancel"])
    assert cancelling["status"] == "cancelled" and cancelling["progress"]["stopping"] is True
    assert cancelling["trained_tokens"] is None and cancelling["estimated_finish"] is None
    assert job_view(JOBS["succeeded dpo"])["hyperparameters"]["beta"] == 0.2


@pytest.mark.parametrize(
    "event",
    [
        JobEvent(
            id="ftevent-1",
            job_id="ftjob-view",
            level="info",
            type="message",
            message="Job queued",
            data=None,
            created_at=CREATED,
        ),
        JobEvent(
            id="ftevent-2",
            job_id="ftjob-view",
            level="warn",
            type="metrics",
            message="step /srv/runs/x done",
            data={"step": 3, "train_loss": 1.25},
            created_at=CREATED + timedelta(seconds=1),
        ),
    ],
    ids=["message", "metrics"],
)
def test_event_view_is_the_validated_models_dump(event: JobEvent) -> None:
    view = event_view(event)
    assert list(view.items()) == list(EventObject.model_validate(view).model_dump(mode="json").items())
    assert "/srv/" not in view["message"] and isinstance(view["data"], dict)
