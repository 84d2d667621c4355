"""The typed contract between whoever launches a fine-tune and the training process.

Pydantic only: the API imports this module and has no torch. A `TrainingConfig` is
written as JSON by the worker and read back by `python -m app.training --config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

Method = Literal["supervised", "dpo"]
FineTuneType = Literal["lora", "full"]
# transformers' `optim` names: the two 8-bit ones are bitsandbytes' (CUDA), paged pages states to host memory.
Optimizer = Literal["adamw_torch", "adamw_8bit", "paged_adamw_8bit"]
OPTIMIZERS: tuple[str, ...] = ("adamw_torch", "adamw_8bit", "paged_adamw_8bit")
ALL_LINEAR = "all-linear"


class Hyperparameters(BaseModel):
    """Fully resolved hyperparameters: no "auto" left (see `hyperparams.resolve_hyperparameters`).

    `batch_size` counts sequences per device per forward pass (packed rows when `packing`);
    one optimizer step sees batch_size x gradient_accumulation_steps x number of GPUs sequences.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_epochs: PositiveInt
    batch_size: PositiveInt
    learning_rate: float = Field(gt=0, le=1)
    lora_r: PositiveInt
    lora_alpha: PositiveInt
    lora_dropout: float = Field(ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"]
    max_seq_length: int = Field(ge=16)
    packing: bool
    # Below 1 so that transformers reads it as a ratio of the total steps, never as a step count.
    warmup_ratio: float = Field(ge=0, lt=1)
    gradient_accumulation_steps: PositiveInt
    eval_steps: PositiveInt | None
    beta: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    lr_scheduler_type: str
    optimizer: Optimizer = "adamw_torch"
    # Checkpointed activations kept in host memory between forward and backward (CUDA only).
    activation_offloading: bool = False

    @field_validator("target_modules")
    @classmethod
    def _non_empty_modules(cls, value: list[str] | str) -> list[str] | str:
        if isinstance(value, list) and (not value or not all(isinstance(name, str) and name for name in value)):
            raise ValueError("target_modules must be 'all-linear' or a non-empty list of module names")
        return value


class TrainingConfig(BaseModel):
    """Everything one training run needs; paths are local to the machine that trains."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    base_model: str = Field(description="local path or Hugging Face hub id")
    revision: str | None = None
    chat_template: str | None = Field(default=None, description="overrides the tokenizer's template")
    training_file: Path
    validation_file: Path | None = None
    method: Method = "supervised"
    fine_tune_type: FineTuneType = "lora"
    quantization: Literal["qlora"] | None = None
    hyperparameters: Hyperparameters
    seed: int = 42
    output_dir: Path
    checkpoint_dir: Path
    checkpoint_every_steps: PositiveInt = 50
    keep_checkpoints: PositiveInt = 3
    merge_adapter: bool = True
    truncate_long_examples: bool = True
    gradient_checkpointing: bool = True
    max_steps: PositiveInt | None = None
    # Where the tokenized dataset is kept (the job's work dir): tokenized once, reused by every rank and attempt.
    data_cache_dir: Path | None = None

    @model_validator(mode="after")
    def _check_combinations(self) -> TrainingConfig:
        if self.quantization == "qlora" and self.fine_tune_type != "lora":
            raise ValueError("quantization 'qlora' trains a LoRA adapter: set fine_tune_type to 'lora'")
        if self.method == "dpo" and self.hyperparameters.packing:
            raise ValueError("packing is not supported for dpo: set hyperparameters.packing to false")
        return self

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str) -> TrainingConfig:
        return cls.model_validate_json(text)

    def write(self, path: Path) -> Path:
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> TrainingConfig:
        return cls.from_json(path.read_text(encoding="utf-8"))
