"""A dataset file as the rows a trainer takes: tokenized SFT rows, or TRL's conversational preference rows.

Bad lines fail the run (they were checked at upload, so a file that reaches here broken was
changed on disk or never uploaded); over-long examples are truncated when allowed, else fail it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from app.training.callbacks import ProgressCallback
from app.training.config import TrainingConfig
from app.training.data import TokenizedChat, iter_preferences, iter_tokenized_chat, trl_preference_row
from app.training.errors import ExampleError, InvalidConfigError

MAX_REPORTED_LINES = 10


def load_rows(
    tokenizer: PreTrainedTokenizerBase, config: TrainingConfig, path: Path, field: str, progress: ProgressCallback
) -> Dataset:
    """The rows of one file (`field` names it in messages: training_file or validation_file)."""
    reader = _preference_rows if config.method == "dpo" else _sft_rows
    rows, problems = reader(tokenizer, path, config.hyperparameters.max_seq_length)
    problems.report(field, config, progress)
    if not rows:
        raise InvalidConfigError(f"{field} has no example left to train on")
    return Dataset.from_list(rows)


class _LineProblems:
    def __init__(self) -> None:
        self.errors: list[ExampleError] = []
        self.too_long: list[str] = []
        self.dropped: list[int] = []

    def report(self, field: str, config: TrainingConfig, progress: ProgressCallback) -> None:
        """Bad lines fail the run; over-long ones fail it too unless truncation is allowed."""
        if self.errors:
            shown = "; ".join(str(error) for error in self.errors[:MAX_REPORTED_LINES])
            raise InvalidConfigError(f"{field}: {len(self.errors)} line(s) cannot be trained on: {shown}")
        if not self.too_long:
            return
        max_length = config.hyperparameters.max_seq_length
        shown_lines = ", ".join(self.too_long[:MAX_REPORTED_LINES])
        if not config.truncate_long_examples:
            raise InvalidConfigError(
                f"{field}: {len(self.too_long)} example(s) exceed max_seq_length {max_length} and truncation is off: "
                f"lines {shown_lines}"
            )
        progress.on_message(
            "warn", f"{field}: truncated {len(self.too_long)} example(s) to {max_length} tokens: lines {shown_lines}"
        )
        if self.dropped:
            progress.on_message(
                "warn",
                f"{field}: dropped {len(self.dropped)} example(s) with nothing to train on after truncation: "
                f"lines {', '.join(map(str, self.dropped[:MAX_REPORTED_LINES]))}",
            )


def _sft_rows(
    tokenizer: PreTrainedTokenizerBase, path: Path, max_length: int
) -> tuple[list[dict[str, Any]], _LineProblems]:
    rows, problems = [], _LineProblems()
    for item in iter_tokenized_chat(tokenizer, path):
        if isinstance(item, ExampleError):
            problems.errors.append(item)
            continue
        example: TokenizedChat = item
        if len(example.input_ids) > max_length:
            problems.too_long.append(f"{example.line} ({len(example.input_ids)} tokens)")
            example = example.truncated(max_length)
            if not example.has_trainable_tokens:
                problems.dropped.append(example.line)
                continue
        rows.append({"input_ids": example.input_ids, "labels": example.labels})
    return rows, problems


def _preference_rows(
    tokenizer: PreTrainedTokenizerBase, path: Path, max_length: int
) -> tuple[list[dict[str, Any]], _LineProblems]:
    rows, problems = [], _LineProblems()
    for item in iter_preferences(tokenizer, path):
        if isinstance(item, ExampleError):
            problems.errors.append(item)
            continue
        example, lengths = item
        if lengths.longest > max_length:
            problems.too_long.append(f"{example.line} ({lengths.longest} tokens)")
            if lengths.prompt >= max_length:  # nothing of either answer would be left
                problems.dropped.append(example.line)
                continue
        rows.append(trl_preference_row(example))
    return rows, problems
