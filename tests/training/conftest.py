"""Fixtures for the training engine tests: a tiny model built once, small datasets, a recorder."""

from __future__ import annotations

import io
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The tiny model's matrices are a few KB: one thread is fastest, and on a shared 2-core machine
# OpenMP workers spinning against other jobs made each step 10x slower. Subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from app.training.callbacks import JsonLinesProgress
from app.training.config import Hyperparameters, TrainingConfig
from app.training.hyperparams import resolve_hyperparameters
from app.training.tiny_data import sentence
from app.training.tiny_model import build_tiny_model

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session", autouse=True)
def _single_thread_torch() -> None:
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="session")
def model_without_template(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model's files with every trace of a chat template removed."""
    target = tmp_path_factory.mktemp("models") / "no-template"
    shutil.copytree(tiny_model, target, dirs_exist_ok=True)
    (target / "chat_template.jinja").unlink(missing_ok=True)
    config_path = target / "tokenizer_config.json"
    tokenizer_config = json.loads(config_path.read_text())
    tokenizer_config.pop("chat_template", None)
    config_path.write_text(json.dumps(tokenizer_config))
    return target


def write_chat_file(path: Path, n_examples: int, seed: int = 0, extra: list[dict[str, Any]] | None = None) -> Path:
    rng = random.Random(seed)
    lines = [
        {
            "messages": [
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": sentence(rng, 3, 10)},
                {"role": "assistant", "content": sentence(rng, 3, 14)},
            ]
        }
        for _ in range(n_examples)
    ]
    lines += extra or []
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def write_preference_file(path: Path, n_examples: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    lines = [
        {
            "input": {"messages": [{"role": "user", "content": sentence(rng, 3, 10)}]},
            "preferred_output": [{"role": "assistant", "content": sentence(rng, 3, 10)}],
            "non_preferred_output": [{"role": "assistant", "content": sentence(rng, 3, 10)}],
        }
        for _ in range(n_examples)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def make_config(
    workdir: Path,
    model: Path,
    training_file: Path,
    method: str = "supervised",
    fine_tune_type: str = "lora",
    hyperparameters: dict[str, Any] | None = None,
    **overrides: Any,
) -> TrainingConfig:
    requested = {"n_epochs": 1, "batch_size": 2, "max_seq_length": 128, "learning_rate": 5e-3}
    requested |= hyperparameters or {}
    resolved = resolve_hyperparameters(requested, 40, 2000, method, fine_tune_type, 128)
    fields: dict[str, Any] = {
        "job_id": "ftjob-test",
        "base_model": str(model),
        "training_file": training_file,
        "method": method,
        "fine_tune_type": fine_tune_type,
        "hyperparameters": Hyperparameters(**resolved),
        "output_dir": workdir / "output",
        "checkpoint_dir": workdir / "checkpoints",
        "checkpoint_every_steps": 1000,
        "keep_checkpoints": 3,
        "seed": 7,
    }
    return TrainingConfig(**(fields | overrides))


class RecordingProgress(JsonLinesProgress):
    """The CLI's JSON-lines writer into memory, so tests see exactly the events the worker reads."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()
        super().__init__(self.buffer)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.buffer.getvalue().splitlines()]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["event"] == kind]
