"""An authorized read against `/health` of the same process: sequential p50, then throughput at N clients.

    python -m bench.request_path [--requests 200] [--clients 10] [--seconds 2] [--rounds 5]
                                 [--code-dir PATH] [--out bench/out/request_path.json]

Starts its own embedded PostgreSQL, Valkey and Cerbos, seeds one user with jobs and files
(`bench.api_load.seed`) and serves `bench.api_load:app` (the user API plus a bare route) with uvicorn,
one process, from `--code-dir` (default: this checkout). Pointing `--code-dir` at another checkout
(e.g. `git archive main | tar -x -C /tmp/before`) measures that code with the same servers, data and
driver, which is how the "before" figures of docs/evidence.md were taken.

1. Sequential: one keep-alive connection; `/health`, job retrieve, job list and file list interleaved,
   `--requests` of each; p50 of each and its ratio to `/health`'s (the goal: at most 4x).
2. Throughput: `bench.api_load.drive` with `--clients` clients on the bare route, job retrieve, job
   list and event list, in turn, `--rounds` slices of `--seconds` each; requests/s of each as a share
   of the bare route's (the goal: at least 40 % at 10 clients).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.api_load import drive, operations, seed

REPO_ROOT = Path(__file__).resolve().parents[1]
SEQUENTIAL = ("health", "retrieve_job", "list_jobs", "list_files")
THROUGHPUT = ("retrieve_job", "list_jobs", "list_events")


def start_platform(data_dir: Path, code_dir: Path) -> tuple[Any, Any, str, str, str]:
    """Servers from this checkout; the API process from `code_dir`. Returns (stack, api, url, key, job id)."""
    from app.core.config import get_settings
    from app.core.migrations import upgrade_head
    from app.devstack.processes import ManagedProcess, child_env, free_port, wait_until
    from app.devstack.stack import Ports, Stack

    unused = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9", "QDRANT_URL": "http://127.0.0.1:9"}
    stack = Stack(data_dir=data_dir, ports=Ports.free(), environment="development", configured=unused)
    env = stack.start_servers()
    os.environ.update(env)
    get_settings.cache_clear()
    upgrade_head(env["DATABASE_URL"])
    key, job_id = asyncio.run(seed(env["DATABASE_URL"], get_settings(), files=20))
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "bench.api_load:app", "--host", "127.0.0.1", "--port", str(port),
            "--no-access-log"]  # fmt: skip
    # `python -m` puts the working directory first on sys.path: the API runs the code of `code_dir`.
    api = ManagedProcess("user-api-bench", argv, data_dir / "user-api-bench.log",
                         env=child_env({**stack.env, "PYTHONPATH": str(code_dir)}), cwd=code_dir).start()  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: httpx.get(f"{url}/health", timeout=3).status_code == 200, 120, url, api)
    return stack, api, url, key, job_id


def sequential(url: str, key: str, job_id: str, requests: int) -> dict[str, dict[str, float]]:
    """Each operation `requests` times over one keep-alive connection, interleaved so drift hits all alike."""
    paths: dict[str, Callable[[httpx.Client], httpx.Response]] = {
        "health": lambda http: http.get("/health"),
        "retrieve_job": lambda http: http.get(f"/v1/fine_tuning/jobs/{job_id}"),
        "list_jobs": lambda http: http.get("/v1/fine_tuning/jobs", params={"limit": 20}),
        "list_files": lambda http: http.get("/v1/files"),
    }
    latencies: dict[str, list[float]] = {name: [] for name in SEQUENTIAL}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        for _ in range(20):  # warm the pools (database, Cerbos, the key cache) up
            for name in SEQUENTIAL:
                paths[name](http).raise_for_status()
        for _ in range(requests):
            for name in SEQUENTIAL:
                started = time.perf_counter()
                paths[name](http).raise_for_status()
                latencies[name].append(time.perf_counter() - started)
    health = statistics.median(latencies["health"])
    return {
        name: {
            "p50_ms": round(1000 * statistics.median(values), 2),
            "ratio_to_health": round(statistics.median(values) / health, 2),
        }
        for name, values in latencies.items()
    }


async def throughput(
    url: str, key: str, job_id: str, clients: int, seconds: float, rounds: int
) -> dict[str, dict[str, Any]]:
    """Requests/s of each operation, measured in `rounds` interleaved slices of `seconds` each.

    On a shared machine the load moves by the second; slices taken in turn give every operation,
    the bare route included, the same share of quiet and busy moments.
    """
    chosen = operations(job_id)
    await drive(url, key, chosen["list_jobs"], 4, 2.0)  # warm-up
    slices: dict[str, list[dict[str, Any]]] = {name: [] for name in ("bare", *THROUGHPUT)}
    for _ in range(rounds):
        for name in slices:
            slices[name].append(await drive(url, key, chosen[name], clients, seconds))
    results = {name: _combined(measured) for name, measured in slices.items()}
    for name in THROUGHPUT:
        share = results[name]["requests_per_second"] / results["bare"]["requests_per_second"]
        results[name]["rps_ratio_to_bare"] = round(share, 3)
    return results


def _combined(slices: list[dict[str, Any]]) -> dict[str, Any]:
    ok = sum(count for measured in slices for status, count in measured["statuses"].items() if status.startswith("2"))
    elapsed = sum(measured["seconds"] for measured in slices)
    statuses: dict[str, int] = {}
    for measured in slices:
        for status, count in measured["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    return {
        "requests_per_second": round(ok / elapsed, 1),
        "p50_ms_of_slices": sorted(measured["p50_ms"] for measured in slices if measured["p50_ms"]),
        "statuses": statuses,
    }


def git_commit(code_dir: Path) -> str | None:
    found = subprocess.run(["git", "-C", str(code_dir), "rev-parse", "HEAD"], capture_output=True, text=True)
    return found.stdout.strip() or None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="sequential requests of each operation")
    parser.add_argument("--clients", type=int, default=10, help="concurrent clients of the throughput part")
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of one slice of one operation")
    parser.add_argument("--rounds", type=int, default=5, help="slices of each operation, taken in turn")
    parser.add_argument("--code-dir", type=Path, default=REPO_ROOT, help="checkout whose app/ the API runs")
    parser.add_argument("--out", type=Path, default=Path("bench/out/request_path.json"))
    args = parser.parse_args()
    code_dir = args.code_dir.resolve()
    with tempfile.TemporaryDirectory(prefix="request-path-") as scratch:
        stack, api, url, key, job_id = start_platform(Path(scratch), code_dir)
        try:
            latency = sequential(url, key, job_id, args.requests)
            print(json.dumps({"sequential": latency}), flush=True)
            load = asyncio.run(throughput(url, key, job_id, args.clients, args.seconds, args.rounds))
        except httpx.HTTPStatusError:
            print(api.log_path.read_text()[-4000:], file=sys.stderr)  # why the API refused
            raise
        finally:
            api.stop()
            stack.stop()
    report = {"command": " ".join(["python -m bench.request_path", *sys.argv[1:]]), "code_dir": str(code_dir),
              "commit": git_commit(code_dir), "cpus": os.cpu_count(), "load_average_at_end": os.getloadavg(),
              "sequential": latency, "throughput": {"clients": args.clients, **load}}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
