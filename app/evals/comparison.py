"""Fine-tune versus base: a job with a validation file ends with both models evaluated on that file.

When the job succeeds its worker queues `evals.compare_with_base`; that task makes an eval (the
validation lines as items, their last assistant reply as the reference; a string and a similarity
grader) and two completions runs on it, one per model, both greedy. When the second run ends, the
result is written on the job (`comparison` in the job object, and an event) in the same
transaction, and logged to the job's MLflow run. `passed` means the fine-tune passed at least as
large a share of the items as its base, and at least one item: the registry can require it.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import ids
from app.core.celery_app import TASK_RUN_EVAL
from app.core.database import commit, utcnow
from app.core.errors import PlatformError
from app.core.outbox import enqueue
from app.core.worker_context import WorkerContext
from app.evals import graders, repository, sources
from app.evals.tables import Eval, EvalRun
from app.files import repository as files
from app.inference import service as inference
from app.jobs import events
from app.jobs import repository as jobs
from app.jobs.events import NewEvent
from app.jobs.tables import Job, JobEvent

logger = logging.getLogger(__name__)

ITEM_SCHEMA = {
    "type": "object",
    "properties": {"messages": {"type": "array"}, "reference": {"type": "string"}},
    "required": ["messages", "reference"],
}
CRITERIA = [
    {
        "type": "string_check",
        "name": "reply contains the reference",
        "input": "{{sample.output_text}}",
        "reference": "{{item.reference}}",
        "operation": "ilike",
    },
    {
        "type": "text_similarity",
        "name": "fuzzy match with the reference",
        "input": "{{sample.output_text}}",
        "reference": "{{item.reference}}",
        "evaluation_metric": "fuzzy_match",
        "pass_threshold": 0.8,
    },
]
SIDES = ("fine_tuned", "base")


def _run(job: Job, parent: Eval, side: str, model: str, total: int, max_tokens: int) -> EvalRun:
    data_source = {
        "type": "completions",
        "model": model,
        "source": {"type": "file_id", "id": job.validation_file},
        "input_messages": {"type": "item_reference", "item_reference": "item.messages"},
        "sampling_params": {"temperature": 0.0, "max_completion_tokens": max_tokens, "seed": job.seed},
    }
    return EvalRun(
        id=ids.eval_run_id(),
        eval_id=parent.id,
        owner_id=job.owner_id,
        organization_id=job.organization_id,
        name=f"{side.replace('_', '-')}: {model}",
        model=model,
        data_source=data_source,
        metadata_={"comparison_side": side, "fine_tuning_job_id": job.id},
        status="queued",
        total_items=total,
        result_counts={"total": 0, "errored": 0, "failed": 0, "passed": 0},
        enqueued_at=utcnow(),
        fine_tuning_job_id=job.id,
    )


async def start(context: WorkerContext, job_id: str) -> str:
    """Make the comparison of a succeeded job (once: a second delivery finds it made)."""
    added: list[JobEvent] = []

    async def write() -> str:
        async with context.sessionmaker() as session:
            job = await jobs.get(session, job_id, for_update=True)
            if job is None or job.status != "succeeded" or not job.validation_file or job.comparison is not None:
                return "nothing to compare"
            assert job.fine_tuned_model is not None
            try:
                for model in (job.fine_tuned_model, job.model):
                    await inference.target_for(session, context.settings, model)
                rows = await _validation_rows(context, session, job)
            except PlatformError as error:
                job.comparison = {"status": "skipped", "reason": error.message}
                added.append(
                    jobs.add_event(
                        session, job.id, NewEvent(f"No comparison with the base model: {error.message}", level="warn")
                    )
                )
                await session.commit()
                return "skipped"
            parent = Eval(
                id=ids.eval_id(),
                owner_id=job.owner_id,
                organization_id=job.organization_id,
                name=f"Fine-tune vs base: {job.id}",
                data_source_config=sources.check_data_source_config(
                    {"type": "custom", "item_schema": ITEM_SCHEMA, "include_sample_schema": True}
                ),
                testing_criteria=graders.check_criteria(CRITERIA),
                metadata_={"fine_tuning_job_id": job.id},
                fine_tuning_job_id=job.id,
            )
            session.add(parent)
            await session.flush()
            max_tokens = context.settings.eval_comparison_max_tokens
            runs = {
                side: _run(job, parent, side, model, len(rows), max_tokens)
                for side, model in zip(SIDES, (job.fine_tuned_model, job.model), strict=True)
            }
            session.add_all(runs.values())
            await session.flush()
            job.comparison = {"status": "running", "eval_id": parent.id} | {
                f"{side}_run_id": run.id for side, run in runs.items()
            }
            said = NewEvent(
                f"Comparing {job.fine_tuned_model} with its base model {job.model} on the validation file "
                f"({len(rows)} items, eval {parent.id})",
                data={"comparison": job.comparison},
            )
            added.append(jobs.add_event(session, job.id, said))
            for run in runs.values():
                enqueue(session, context.sessionmaker, TASK_RUN_EVAL, [run.id])
            await commit(session)
            return "started"

    outcome = await context.write(write, f"job {job_id}: comparison")
    for event in added:
        await events.publish(context.redis, event)
    return outcome


async def _validation_rows(context: WorkerContext, session: AsyncSession, job: Job) -> list[dict[str, Any]]:
    row = await files.get_live(session, job.validation_file or "")
    if row is None:
        raise PlatformError("the validation file was deleted", code="file_not_found")
    path = context.settings.datasets_path / row.storage_name
    config = {"schema": {"properties": {"item": ITEM_SCHEMA}}}
    return sources.check_rows(
        sources.file_rows(path, context.settings.eval_max_items, row.id),
        config,
        f"line {{line}} of the validation file {row.id}",
    )


def _side(run: EvalRun) -> dict[str, Any]:
    counts = run.result_counts or {}
    total = int(counts.get("total", 0))
    return {
        "model": run.model,
        "run_id": run.id,
        "status": run.status,
        "passed": int(counts.get("passed", 0)),
        "total": total,
        "pass_rate": counts.get("passed", 0) / total if total else 0.0,
        "per_testing_criteria_results": run.per_testing_criteria_results,
    }


async def _validation_loss(session: AsyncSession, job_id: str) -> dict[str, float] | None:
    """The fine-tune's validation loss at its first and its last evaluation during training."""
    query = select(JobEvent.data).where(JobEvent.job_id == job_id, JobEvent.type == "metrics")
    losses = [
        (data["step"], data["valid_loss"])
        for data in (await session.scalars(query.order_by(JobEvent.id)))
        if data and data.get("valid_loss") is not None
    ]
    if not losses:
        return None
    first, last = min(losses), max(losses)
    return {"first_step": first[0], "first": float(first[1]), "last_step": last[0], "last": float(last[1])}


