"""Finding, recording and pruning the resumable checkpoints in a job's checkpoint directory.

transformers' Trainer writes `checkpoint-<step>/` with the model or adapter, optimizer,
scheduler, RNG state and `trainer_state.json`, the last file it writes: a folder
without it is a save that was cut short and is never resumed from.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
STATE_FILE = "trainer_state.json"
METRICS_FILE = "metrics.json"


def checkpoint_step(path: Path) -> int | None:
    match = CHECKPOINT_PATTERN.match(path.name)
    return int(match.group(1)) if match else None


def complete_checkpoints(checkpoint_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest step first."""
    if not checkpoint_dir.is_dir():
        return []
    found = [
        (step, path)
        for path in checkpoint_dir.iterdir()
        if (step := checkpoint_step(path)) is not None and (path / STATE_FILE).is_file()
    ]
    return [path for _, path in sorted(found)]


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    checkpoints = complete_checkpoints(checkpoint_dir)
    return checkpoints[-1] if checkpoints else None


def remove_incomplete_checkpoints(checkpoint_dir: Path) -> list[Path]:
    """Delete saves that were cut short (a killed process), so they can never shadow a good one."""
    if not checkpoint_dir.is_dir():
        return []
    broken = [
        path
        for path in checkpoint_dir.iterdir()
        if checkpoint_step(path) is not None and path.is_dir() and not (path / STATE_FILE).is_file()
    ]
    for path in broken:
        shutil.rmtree(path, ignore_errors=True)
    return broken


def prune_checkpoints(checkpoint_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` complete checkpoints; returns what was deleted."""
    removed = complete_checkpoints(checkpoint_dir)[:-keep] if keep > 0 else []
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def write_checkpoint_metrics(path: Path, metrics: dict[str, Any]) -> None:
    (path / METRICS_FILE).write_text(json.dumps(metrics, indent=2), encoding="utf-8")
