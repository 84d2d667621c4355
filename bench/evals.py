"""Evaluation throughput: items/s through an eval run against raw engine calls for the same items.

    python -m bench.evals [--items 64] [--rounds 2] [--max-tokens 32] [--out bench/out/evals.json]

Starts its own embedded PostgreSQL, Valkey and Cerbos, the tiny model on one vLLM engine (the CPU
build), the user API and an `evals` worker pointed at it (bench/serving.py's `start_platform`).
Each round sends the same items twice, alternating: straight to the engine (EVAL_CONCURRENCY
requests in flight, no grading, nothing stored), and as a `completions` eval run created through
`/v1/evals` (the queue, the worker's batches, a string_check and a fuzzy_match grade per item, every
output item stored), timed from the create call until the run reads `completed`. Reported: items/s
of each and their ratio, measured in the same run: on this shared machine read the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import report_head, write_report
from bench.serving import SERVED, start_platform

CONCURRENCY = 16
CRITERIA = [
    {"type": "string_check", "name": "mentions the river", "input": "{{sample.output_text}}", "reference": "river",
     "operation": "ilike"},
    {"type": "text_similarity", "name": "close to the topic", "input": "{{sample.output_text}}",
     "reference": "{{item.topic}}", "evaluation_metric": "fuzzy_match", "pass_threshold": 0.5},
]  # fmt: skip


def items(count: int) -> list[dict[str, Any]]:
    return [{"item": {"topic": f"a river, a robot and garden number {index}"}} for index in range(count)]


def prompt(item: dict[str, Any]) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Tell me a story about {item['topic']}."}]


async def raw_calls(engine: str, rows: list[dict[str, Any]], max_tokens: int) -> float:
    """Seconds to answer every item straight from the engine, CONCURRENCY at a time."""
    limit = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(timeout=600) as http:

        async def one(row: dict[str, Any]) -> None:
            async with limit:
                body = {"model": SERVED, "messages": prompt(row["item"]), "temperature": 0, "max_tokens": max_tokens}
                (await http.post(f"{engine}/v1/chat/completions", json=body)).raise_for_status()

        began = time.perf_counter()
        await asyncio.gather(*(one(row) for row in rows))
        return time.perf_counter() - began


def eval_run(api: str, key: str, eval_id: str, rows: list[dict[str, Any]], max_tokens: int) -> tuple[float, dict]:
    """Seconds from creating a completions run of the items until it has completed, and its counts."""
    headers = {"Authorization": f"Bearer {key}"}
    data_source = {
        "type": "completions",
        "model": SERVED,
        "input_messages": {"type": "template", "template": [
            {"role": "user", "content": "Tell me a story about {{item.topic}}."}]},
        "sampling_params": {"temperature": 0, "max_completion_tokens": max_tokens},
        "source": {"type": "file_content", "content": rows},
    }  # fmt: skip
    began = time.perf_counter()
    created = httpx.post(f"{api}/v1/evals/{eval_id}/runs", json={"data_source": data_source}, headers=headers,
                         timeout=60)  # fmt: skip
    created.raise_for_status()
    run_id = created.json()["id"]
    while True:
        run = httpx.get(f"{api}/v1/evals/{eval_id}/runs/{run_id}", headers=headers, timeout=60).json()
        if run["status"] not in ("queued", "in_progress"):
            break
        time.sleep(0.1)
    elapsed = time.perf_counter() - began
    if run["status"] != "completed":
        raise RuntimeError(f"eval run {run_id} ended {run['status']}: {run['error']}")
    return elapsed, run["result_counts"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("bench/out/evals.json"))
    args = parser.parse_args()
    rows = items(args.items)
    with tempfile.TemporaryDirectory(prefix="evals-bench-") as scratch:
        stack, api, engine, key, _api_pid = start_platform(Path(scratch))
        try:
            worker_env = {"INFERENCE_ENGINES": json.dumps({SERVED: engine}), "EVAL_CONCURRENCY": str(CONCURRENCY),
                          "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}  # fmt: skip
            stack.start_worker("evals", worker_env)
            headers = {"Authorization": f"Bearer {key}"}
            config = {"type": "custom", "item_schema": {"type": "object", "properties": {"topic": {"type": "string"}}}}
            body = {"name": "bench", "data_source_config": config, "testing_criteria": CRITERIA}
            created = httpx.post(f"{api}/v1/evals", json=body, headers=headers, timeout=60)
            created.raise_for_status()
            eval_id = created.json()["id"]
            eval_run(api, key, eval_id, rows[:4], args.max_tokens)  # warm up: the worker's imports, the engine
            measured: dict[str, list[float]] = {"engine": [], "eval_run": []}
            counts: dict[str, int] = {}
            for _ in range(args.rounds):
                measured["engine"].append(asyncio.run(raw_calls(engine, rows, args.max_tokens)))
                seconds, counts = eval_run(api, key, eval_id, rows, args.max_tokens)
                measured["eval_run"].append(seconds)
        finally:
            stack.stop()
    engine_rate = args.items / statistics.mean(measured["engine"])
    run_rate = args.items / statistics.mean(measured["eval_run"])
    report = {
        **report_head("bench.evals"),
        "items": args.items,
        "seconds": {name: [round(value, 2) for value in values] for name, values in measured.items()},
        "engine_items_per_second": round(engine_rate, 2),
        "eval_run_items_per_second": round(run_rate, 2),
        "eval_run_to_engine_ratio": round(run_rate / engine_rate, 3),
        "last_result_counts": counts,
    }
    write_report(args.out, report)


if __name__ == "__main__":
    main()
