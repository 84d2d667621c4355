"""Dispatch latency: job create -> `running` -> first training step, against a raw Celery round trip.

    python -m bench.dispatch [--jobs 20] [--round-trips 50] [--out bench/out/dispatch.json]

Starts the whole platform on embedded servers (as `make run` does, on free ports), with the tiny
demo model. Each job is created through the OpenAI SDK, one at a time, and timed from the moment
the create request is sent to (a) its validation ending ("Job queued" event), (b) the GPU worker
claiming it ("Training started" event: the job is `running`), and (c) the trainer reporting its
first step. The job is then cancelled and the next one starts on an idle worker. In the same run,
a trivial task on a solo-pool worker of its own measures what Celery itself costs over the same
broker (send, execute, result back), the floor under every hop above.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from celery import Celery

from bench.common import report_head, start_servers, write_report

ECHO_QUEUE = "bench-echo"
echo_app = Celery("bench-echo", broker=os.environ.get("REDIS_URL"), backend=os.environ.get("REDIS_URL"))
echo_app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                     worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)  # fmt: skip


@echo_app.task(name="bench.echo")
def echo(value: int) -> int:
    return value


def celery_round_trips(count: int) -> list[float]:
    seconds = []
    for value in range(count):
        started = time.perf_counter()
        assert echo.apply_async(args=[value], queue=ECHO_QUEUE).get(timeout=60) == value
        seconds.append(time.perf_counter() - started)
    return seconds


def start_platform(data_dir: Path) -> tuple[Any, str, str]:
    """Every server, both APIs' user side, both workers and an echo worker; returns (stack, url, user key)."""
    from app.core.config import get_settings
    from app.devstack.bootstrap import bootstrap
    from app.training.tiny_model import build_tiny_model

    stack = start_servers(data_dir)
    model = build_tiny_model(data_dir / "models" / "base" / "tiny-llama-demo")
    keys = asyncio.run(bootstrap(get_settings(), data_dir / "first-keys.env", model))
    assert keys is not None
    stack.start_api("user")
    stack.start_worker("gpu")
    stack.start_worker("cpu")
    celery = str(Path(sys.executable).parent / "celery")
    echo_worker = [celery, "-A", "bench.dispatch:echo_app", "worker", "-Q", ECHO_QUEUE, "--pool=solo",
                   "--concurrency=1", "--hostname=echo@%h", "--loglevel=WARNING"]  # fmt: skip
    stack.spawn("worker-echo", echo_worker)
    stack.wait_ready(stack.ports.user_api, timeout=180)
    echo_app.conf.update(broker_url=stack.env["REDIS_URL"], result_backend=stack.env["REDIS_URL"])
    return stack, f"http://127.0.0.1:{stack.ports.user_api}", keys.user


def event_times(engine: Any, job_id: str) -> dict[str, float]:
    """When the job reached each milestone (epoch seconds), from its events in PostgreSQL."""
    from sqlalchemy import select

    from app.jobs.tables import Job, JobEvent

    with engine.connect() as connection:
        rows = connection.execute(
            select(JobEvent.message, JobEvent.type, JobEvent.data, JobEvent.created_at)
            .where(JobEvent.job_id == job_id)
            .order_by(JobEvent.id)
        ).all()
        status = connection.execute(select(Job.status).where(Job.id == job_id)).scalar_one()
    times: dict[str, float] = {"status": status}  # type: ignore[dict-item]
    for message, kind, data, created_at in rows:
        if message.startswith("Job queued for a GPU worker"):
            times.setdefault("queued", created_at.timestamp())
        elif message.startswith("Training started"):
            times.setdefault("running", created_at.timestamp())
        elif kind == "metrics" and data and "train_loss" in data:
            times.setdefault("first_step", created_at.timestamp())
    return times


ENDED = ("failed", "cancelled", "succeeded")


def wait_for(engine: Any, job_id: str, keys: set[str], timeout: float = 300) -> dict[str, float]:
    """Poll until the job has every milestone in `keys` (or has ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        times = event_times(engine, job_id)
        if keys <= set(times) or times["status"] in ENDED:
            return times
        time.sleep(0.1)
    raise TimeoutError(f"{job_id} did not reach {keys} in {timeout}s")


def wait_until_ended(engine: Any, job_id: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while event_times(engine, job_id)["status"] not in ENDED:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{job_id} did not end in {timeout}s")
        time.sleep(0.2)


def wait_until_indexed(engine: Any, file_id: str, timeout: float = 300) -> None:
    """The CPU worker embeds every upload; nothing is timed while it still does."""
    from sqlalchemy import select

    from app.files.tables import File

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            status = connection.execute(select(File.index_status).where(File.id == file_id)).scalar_one()
        if status in ("indexed", "failed"):
            return
        time.sleep(0.5)
    raise TimeoutError(f"{file_id} not indexed in {timeout}s")


def run_jobs(base_url: str, key: str, count: int) -> list[dict[str, Any]]:
    from openai import OpenAI
    from sqlalchemy import create_engine

    from app.core.config import get_settings
    from app.devstack.bootstrap import DEMO_MODEL_ID

    engine = create_engine(get_settings().sync_database_url)
    client = OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0, timeout=120)
    lines = "".join(json.dumps({"messages": [{"role": "user", "content": f"Color {n}?"},
                                             {"role": "assistant", "content": f"Blue {n}."}]}) + "\n"
                    for n in range(10))  # fmt: skip
    training = client.files.create(file=("dispatch.jsonl", lines.encode()), purpose="fine-tune")
    wait_until_indexed(engine, training.id)
    hyperparameters = {"n_epochs": 1, "batch_size": 1, "packing": False, "lora_r": 4}
    measured = []
    for _ in range(count):
        sent = time.time()
        job = client.fine_tuning.jobs.create(model=DEMO_MODEL_ID, training_file=training.id, extra_body={
            "method": {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}}})  # fmt: skip
        times = wait_for(engine, job.id, {"queued", "running", "first_step"})
        client.fine_tuning.jobs.cancel(job.id)
        wait_until_ended(engine, job.id)  # so the next job finds the worker idle
        measured.append({
            "job": job.id,
            "create_to_queued": round(times["queued"] - sent, 3),
            "create_to_running": round(times["running"] - sent, 3),
            "create_to_first_step": round(times["first_step"] - sent, 3),
        })  # fmt: skip
        print(json.dumps(measured[-1]), flush=True)
    engine.dispose()
    return measured


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median": round(statistics.median(ordered), 3), "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 3),
            "min": round(ordered[0], 3), "max": round(ordered[-1], 3)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--round-trips", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("bench/out/dispatch.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dispatch-") as scratch:
        stack, base_url, key = start_platform(Path(scratch))
        try:
            celery_round_trips(5)  # connections and the worker warm up
            trips = celery_round_trips(args.round_trips)
            jobs = run_jobs(base_url, key, args.jobs)
        finally:
            stack.stop()
    celery = summary(trips)
    figures = {stage: summary([job[stage] for job in jobs])
               for stage in ("create_to_queued", "create_to_running", "create_to_first_step")}  # fmt: skip
    report = {
        **report_head("bench.dispatch"),
        "celery_round_trip_seconds": celery,
        "jobs": len(jobs),
        "seconds": figures,
        "ratio_to_celery_round_trip": {
            stage: round(values["median"] / celery["median"], 1) for stage, values in figures.items()
        },
        "per_job": jobs,
    }
    write_report(args.out, report, shown={k: v for k, v in report.items() if k != "per_job"})


if __name__ == "__main__":
    main()
