"""An eval run's figures in MLflow: in its fine-tuning job's run when the run is about that job's model
(or its base, for the automatic comparison), else in a run of its own in the `evals` experiment.

As for training, MLflow is observability, not the truth: a failed call is logged and never fails the run.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from mlflow import MlflowClient

from app.core.mlflow_clients import mlflow_client
from app.core.worker_context import WorkerContext
from app.evals import repository
from app.evals.tables import Eval, EvalRun
from app.jobs import repository as jobs

logger = logging.getLogger(__name__)
EXPERIMENT = "evals"


def _slug(text: str) -> str:
    """A name as MLflow metric keys take it."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def metric_prefix(parent: Eval, run: EvalRun) -> str:
    """`eval.<eval name>.<model role>`: a job's run may hold several evals and both sides of its comparison."""
    if parent.fine_tuning_job_id is None:
        role = _slug(run.model or "samples")
    else:
        role = "base" if (run.metadata_ or {}).get("comparison_side") == "base" else "model"
    return f"eval.{_slug(parent.name)[:80]}.{role}"


def metrics_of(run: EvalRun, parent: Eval) -> dict[str, float]:
    counts = run.result_counts or {}
    total = max(int(counts.get("total", 0)), 1)
    prefix = metric_prefix(parent, run)
    figures = {f"{prefix}.pass_rate": counts.get("passed", 0) / total, f"{prefix}.errored": counts.get("errored", 0)}
    names = {criterion.get("id", criterion["name"]): criterion["name"] for criterion in parent.testing_criteria}
    for result in run.per_testing_criteria_results or []:
        graded = result["passed"] + result["failed"]
        name = _slug(names.get(result["testing_criteria"], result["testing_criteria"]))
        figures[f"{prefix}.{name}.pass_rate"] = result["passed"] / graded if graded else 0.0
    return {key: float(value) for key, value in figures.items()}


def _log(client: MlflowClient, mlflow_run_id: str | None, run: EvalRun, parent: Eval, extra: dict[str, float]) -> str:
    if mlflow_run_id is None:
        experiment = client.get_experiment_by_name(EXPERIMENT)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(EXPERIMENT)
        tags = {"eval_id": parent.id, "eval_run_id": run.id, "organization_id": run.organization_id}
        created = client.create_run(str(experiment_id), run_name=run.id, tags=tags)
        mlflow_run_id = created.info.run_id
        client.log_param(mlflow_run_id, "model", str(run.model))
        client.set_terminated(mlflow_run_id)
    for key, value in (metrics_of(run, parent) | extra).items():
        client.log_metric(mlflow_run_id, key, value)
    return mlflow_run_id


async def log_run(context: WorkerContext, run_id: str) -> None:
    """Log a finished run's figures; the MLflow run they went to is kept on the eval run."""
    async with context.sessionmaker() as session:
        run = await repository.run_by_id(session, run_id)
        parent = await session.get(Eval, run.eval_id) if run else None
        job = await jobs.get(session, run.fine_tuning_job_id) if run and run.fine_tuning_job_id else None
    if run is None or parent is None:
        return
    target = job.mlflow_run_id if job is not None else run.mlflow_run_id
    # The run that ended a job's comparison also logs the comparison's result to the job's run.
    done = job is not None and (job.comparison or {}).get("status") == "completed"
    extra = comparison_metrics(job.comparison) if done and job is not None and job.comparison else {}
    client = mlflow_client(context.settings.mlflow_tracking_uri)
    try:
        logged = await asyncio.to_thread(_log, client, target, run, parent, extra)
    except Exception:
        logger.exception("eval run %s: its figures could not be logged to MLflow", run_id)
        return

    async def remember() -> None:
        async with context.sessionmaker() as session:
            row = await repository.run_by_id(session, run_id)
            if row is not None:
                row.mlflow_run_id = logged
            await session.commit()

    await context.write(remember, f"eval run {run_id}: MLflow run")


def comparison_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The comparison's headline figures, for the job's MLflow run."""
    figures = {
        "comparison.fine_tuned.pass_rate": result["fine_tuned"]["pass_rate"],
        "comparison.base.pass_rate": result["base"]["pass_rate"],
        "comparison.passed": 1.0 if result["passed"] else 0.0,
    }
    return {key: float(value) for key, value in figures.items()}
