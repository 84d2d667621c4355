"""The TrainingArguments of a run: batch shape, precision, checkpointing, optimizer and the FSDP2 plan.

Shared by SFT and DPO (transformers 5 names: eval_strategy, use_cpu, activation_checkpointing).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from app.training.config import TrainingConfig
from app.training.model_loading import attends_per_document, precision
from app.training.strategy import Strategy

# FSDP2 as transformers' Trainer drives it through accelerate (fsdp_config keys of TrainingArguments).
FSDP2_CONFIG: dict[str, Any] = {
    "version": 2,
    "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",  # one FSDP unit per decoder layer (_no_split_modules)
    "reshard_after_forward": True,
    # Checkpoints: every rank writes its own shard (no gather of an 8B model's optimizer onto one host);
    # the final weights are gathered once into one safetensors file (see engine.save_outputs).
    "state_dict_type": "SHARDED_STATE_DICT",
    "cpu_ram_efficient_loading": True,
}


@dataclass(frozen=True)
class BatchShape:
    """Rows per forward pass and forward passes per optimizer step, as the Trainer is given them."""

    per_device: int
    accumulation: int
    one_row_per_forward: bool  # the packed rows of `batch_size` split into forwards of one row each


def batch_shape(config: TrainingConfig, attention: str) -> BatchShape:
    """Packed rows go one per forward pass unless the kernel attends per document.

    Flattening B packed rows into one sequence costs (B x L)^2 attention with a dense mask; one row per
    forward costs L^2, and accumulating B forwards gives the same gradient: the Trainer divides the summed
    loss by the trained tokens of the whole optimizer step (`num_items_in_batch`), not per forward.
    """
    hp = config.hyperparameters
    if config.method == "supervised" and hp.packing and not attends_per_document(attention) and hp.batch_size > 1:
        return BatchShape(1, hp.batch_size * hp.gradient_accumulation_steps, one_row_per_forward=True)
    return BatchShape(hp.batch_size, hp.gradient_accumulation_steps, one_row_per_forward=False)


def trainer_arguments(config: TrainingConfig, has_eval: bool, strategy: Strategy, attention: str) -> dict[str, Any]:
    hp = config.hyperparameters
    mixed = precision()
    use_cpu = not torch.cuda.is_available()
    shape = batch_shape(config, attention)
    eval_strategy = "no"
    if has_eval:
        eval_strategy = "steps" if hp.eval_steps else "epoch"
    arguments: dict[str, Any] = {
        "output_dir": str(config.checkpoint_dir),
        "num_train_epochs": hp.n_epochs,
        "max_steps": -1,  # max_steps caps the epoch-based count, see FineTuneRecipe._setup_trainer
        "per_device_train_batch_size": shape.per_device,
        "per_device_eval_batch_size": shape.per_device,
        "gradient_accumulation_steps": shape.accumulation,
        "learning_rate": hp.learning_rate,
        "weight_decay": hp.weight_decay,
        "lr_scheduler_type": hp.lr_scheduler_type,
        "warmup_steps": hp.warmup_ratio,  # < 1: a ratio of the total steps (transformers 5)
        "optim": hp.optimizer,
        "seed": config.seed,
        "data_seed": config.seed,
        "bf16": mixed.bf16,
        "fp16": mixed.fp16,
        "use_cpu": use_cpu,
        "activation_checkpointing": config.gradient_checkpointing,
        "activation_checkpointing_kwargs": {"use_reentrant": False},
        "activation_offloading": hp.activation_offloading,
        "logging_strategy": "steps",
        "logging_steps": 1,
        "eval_strategy": eval_strategy,
        "eval_steps": hp.eval_steps if eval_strategy == "steps" else None,
        "save_strategy": "no",  # the bridge decides when to save, see trainer_bridge
        "report_to": "none",
        "disable_tqdm": True,
        "dataloader_pin_memory": not use_cpu,
        "ddp_find_unused_parameters": False,
        "max_length": hp.max_seq_length,
    }
    if strategy == "fsdp2":
        arguments |= fsdp2_arguments(config)
    return arguments


def fsdp2_arguments(config: TrainingConfig) -> dict[str, Any]:
    """FSDP2 with its own activation checkpointing (the Trainer's adds a redundant all-gather under FSDP)."""
    # transformers reads this while loading the model: local rank 0 alone reads the weights.
    os.environ["ACCELERATE_USE_FSDP"] = "true"
    os.environ["FSDP_CPU_RAM_EFFICIENT_LOADING"] = "true"
    return {
        "fsdp": True,
        "fsdp_config": FSDP2_CONFIG | {"activation_checkpointing": config.gradient_checkpointing},
        "activation_checkpointing": False,
    }
