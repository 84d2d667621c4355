"""Resolve "auto" hyperparameters from the dataset, and estimate a run before it starts.

No torch here: the API's estimate endpoint and the GPU worker both call these, and
docs/training.md states the same rules in prose. Every rule is a pure function of
the request, the dataset size (examples, tokens) and the method.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import ValidationError

from app.training.config import ALL_LINEAR, OPTIMIZERS, Hyperparameters
from app.training.strategy import ModelShape, memory_per_gpu, training_strategy

AUTO = "auto"

# OpenAI's published defaults for choosing epochs from dataset size.
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25

# OpenAI: "batch size ~0.2% of the training examples, capped at 256".
BATCH_FRACTION = 0.002
MAX_EXAMPLES_PER_STEP = 256
# OpenAI's maxima for its own fields (its OpenAPI document): a job object never echoes more. A larger
# effective batch is the superset's `gradient_accumulation_steps` (optimizer step = batch_size x that).
MAX_EPOCHS = 50
MAX_BATCH_SIZE = 256
MAX_BETA = 2.0
# Tokens one forward pass may hold by default, so an auto batch fits an 8B model on one GPU.
MICRO_BATCH_TOKEN_BUDGET = 8192
EVALS_PER_RUN = 10

BASE_LEARNING_RATE = {
    ("supervised", "lora"): 2e-4,
    ("supervised", "full"): 1e-5,
    ("dpo", "lora"): 5e-6,
    ("dpo", "full"): 5e-7,
}
# A DPO step also runs the reference model forward: about a third of a training step's compute.
DPO_COMPUTE_FACTOR = 4 / 3

SCHEDULERS = frozenset(
    {"linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup", "inverse_sqrt"}
)
KNOWN_FIELDS = frozenset(Hyperparameters.model_fields) | {"learning_rate_multiplier"}


def resolve_hyperparameters(
    requested: dict[str, Any],
    n_examples: int,
    n_tokens: int,
    method: str,
    fine_tune_type: str,
    max_seq_length_default: int,
) -> dict[str, Any]:
    """Every field of `Hyperparameters`, with "auto" or missing values chosen by the documented rule.

    Raises ValueError naming the offending field for any value out of range or of the wrong type.
    """
    _check_context(requested, n_examples, n_tokens, method, fine_tune_type, max_seq_length_default)
    given = {key: value for key, value in requested.items() if value is not None and value != AUTO}
    resolved: dict[str, Any] = {}
    resolved["n_epochs"] = _int_field(given, "n_epochs", default=auto_epochs(n_examples), maximum=MAX_EPOCHS)
    resolved["max_seq_length"] = _int_field(given, "max_seq_length", default=max_seq_length_default, minimum=16)
    resolved["packing"] = _bool_field(given, "packing", default=method == "supervised")
    if method == "dpo" and resolved["packing"]:
        raise ValueError("packing: not supported for dpo; leave it unset or false")
    resolved["learning_rate"] = _learning_rate(given, method, fine_tune_type)
    resolved["lora_r"] = _int_field(given, "lora_r", default=16)
    resolved["lora_alpha"] = _int_field(given, "lora_alpha", default=2 * resolved["lora_r"])
    resolved["lora_dropout"] = _float_field(given, "lora_dropout", default=0.05, low=0.0, high=1.0)
    resolved["target_modules"] = _target_modules(given)
    resolved["warmup_ratio"] = _float_field(
        given, "warmup_ratio", default=0.1 if method == "dpo" else 0.03, low=0.0, high=1.0
    )
    resolved["beta"] = _float_field(
        given, "beta", default=0.1, low=0.0, high=MAX_BETA, low_inclusive=False, high_inclusive=True
    )
    resolved["weight_decay"] = _float_field(given, "weight_decay", default=0.0, low=0.0, high=None)
    resolved["lr_scheduler_type"] = _scheduler(given)
    resolved["optimizer"] = _choice_field(given, "optimizer", OPTIMIZERS, default="adamw_torch")
    resolved["activation_offloading"] = _bool_field(given, "activation_offloading", default=False)
    batch_size, accumulation = _batch_shape(given, n_examples, n_tokens, resolved)
    resolved["batch_size"] = batch_size
    resolved["gradient_accumulation_steps"] = accumulation
    steps = total_steps(n_examples, n_tokens, resolved)
    resolved["eval_steps"] = _int_field(given, "eval_steps", default=max(1, math.ceil(steps / EVALS_PER_RUN)))
    try:
        Hyperparameters(**resolved)
    except ValidationError as error:
        first = error.errors()[0]
        raise ValueError(f"{first['loc'][0]}: {first['msg']}") from None
    return resolved


def estimate(
    n_examples: int,
    n_tokens: int,
    resolved: dict[str, Any],
    tokens_per_second: float,
    method: str = "supervised",
    processes: int = 1,
    shape: ModelShape | None = None,
) -> dict[str, Any]:
    """Steps, trained tokens, seconds, the strategy over `processes` GPUs and its memory per GPU.

    For dpo, `n_tokens` counts prompt+chosen and prompt+rejected (what the model processes) and the
    time adds the reference model's forward pass. `tokens_per_second` is one GPU's; several GPUs
    divide the time. Memory is None when the base model's shape is unknown.
    """
    if tokens_per_second <= 0:
        raise ValueError("tokens_per_second: must be positive")
    trained_tokens = n_tokens * int(resolved["n_epochs"])
    seconds = trained_tokens / tokens_per_second / max(1, processes)
    if method == "dpo":
        seconds *= DPO_COMPUTE_FACTOR
    quantization = resolved.get("quantization")
    memory = None
    if shape is not None:
        memory = memory_per_gpu(
            shape,
            resolved.get("fine_tune_type", "lora"),
            quantization,
            processes,
            micro_batch_tokens=int(resolved["batch_size"]) * int(resolved["max_seq_length"]),
            lora_r=int(resolved["lora_r"]),
            optimizer=resolved.get("optimizer", "adamw_torch"),
            activation_offloading=bool(resolved.get("activation_offloading")),
        ).as_dict()
    return {
        "total_steps": total_steps(n_examples, n_tokens, resolved, processes),
        "trained_tokens": trained_tokens,
        "estimated_seconds": round(seconds, 1),
        "training_processes": max(1, processes),
        "strategy": training_strategy(processes, quantization),
        "memory_per_gpu_gib": memory,
    }


def auto_epochs(n_examples: int) -> int:
    """3 epochs, more for tiny datasets (>= 100 examples seen), fewer for big ones (<= 25k seen)."""
    epochs = TARGET_EPOCHS
    if n_examples * epochs < MIN_TARGET_EXAMPLES:
        epochs = min(MAX_DEFAULT_EPOCHS, math.ceil(MIN_TARGET_EXAMPLES / n_examples))
    elif n_examples * epochs > MAX_TARGET_EXAMPLES:
        epochs = max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return epochs


def sequences_per_epoch(n_examples: int, n_tokens: int, resolved: dict[str, Any]) -> int:
    """Rows the data loader yields per epoch: packed rows of max_seq_length tokens, or one per example."""
    if resolved["packing"]:
        return max(1, math.ceil(n_tokens / resolved["max_seq_length"]))
    return n_examples


def total_steps(n_examples: int, n_tokens: int, resolved: dict[str, Any], processes: int = 1) -> int:
    """Optimizer steps over all epochs, counted the way transformers' Trainer counts them."""
    per_step = resolved["batch_size"] * max(1, processes)
    batches = math.ceil(sequences_per_epoch(n_examples, n_tokens, resolved) / per_step)
    steps_per_epoch = max(1, math.ceil(batches / resolved["gradient_accumulation_steps"]))
    return steps_per_epoch * int(resolved["n_epochs"])


