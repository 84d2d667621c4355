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
    """FSDP2; a full fine-tune checkpoints activations with FSDP's own wrapper.

    The Trainer's checkpointing under FSDP gathers each layer's weights once more in the backward pass,
    so FSDP's wrapper is preferred, but not for LoRA: the wrapper inserts `_checkpoint_wrapped_module`
    into module names, PEFT 0.21 then finds none of the adapter keys in the gathered state dict, and the
    saved adapter is empty (seen here); LoRA keeps the Trainer's checkpointing.
    """
    # transformers reads this while loading the model: local rank 0 alone reads the weights.
    os.environ["ACCELERATE_USE_FSDP"] = "true"
    os.environ["FSDP_CPU_RAM_EFFICIENT_LOADING"] = "true"
    fsdp_checkpointing = config.gradient_checkpointing and config.fine_tune_type == "full"
    return {
        "fsdp": True,
        "fsdp_config": FSDP2_CONFIG | {"activation_checkpointing": fsdp_checkpointing},
        "activation_checkpointing": config.gradient_checkpointing and not fsdp_checkpointing,
    }


def fsdp2_on_cpu(trainer: Any) -> None:
    """Let accelerate drive FSDP2 over gloo on CPU, as it does over NCCL on GPUs.

    accelerate only turns on FSDP for accelerator device types (its `AcceleratorState` keeps
    MULTI_CPU as plain DDP), although torch's `fully_shard` runs on CPU with gloo. Marking the
    shared state FSDP before training makes the CPU runs (tests, this machine) take the same
    `fsdp2_prepare_model`, sharded checkpoints and resume path as a GPU run.
    """
    # Only distributed CPU runs come here; single-process jobs never import accelerate's FSDP plugin.
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    state = trainer.accelerator.state
    if getattr(state, "fsdp_plugin", None) is not None:
        return
    state.distributed_type = DistributedType.FSDP
    state.fsdp_plugin = FullyShardedDataParallelPlugin(**trainer.args.fsdp_plugin_args)
    trainer.is_fsdp_enabled = True


def gathered_state_dict(model: Any) -> dict[str, torch.Tensor]:
    """Every weight of an FSDP2 model as one whole tensor, on every rank (CPU runs only).

    accelerate's gather (`get_model_state_dict(..., cpu_offload=True)`) keeps, on a CPU run, views of
    FSDP's unsharded buffers that are freed when it reshards: safetensors then reads a dead storage
    (seen here). `full_tensor()` all-gathers each weight into a tensor of its own.
    """
    # Only FSDP runs come here: torch.distributed is not imported by single-process jobs.
    from torch.distributed.tensor import DTensor

    return {
        name: (tensor.full_tensor() if isinstance(tensor, DTensor) else tensor).detach().clone()
        for name, tensor in model.state_dict().items()
    }
