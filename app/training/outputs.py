"""What a finished run leaves in output_dir: weights, tokenizer, model card and the metrics file."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.training.config import TrainingConfig

METRICS_COLUMNS = ("step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy")


def metrics_rows(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per step in OpenAI's result-file columns, from transformers' log history.

    The history is restored from the checkpoint on resume, so a resumed run's file is whole.
    """
    rows: dict[int, dict[str, Any]] = {}
    for entry in log_history:
        step = entry.get("step")
        if step is None or ("loss" not in entry and "eval_loss" not in entry):
            continue
        row = rows.setdefault(int(step), dict.fromkeys(METRICS_COLUMNS, None) | {"step": int(step)})
        if "loss" in entry:
            row["train_loss"] = entry["loss"]
            row["train_accuracy"] = entry.get("mean_token_accuracy")
        if "eval_loss" in entry:
            row["valid_loss"] = entry["eval_loss"]
            row["valid_mean_token_accuracy"] = entry.get("eval_mean_token_accuracy")
    return [rows[step] for step in sorted(rows)]


def write_metrics_csv(log_history: list[dict[str, Any]], path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=METRICS_COLUMNS)
        writer.writeheader()
        for row in metrics_rows(log_history):
            writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return path


def final_metrics(log_history: list[dict[str, Any]]) -> dict[str, Any]:
    """The last known value of each metric column."""
    latest: dict[str, Any] = {}
    for row in metrics_rows(log_history):
        latest.update({key: value for key, value in row.items() if value is not None})
    return latest


def write_model_card(directory: Path, config: TrainingConfig, kind: str, metrics: dict[str, Any]) -> Path:
    """A README.md in the Hugging Face model-card layout, so hub tools and people read it alike."""
    library = "peft" if kind == "adapter" else "transformers"
    hyperparameters = config.hyperparameters.model_dump()
    rows = "\n".join(f"| {name} | {json.dumps(value)} |" for name, value in hyperparameters.items())
    metric_rows = "\n".join(f"| {name} | {value} |" for name, value in metrics.items()) or "| - | - |"
    card = f"""---
base_model: {config.base_model}
library_name: {library}
pipeline_tag: text-generation
tags:
- fine-tuned
- {config.method}
- {config.fine_tune_type}
---

# {config.job_id} ({kind})

Fine-tuned from `{config.base_model}`{f" (revision `{config.revision}`)" if config.revision else ""} with
{config.method} training, {config.fine_tune_type}{" + QLoRA 4-bit" if config.quantization else ""}, seed {config.seed}.
Written {datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}.

## Hyperparameters

| name | value |
|---|---|
{rows}

## Final metrics

| metric | value |
|---|---|
{metric_rows}

## Use

{_usage(kind)}
"""
    path = directory / "README.md"
    path.write_text(card, encoding="utf-8")
    return path


def _usage(kind: str) -> str:
    if kind == "adapter":
        return (
            "```python\nfrom peft import AutoPeftModelForCausalLM\n"
            "model = AutoPeftModelForCausalLM.from_pretrained(PATH_TO_THIS_FOLDER)\n```"
        )
    return (
        "```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "model = AutoModelForCausalLM.from_pretrained(PATH_TO_THIS_FOLDER)\n"
        "tokenizer = AutoTokenizer.from_pretrained(PATH_TO_THIS_FOLDER)\n```"
    )
