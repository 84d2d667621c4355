"""The auto hyperparameter rule, validation, estimate and the config contract (no torch needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.training.config import Hyperparameters, TrainingConfig
from app.training.hyperparams import auto_epochs, estimate, resolve_hyperparameters
from app.training.strategy import ModelShape, memory_per_gpu, training_strategy

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("n_examples", "epochs"),
    [(10, 10), (20, 5), (3, 25), (100, 3), (5000, 3), (10_000, 2), (20_000, 1), (1_000_000, 1)],
)
def test_auto_epochs_follow_dataset_size(n_examples: int, epochs: int) -> None:
    assert auto_epochs(n_examples) == epochs


def test_auto_batch_targets_openai_examples_per_step_within_a_token_budget() -> None:
    # 50k examples -> 100 examples per step; 2048-token rows -> at most 4 per forward pass.
    resolved = resolve_hyperparameters({"packing": False}, 50_000, 10_000_000, "supervised", "lora", 2048)
    assert (resolved["batch_size"], resolved["gradient_accumulation_steps"]) == (4, 25)
    # Packed: 100 examples of 200 tokens fill about 10 rows of 2048.
    packed = resolve_hyperparameters({}, 50_000, 10_000_000, "supervised", "lora", 2048)
    rows_per_step = packed["batch_size"] * packed["gradient_accumulation_steps"]
    assert packed["batch_size"] <= 4 and 10 <= rows_per_step < 10 + packed["batch_size"]
    # A small dataset still gets a batch of one and no accumulation.
    small = resolve_hyperparameters({}, 30, 3_000, "supervised", "lora", 2048)
    assert (small["batch_size"], small["gradient_accumulation_steps"]) == (1, 1)


def test_auto_learning_rate_depends_on_method_and_type() -> None:
    def lr(method: str, kind: str, **requested: float) -> float:
        return resolve_hyperparameters(dict(requested), 100, 10_000, method, kind, 512)["learning_rate"]

    assert lr("supervised", "lora") == 2e-4
    assert lr("supervised", "full") == 1e-5
    assert lr("dpo", "lora") == 5e-6
    assert lr("supervised", "lora", learning_rate_multiplier=0.5) == pytest.approx(1e-4)
    assert lr("supervised", "full", learning_rate=3e-5) == 3e-5


def test_explicit_values_are_kept_and_auto_strings_resolved() -> None:
    resolved = resolve_hyperparameters(
        {"n_epochs": 2, "batch_size": "auto", "lora_r": 8, "target_modules": ["q_proj", "v_proj"]},
        100,
        10_000,
        "supervised",
        "lora",
        512,
    )
    assert resolved["n_epochs"] == 2
    assert resolved["lora_r"] == 8 and resolved["lora_alpha"] == 16
    assert resolved["target_modules"] == ["q_proj", "v_proj"]
    assert set(resolved) == set(Hyperparameters.model_fields)
    Hyperparameters(**resolved)


def test_dpo_defaults_are_unpacked_with_beta() -> None:
    resolved = resolve_hyperparameters({}, 100, 10_000, "dpo", "lora", 512)
    assert resolved["packing"] is False and resolved["beta"] == 0.1


@pytest.mark.parametrize(
    ("requested", "field"),
    [
        ({"n_epochs": 0}, "n_epochs"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"learning_rate": -1}, "learning_rate"),
        ({"lora_dropout": 1.0}, "lora_dropout"),
        ({"warmup_ratio": 1.0}, "warmup_ratio"),
        ({"target_modules": []}, "target_modules"),
        ({"packing": "yes"}, "packing"),
        ({"lr_scheduler_type": "zigzag"}, "lr_scheduler_type"),
        ({"max_seq_length": 4}, "max_seq_length"),
        ({"epochs": 3}, "epochs"),
    ],
)
def test_bad_values_raise_value_error_naming_the_field(requested: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}\b"):
        resolve_hyperparameters(requested, 100, 10_000, "supervised", "lora", 512)


def test_packing_is_refused_for_dpo() -> None:
    with pytest.raises(ValueError, match=r"^packing"):
        resolve_hyperparameters({"packing": True}, 100, 10_000, "dpo", "lora", 512)


def test_estimate_counts_steps_tokens_and_time() -> None:
    resolved = resolve_hyperparameters(
        {"n_epochs": 2, "batch_size": 4, "gradient_accumulation_steps": 2, "packing": False},
        100,
        20_000,
        "supervised",
        "lora",
        512,
    )
    result = estimate(100, 20_000, resolved, tokens_per_second=1000.0)
    # 100 examples / 4 per batch = 25 batches -> 13 optimizer steps per epoch.
    assert result == {
        "total_steps": 26, "trained_tokens": 40_000, "estimated_seconds": 40.0,
        "training_processes": 1, "strategy": "single", "memory_per_gpu_gib": None,
    }  # fmt: skip
    assert estimate(100, 20_000, resolved, 1000.0, method="dpo")["estimated_seconds"] > 40.0
    # Two ranks: 8 examples per step (7 steps an epoch), half the time.
    two = estimate(100, 20_000, resolved, 1000.0, processes=2)
    assert (two["total_steps"], two["estimated_seconds"], two["strategy"]) == (14, 20.0, "fsdp2")


def test_the_estimate_names_the_strategy_and_its_memory_per_gpu() -> None:
    llama_8b = ModelShape(parameters=8_030_000_000, hidden_size=4096, num_hidden_layers=32, vocab_size=128_256)
    full = resolve_hyperparameters({"batch_size": 1, "max_seq_length": 2048}, 1000, 500_000, "supervised", "full", 2048)
    full["fine_tune_type"], full["quantization"] = "full", None
    one_gpu = estimate(1000, 500_000, full, 1000.0, processes=1, shape=llama_8b)["memory_per_gpu_gib"]
    # bf16 weights 2 B, gradients 2 B, AdamW moments 4 B per parameter: ~60 GiB before activations.
    assert (one_gpu["weights"], one_gpu["gradients"], one_gpu["optimizer_states"]) == (14.96, 14.96, 29.91)
    eight = estimate(1000, 500_000, full, 1000.0, processes=8, shape=llama_8b)
    assert eight["strategy"] == "fsdp2" and eight["memory_per_gpu_gib"]["weights"] == pytest.approx(14.96 / 8, abs=0.01)
    assert eight["memory_per_gpu_gib"]["activations"] == one_gpu["activations"] > 0
    paged = estimate(1000, 500_000, full | {"optimizer": "paged_adamw_8bit"}, 1000.0, shape=llama_8b)
    assert paged["memory_per_gpu_gib"]["optimizer_states"] == pytest.approx(29.91 / 2, abs=0.01)
    qlora = resolve_hyperparameters({}, 1000, 500_000, "supervised", "lora", 2048) | {"quantization": "qlora"}
    on_two = estimate(1000, 500_000, qlora, 1000.0, processes=2, shape=llama_8b)
    assert on_two["strategy"] == "ddp" and on_two["memory_per_gpu_gib"]["weights"] < 5
    assert memory_per_gpu(llama_8b, "full", None, 1, 8192, 16, activation_offloading=True).activations < (
        memory_per_gpu(llama_8b, "full", None, 1, 8192, 16).activations
    )
    assert training_strategy(1, "qlora") == "single"


def test_optimizer_and_activation_offloading_are_validated() -> None:
    resolved = resolve_hyperparameters({"optimizer": "paged_adamw_8bit", "activation_offloading": True},
                                       100, 10_000, "supervised", "full", 512)  # fmt: skip
    assert (resolved["optimizer"], resolved["activation_offloading"]) == ("paged_adamw_8bit", True)
    assert resolve_hyperparameters({}, 100, 10_000, "supervised", "lora", 512)["optimizer"] == "adamw_torch"
    with pytest.raises(ValueError, match="optimizer: must be one of"):
        resolve_hyperparameters({"optimizer": "sgd"}, 100, 10_000, "supervised", "lora", 512)
    with pytest.raises(ValueError, match="activation_offloading: must be true"):
        resolve_hyperparameters({"activation_offloading": "yes"}, 100, 10_000, "supervised", "lora", 512)


def test_training_config_round_trips_through_json(tmp_path: Path) -> None:
    resolved = resolve_hyperparameters({}, 100, 10_000, "supervised", "lora", 512)
    config = TrainingConfig(
        job_id="ftjob-1",
        base_model="meta-llama/Llama-3.2-1B",
        training_file=tmp_path / "train.jsonl",
        hyperparameters=Hyperparameters(**resolved),
        output_dir=tmp_path / "out",
        checkpoint_dir=tmp_path / "ckpt",
    )
    path = config.write(tmp_path / "config.json")
    assert TrainingConfig.read(path) == config
    with pytest.raises(ValidationError, match="qlora"):
        TrainingConfig(**(config.model_dump() | {"fine_tune_type": "full", "quantization": "qlora"}))


def test_config_and_hyperparams_import_without_torch() -> None:
    code = (
        "import sys, app.training, app.training.config, app.training.hyperparams, app.training.callbacks;"
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT).returncode == 0
