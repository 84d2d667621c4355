"""Training throughput of the engine (packed, padding-free) against a plain padded transformers.Trainer.

    python bench/train_throughput.py            # CUDA if present, else CPU
    python bench/train_throughput.py --device cpu --steps 20

CPU: a ~13M-parameter Llama (hidden 512, 4 layers, 8 heads of 64, MLP 1408) with the tiny tokenizer,
rows of 512 tokens: big enough that matrix work, not per-step overhead, decides. CUDA: a
Llama-3-8B-shaped model built from its config with random bf16 weights, rows of 2048 tokens. LoRA
r=16 on every linear layer either way.
Both variants train on the same mixed-length chat data with the same LoRA and precision, each in
its own process (clean peak memory), and report:

- tokens/s: real (non-padding) tokens per second over the measured steps (warm-up excluded);
- peak memory: torch.cuda.max_memory_allocated on CUDA, the process's max RSS on CPU;
- padding fraction: padding slots / all token slots in the batches of one epoch;
- MFU = tokens/s x FLOPs/token / peak dense bf16 FLOP/s of the GPU (see `flops_per_token`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from app.training.tiny_data import sentence, words

REPO_ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = REPO_ROOT / "bench" / "out"
WARMUP_STEPS = 3
# Dense bf16 tensor-core peaks (no sparsity), by substring of torch.cuda.get_device_name().
GPU_PEAK_BF16_FLOPS = {
    "H200": 989e12,
    "H100 PCIe": 756e12,
    "H100": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "A10": 125e12,
}


def main() -> int:
    args = _parse_args()
    if args.steps is None:
        args.steps = 8 if args.device == "cpu" or args.quick else 20
    if args.variant:
        result = run_variant(args)
        Path(args.json).write_text(json.dumps(result))
        return 0
    results = [_run_in_subprocess(variant, args) for variant in ("engine-packed", "trainer-padded")]
    _print_table(results)
    return 0


# ---- one variant, in its own process ---------------------------------------------------------


def run_variant(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    sys.path.insert(0, str(REPO_ROOT))
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    if not use_cuda:
        torch.set_num_threads(args.threads)
    shape = _shape(use_cuda, args.quick)
    from app.training.tiny_model import build_tiny_model

    tokenizer_dir = build_tiny_model(OUT_DIR / "tiny-llama")
    data_file = _write_data(OUT_DIR / f"chat-{shape['name']}.jsonl", shape, tokenizer_dir, args)
    model = _build_model(shape, tokenizer_dir, use_cuda)
    if use_cuda:
        torch.cuda.reset_peak_memory_stats()
    if args.variant == "engine-packed":
        trainer, padding = _engine_trainer(model, shape, tokenizer_dir, data_file, args)
    else:
        trainer, padding = _padded_trainer(model, shape, tokenizer_dir, data_file, args)
    timer = _step_timer()
    trainer.add_callback(timer)
    trainer.train()
    tokens_per_second = timer.tokens_per_second()
    if use_cuda:
        peak_bytes = torch.cuda.max_memory_allocated()
    else:
        peak_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    attended = _attended_length(tokenizer_dir, data_file, shape["max_seq_length"])
    flops_per_token = flops_per_token_of(model, attended, fine_tune_type="lora")
    peak_flops = args.peak_tflops * 1e12 if args.peak_tflops else _gpu_peak(use_cuda)
    return {
        "variant": args.variant,
        "device": torch.cuda.get_device_name() if use_cuda else "cpu",
        "model": shape["name"],
        "tokens_per_second": tokens_per_second,
        "peak_memory_gib": peak_bytes / 2**30,
        "padding_fraction": padding,
        "flops_per_token": flops_per_token,
        "mfu": tokens_per_second * flops_per_token / peak_flops if peak_flops else None,
        "per_device_batch": trainer.args.per_device_train_batch_size,
        "attention": model.config._attn_implementation,
    }


def _shape(use_cuda: bool, quick: bool = False) -> dict[str, Any]:
    if use_cuda:
        return {"name": "llama3-8b-shape", "max_seq_length": 2048, "min_length": 64, "rows": 2, "examples": 600}
    if quick:  # the CPU form of scripts/gpu-check.sh: the same code, a model that runs a step in milliseconds
        return {"name": "tiny-llama", "max_seq_length": 256, "min_length": 16, "rows": 4, "examples": 120}
    return {"name": "llama-13m", "max_seq_length": 512, "min_length": 16, "rows": 4, "examples": 160}


# Model shapes built from config with random weights (nothing downloaded).
SHAPES: dict[str, dict[str, Any]] = {
    "llama3-8b-shape": {
        "vocab_size": 128_256,
        "hidden_size": 4096,
        "intermediate_size": 14_336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "max_position_embeddings": 8192,
        "rope_theta": 500_000.0,
    },
    # ~13M parameters: attention's share of a step close to an 8B model's at 2048, a step of 1-2 s on 2 cores.
    "llama-13m": {
        "hidden_size": 512,
        "intermediate_size": 1408,
        "num_hidden_layers": 4,
        "num_attention_heads": 8,
        "num_key_value_heads": 8,
        "max_position_embeddings": 2048,
    },
}


def _build_model(shape: dict[str, Any], tokenizer_dir: Path, use_cuda: bool) -> Any:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from app.training.model_loading import attention_implementation

    if shape["name"] not in SHAPES:
        return AutoModelForCausalLM.from_pretrained(tokenizer_dir, dtype=torch.float32)
    fields = {"vocab_size": len(AutoTokenizer.from_pretrained(tokenizer_dir)), **SHAPES[shape["name"]]}
    config = LlamaConfig(**fields, rms_norm_eps=1e-5, tie_word_embeddings=False)
    torch.manual_seed(0)
    with torch.device("cuda" if use_cuda else "cpu"):
        return LlamaForCausalLM._from_config(
            config, dtype=torch.bfloat16 if use_cuda else torch.float32, attn_implementation=attention_implementation()
        )


def _write_data(path: Path, shape: dict[str, Any], tokenizer_dir: Path, args: argparse.Namespace) -> Path:
    """Chats whose lengths spread log-uniformly from min_length to max_seq_length tokens."""
    if path.is_file():
        return path
    rng = random.Random(0)
    low, high = math.log(shape["min_length"]), math.log(shape["max_seq_length"])
    lines = []
    for _ in range(shape["examples"]):
        target_tokens = int(math.exp(rng.uniform(low, high)))
        n_words = max(2, int(target_tokens / 1.6))  # the tiny tokenizer spends ~1.6 tokens per word here
        answer = words(rng, n_words)
        question = sentence(rng, 3, 12)
        lines.append(
            json.dumps({"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]})
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _engine_trainer(
    model: Any, shape: dict[str, Any], tokenizer_dir: Path, data_file: Path, args: argparse.Namespace
) -> tuple[Any, float]:
    from app.training.config import Hyperparameters, TrainingConfig
    from app.training.engine import FineTuneRecipe

    workdir = Path(tempfile.mkdtemp(prefix="engine-", dir=OUT_DIR))
    hyperparameters = Hyperparameters(**_hyperparameters(shape, packing=True))
    config = TrainingConfig(
        job_id="bench",
        base_model=str(tokenizer_dir),
        training_file=data_file,
        hyperparameters=hyperparameters,
        output_dir=workdir / "output",
        checkpoint_dir=workdir / "checkpoints",
        checkpoint_every_steps=10**6,
        max_steps=WARMUP_STEPS + args.steps,
    )
    recipe = FineTuneRecipe(config, model=model)
    recipe.setup()
    trainer = recipe.trainer
    return trainer, _padding_fraction(trainer, attention_key=None)


def _padded_trainer(
    model: Any, shape: dict[str, Any], tokenizer_dir: Path, data_file: Path, args: argparse.Namespace
) -> tuple[Any, float]:
    """transformers.Trainer as most scripts use it: one example per row, padded to the batch's longest."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from app.training.data import iter_tokenized_chat, load_tokenizer

    tokenizer = load_tokenizer(str(tokenizer_dir))
    max_length = shape["max_seq_length"]
    rows = [
        {"input_ids": item.input_ids[:max_length], "labels": item.labels[:max_length]}
        for item in iter_tokenized_chat(tokenizer, data_file)
        if not isinstance(item, Exception)
    ]
    mean_length = sum(len(row["input_ids"]) for row in rows) / len(rows)
    # The same token slots per step as the packed rows, so both see about as much data per step.
    batch_size = max(1, round(shape["rows"] * max_length / mean_length))
    hp = _hyperparameters(shape, packing=False)
    lora = LoraConfig(
        r=hp["lora_r"], lora_alpha=hp["lora_alpha"], lora_dropout=hp["lora_dropout"], target_modules="all-linear"
    )
    peft_model = get_peft_model(model, lora)
    cuda = torch.cuda.is_available() and next(model.parameters()).is_cuda
    training_args = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="padded-", dir=OUT_DIR),
        per_device_train_batch_size=batch_size,
        max_steps=WARMUP_STEPS + args.steps,
        learning_rate=hp["learning_rate"],
        bf16=cuda,
        use_cpu=not cuda,
        activation_checkpointing=True,
        activation_checkpointing_kwargs={"use_reentrant": False},
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        include_num_input_tokens_seen="non_padding",
        seed=0,
    )
    trainer = Trainer(
        model=peft_model,
        args=training_args,
        train_dataset=Dataset.from_list(rows),
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
    )
    return trainer, _padding_fraction(trainer, attention_key="attention_mask")


