"""The `evals` queue's tasks (runs, a job's comparison with its base) and the CPU queue's run reconciler."""

from __future__ import annotations

from datetime import timedelta

from celery import Task

from app.core.celery_app import TASK_COMPARE_WITH_BASE, TASK_RECONCILE_EVALS, TASK_RUN_EVAL, celery_app
from app.core.database import utcnow
from app.core.outbox import enqueue, relay
from app.core.worker_context import WorkerContext, run_in_context
from app.evals import comparison, repository, runner
from app.jobs import queue_state


@celery_app.task(name=TASK_RUN_EVAL, bind=True)
def run_eval(self: Task, run_id: str) -> str:
    return run_in_context(lambda context: runner.run_eval(context, run_id))


@celery_app.task(name=TASK_COMPARE_WITH_BASE)
def compare_with_base(job_id: str) -> str:
    return run_in_context(lambda context: comparison.start(context, job_id))


@celery_app.task(name=TASK_RECONCILE_EVALS)
def reconcile_evals() -> int:
    return run_in_context(reconcile_once)


async def reconcile_once(context: WorkerContext) -> int:
    """Give a new message to each live run that no worker holds and whose message is gone.

    A run whose worker died keeps its lease until it lapses (EVAL_LEASE_SECONDS); a run whose message
    was lost on a broker restart is in no queue and unacknowledged by no worker. Either way the next
    attempt resumes after the stored items. A run whose message still waits in the broker is left alone.
    """
    grace = timedelta(seconds=context.settings.republish_after_seconds)
    async with context.sessionmaker() as session:
        candidates = await repository.lost_runs(session, grace)
        if not candidates:
            return 0
        waiting = await queue_state.task_args_in_broker(context.redis, TASK_RUN_EVAL)
        messages = []
        for run in candidates:
            if run.id in waiting and run.lease_until is None:
                continue
            messages.append(enqueue(session, None, TASK_RUN_EVAL, [run.id]))
            run.enqueued_at = utcnow()
        await session.commit()
    if messages:
        await relay(context.sessionmaker, [message.id for message in messages])
    return len(messages)
