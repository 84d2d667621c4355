"""Serving overhead: tokens/s and time to first token through the user API, against the same engine directly.

    python -m bench.serving [--streams 1,16] [--seconds 15] [--rounds 2] [--max-tokens 64]
                            [--engine-cpus 0] [--out bench/out/serving.json]

Starts its own embedded PostgreSQL, Valkey and Cerbos on free ports, builds the tiny model, starts
one vLLM engine (the CPU build, from .venv-vllm) serving it and the user API pointed at that
engine. At each level, N streams send streamed chat completions back to back for a fixed time,
once straight to the engine and once through `/v1/chat/completions` (key check, Cerbos, the
database, usage recording, the SSE re-encoding), alternating for `--rounds` rounds. Greedy
decoding of one prompt makes both paths generate the same tokens. Reported: completion tokens per
second over the window, time to first token (p50, p90), the user API's ratio to the engine's, and
the CPU time the user API process spent per 1000 tokens it relayed (what an API replica costs per
token wherever the engine runs; on a GPU host that, not the cores it shares here, sets how many
streams one API process can carry). On this shared 2-core machine the API process competes with
the engine for the same cores: read the ratios, measured in the same run, rather than the absolute
figures.

`--engine-cpus 0` gives the engine CPU 0 alone and everything else (the servers, the user API,
this driver) the other CPUs, as on a GPU host, where the engine computes on its GPU and the API's
CPU time does not slow it down: the ratio then measures what the relay itself costs a stream
(latency, and whether one API process keeps up), not the cores it takes from the engine.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.common import WITHOUT_TRACKING, report_head, start_servers, write_report

SERVED = "tiny-llama-bench"
PROMPT = [{"role": "user", "content": "Tell me a story about a river, a robot and a garden."}]


async def one_stream(http: httpx.AsyncClient, url: str, body: dict[str, Any]) -> tuple[float, int]:
    """(seconds to the first content token, completion tokens) of one streamed request."""
    started = time.perf_counter()
    first: float | None = None
    tokens = 0
    async with http.stream("POST", url, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if first is None and any(choice["delta"].get("content") for choice in chunk["choices"]):
                first = time.perf_counter() - started
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    return (first if first is not None else time.perf_counter() - started), tokens


def cpu_seconds(process: psutil.Process | None) -> float:
    if process is None:
        return 0.0
    times = process.cpu_times()
    return float(times.user + times.system)


async def drive(url: str, headers: dict[str, str], model: str, streams: int, seconds: float,
                max_tokens: int, relay: psutil.Process | None = None) -> dict[str, Any]:  # fmt: skip
    body = {"model": model, "messages": PROMPT, "stream": True, "stream_options": {"include_usage": True},
            "temperature": 0, "max_tokens": max_tokens}  # fmt: skip
    first_tokens: list[float] = []
    total_tokens = 0
    limits = httpx.Limits(max_connections=streams, max_keepalive_connections=streams)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=300) as http:
        await one_stream(http, url, body)  # warm the connection (and, through the API, the caches) up
        deadline = time.perf_counter() + seconds

        async def stream_loop() -> None:
            nonlocal total_tokens
            while time.perf_counter() < deadline:
                ttft, tokens = await one_stream(http, url, body)
                first_tokens.append(ttft)
                total_tokens += tokens

        began, relay_began = time.perf_counter(), cpu_seconds(relay)
        await asyncio.gather(*(stream_loop() for _ in range(streams)))
        elapsed, relay_cpu = time.perf_counter() - began, cpu_seconds(relay) - relay_began
    first_tokens.sort()
    return {
        "streams": streams,
        "requests": len(first_tokens),
        "tokens_per_second": round(total_tokens / elapsed, 1),
        "ttft_p50_ms": round(1000 * statistics.median(first_tokens), 1),
        "ttft_p90_ms": round(1000 * first_tokens[int(0.9 * (len(first_tokens) - 1))], 1),
        # The user API's CPU per 1000 relayed tokens (0 for the engine path: no relay).
        "relay_cpu_ms_per_1k_tokens": round(1e6 * relay_cpu / max(total_tokens, 1), 1),
    }


def _answers(url: str) -> bool:
    return httpx.get(url, timeout=5).status_code == 200


def start_platform(data_dir: Path, engine_cpus: set[int] | None = None) -> tuple[Any, str, str, str, int]:
    """Servers, the tiny model in the catalog, a user's key, the engine and the user API:
    (stack, api, engine, key, the API's pid). With `engine_cpus`, the engine runs on those CPUs
    alone and every other process on the rest (a child inherits its parent's CPUs)."""
    from app.core.config import get_settings
    from app.devstack.processes import free_port, wait_until
    from app.training.tiny_model import build_tiny_model

    everything = os.sched_getaffinity(0)
    rest = everything - engine_cpus if engine_cpus else everything
    os.sched_setaffinity(0, rest)
    stack = start_servers(data_dir, WITHOUT_TRACKING)
    model = build_tiny_model(data_dir / "tiny-llama")
    key = asyncio.run(seed(stack.env["DATABASE_URL"], get_settings(), model))
    engine = f"http://127.0.0.1:{stack.ports.inference}"
    if engine_cpus:
        os.environ["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(str(cpu) for cpu in sorted(engine_cpus))
        os.sched_setaffinity(0, engine_cpus)
    stack.start_inference(SERVED, model, stack.ports.inference)
    os.sched_setaffinity(0, rest)
    api_port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "app.api.user_app:app", "--host", "127.0.0.1", "--port", str(api_port),
            "--no-access-log"]  # fmt: skip
    api_process = stack.spawn("user-api-bench", argv, {**stack.env, "INFERENCE_ENGINES": json.dumps({SERVED: engine})})
    api = f"http://127.0.0.1:{api_port}"
    # Not /ready: MLflow and Qdrant are not started for this bench.
    for url in (f"{engine}/health", f"{api}/health"):
        wait_until(functools.partial(_answers, url), 600, url)
    return stack, api, engine, key, api_process.pid


async def seed(database_url: str, settings: Any, model: Path) -> str:
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.catalog.tables import CatalogEntry
    from app.core.database import create_sessionmaker
    from app.users import service

    engine = create_async_engine(database_url)
    async with create_sessionmaker(engine)() as session:
        org = await service.create_organization(session, "bench")
        user = await service.create_user(session, org.id, "bench@example.com")
        issued = await service.issue_key(session, settings, user.id, "bench")
        session.add(CatalogEntry(id=SERVED, source=str(model), max_seq_length=512, allowed=True,
                                 download_status="ready"))  # fmt: skip
        await session.commit()
    await engine.dispose()
    return issued.secret


async def measure(api: str, engine: str, key: str, api_pid: int, levels: list[int], seconds: float, rounds: int,
                  max_tokens: int) -> list[dict[str, Any]]:  # fmt: skip
    relay = psutil.Process(api_pid)
    paths = {
        "engine": (f"{engine}/v1/chat/completions", {}, None),
        "user_api": (f"{api}/v1/chat/completions", {"Authorization": f"Bearer {key}"}, relay),
    }
    results = []
    for streams in levels:
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in paths}
        for _ in range(rounds):
            for name, (url, headers, process) in paths.items():
                runs[name].append(await drive(url, headers, SERVED, streams, seconds, max_tokens, process))
        row: dict[str, Any] = {"streams": streams}
        for name, measured in runs.items():
            row[name] = {key: round(statistics.mean(run[key] for run in measured), 1)
                         for key in ("tokens_per_second", "ttft_p50_ms", "ttft_p90_ms", "requests",
                                     "relay_cpu_ms_per_1k_tokens")}  # fmt: skip
        api_path, engine_path = row["user_api"], row["engine"]
        row["tokens_per_second_ratio"] = round(api_path["tokens_per_second"] / engine_path["tokens_per_second"], 3)
        row["ttft_p50_overhead_ms"] = round(api_path["ttft_p50_ms"] - engine_path["ttft_p50_ms"], 1)
        print(json.dumps(row), flush=True)
        results.append(row)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", default="1,16", help="comma-separated numbers of concurrent streams")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each measurement window")
    parser.add_argument("--rounds", type=int, default=2, help="engine/API alternations per level")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--engine-cpus", default="", help="CPUs of the engine alone, e.g. 0 (default: shared)")
    parser.add_argument("--out", type=Path, default=Path("bench/out/serving.json"))
    args = parser.parse_args()
    levels = [int(level) for level in args.streams.split(",")]
    with tempfile.TemporaryDirectory(prefix="serving-bench-") as scratch:
        engine_cpus = {int(cpu) for cpu in args.engine_cpus.split(",") if cpu}
        stack, api, engine, key, api_pid = start_platform(Path(scratch), engine_cpus or None)
        try:
            measured = measure(api, engine, key, api_pid, levels, args.seconds, args.rounds, args.max_tokens)
            results = asyncio.run(measured)
        finally:
            stack.stop()
    write_report(args.out, {**report_head("bench.serving"), "engine_cpus": sorted(engine_cpus) or "shared",
                            "results": results})  # fmt: skip


if __name__ == "__main__":
    main()