def _hyperparameters(shape: dict[str, Any], packing: bool) -> dict[str, Any]:
    return {
        "n_epochs": 1,
        "batch_size": shape["rows"],
        "learning_rate": 1e-4,
        "lora_r": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.05,
        "target_modules": "all-linear",
        "max_seq_length": shape["max_seq_length"],
        "packing": packing,
        "warmup_ratio": 0.0,
        "gradient_accumulation_steps": 1,
        "eval_steps": None,
        "beta": 0.1,
        "weight_decay": 0.0,
        "lr_scheduler_type": "constant",
    }


def _padding_fraction(trainer: Any, attention_key: str | None) -> float:
    """Padding slots over all slots, over one epoch of the trainer's own data loader."""
    real = total = 0
    for batch in trainer.get_train_dataloader():
        total += batch["input_ids"].numel()
        real += int(batch[attention_key].sum()) if attention_key else batch["input_ids"].numel()
    return 1 - real / total if total else 0.0


def flops_per_token_of(model: Any, attended: float, fine_tune_type: str) -> float:
    """Model FLOPs of one trained token, forward and backward: `c N + 12 L d T`.

    - N: matmul parameters, all but the input embedding (a lookup), lm_head included; LoRA's adapters
      are left out (r << d: under 1 % here).
    - c = 6 for a full fine-tune: forward 2N, backward 4N (activation and weight gradients);
      c = 4 for LoRA: the frozen base weights get no weight gradients, so the backward pass skips half
      its matmuls (2N for the activation gradients).
    - 12 L d T: attention scores and their weighting, which have no weights: QK^T and AV are 2 d T
      FLOPs each per token per layer forward (4 d T), backward twice that; L layers, d hidden size,
      T the length each token's document attends over, counted as the full square as PaLM
      (Chowdhery et al. 2022, appendix B) counts it, causal masking not halved: T = sum l^2 / sum l
      over the documents (packing keeps them apart, so both variants count the same T).
    - Recomputation by gradient checkpointing is not counted: MFU counts the model's FLOPs, not the
      hardware's.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    embedding = base.get_input_embeddings().weight.numel()
    matmul_params = sum(p.numel() for name, p in base.named_parameters() if "lora_" not in name) - embedding
    config = base.config
    per_parameter = 6 if fine_tune_type == "full" else 4
    return per_parameter * matmul_params + 12 * config.num_hidden_layers * config.hidden_size * attended


def _gpu_peak(use_cuda: bool) -> float | None:
    if not use_cuda:
        return None
    import torch

    name = torch.cuda.get_device_name()
    return next((flops for key, flops in GPU_PEAK_BF16_FLOPS.items() if key in name), None)


def _step_timer() -> Any:
    """A TrainerCallback timing real tokens between the end of warm-up and the last step."""
    import torch
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.marks: list[tuple[float, int]] = []

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            if state.global_step >= WARMUP_STEPS:
                self.marks.append((time.perf_counter(), int(state.num_input_tokens_seen)))
            return control

        def tokens_per_second(self) -> float:
            (start, tokens_start), (end, tokens_end) = self.marks[0], self.marks[-1]
            return (tokens_end - tokens_start) / (end - start)

    return StepTimer()


def _attended_length(tokenizer_dir: Path, data_file: Path, max_length: int) -> float:
    """T of the attention term: sum l^2 / sum l over the documents (each token, its whole document)."""
    from app.training.data import iter_tokenized_chat, load_tokenizer

    tokenizer = load_tokenizer(str(tokenizer_dir))
    lengths = [
        min(len(item.input_ids), max_length)
        for item in iter_tokenized_chat(tokenizer, data_file)
        if not isinstance(item, Exception)
    ]
    return sum(length * length for length in lengths) / sum(lengths)


# ---- the parent: run both, print one table -------------------------------------------------


def _run_in_subprocess(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    result_path = OUT_DIR / f"{variant}.json"
    command = [sys.executable, __file__, "--variant", variant, "--json", str(result_path)]
    command += ["--device", args.device, "--steps", str(args.steps), "--threads", str(args.threads)]
    if args.quick:
        command += ["--quick"]
    if args.peak_tflops:
        command += ["--peak-tflops", str(args.peak_tflops)]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run(command, check=True, env=environment, stdout=subprocess.DEVNULL)
    return dict(json.loads(result_path.read_text()))


def _print_table(results: list[dict[str, Any]]) -> None:
    first = results[0]
    print(
        f"device: {first['device']}   model: {first['model']}   FLOPs/token (LoRA, 4N + 12 L d T): "
        f"{first['flops_per_token']:.3e}"
    )
    print(f"{'variant':<16}{'batch':>6}{'tokens/s':>12}{'peak GiB':>10}{'padding':>9}{'MFU':>8}  attention")
    for row in results:
        mfu = f"{row['mfu']:.1%}" if row["mfu"] is not None else "n/a"
        print(
            f"{row['variant']:<16}{row['per_device_batch']:>6}{row['tokens_per_second']:>12.1f}"
            f"{row['peak_memory_gib']:>10.2f}{row['padding_fraction']:>9.1%}{mfu:>8}  {row['attention']}"
        )
    speedup = results[0]["tokens_per_second"] / results[1]["tokens_per_second"]
    print(f"engine / padded tokens/s: {speedup:.2f}x")
    if first["mfu"] is None:
        print("MFU: n/a on CPU (no dense bf16 peak); pass --peak-tflops to compute it against a number of your own")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--steps", type=int, default=None, help="measured optimizer steps after warm-up")
    parser.add_argument("--quick", action="store_true", help="the tiny model on CPU (scripts/gpu-check.sh --cpu)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    parser.add_argument("--peak-tflops", type=float, default=None, help="override the GPU's dense bf16 peak")
    parser.add_argument("--variant", choices=["engine-packed", "trainer-padded"], help=argparse.SUPPRESS)
    parser.add_argument("--json", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    raise SystemExit(main())
