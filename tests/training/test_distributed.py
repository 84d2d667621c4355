"""Two processes under torchrun on CPU (gloo): FSDP2 trains as one process does, stops, resumes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.training.engine import FineTuneRecipe

from .conftest import REPO_ROOT, RecordingProgress, make_config, write_chat_file
from .test_cli import ENV

pytestmark = pytest.mark.slow


def torchrun(
    config_path: Path, rank_errors: Path, stop_after_step: int | None = None
) -> tuple[int, list[dict[str, Any]]]:
    """The exit code and rank 0's events of `python -m app.training` on two CPU processes."""
    command = [str(Path(sys.executable).parent / "torchrun"), "--nproc_per_node=2", "--standalone"]
    command += ["-m", "app.training", "--config", str(config_path), "--rank-errors", str(rank_errors)]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    events = []
    for line in process.stdout:
        event = json.loads(line)  # nothing but rank 0's events reaches stdout
        events.append(event)
        if event["event"] == "step" and event["step"] == stop_after_step:
            process.send_signal(signal.SIGTERM)  # torchrun forwards it to both ranks
    return process.wait(timeout=300), events


def losses(events: list[dict[str, Any]]) -> dict[int, float]:
    return {event["step"]: event["train_loss"] for event in events if event["event"] == "step"}


def test_fsdp2_on_two_processes_follows_one_process_and_resumes_from_its_sharded_checkpoint(
    tiny_model: Path, tmp_path: Path
) -> None:
    training_file = write_chat_file(tmp_path / "train.jsonl", 32)
    # Unpacked, 32 examples: every step is 4 whole examples. (A last partial batch would differ: accelerate
    # evens out the ranks' batches by repeating examples, which one process does not.)
    settings = {"n_epochs": 1, "max_seq_length": 128, "learning_rate": 5e-3, "packing": False}
    # Two ranks x batch_size 2 see the examples one process sees with batch_size 4.
    two = make_config(
        tmp_path / "two", tiny_model, training_file, fine_tune_type="full",
        hyperparameters=settings | {"batch_size": 2}, checkpoint_every_steps=2, data_cache_dir=tmp_path / "cache",
    )  # fmt: skip
    config_path = two.write(tmp_path / "two.json")
    first_code, first = torchrun(config_path, tmp_path / "errors", stop_after_step=3)
    assert first_code != 0 and not (tmp_path / "errors").exists(), "stopped, not failed"
    assert "fsdp2" in next(e["message"] for e in first if e["event"] == "message" and "loaded" in e["message"])
    saved = [event["step"] for event in first if event["event"] == "checkpoint"]
    assert saved[-1] == max(losses(first)) >= 3
    assert (two.checkpoint_dir / f"checkpoint-{saved[-1]}" / "pytorch_model_fsdp_0").is_dir(), "a sharded checkpoint"

    second_code, second = torchrun(config_path, tmp_path / "errors")
    assert second_code == 0, second[-1]
    started = next(event for event in second if event["event"] == "started")
    assert started["resumed_from_step"] == saved[-1]
    assert "reused" in next(e["message"] for e in second if e["event"] == "message" and "training_file" in e["message"])
    assert min(losses(second)) == saved[-1] + 1 and max(losses(second)) == started["total_steps"]
    done = second[-1]
    assert done["event"] == "done" and (Path(done["model_dir"]) / "model.safetensors").is_file()

    one = make_config(tmp_path / "one", tiny_model, training_file, fine_tune_type="full",
                      hyperparameters=settings | {"batch_size": 4})  # fmt: skip
    progress = RecordingProgress()
    recipe = FineTuneRecipe(one, progress)
    recipe.setup()
    recipe.train()
    recipe.cleanup()
    reference = losses(progress.events)
    distributed = losses(first) | losses(second)
    assert sorted(distributed) == sorted(reference)
    for step, loss in distributed.items():
        assert loss == pytest.approx(reference[step], rel=1e-4), (step, loss, reference[step])
