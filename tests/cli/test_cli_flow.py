"""The whole user journey through `finetune`: estimate, create, watch (through dropped connections), download."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from sqlalchemy import select

from tests.cli.conftest import Cli, chat_examples
from tests.cli.proxy import DroppingProxy

pytestmark = pytest.mark.slow

HYPERPARAMETERS = ["--epochs", "2", "--batch-size", "4", "--lora-r", "4", "--lora-alpha", "8"]
HYPERPARAMETERS += ["--max-seq-length", "128"]


def _explain(watched: list[str], recorded: list[str]) -> str:
    missing = [(index, event_id) for index, event_id in enumerate(recorded) if event_id not in watched]
    extra = [event_id for event_id in watched if event_id not in recorded]
    return f"missing (index in record, id): {missing}; unknown: {extra}; watched {watched}; recorded {recorded}"


def _search_works(cli: Cli, file_id: str) -> None:
    """Semantic search over a file, once the CPU worker has indexed it."""
    deadline = time.monotonic() + 120
    while cli.json("files", "show", file_id)["index_status"] != "indexed":
        assert time.monotonic() < deadline, "the file was never indexed"
        time.sleep(1)
    found = cli.json("files", "search", file_id, "What is 4 plus 5?", "--limit", "3")
    assert len(found["data"]) == 3 and all(1 <= hit["line"] <= 20 for hit in found["data"])
    human = cli("files", "search", file_id, "What is 4 plus 5?", "--limit", "3")
    assert human.exit_code == 0 and "LINE" in human.stdout and "SCORE" in human.stdout and "plus" in human.stdout


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_estimate_create_watch_download(  # type: ignore[no-untyped-def]
    cli: Cli, tiny_model: str, cpu_worker, gpu_worker, write_jsonl, sessionmaker, tmp_path: Path
) -> None:
    train = write_jsonl("train.jsonl", chat_examples(20))
    valid = write_jsonl("valid.jsonl", chat_examples(6, offset=100))
    common = ["jobs", "create", "--model", tiny_model, *HYPERPARAMETERS]

    # --estimate uploads the local files, then only estimates.
    estimate = cli.json(*common, "--train", str(train), "--validation", str(valid), "--estimate")
    assert (estimate["training_examples"], estimate["validation_examples"]) == (20, 6)
    assert estimate["training_tokens"] > 0 and estimate["total_steps"] > 0 and estimate["estimated_seconds"] > 0
    resolved = estimate["hyperparameters"]
    assert (resolved["n_epochs"], resolved["batch_size"], resolved["lora_r"], resolved["lora_alpha"]) == (2, 4, 4, 8)
    assert cli.json("jobs", "list")["data"] == []
    files = {file["filename"]: file["id"] for file in cli.json("files", "list")["data"]}
    _search_works(cli, files["train.jsonl"])
    human = cli(*common, "--train", files["train.jsonl"], "--estimate")
    assert human.exit_code == 0 and "Resolved hyperparameters" in human.stdout and "estimated time" in human.stdout

    job = cli.json(*common, "--train", files["train.jsonl"], "--validation", files["valid.jsonl"],
                   "--suffix", "cli", "--seed", "7", "--metadata", "team=cli")  # fmt: skip
    assert job["status"] in ("validating_files", "queued") and job["metadata"] == {"team": "cli"}
    assert job["method"]["supervised"]["hyperparameters"]["lora_r"] == 4

    # Watch through a proxy that cuts the event stream twice, mid-event.
    proxy = DroppingProxy(upstream_port=urlparse(cli.base_url).port or 80, cut_after_bytes=1500, drops=2)
    try:
        watched = cli("--base-url", proxy.url, "jobs", "watch", job["id"], "--json")
    finally:
        proxy.close()
    assert watched.exit_code == 0, watched.output
    lines = [json.loads(line) for line in watched.stdout.splitlines()]
    events, final = lines[:-1], lines[-1]
    assert final["object"] == "fine_tuning.job" and final["status"] == "succeeded"
    assert proxy.cuts == 2 and "reconnecting" in watched.stderr
    assert any("last-event-id: ftevent-" in request.lower() for request in proxy.requests)
    listed = list(reversed(cli.json("jobs", "events", job["id"], "--limit", "1000")["data"]))
    # The job's events up to its end; after it, the comparison with its base (docs/evals.md) may add its own.
    last = next(index for index, event in enumerate(listed) if event["message"] == "The job has successfully completed")
    recorded = [event["id"] for event in listed[: last + 1]]
    watched_ids = [event["id"] for event in events]
    assert len(watched_ids) == len(set(watched_ids)), "an event was shown twice"
    assert set(recorded) <= set(watched_ids) <= {event["id"] for event in listed}, _explain(watched_ids, recorded)
    steps = [event["data"]["step"] for event in events if event["type"] == "metrics" and "train_loss" in event["data"]]
    assert steps and steps[-1] == estimate["total_steps"]

    # The finished job, watched again in plain mode: the full view and the exit code.
    plain = cli("jobs", "watch", job["id"], "--plain")
    assert plain.exit_code == 0, plain.output
    total = estimate["total_steps"]
    assert f"step {total}/{total}" in plain.stdout and "100%" in plain.stdout and "succeeded" in plain.stdout
    assert any(block in plain.stdout for block in "▁▂▃▄▅▆▇█")
    live = cli("jobs", "watch", job["id"], "--live")  # not a terminal: the live view is printed once, at the end
    assert live.exit_code == 0 and live.stdout.count(f"step {total}/{total}") == 1 and "Job " in live.stdout
    model = final["fine_tuned_model"]
    assert model.startswith(f"ft:{tiny_model}:") and f"Fine-tuned model: {model}" in plain.stdout

    # Download the adapter: every file matches the manifest, a second run keeps what is there.
    target = tmp_path / "adapter"
    downloaded = cli.json("models", "download", model, str(target))
    manifest = downloaded["files"]
    assert manifest and all(entry["status"] == "downloaded" for entry in manifest)
    for entry in manifest:
        assert _sha256(target / entry["path"]) == entry["sha256"]
    on_disk = {str(path.relative_to(target)) for path in target.rglob("*") if path.is_file()}
    assert on_disk == {entry["path"] for entry in manifest} | {"manifest.json"}
    again = cli.json("models", "download", model, str(target))
    assert all(entry["status"] == "present" for entry in again["files"])

    # Damage one file on the server: the download must fail loudly and keep nothing of it.
    from app.finetuned.tables import FineTunedModel

    async with sessionmaker() as session:
        adapter_path = await session.scalar(select(FineTunedModel.adapter_path).where(FineTunedModel.id == model))
    victim = max(manifest, key=lambda entry: entry["bytes"])
    with (Path(adapter_path) / victim["path"]).open("r+b") as handle:
        first = handle.read(1)
        handle.seek(0)
        handle.write(bytes([first[0] ^ 0xFF]))
    broken = cli("models", "download", model, str(tmp_path / "broken"))
    assert broken.exit_code == 4
    assert f"SHA-256 mismatch for {victim['path']}" in broken.stderr
    assert not (tmp_path / "broken" / victim["path"]).exists()
    assert not list((tmp_path / "broken").rglob("*.partial"))