async def run_finished(session: AsyncSession, run_id: str) -> list[JobEvent]:
    """In the transaction that ends a run: when it is the second of a comparison, write the result on the job."""
    run = await repository.run_by_id(session, run_id)
    parent = await session.get(Eval, run.eval_id) if run else None
    if parent is None or parent.fine_tuning_job_id is None:
        return []
    job = await jobs.get(session, parent.fine_tuning_job_id, for_update=True)  # orders the two runs' endings
    if job is None or not job.comparison or job.comparison.get("status") != "running":
        return []
    sides = {}
    for side in SIDES:
        row = await repository.run_by_id(session, job.comparison[f"{side}_run_id"])
        if row is None or row.status in repository.LIVE_STATUSES:
            return []
        sides[side] = _side(row)
    completed = all(side["status"] == "completed" for side in sides.values())
    ahead = sides["fine_tuned"]["pass_rate"] >= sides["base"]["pass_rate"] and sides["fine_tuned"]["passed"] > 0
    result = (
        dict(job.comparison)
        | sides
        | {
            "status": "completed" if completed else "failed",
            "passed": completed and ahead,
            "validation_loss": await _validation_loss(session, job.id),
        }
    )
    job.comparison = result
    ft, base = sides["fine_tuned"], sides["base"]
    message = (
        f"Comparison with the base model on the validation file: the fine-tune passed {ft['passed']}/{ft['total']} "
        f"items, its base {base['passed']}/{base['total']}"
        + ("" if completed else " (a run did not complete)")
        + (" — passed" if result["passed"] else " — not passed")
    )
    return [
        jobs.add_event(
            session, job.id, NewEvent(message, level="info" if completed else "warn", data={"comparison": result})
        )
    ]
