"""An authorized read against `/health` of the same process: sequential p50, then throughput at N clients.

    python -m bench.request_path [--baseline PATH] [--code-dir PATH] [--requests 200] [--clients 10]
                                 [--seconds 2] [--rounds 5] [--out bench/out/request_path.json]

Starts its own embedded PostgreSQL, Valkey and Cerbos, seeds one user with jobs and files
(`bench.api_load.seed`) and serves `bench.api_load:app` (the user API plus a bare route) with uvicorn,
one process, from `--code-dir` (default: this checkout). With `--baseline PATH` (another checkout,
e.g. `git archive main | tar -x -C /tmp/before`) a second API process runs that code on the same
servers and data, and every measurement alternates between the two, request by request and slice by
slice: on a shared machine both then see the same moments of load.

1. Sequential: one keep-alive connection per API; `/health`, job retrieve, job list and file list
   interleaved, `--requests` of each; p50 of each and its ratio to that API's `/health` p50 (the
   goal: at most 4x).
2. Throughput: `bench.api_load.drive` with `--clients` clients on the bare route, job retrieve, job
   list and event list, in turn, `--rounds` slices of `--seconds` each; requests/s of each as a share
   of the same API's bare route (the goal: at least 40 % at 10 clients).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import common
from bench.api_load import drive, operations, seed

REPO_ROOT = Path(__file__).resolve().parents[1]
SEQUENTIAL = ("health", "retrieve_job", "list_jobs", "list_files")
THROUGHPUT = ("retrieve_job", "list_jobs", "list_events")


@dataclass
class Api:
    """One API process under test: its code, its URL, and what was measured on it."""

    label: str
    code_dir: Path
    process: Any = None
    url: str = ""
    latencies: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in SEQUENTIAL})
    slices: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {n: [] for n in ("bare", *THROUGHPUT)})


def seeded_servers(data_dir: Path) -> tuple[Any, str, str]:
    """The embedded servers of this checkout, migrated and seeded: (stack, a user's key, one of its job ids)."""
    from app.core.config import get_settings

    stack = common.start_servers(data_dir, common.WITHOUT_TRACKING)
    key, job_id = asyncio.run(seed(stack.env["DATABASE_URL"], get_settings(), files=20))
    return stack, key, job_id


def start_api(stack: Any, api: Api, data_dir: Path) -> None:
    from app.devstack.processes import ManagedProcess, child_env, free_port, wait_until

    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "bench.api_load:app", "--host", "127.0.0.1", "--port", str(port),
            "--no-access-log"]  # fmt: skip
    # `python -m` puts the working directory first on sys.path: the API runs the code of `code_dir`.
    env = child_env({**stack.env, "PYTHONPATH": str(api.code_dir)})
    api.process = ManagedProcess(f"user-api-{api.label}", argv, data_dir / f"user-api-{api.label}.log", env=env,
                                 cwd=api.code_dir).start()  # fmt: skip
    api.url = f"http://127.0.0.1:{port}"
    wait_until(lambda: httpx.get(f"{api.url}/health", timeout=3).status_code == 200, 120, api.url, api.process)


def sequential(apis: list[Api], key: str, job_id: str, requests: int) -> None:
    """Each operation `requests` times per API over one keep-alive connection each, all interleaved."""
    paths: dict[str, Callable[[httpx.Client], httpx.Response]] = {
        "health": lambda http: http.get("/health"),
        "retrieve_job": lambda http: http.get(f"/v1/fine_tuning/jobs/{job_id}"),
        "list_jobs": lambda http: http.get("/v1/fine_tuning/jobs", params={"limit": 20}),
        "list_files": lambda http: http.get("/v1/files"),
    }
    headers = {"Authorization": f"Bearer {key}"}
    clients = [httpx.Client(base_url=api.url, headers=headers, timeout=30) for api in apis]
    try:
        for round_number in range(requests + 20):  # the first 20 rounds warm the pools and caches up
            for api, http in zip(apis, clients, strict=True):
                for name in SEQUENTIAL:
                    started = time.perf_counter()
                    paths[name](http).raise_for_status()
                    if round_number >= 20:
                        api.latencies[name].append(time.perf_counter() - started)
    finally:
        for http in clients:
            http.close()


async def throughput(apis: list[Api], key: str, job_id: str, clients: int, seconds: float, rounds: int) -> None:
    """`rounds` slices of `seconds` of each operation on each API, taken in turn."""
    chosen = operations(job_id)
    for api in apis:
        await drive(api.url, key, chosen["list_jobs"], 4, 2.0)  # warm-up
    for _ in range(rounds):
        for api in apis:
            for name in api.slices:
                api.slices[name].append(await drive(api.url, key, chosen[name], clients, seconds))


def summary(api: Api, clients: int) -> dict[str, Any]:
    health = statistics.median(api.latencies["health"])
    latency = {
        name: {
            "p50_ms": round(1000 * statistics.median(values), 2),
            "ratio_to_health": round(statistics.median(values) / health, 2),
        }
        for name, values in api.latencies.items()
    }
    load = {name: _combined(slices) for name, slices in api.slices.items()}
    for name in THROUGHPUT:
        load[name]["rps_ratio_to_bare"] = round(
            load[name]["requests_per_second"] / load["bare"]["requests_per_second"], 3
        )
    return {"code_dir": str(api.code_dir), "commit": git_commit(api.code_dir), "sequential": latency,
            "throughput": {"clients": clients, **load}}  # fmt: skip


def _combined(slices: list[dict[str, Any]]) -> dict[str, Any]:
    ok = sum(count for measured in slices for status, count in measured["statuses"].items() if status.startswith("2"))
    statuses: dict[str, int] = {}
    for measured in slices:
        for status, count in measured["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    return {
        "requests_per_second": round(ok / sum(measured["seconds"] for measured in slices), 1),
        "p50_ms_of_slices": sorted(measured["p50_ms"] for measured in slices if measured["p50_ms"]),
        "statuses": statuses,
    }


def git_commit(code_dir: Path) -> str | None:
    found = subprocess.run(["git", "-C", str(code_dir), "rev-parse", "HEAD"], capture_output=True, text=True)
    return found.stdout.strip() or None


def measure(apis: list[Api], args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="request-path-") as scratch:
        stack, key, job_id = seeded_servers(Path(scratch))
        try:
            for api in apis:
                start_api(stack, api, Path(scratch))
            sequential(apis, key, job_id, args.requests)
            asyncio.run(throughput(apis, key, job_id, args.clients, args.seconds, args.rounds))
        except httpx.HTTPStatusError:
            for api in apis:  # why an API refused
                print(f"--- {api.label}:", api.process.log_path.read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            for api in apis:
                if api.process is not None:
                    api.process.stop()
            stack.stop()
    return {api.label: summary(api, args.clients) for api in apis}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="sequential requests of each operation")
    parser.add_argument("--clients", type=int, default=10, help="concurrent clients of the throughput part")
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of one slice of one operation")
    parser.add_argument("--rounds", type=int, default=5, help="slices of each operation, taken in turn")
    parser.add_argument("--code-dir", type=Path, default=REPO_ROOT, help="checkout whose app/ the API runs")
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout, measured alongside")
    parser.add_argument("--out", type=Path, default=Path("bench/out/request_path.json"))
    args = parser.parse_args()
    apis = [Api("candidate", args.code_dir.resolve())]
    if args.baseline is not None:
        apis.insert(0, Api("baseline", args.baseline.resolve()))
    results = measure(apis, args)
    common.write_report(args.out, {**common.report_head("bench.request_path"), **results})


if __name__ == "__main__":
    main()
