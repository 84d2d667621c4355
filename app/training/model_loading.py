"""The base model as a run trains it: attention kernel, precision, where its weights are loaded, LoRA.

Attention: packed rows are several documents in one sequence. FlashAttention 2's varlen kernel
attends within each document (`cu_seq_lens` from TRL's padding-free collator), so a packed row costs
the sum of its documents' l^2. Every other kernel transformers offers here gets a dense block-diagonal
mask over the whole flattened micro-batch (transformers `masking_utils.sdpa_mask`): (B x L)^2. Without
FlashAttention the recipe therefore gives each forward pass one packed row (see `arguments.py`).
flex_attention's block masks would skip the empty blocks, but torch 2.13 has no flex_attention backward
on CPU, and on CUDA it compiles per sequence length, which packed rows vary.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Any

import torch
from peft import LoraConfig
from transformers import AutoModelForCausalLM, PreTrainedModel

from app.training.callbacks import ProgressCallback
from app.training.config import TrainingConfig
from app.training.strategy import Strategy

FLASH_ATTENTION = "flash_attention_2"
# FlashAttention 2 runs on Ampere (compute capability 8.0) and newer.
FLASH_MIN_CAPABILITY = (8, 0)


@dataclass(frozen=True)
class Precision:
    dtype: torch.dtype
    bf16: bool
    fp16: bool


def precision() -> Precision:
    """bf16 where the GPU has it; fp16 mixed precision over fp32 weights on older GPUs; fp32 on CPU."""
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return Precision(torch.bfloat16, bf16=True, fp16=False)
    if torch.cuda.is_available():
        return Precision(torch.float32, bf16=False, fp16=True)
    return Precision(torch.float32, bf16=False, fp16=False)


def attention_implementation() -> str:
    """flash_attention_2 on an Ampere-or-newer GPU with flash-attn's CUDA kernels installed (the worker image
    installs its prebuilt wheel), else SDPA. `flash_attn_2_cuda` is the compiled extension: a flash-attn
    installed without it imports its Python package but fails at the first call."""
    if not torch.cuda.is_available() or importlib.util.find_spec("flash_attn_2_cuda") is None:
        return "sdpa"
    if torch.cuda.get_device_capability() < FLASH_MIN_CAPABILITY:
        return "sdpa"
    return FLASH_ATTENTION


def attends_per_document(implementation: str) -> bool:
    """Whether the kernel computes only within-document attention of a flattened packed batch."""
    return implementation.startswith("flash_attention")


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def load_base_model(config: TrainingConfig, strategy: Strategy, progress: ProgressCallback) -> PreTrainedModel:
    """The base model, its weights read straight onto this rank's GPU where one is used.

    Single process and DDP on CUDA: `device_map` streams the safetensors onto the GPU, never holding
    the whole model in host memory. FSDP2: the arguments set `cpu_ram_efficient_loading`, so only local
    rank 0 reads the weights (the others build the model on the meta device and receive their shards
    by broadcast when FSDP wraps it). QLoRA: quantized while loading, on this rank's GPU.
    """
    kwargs: dict[str, Any] = {
        "revision": config.revision,
        "dtype": precision().dtype,
        "attn_implementation": attention_implementation(),
    }
    if torch.cuda.is_available() and strategy != "fsdp2":
        kwargs["device_map"] = {"": local_rank()}
    if config.quantization == "qlora":
        # Loads bitsandbytes (CUDA builds only, seconds to import): only a QLoRA run pays for it.
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=precision().dtype,
        )
    model = AutoModelForCausalLM.from_pretrained(config.base_model, **kwargs)
    # No prepare_model_for_kbit_training for QLoRA: it casts every non-4-bit parameter (embeddings, norms,
    # lm_head) to fp32, which makes the residual stream and its saved activations fp32. TRL 1.16 already
    # casts the trainable adapters to bf16 (the QLoRA paper's setting), the Trainer enables gradient
    # checkpointing, TRL enables input gradients for PEFT models, and the RMSNorms compute in fp32
    # internally. scripts/gpu-check.sh measures both ways on the H200.
    model.config.use_cache = False
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    dtype = str(precision().dtype).removeprefix("torch.")
    attention = model.config._attn_implementation
    progress.on_message("info", f"loaded {config.base_model} on {device} in {dtype}, {attention} attention, {strategy}")
    return model


def load_reference_model(config: TrainingConfig, strategy: Strategy) -> PreTrainedModel | None:
    """Full-weight DPO needs a frozen copy of the base; LoRA DPO uses the base with adapters off."""
    if config.fine_tune_type == "lora":
        return None
    kwargs: dict[str, Any] = {"revision": config.revision, "dtype": precision().dtype}
    if torch.cuda.is_available() and strategy != "fsdp2":
        kwargs["device_map"] = {"": local_rank()}
    return AutoModelForCausalLM.from_pretrained(config.base_model, **kwargs)


def lora_config(config: TrainingConfig) -> LoraConfig | None:
    if config.fine_tune_type != "lora":
        return None
    hp = config.hyperparameters
    return LoraConfig(
        r=hp.lora_r,
        lora_alpha=hp.lora_alpha,
        lora_dropout=hp.lora_dropout,
        target_modules=hp.target_modules,
        bias="none",
        task_type="CAUSAL_LM",
    )
