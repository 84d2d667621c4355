"""Upload + validation throughput of a 1 GB JSONL file, against raw `json.loads` per line in the same run.

    python -m bench.validation_throughput [--gigabytes 1.0] [--out bench/out/validation_throughput.json]

The file is written to disk line by line (never held in memory): chat examples of 2-6 messages
with seeded random text, 0.3-3 KB each. Three figures, one run:

- raw: read the file and `json.loads` every line, nothing else (best of two passes; the floor for any JSONL check);
- validator: the upload's `StreamingValidator` fed 1 MiB chunks in this process (every rule of
  every line: roles, order, types, weights, lengths, UTF-8, depth);
- API: the file streamed through `POST /v1/files` of a real user API (multipart parsing, SHA-256,
  writing to storage, validation, the database row), timed by the client, with the API process's
  resident memory sampled every 20 ms (psutil) to show it does not grow with the file.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.api_load import start_platform
from bench.common import report_head, write_report
from bench.rss import RssWatch

MiB = 2**20
WORDS = [
    "the", "model", "answers", "every", "question", "with", "care", "and", "a", "short", "clear", "sentence",
    "about", "rivers", "light", "numbers", "colors", "animals", "cities", "history", "science", "music", "food",
    "travel", "weather", "sport", "code", "data",
]  # fmt: skip
ROLES_AFTER_SYSTEM = ("user", "assistant")


def example(rng: random.Random) -> dict[str, Any]:
    turns = rng.randint(1, 3)
    messages = [{"role": "system", "content": "You are a helpful assistant."}] if rng.random() < 0.5 else []
    for _ in range(turns):
        for role in ROLES_AFTER_SYSTEM:
            messages.append({"role": role, "content": " ".join(rng.choices(WORDS, k=rng.randint(10, 120)))})
    return {"messages": messages}


def write_dataset(path: Path, size: int, seed: int = 7) -> tuple[int, int]:
    """Write at least `size` bytes of JSONL; a pool of distinct lines keeps generation off the clock."""
    rng = random.Random(seed)
    pool = [(json.dumps(example(rng)) + "\n").encode() for _ in range(20_000)]
    written = lines = 0
    with path.open("wb") as sink:
        while written < size:
            line = pool[lines % len(pool)]
            sink.write(line)
            written += len(line)
            lines += 1
    return written, lines


def raw_json_loads(path: Path) -> float:
    """`json.loads` of every line, read in the validator's 1 MiB chunks: the cheapest complete parse."""
    started = time.perf_counter()
    carry = b""
    with path.open("rb") as source:
        while chunk := source.read(MiB):
            *lines, carry = (carry + chunk).split(b"\n")
            for line in lines:
                json.loads(line)
    if carry.strip():
        json.loads(carry)
    return time.perf_counter() - started


def validator_in_process(path: Path) -> tuple[float, bool]:
    from app.files.validation import StreamingValidator, ValidationLimits

    validator = StreamingValidator(ValidationLimits(max_lines=100_000_000))
    started = time.perf_counter()
    with path.open("rb") as source:
        while chunk := source.read(MiB):
            validator.feed(chunk)
    report = validator.finish()
    return time.perf_counter() - started, report.ok


def multipart_from(path: Path, boundary: str) -> Iterator[bytes]:
    yield f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'.encode()
    yield f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n\r\n'.encode()
    with path.open("rb") as source:
        while chunk := source.read(MiB):
            yield chunk
    yield f"\r\n--{boundary}--\r\n".encode()


def upload_through_api(path: Path, scratch: Path) -> dict[str, Any]:
    limits = {"MAX_UPLOAD_BYTES": str(4 * 2**30), "MAX_LINES": "100000000"}
    stack, base_url, key, _ = start_platform(scratch / "platform", api_env=limits)
    try:
        api = next(process for process in stack.processes if process.name == "user-api-bench")
        boundary = "throughput-boundary-91c2"
        headers = {"Authorization": f"Bearer {key}", "Content-Type": f"multipart/form-data; boundary={boundary}"}
        with RssWatch(api.pid) as memory:
            started = time.perf_counter()
            response = httpx.post(f"{base_url}/v1/files", content=multipart_from(path, boundary), headers=headers,
                                  timeout=3600)  # fmt: skip
            seconds = time.perf_counter() - started
    finally:
        stack.stop()
    assert response.status_code == 200, response.text[:2000]
    assert response.json()["bytes"] == path.stat().st_size
    return {"seconds": round(seconds, 2), "api_rss_baseline_mib": round(memory.baseline / MiB, 1),
            "api_rss_peak_mib": round(memory.peak / MiB, 1),
            "api_rss_growth_mib": round((memory.peak - memory.baseline) / MiB, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=Path("bench/out/validation_throughput.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="validation-throughput-") as scratch:
        path = Path(scratch) / "big.jsonl"
        size, lines = write_dataset(path, int(args.gigabytes * 10**9))
        megabytes = size / 10**6
        first_raw = raw_json_loads(path)
        validated, ok = validator_in_process(path)
        raw = min(first_raw, raw_json_loads(path))  # best of two, before and after: the page cache is warm for both
        assert ok, "the generated file must be valid"
        api = upload_through_api(path, Path(scratch))
    report = {
        **report_head("bench.validation_throughput"),
        "file_bytes": size,
        "lines": lines,
        "mb_per_second": {
            "raw_json_loads": round(megabytes / raw, 1),
            "validator_in_process": round(megabytes / validated, 1),
            "api_upload_and_validation": round(megabytes / api["seconds"], 1),
        },
        "seconds": {
            "raw_json_loads": round(raw, 2),
            "validator_in_process": round(validated, 2),
            "api_upload_and_validation": api["seconds"],
        },
        "ratio_to_raw_json_loads": {
            "validator_in_process": round(raw / validated, 3),
            "api_upload_and_validation": round(raw / api["seconds"], 3),
        },
        "api_memory": {key: value for key, value in api.items() if key != "seconds"},
    }
    write_report(args.out, report)


if __name__ == "__main__":
    main()
