"""How a job is spread over its processes, and the GPU memory that costs: one rule for the trainer and the estimate.

No torch here: the API's estimate and the GPU worker call it as the trainer does. The rule:

- one process: the model, its gradients and optimizer states on one device;
- several processes, LoRA or full fine-tune: FSDP2 (`torch.distributed.fsdp.fully_shard`): weights,
  gradients and optimizer states sharded over the processes, one decoder layer gathered at a time,
  so a model larger than one GPU trains (docs/training.md argues FSDP2 over DeepSpeed ZeRO-3);
- several processes with QLoRA: DDP, each process holding the whole 4-bit model (bitsandbytes'
  4-bit weights are not sharded here; a 70B model in NF4 is about 40 GB and fits one 80 GB GPU).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Strategy = Literal["single", "ddp", "fsdp2"]
GIB = 2**30
# Bytes per parameter of a 4-bit NF4 weight with double quantization (0.5 + ~0.127 bit of constants),
# applied to the ~95 % of a decoder's parameters in linear layers; embeddings and norms stay bf16.
NF4_BYTES = 0.516
QUANTIZED_SHARE = 0.95
# Llama-family proportions, for a model whose shape is unknown: layers ~ hidden / 128, N ~ 12 L d^2.
HIDDEN_PER_LAYER = 128


def training_strategy(processes: int, quantization: str | None) -> Strategy:
    if processes <= 1:
        return "single"
    return "ddp" if quantization == "qlora" else "fsdp2"


@dataclass(frozen=True)
class ModelShape:
    """What the memory estimate needs to know of a base model (from its config.json)."""

    parameters: int
    hidden_size: int
    num_hidden_layers: int
    vocab_size: int

    @classmethod
    def from_parameter_count(cls, parameters: int, vocab_size: int = 128_256) -> ModelShape:
        """A Llama-proportioned guess when only the parameter count is known."""
        hidden = max(64, round((HIDDEN_PER_LAYER * parameters / 12) ** (1 / 3)))
        return cls(parameters, hidden, max(1, round(hidden / HIDDEN_PER_LAYER)), vocab_size)


@dataclass(frozen=True)
class MemoryEstimate:
    """GiB per GPU, what a training step holds at its peak (the allocator's overhead not counted)."""

    weights: float
    gradients: float
    optimizer_states: float
    activations: float
    total: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def memory_per_gpu(
    shape: ModelShape,
    fine_tune_type: str,
    quantization: str | None,
    processes: int,
    micro_batch_tokens: int,
    lora_r: int,
    optimizer: str = "adamw_torch",
    gradient_checkpointing: bool = True,
    activation_offloading: bool = False,
    bf16: bool = True,
) -> MemoryEstimate:
    """Weights, gradients and AdamW states (sharded under FSDP2), plus one micro-batch's activations.

    Full fine-tune in bf16: weights 2 B, gradients 2 B, AdamW's two moments 4 B per parameter (they take
    the parameter's dtype), 8-bit AdamW 2 B. LoRA: the frozen base as loaded (bf16, or NF4 under QLoRA)
    and, for the ~2r/d share of trainable adapter parameters, fp32 weights, gradients and moments.
    Activations: with checkpointing, each layer's bf16 input (2 B x d per token) plus one layer being
    recomputed (~34 d bytes per token, as in Korthikanti et al. without the s/d attention term: flash or
    SDPA kernels keep no score matrix) and the logits (bf16 output, fp32 copy and its gradient: 10 B x
    vocab per token); without checkpointing every layer keeps its ~34 d. Offloading moves the per-layer
    inputs to host memory.
    """
    strategy = training_strategy(processes, quantization)
    shards = processes if strategy == "fsdp2" else 1
    n = shape.parameters
    dtype_bytes = 2 if bf16 else 4
    moment_bytes = 1 if optimizer in ("adamw_8bit", "paged_adamw_8bit") else dtype_bytes
    weights: float
    gradients: float
    states: float
    if fine_tune_type == "full":
        weights, gradients, states = n * dtype_bytes, n * dtype_bytes, 2 * n * moment_bytes
    else:
        trainable = n * 2 * lora_r / shape.hidden_size
        base = n * (QUANTIZED_SHARE * NF4_BYTES + (1 - QUANTIZED_SHARE) * 2) if quantization else n * dtype_bytes
        weights, gradients, states = base + 4 * trainable, 4 * trainable, 8 * trainable
    tokens, d, layers = micro_batch_tokens, shape.hidden_size, shape.num_hidden_layers
    per_layer_working = 34 * d * tokens
    if gradient_checkpointing:
        kept = 0 if activation_offloading else 2 * d * tokens * layers
        activations = kept + per_layer_working
    else:
        activations = per_layer_working * layers
    activations += 10 * shape.vocab_size * tokens
    figures = [weights / shards, gradients / shards, states / shards, float(activations)]
    weights_gib, gradients_gib, states_gib, activations_gib = (round(value / GIB, 2) for value in figures)
    return MemoryEstimate(weights_gib, gradients_gib, states_gib, activations_gib, total=round(sum(figures) / GIB, 2))
