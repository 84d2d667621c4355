"""A dataset file as the rows a trainer takes: tokenized SFT rows, or TRL's conversational preference rows.

Bad lines fail the run (they were checked at upload, so a file that reaches here broken was
changed on disk or never uploaded); over-long examples are truncated when allowed, else fail it.

Rows are built once per job: written to an Arrow file under `config.data_cache_dir` (the job's
work dir) that every rank memory-maps (one copy in the page cache, not one per rank) and every
later attempt reuses; the engine builds it on local rank 0 while the other ranks wait. SFT rows
stream from the tokenizer to the file a batch at a time, so memory holds a batch, not the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from datasets import Dataset, Features, Sequence, Value
from datasets.arrow_writer import ArrowWriter
from transformers import PreTrainedTokenizerBase

from app.training.callbacks import ProgressCallback
from app.training.config import TrainingConfig
from app.training.data import TokenizedChat, iter_preferences, iter_tokenized_chat, trl_preference_row
from app.training.errors import ExampleError, InvalidConfigError

MAX_REPORTED_LINES = 10
CACHE_FORMAT = 2  # bump when the rows or their file change
ROWS_FILE, REPORT_FILE, DPO_DIR = "rows.arrow", "report.json", "rows"
SFT_FEATURES = Features({"input_ids": Sequence(Value("int32")), "labels": Sequence(Value("int32"))})
WRITE_BATCH = 1024


def load_rows(
    tokenizer: PreTrainedTokenizerBase,
    config: TrainingConfig,
    path: Path,
    field: str,
    progress: ProgressCallback,
    cache_root: Path,
) -> Dataset:
    """The rows of one file (`field` names it in messages: training_file or validation_file).

    Read from `cache_root` when this file was tokenized before with the same tokenizer and limits.
    """
    directory = cache_root / f"{field}-{cache_key(tokenizer, config, path)}"
    if not (directory / REPORT_FILE).is_file():
        started = time.monotonic()
        _build(tokenizer, config, path, field, directory)
        seconds = time.monotonic() - started
        summary = json.loads((directory / REPORT_FILE).read_text(encoding="utf-8"))
        progress.on_message("info", f"{field}: tokenized {summary['rows']} examples in {seconds:.1f} s")
    else:
        summary = json.loads((directory / REPORT_FILE).read_text(encoding="utf-8"))
        progress.on_message("info", f"{field}: {summary['rows']} tokenized examples reused from {directory.name}")
    for warning in summary["warnings"]:
        progress.on_message("warn", warning)
    if summary["error"]:
        raise InvalidConfigError(summary["error"])
    if config.method == "dpo":
        return Dataset.load_from_disk(str(directory / DPO_DIR))
    return Dataset.from_file(str(directory / ROWS_FILE))


def cache_key(tokenizer: PreTrainedTokenizerBase, config: TrainingConfig, path: Path) -> str:
    """Everything the rows depend on: the file's bytes, the tokenizer and template, the method and limits."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    identity = {
        "format": CACHE_FORMAT,
        "file": digest.hexdigest(),
        "tokenizer": [str(tokenizer.name_or_path), config.revision, len(tokenizer), tokenizer.chat_template],
        "method": config.method,
        "max_seq_length": config.hyperparameters.max_seq_length,
        "truncate": config.truncate_long_examples,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]


def _build(tokenizer: PreTrainedTokenizerBase, config: TrainingConfig, path: Path, field: str, directory: Path) -> None:
    """Write the rows and their report beside `directory`, then rename into place (a reader never sees half)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        max_length = config.hyperparameters.max_seq_length
        if config.method == "dpo":
            preference_rows, problems = _preference_rows(tokenizer, path, max_length)
            Dataset.from_list(preference_rows).save_to_disk(str(staging / DPO_DIR))
            rows = len(preference_rows)
        else:
            rows, problems = _write_sft_rows(tokenizer, path, max_length, staging / ROWS_FILE)
        summary = {"rows": rows, **problems.summary(field, config, rows)}
        (staging / REPORT_FILE).write_text(json.dumps(summary), encoding="utf-8")
        if directory.exists():  # a crash after the rename left a complete copy: keep the newest
            shutil.rmtree(directory)
        os.replace(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class _LineProblems:
    def __init__(self) -> None:
        self.errors: list[ExampleError] = []
        self.too_long: list[str] = []
        self.dropped: list[int] = []

    def summary(self, field: str, config: TrainingConfig, rows: int) -> dict[str, Any]:
        """What the run must say: the error that fails it (bad lines, over-long without truncation) or warnings."""
        warnings: list[str] = []
        error = None
        max_length = config.hyperparameters.max_seq_length
        if self.errors:
            shown = "; ".join(str(error) for error in self.errors[:MAX_REPORTED_LINES])
            error = f"{field}: {len(self.errors)} line(s) cannot be trained on: {shown}"
        elif self.too_long and not config.truncate_long_examples:
            shown_lines = ", ".join(self.too_long[:MAX_REPORTED_LINES])
            error = (
                f"{field}: {len(self.too_long)} example(s) exceed max_seq_length {max_length} and truncation is off: "
                f"lines {shown_lines}"
            )
        elif self.too_long:
            shown_lines = ", ".join(self.too_long[:MAX_REPORTED_LINES])
            truncated = f"truncated {len(self.too_long)} example(s) to {max_length} tokens: lines {shown_lines}"
            warnings.append(f"{field}: {truncated}")
            if self.dropped:
                warnings.append(
                    f"{field}: dropped {len(self.dropped)} example(s) with nothing to train on after truncation: "
                    f"lines {', '.join(map(str, self.dropped[:MAX_REPORTED_LINES]))}"
                )
        if error is None and rows == 0:
            error = f"{field} has no example left to train on"
        return {"warnings": warnings, "error": error}


def _sft_examples(
    tokenizer: PreTrainedTokenizerBase, path: Path, max_length: int, problems: _LineProblems
) -> Iterator[TokenizedChat]:
    for item in iter_tokenized_chat(tokenizer, path):
        if isinstance(item, ExampleError):
            problems.errors.append(item)
            continue
        example = item
        if len(example.input_ids) > max_length:
            problems.too_long.append(f"{example.line} ({len(example.input_ids)} tokens)")
            example = example.truncated(max_length)
            if not example.has_trainable_tokens:
                problems.dropped.append(example.line)
                continue
        yield example


def _write_sft_rows(
    tokenizer: PreTrainedTokenizerBase, path: Path, max_length: int, target: Path
) -> tuple[int, _LineProblems]:
    problems, rows, batch = _LineProblems(), 0, []
    with ArrowWriter(features=SFT_FEATURES, path=str(target)) as writer:
        for example in _sft_examples(tokenizer, path, max_length, problems):
            batch.append(example)
            if len(batch) >= WRITE_BATCH:
                writer.write_table(_sft_table(batch))
                rows, batch = rows + len(batch), []
        if batch:
            writer.write_table(_sft_table(batch))
            rows += len(batch)
        writer.finalize()
    return rows, problems


def _sft_table(batch: list[TokenizedChat]) -> pa.Table:
    lengths = np.fromiter((len(example.input_ids) for example in batch), dtype=np.int32, count=len(batch))
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    input_ids = pa.ListArray.from_arrays(offsets, pa.array(np.concatenate([e.input_ids for e in batch])))
    labels = pa.ListArray.from_arrays(offsets, pa.array(np.concatenate([e.labels for e in batch])))
    return pa.table({"input_ids": input_ids, "labels": labels})


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
