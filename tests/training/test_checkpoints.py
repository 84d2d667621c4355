"""Which checkpoint a retry resumes from, and which ones pruning keeps."""

from __future__ import annotations

from pathlib import Path

from app.training.checkpoints import (
    complete_checkpoints,
    latest_checkpoint,
    prune_checkpoints,
    remove_incomplete_checkpoints,
)


def make_checkpoint(root: Path, step: int, complete: bool = True) -> Path:
    path = root / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "adapter_model.safetensors").write_bytes(b"weights")
    if complete:
        (path / "trainer_state.json").write_text("{}")
    return path


def test_a_save_cut_short_is_never_resumed_and_gets_removed(tmp_path: Path) -> None:
    make_checkpoint(tmp_path, 5)
    make_checkpoint(tmp_path, 40)
    broken = make_checkpoint(tmp_path, 45, complete=False)
    (tmp_path / "README.md").write_text("model card")

    # Numeric order, not text order: 40 is newer than 5.
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-40"
    assert remove_incomplete_checkpoints(tmp_path) == [broken]
    assert not broken.exists() and (tmp_path / "README.md").exists()


def test_pruning_keeps_the_newest_complete_checkpoints(tmp_path: Path) -> None:
    for step in (10, 2, 30, 20):
        make_checkpoint(tmp_path, step)
    removed = prune_checkpoints(tmp_path, keep=2)
    assert [path.name for path in removed] == ["checkpoint-2", "checkpoint-10"]
    assert [path.name for path in complete_checkpoints(tmp_path)] == ["checkpoint-20", "checkpoint-30"]
    assert latest_checkpoint(tmp_path / "missing") is None
