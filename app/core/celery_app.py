"""The Celery application: `celery -A app.core.celery_app worker ...`.

Celery only delivers; PostgreSQL holds the truth (DESIGN.md §2). Queues are
declared with explicit exchanges and routing keys, tasks are routed by name,
messages are JSON only, and a task is acknowledged after it ran, so a worker
killed mid-task leaves its message to be delivered again (the job's lease and
attempt fencing make that redelivery harmless).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import Celery
from celery.signals import setup_logging
from kombu import Exchange, Queue

from app.core.broker_transport import TRANSPORT
from app.core.config import BrokerSettings
from app.core.logging import configure_logging

GPU_QUEUE = "gpu"
CPU_QUEUE = "cpu"
# Eval runs: long, engine-bound batches that must not hold up the CPU queue's validation and searches.
EVALS_QUEUE = "evals"

# Task names are explicit and stable: the outbox stores them.
TASK_RUN_FINETUNE = "jobs.run_finetune"
TASK_VALIDATE_JOB = "jobs.validate_files"
TASK_COUNT_TOKENS = "jobs.count_tokens"
TASK_RECONCILE = "jobs.reconcile"
TASK_INDEX_FILE = "files.index_vectors"
TASK_SEARCH_FILE = "files.search"
TASK_FILE_OVERLAP = "files.overlap"
TASK_DOWNLOAD_BASE_MODEL = "catalog.download_base_model"
TASK_GPU_STATUS = "fleet.gpu_status"
TASK_RUN_EVAL = "evals.run"
TASK_COMPARE_WITH_BASE = "evals.compare_with_base"
TASK_RECONCILE_EVALS = "evals.reconcile"

# The CPU queue serves priority 0 first (kombu keeps one list per step), so what a task is for decides
# its step: the reconcilers, the safety net that relays unsent messages and re-queues lost jobs, first
# (one burst of uploads to index once starved them for minutes); then what a request waits on (token
# counts, searches); then a job's validation; the background indexing and downloads last.
CPU_PRIORITIES = {
    TASK_RECONCILE: 0,
    TASK_RECONCILE_EVALS: 0,
    TASK_COUNT_TOKENS: 2,
    TASK_SEARCH_FILE: 2,
    TASK_FILE_OVERLAP: 2,
    TASK_VALIDATE_JOB: 4,
    TASK_INDEX_FILE: 7,
    # Downloads take long and need no GPU: a GPU worker would run one only after its queued jobs.
    TASK_DOWNLOAD_BASE_MODEL: 8,
}

TASK_ROUTES: dict[str, dict[str, Any]] = {
    # A job's priority (0 first .. 9 last) travels with each of its messages.
    TASK_RUN_FINETUNE: {"queue": GPU_QUEUE, "routing_key": GPU_QUEUE},
    **{
        task: {"queue": CPU_QUEUE, "routing_key": CPU_QUEUE, "priority": priority}
        for task, priority in CPU_PRIORITIES.items()
    },
    TASK_RUN_EVAL: {"queue": EVALS_QUEUE, "routing_key": EVALS_QUEUE},
    TASK_COMPARE_WITH_BASE: {"queue": EVALS_QUEUE, "routing_key": EVALS_QUEUE},
}


TASK_MODULES = ["app.jobs.tasks", "app.files.tasks", "app.catalog.tasks", "app.fleet.tasks", "app.evals.tasks"]


def queue_for(task_name: str) -> str:
    return str(TASK_ROUTES[task_name]["queue"])


def create_celery_app() -> Celery:
    settings = BrokerSettings()
    # Task modules are imported by the worker at start (not here: they import this module).
    app = Celery("finetune", include=TASK_MODULES)
    # The same number everywhere Celery's Redis transport reads a visibility timeout.
    transport_options = {
        "visibility_timeout": settings.celery_visibility_timeout,
        # Priority 0 is served first; the GPU queue honours job priority this way.
        "priority_steps": list(range(10)),
        "sep": ":",
        "queue_order_strategy": "priority",
        # Bounded connects and reads: a silent broker fails a publish (the outbox retries it) instead of
        # hanging it. Consumers are unaffected: kombu reads a BRPOP reply only once its socket is readable.
        "socket_connect_timeout": settings.broker_socket_timeout_seconds,
        "socket_timeout": settings.broker_socket_timeout_seconds,
    }
    app.conf.update(
        broker_url=settings.redis_url,
        # A worker survives losing the broker (see the module); only plain redis:// URLs use it, so a
        # rediss:// URL keeps kombu's own handling of TLS.
        broker_transport=TRANSPORT if settings.redis_url.startswith("redis://") else None,
        result_backend=settings.redis_url,
        broker_transport_options=transport_options,
        result_backend_transport_options={"visibility_timeout": settings.celery_visibility_timeout},
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        result_expires=timedelta(days=1),
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_max_tasks_per_child=settings.worker_max_tasks_per_child,
        task_default_queue=CPU_QUEUE,
        task_default_exchange=CPU_QUEUE,
        task_default_routing_key=CPU_QUEUE,
        task_default_priority=5,
        task_queues=(
            Queue(GPU_QUEUE, Exchange(GPU_QUEUE, type="direct"), routing_key=GPU_QUEUE),
            Queue(CPU_QUEUE, Exchange(CPU_QUEUE, type="direct"), routing_key=CPU_QUEUE),
            Queue(EVALS_QUEUE, Exchange(EVALS_QUEUE, type="direct"), routing_key=EVALS_QUEUE),
        ),
        task_routes=TASK_ROUTES,
        task_track_started=True,
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
        beat_schedule={
            "reconcile-jobs": {
                "task": TASK_RECONCILE,
                "schedule": timedelta(seconds=settings.reconcile_interval_seconds),
                "options": {
                    "queue": CPU_QUEUE,
                    "expires": settings.reconcile_interval_seconds,
                    "priority": CPU_PRIORITIES[TASK_RECONCILE],
                },
            },
            "reconcile-evals": {
                "task": TASK_RECONCILE_EVALS,
                "schedule": timedelta(seconds=settings.reconcile_interval_seconds),
                "options": {
                    "queue": CPU_QUEUE,
                    "expires": settings.reconcile_interval_seconds,
                    "priority": CPU_PRIORITIES[TASK_RECONCILE_EVALS],
                },
            },
        },
        timezone="UTC",
    )
    return app


@setup_logging.connect
def _log_like_the_apis(**_: Any) -> None:
    """Workers log at LOG_LEVEL in the APIs' format (without this, Celery's default level is WARNING)."""
    configure_logging(BrokerSettings().log_level)


celery_app = create_celery_app()
app = celery_app