def _batch_shape(given: dict[str, Any], n_examples: int, n_tokens: int, resolved: dict[str, Any]) -> tuple[int, int]:
    """(sequences per forward pass, forward passes per optimizer step) aiming at OpenAI's examples per step."""
    examples_per_step = min(MAX_EXAMPLES_PER_STEP, max(1, round(BATCH_FRACTION * n_examples)))
    max_seq_length = resolved["max_seq_length"]
    if resolved["packing"]:
        mean_tokens = n_tokens / n_examples
        sequences_per_step = max(1, round(examples_per_step * mean_tokens / max_seq_length))
    else:
        sequences_per_step = examples_per_step
    micro_cap = max(1, min(MAX_BATCH_SIZE, MICRO_BATCH_TOKEN_BUDGET // max_seq_length))
    batch_size = given.get("batch_size")
    accumulation = given.get("gradient_accumulation_steps")
    if batch_size is None and accumulation is None:
        batch_size = min(sequences_per_step, micro_cap)
        accumulation = math.ceil(sequences_per_step / batch_size)
    elif batch_size is None:
        accumulation = _int_field(given, "gradient_accumulation_steps", default=1)
        batch_size = min(micro_cap, max(1, math.ceil(sequences_per_step / accumulation)))
    else:
        batch_size = _int_field(given, "batch_size", default=1, maximum=MAX_BATCH_SIZE)
        default_accumulation = max(1, math.ceil(sequences_per_step / batch_size))
        accumulation = _int_field(given, "gradient_accumulation_steps", default=default_accumulation)
    return batch_size, accumulation


def learning_rate_multiplier(learning_rate: float, method: str, fine_tune_type: str) -> float:
    """A resolved learning rate as OpenAI states it: a multiple of the method's base rate (6 significant digits)."""
    return float(f"{learning_rate / BASE_LEARNING_RATE[(method, fine_tune_type)]:.6g}")


def _learning_rate(given: dict[str, Any], method: str, fine_tune_type: str) -> float:
    base = BASE_LEARNING_RATE[(method, fine_tune_type)]
    if "learning_rate" in given:
        return _float_field(given, "learning_rate", default=base, low=0.0, high=1.0, low_inclusive=False)
    multiplier = _float_field(given, "learning_rate_multiplier", default=1.0, low=0.0, high=None, low_inclusive=False)
    return base * multiplier


def _target_modules(given: dict[str, Any]) -> list[str] | str:
    value = given.get("target_modules", ALL_LINEAR)
    if value == ALL_LINEAR:
        return ALL_LINEAR
    if isinstance(value, str):
        value = [name.strip() for name in value.split(",") if name.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(name, str) and name for name in value):
        raise ValueError("target_modules: must be 'all-linear' or a non-empty list of module names")
    return value


def _scheduler(given: dict[str, Any]) -> str:
    value = given.get("lr_scheduler_type", "linear")
    if value not in SCHEDULERS:
        raise ValueError(f"lr_scheduler_type: must be one of {', '.join(sorted(SCHEDULERS))}")
    return str(value)


def _int_field(given: dict[str, Any], name: str, default: int, minimum: int = 1, maximum: int | None = None) -> int:
    value = given.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: must be an integer >= {minimum} or 'auto', got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}: must be an integer from {minimum} to {maximum} or 'auto', got {value!r}")
    return value


def _float_field(
    given: dict[str, Any],
    name: str,
    default: float,
    low: float,
    high: float | None,
    low_inclusive: bool = True,
    high_inclusive: bool = False,
) -> float:
    value = given.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}: must be a number or 'auto', got {value!r}")
    too_low = value < low if low_inclusive else value <= low
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    if too_low or too_high:
        upper = f" and {'<=' if high_inclusive else '<'} {high}" if high is not None else ""
        bound = f"{'>=' if low_inclusive else '>'} {low}{upper}"
        raise ValueError(f"{name}: must be {bound}, got {value!r}")
    return float(value)


def _choice_field(given: dict[str, Any], name: str, choices: tuple[str, ...], default: str) -> str:
    value = given.get(name, default)
    if value not in choices:
        raise ValueError(f"{name}: must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _bool_field(given: dict[str, Any], name: str, default: bool) -> bool:
    value = given.get(name, default)
    if not isinstance(value, bool):
        raise ValueError(f"{name}: must be true, false or 'auto', got {value!r}")
    return value


def _check_context(
    requested: dict[str, Any],
    n_examples: int,
    n_tokens: int,
    method: str,
    fine_tune_type: str,
    max_seq_length_default: int,
) -> None:
    unknown = sorted(set(requested) - KNOWN_FIELDS)
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown hyperparameter")
    if (method, fine_tune_type) not in BASE_LEARNING_RATE:
        raise ValueError(f"method: unsupported combination {method!r} / {fine_tune_type!r}")
    if n_examples < 1:
        raise ValueError("training_file: has no examples")
    if n_tokens < n_examples:
        raise ValueError("n_tokens: must count at least one token per example")
    if max_seq_length_default < 16:
        raise ValueError("max_seq_length: default must be >= 16")
