"""`jobs pause|resume|cancel` and the exit codes of `jobs watch` for a paused and a cancelled job."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.cli.conftest import Cli, chat_examples

pytestmark = pytest.mark.slow


def _wait(cli: Cli, job_id: str, wanted: set[str], timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (job := cli.json("jobs", "show", job_id))["status"] not in wanted:
        assert time.monotonic() < deadline, f"{job_id} still {job['status']} (wanted {wanted})"
        time.sleep(0.5)
    return job


def _wait_checkpoint(cli: Cli, job_id: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not cli.json("jobs", "checkpoints", job_id)["data"]:
        assert time.monotonic() < deadline, f"no checkpoint of {job_id}"
        time.sleep(0.5)


def _wait_progress(cli: Cli, job_id: str, past_step: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while (job := cli.json("jobs", "show", job_id))["progress"]["step"] <= past_step or job["status"] != "running":
        assert time.monotonic() < deadline, f"{job_id} did not train past step {past_step}: {job['status']}"
        time.sleep(0.5)


async def test_pause_watch_resume_cancel(cli: Cli, tiny_model: str, cpu_worker, gpu_worker, write_jsonl) -> None:  # type: ignore[no-untyped-def]
    train = write_jsonl("train.jsonl", chat_examples(48))
    # Batch 1, no packing: one step per example, so there is time to act mid-training.
    created = cli("jobs", "create", "--model", tiny_model, "--train", str(train), "--epochs", "3", "--batch-size", "1",
                  "--lora-r", "4", "--hp", "packing=false", "--hp", "gradient_accumulation_steps=1")  # fmt: skip
    assert created.exit_code == 0, created.output
    job_id = created.stdout.split("Created ")[1].split()[0]
    assert job_id.startswith("ftjob-")
    assert cli.json("jobs", "show", job_id)["method"]["supervised"]["hyperparameters"]["packing"] is False
    _wait(cli, job_id, {"running"})
    _wait_checkpoint(cli, job_id)

    paused = cli("jobs", "pause", job_id)
    assert paused.exit_code == 0 and f"Pause requested for {job_id}" in paused.stdout
    watched = cli("jobs", "watch", job_id, "--plain")  # returns once it sees the job paused
    assert watched.exit_code == 3, watched.output
    assert "paused" in watched.stdout and f"finetune jobs resume {job_id}" in watched.stdout
    paused_at = cli.json("jobs", "show", job_id)
    assert paused_at["status"] == "paused"

    listed = cli("jobs", "list")
    assert job_id in listed.stdout and "paused" in listed.stdout

    resumed = cli.json("jobs", "resume", job_id)
    assert resumed["status"] in ("queued", "running")
    # Cancel once training has really restarted (a step past the pause), as a user watching it would.
    _wait_progress(cli, job_id, paused_at["progress"]["step"])
    assert cli.json("jobs", "cancel", job_id)["id"] == job_id
    cancelled = cli("jobs", "watch", job_id, "--json")
    assert cancelled.exit_code == 2, cancelled.output
    final = json.loads(cancelled.stdout.splitlines()[-1])
    assert final["object"] == "fine_tuning.job" and final["status"] == "cancelled"

    events = cli("jobs", "events", job_id, "--limit", "1000")
    assert events.exit_code == 0 and "Checkpoint saved" in events.stdout
    shown = cli("jobs", "show", job_id)
    assert "cancelled" in shown.stdout and "packing" in shown.stdout
