"""User-API latency and throughput under concurrent clients, against a bare endpoint of the same process.

    python -m bench.api_load [--clients 10,50,200] [--seconds 10] [--out bench/out/api_load.json]

Starts its own embedded PostgreSQL, Valkey and Cerbos on free ports (MLflow and Qdrant are not on
these paths), seeds one user with jobs and events, and serves `bench.api_load:app` with uvicorn
exactly as the user API is served: the user API itself plus one bare route, `GET /bench/bare`,
that does no work (no key check, no database, no Cerbos). An async httpx driver then runs each
operation (job list, job retrieve, event list, file upload, and the bare route) with N clients
issuing requests back to back for a fixed time, and reports p50/p99 latency and requests/s.
The machine is shared and small, so what to read is the ratio to the bare route in the same run:
the cost of authentication, authorization, the database and validation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from app.api.user_app import app
from bench.common import WITHOUT_TRACKING, report_head, start_servers, write_report

Operation = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


@app.get("/bench/bare", include_in_schema=False)
async def bare() -> dict[str, str]:
    """The floor: uvicorn, the middleware and FastAPI's routing, and nothing else."""
    return {"status": "ok"}


def _upload_line(n: int) -> str:
    example = {"messages": [{"role": "user", "content": f"What is {n} plus {n}?"},
                            {"role": "assistant", "content": f"{2 * n}."}]}  # fmt: skip
    return json.dumps(example) + "\n"


# A 20-example chat file (about 2 KB): what the upload operation sends each time.
UPLOAD = "".join(_upload_line(n) for n in range(20)).encode()


def operations(job_id: str) -> dict[str, Operation]:
    return {
        "bare": lambda http: http.get("/bench/bare"),
        "list_jobs": lambda http: http.get("/v1/fine_tuning/jobs", params={"limit": 20}),
        "retrieve_job": lambda http: http.get(f"/v1/fine_tuning/jobs/{job_id}"),
        "list_events": lambda http: http.get(f"/v1/fine_tuning/jobs/{job_id}/events", params={"limit": 20}),
        "upload_file": lambda http: http.post(
            "/v1/files", data={"purpose": "fine-tune"}, files={"file": ("bench.jsonl", UPLOAD)}
        ),
    }


async def drive(base_url: str, key: str, operation: Operation, clients: int, seconds: float) -> dict[str, Any]:
    """`clients` coroutines send requests back to back for `seconds`; latencies of every answer are kept."""
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=120) as http:
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    response = await operation(http)
                    statuses[str(response.status_code)] += 1
                except httpx.HTTPError as error:
                    statuses[type(error).__name__] += 1
                    continue
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    ok = sum(count for status, count in statuses.items() if status.startswith("2"))
    return {
        "clients": clients,
        "requests": sum(statuses.values()),
        "requests_per_second": round(ok / elapsed, 1),
        "seconds": round(elapsed, 3),
        "p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1) if latencies else None,
        "statuses": dict(statuses),
    }


async def seed(
    database_url: str, settings: Any, events_per_job: int = 50, jobs: int = 40, files: int = 1
) -> tuple[str, str]:
    """One user with a key, a base model, `files` file rows and jobs with events: what the read paths return."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.catalog.tables import CatalogEntry
    from app.core import ids
    from app.core.database import create_sessionmaker
    from app.files.tables import File
    from app.jobs.tables import Job, JobEvent
    from app.users import service

    engine = create_async_engine(database_url)
    async with create_sessionmaker(engine)() as session:
        org = await service.create_organization(session, "bench")
        user = await service.create_user(session, org.id, "bench@example.com")
        issued = await service.issue_key(session, settings, user.id, "bench")
        session.add(CatalogEntry(id="bench-model", source="/models/bench", max_seq_length=256, allowed=True,
                                 download_status="ready"))  # fmt: skip
        file_rows = [File(id=ids.file_id(), owner_id=user.id, organization_id=org.id, filename=f"seed-{n}.jsonl",
                          purpose="fine-tune", bytes=len(UPLOAD), sha256="0" * 64, storage_name=f"seed-{n}.jsonl",
                          status="processed", data_format="chat", statistics={"examples": 20},
                          index_status="pending") for n in range(files)]  # fmt: skip
        session.add_all(file_rows)
        await session.flush()
        file_row = file_rows[0]
        job_ids = []
        for n in range(jobs):
            job = Job(id=ids.job_id(), owner_id=user.id, organization_id=org.id, model="bench-model",
                      training_file=file_row.id, method="supervised", hyperparameters={}, seed=n,
                      status="succeeded")  # fmt: skip
            session.add(job)
            await session.flush()
            job_ids.append(job.id)
            session.add_all(JobEvent(id=ids.event_id(), job_id=job.id, message=f"Step {step}: training loss=0.5",
                                     type="metrics", data={"step": step, "train_loss": 0.5})
                            for step in range(events_per_job))  # fmt: skip
        await session.commit()
    await engine.dispose()
    return issued.secret, job_ids[-1]


def start_platform(data_dir: Path, api_env: dict[str, str] | None = None) -> tuple[Any, str, str, str]:
    """Embedded PostgreSQL, Valkey and Cerbos; the user API (with the bare route) on a free port.

    Returns the stack (stop it), the API's URL, a user's key and one of the user's job ids.
    """
    from app.core.config import get_settings
    from app.devstack.processes import free_port

    stack = start_servers(data_dir, WITHOUT_TRACKING)
    key, job_id = asyncio.run(seed(stack.env["DATABASE_URL"], get_settings()))
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "bench.api_load:app", "--host", "127.0.0.1", "--port", str(port),
            "--no-access-log"]  # fmt: skip
    stack.spawn("user-api-bench", argv, {**stack.env, **(api_env or {})})
    _wait_health(f"http://127.0.0.1:{port}")
    return stack, f"http://127.0.0.1:{port}", key, job_id


def _wait_health(url: str) -> None:
    from app.devstack.processes import wait_until

    wait_until(lambda: httpx.get(f"{url}/bench/bare", timeout=3).status_code == 200, 120, url)


async def measure(base_url: str, key: str, job_id: str, levels: list[int], seconds: float) -> list[dict[str, Any]]:
    results = []
    chosen = operations(job_id)
    await drive(base_url, key, chosen["list_jobs"], 4, 2.0)  # warm the pools and caches up
    for clients in levels:
        bare = await drive(base_url, key, chosen["bare"], clients, seconds)
        results.append({"operation": "bare", **bare})
        for name, operation in chosen.items():
            if name == "bare":
                continue
            measured = await drive(base_url, key, operation, clients, seconds)
            measured["rps_ratio_to_bare"] = round(measured["requests_per_second"] / bare["requests_per_second"], 3)
            if measured["p50_ms"] and bare["p50_ms"]:
                measured["p50_ratio_to_bare"] = round(measured["p50_ms"] / bare["p50_ms"], 1)
            results.append({"operation": name, **measured})
            print(json.dumps({"operation": name, **measured}), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="10,50,200", help="comma-separated concurrency levels")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each operation at each level")
    parser.add_argument("--out", type=Path, default=Path("bench/out/api_load.json"))
    args = parser.parse_args()
    levels = [int(level) for level in args.clients.split(",")]
    with tempfile.TemporaryDirectory(prefix="api-load-") as scratch:
        stack, base_url, key, job_id = start_platform(Path(scratch))
        try:
            results = asyncio.run(measure(base_url, key, job_id, levels, args.seconds))
        finally:
            stack.stop()
    write_report(args.out, {**report_head("bench.api_load"), "results": results})


if __name__ == "__main__":
    main()
