"""`python -m app.training` as the worker runs it: events, exit codes, SIGTERM, resume, parent death."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from app.training.engine import FineTuneRecipe

from .conftest import REPO_ROOT, RecordingProgress, make_config, write_chat_file

ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def start_trainer(config_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "app.training", "--config", str(config_path)],
        cwd=REPO_ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def read_events(process: subprocess.Popen[str], stop_after_step: int | None = None) -> list[dict[str, Any]]:
    """Every event line; sends SIGTERM once the given step is reported."""
    assert process.stdout is not None
    events = []
    for line in process.stdout:
        event = json.loads(line)  # every stdout line must be a JSON event
        events.append(event)
        if stop_after_step is not None and event["event"] == "step" and event["step"] == stop_after_step:
            process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    return events


def steps(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for event in events if event["event"] == "step"]


@pytest.mark.slow
def test_sigterm_checkpoints_exits_3_and_resume_repeats_no_step(tiny_model: Path, tmp_path: Path) -> None:
    training_file = write_chat_file(tmp_path / "train.jsonl", 60)
    config = make_config(tmp_path / "job", tiny_model, training_file, hyperparameters={"n_epochs": 4, "batch_size": 1})
    config_path = config.write(tmp_path / "config.json")

    first = start_trainer(config_path)
    first_events = read_events(first, stop_after_step=3)
    assert first.returncode == 3
    stopped_at = steps(first_events)[-1]["step"]
    total = next(event for event in first_events if event["event"] == "started")["total_steps"]
    checkpoints = [event for event in first_events if event["event"] == "checkpoint"]
    assert checkpoints[-1]["step"] == stopped_at < total
    assert Path(checkpoints[-1]["path"], "trainer_state.json").is_file()
    assert not any(event["event"] == "done" for event in first_events)

    second = start_trainer(config_path)
    second_events = read_events(second)
    assert second.returncode == 0, second_events[-1]
    started = next(event for event in second_events if event["event"] == "started")
    assert started["resumed_from_step"] == stopped_at
    resumed_steps = [event["step"] for event in steps(second_events)]
    assert resumed_steps == list(range(stopped_at + 1, started["total_steps"] + 1))
    done = second_events[-1]
    assert done["event"] == "done" and Path(done["merged_dir"], "model.safetensors").is_file()

    # Model, optimizer, scheduler, RNG and data position were all restored: the resumed steps
    # match an uninterrupted run of the same config exactly.
    reference_config = config.model_copy(
        update={"output_dir": tmp_path / "ref" / "output", "checkpoint_dir": tmp_path / "ref" / "checkpoints"}
    )
    progress = RecordingProgress()
    recipe = FineTuneRecipe(reference_config, progress)
    recipe.setup()
    recipe.train()
    recipe.cleanup()
    reference = {event["step"]: event["train_loss"] for event in progress.of("step")}
    for event in steps(first_events) + steps(second_events):
        assert event["train_loss"] == pytest.approx(reference[event["step"]], rel=1e-5), event["step"]


def test_bad_config_is_an_invalid_config_error_event(tmp_path: Path) -> None:
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps({"job_id": "ftjob-x"}))
    result = subprocess.run(
        [sys.executable, "-m", "app.training", "--config", str(config_path)],
        cwd=REPO_ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    event = json.loads(result.stdout.strip().splitlines()[-1])
    assert event["event"] == "error" and event["code"] == "invalid_config"
    assert "training_file" in event["message"]


def test_events_go_to_the_requested_descriptor(tmp_path: Path) -> None:
    config_path = tmp_path / "config.json"
    config_path.write_text("{not json")
    read_end, write_end = os.pipe()
    result = subprocess.run(
        [sys.executable, "-m", "app.training", "--config", str(config_path), "--progress-fd", str(write_end)],
        cwd=REPO_ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        pass_fds=(write_end,),
        timeout=120,
    )
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        events = [json.loads(line) for line in pipe]
    assert result.returncode == 1
    assert [(event["event"], event["code"]) for event in events] == [("error", "invalid_config")]
    assert result.stdout == ""


def test_trainer_dies_with_its_parent(tmp_path: Path) -> None:
    """The parent (think: a killed Celery worker) goes; the child must not outlive it."""
    parent_code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        '\'from app.training.process import set_parent_death_signal as s; s(); print("ready", flush=True); '
        "import time; time.sleep(120)'], stdout=subprocess.PIPE, text=True)\n"
        "assert child.stdout.readline().strip() == 'ready'\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code], cwd=REPO_ROOT, env=ENV, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    os.kill(child_pid, 0)  # alive while the parent lives
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child_pid):
        time.sleep(0.1)
    assert not _alive(child_pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
