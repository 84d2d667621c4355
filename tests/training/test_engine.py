"""The recipe end to end on CPU with the tiny model: SFT LoRA, full, DPO, packing, data policy."""

from __future__ import annotations

import csv
import itertools
import json
import math
import weakref
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from app.training import engine
from app.training.config import TrainingConfig
from app.training.engine import FineTuneRecipe
from app.training.errors import InvalidConfigError, MissingChatTemplateError
from app.training.outputs import METRICS_COLUMNS

from .conftest import RecordingProgress, make_config, write_chat_file, write_preference_file


def run(config: TrainingConfig) -> tuple[FineTuneRecipe, RecordingProgress]:
    progress = RecordingProgress()
    recipe = FineTuneRecipe(config, progress)
    recipe.setup()
    outcome = recipe.train()
    assert outcome.completed
    recipe.save_outputs()
    recipe.cleanup()
    return recipe, progress


@pytest.mark.slow
def test_sft_lora_learns_prunes_checkpoints_and_writes_loadable_outputs(tiny_model: Path, tmp_path: Path) -> None:
    training_file = write_chat_file(tmp_path / "train.jsonl", 24)
    validation_file = write_chat_file(tmp_path / "valid.jsonl", 6, seed=1)
    config = make_config(
        tmp_path,
        tiny_model,
        training_file,
        hyperparameters={"n_epochs": 8, "batch_size": 4, "learning_rate": 1e-2, "eval_steps": 12},
        validation_file=validation_file,
        checkpoint_every_steps=4,
        keep_checkpoints=2,
    )
    _, progress = run(config)

    steps = progress.of("step")
    total = progress.of("started")[0]["total_steps"]
    assert [event["step"] for event in steps] == list(range(1, total + 1))
    first, last = steps[:3], steps[-3:]
    assert sum(e["train_loss"] for e in last) < sum(e["train_loss"] for e in first) - 0.3
    assert steps[-1]["trained_tokens"] > steps[0]["trained_tokens"] > 0
    assert all(e["tokens_per_second"] > 0 and e["eta_seconds"] >= 0 for e in steps[1:])
    assert progress.of("eval") and progress.of("eval")[-1]["step"] == total

    # Checkpoints every 4 steps and at each epoch end; only the newest two are left on disk.
    saved = [event["step"] for event in progress.of("checkpoint")]
    assert saved[-1] == total and all(step % 4 == 0 or step % (total // 8) == 0 for step in saved)
    pruned = [Path(event["path"]).name for event in progress.of("checkpoint_pruned")]
    assert pruned == [f"checkpoint-{step}" for step in saved[:-2]]
    left = sorted(path.name for path in config.checkpoint_dir.glob("checkpoint-*"))
    assert left == sorted(f"checkpoint-{step}" for step in saved[-2:])

    done = progress.of("done")[0]
    output = config.output_dir
    assert done["adapter_dir"] == str(output / "adapter") and done["merged_dir"] == str(output / "merged")
    assert done["model_dir"] == done["merged_dir"] and done["trained_tokens"] == steps[-1]["trained_tokens"]
    for name in ("adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "README.md"):
        assert (output / "adapter" / name).is_file(), name
    assert not (output / "adapter" / "training_args.bin").exists()
    assert "base_model:" in (output / "adapter" / "README.md").read_text()
    with (output / "step_metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == METRICS_COLUMNS and len(rows) == total
    assert rows[-1]["valid_loss"] and rows[-1]["train_accuracy"]

    merged = AutoModelForCausalLM.from_pretrained(output / "merged")
    tokenizer = AutoTokenizer.from_pretrained(output / "merged")
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "what time"}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    generated = merged.generate(**prompt, max_new_tokens=5, do_sample=False)
    assert generated.shape[1] > prompt["input_ids"].shape[1]
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert not torch.equal(merged.model.layers[0].self_attn.q_proj.weight, base.model.layers[0].self_attn.q_proj.weight)


@pytest.mark.slow
def test_full_fine_tune_writes_a_whole_model(tiny_model: Path, tmp_path: Path) -> None:
    training_file = write_chat_file(tmp_path / "train.jsonl", 16)
    config = make_config(tmp_path, tiny_model, training_file, fine_tune_type="full", hyperparameters={"n_epochs": 2})
    _, progress = run(config)

    done = progress.of("done")[0]
    assert done["adapter_dir"] is None and done["merged_dir"] is None
    assert done["model_dir"] == str(config.output_dir / "model")
    model = AutoModelForCausalLM.from_pretrained(done["model_dir"])
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert not torch.equal(model.lm_head.weight, base.lm_head.weight)
    assert (config.output_dir / "model" / "model.safetensors").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("fine_tune_type", ["lora", "full"])
def test_dpo_end_to_end(tiny_model: Path, tmp_path: Path, fine_tune_type: str) -> None:
    training_file = write_preference_file(tmp_path / "prefs.jsonl", 12)
    validation_file = write_preference_file(tmp_path / "prefs-valid.jsonl", 4, seed=3)
    config = make_config(
        tmp_path,
        tiny_model,
        training_file,
        method="dpo",
        fine_tune_type=fine_tune_type,
        hyperparameters={"n_epochs": 2, "learning_rate": 1e-3, "beta": 0.2},
        validation_file=validation_file,
    )
    _, progress = run(config)

    steps = progress.of("step")
    assert steps and all(event["train_loss"] is not None for event in steps)
    assert progress.of("eval")[-1]["valid_loss"] is not None
    done = progress.of("done")[0]
    if fine_tune_type == "lora":
        assert (Path(done["adapter_dir"]) / "adapter_model.safetensors").is_file()
        assert (Path(done["merged_dir"]) / "model.safetensors").is_file()
    else:
        assert (Path(done["model_dir"]) / "model.safetensors").is_file()


def write_learnable_preferences(path: Path, n_examples: int) -> Path:
    """A preference the tiny model can learn at once: a colour answer over the same refusal, every time."""
    from tests.jobs.datasets import ANIMALS, COLORS

    lines = [
        {
            "input": {"messages": [{"role": "user", "content": f"What color is the {ANIMALS[i % 8]}?"}]},
            "preferred_output": [{"role": "assistant", "content": f"The {ANIMALS[i % 8]} is {COLORS[i * 3 % 8]}."}],
            "non_preferred_output": [{"role": "assistant", "content": "I do not know."}],
        }
        for i in range(n_examples)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.mark.slow
@pytest.mark.parametrize(("fine_tune_type", "learning_rate"), [("lora", 5e-3), ("full", 1e-3)])
def test_dpo_learns_to_prefer_the_preferred_answers(
    tiny_model: Path, tmp_path: Path, fine_tune_type: str, learning_rate: float
) -> None:
    """DPO's own measures, from the trainer's log: the reward margin of preferred over rejected rises from 0."""
    training_file = write_learnable_preferences(tmp_path / "prefs.jsonl", 16)
    config = make_config(tmp_path, tiny_model, training_file, method="dpo", fine_tune_type=fine_tune_type,
                         hyperparameters={"n_epochs": 3, "batch_size": 4, "learning_rate": learning_rate,
                                          "beta": 0.1})  # fmt: skip
    lines = [json.loads(line) for line in training_file.read_text().splitlines()]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    before = preference_gap(AutoModelForCausalLM.from_pretrained(tiny_model), tokenizer, lines)
    recipe = FineTuneRecipe(config, RecordingProgress())
    recipe.setup()
    assert recipe.train().completed
    logged = [entry for entry in recipe.trainer.state.log_history if "rewards/margins" in entry]
    after = preference_gap(recipe.trainer.model, tokenizer, lines)
    recipe.cleanup()
    margins = [entry["rewards/margins"] for entry in logged]
    assert len(logged) == 12 and abs(margins[0]) < 0.05, margins  # policy and reference start equal
    assert sum(margins[-3:]) / 3 > sum(margins[:3]) / 3 + 0.5, margins
    assert margins[-1] > 1.0 and logged[-1]["rewards/accuracies"] == 1.0, logged[-1]
    assert logged[-1]["loss"] < 0.5 < math.log(2), logged[-1]  # DPO's loss starts at log 2
    # Scored outside the trainer: the model now favours the answers the file prefers, not the refusal.
    assert after - before > 1.0, (before, after)


def preference_gap(model: torch.nn.Module, tokenizer: Any, lines: list[dict[str, Any]]) -> float:
    """Mean log p(preferred answer) - log p(rejected answer) after each prompt, in nats."""
    model.eval()

    def answer_logprob(prompt: list[dict[str, str]], answer: list[dict[str, str]]) -> float:
        template = {"return_dict": True, "return_tensors": "pt"}
        prefix = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, **template)["input_ids"]
        ids = tokenizer.apply_chat_template(prompt + answer, **template)["input_ids"].to(model.device)
        with torch.no_grad():
            logprobs = model(input_ids=ids).logits[0, :-1].float().log_softmax(-1)
        targets = ids[0, 1:]
        return float(logprobs[torch.arange(len(targets)), targets][prefix.shape[1] - 1 :].sum())

    gaps = [
        answer_logprob(line["input"]["messages"], line["preferred_output"])
        - answer_logprob(line["input"]["messages"], line["non_preferred_output"])
        for line in lines
    ]
    return sum(gaps) / len(gaps)


def test_a_packed_row_loses_what_its_documents_lose_alone(tiny_model: Path, tmp_path: Path) -> None:
    """No document attends to another: the summed loss of a packed row is the sum of its documents' losses."""
    training_file = write_chat_file(tmp_path / "train.jsonl", 24)
    config = make_config(tmp_path, tiny_model, training_file, hyperparameters={"batch_size": 4, "max_seq_length": 256})
    recipe = FineTuneRecipe(config)
    recipe.setup()
    trainer = recipe.trainer
    batch = next(iter(trainer.get_train_dataloader()))  # exactly what a training step's forward pass gets
    input_ids, labels, position_ids = batch["input_ids"], batch["labels"], batch["position_ids"]
    starts = [*(position_ids[0] == 0).nonzero().flatten().tolist(), input_ids.shape[1]]
    assert input_ids.shape[0] == 1 and len(starts) > 3, "the batch should be several documents in one row"
    # The first label of each packed document is masked: nothing is predicted across a boundary.
    assert all(labels[0, start] == -100 for start in starts[:-1])

    model = trainer.model.eval()
    with torch.no_grad():
        # num_items_in_batch=1: the loss is the sum over the row's trained tokens, as the Trainer sums it.
        packed = model(**batch, num_items_in_batch=1).loss
        alone = [
            model(input_ids=input_ids[:, start:end], labels=labels[:, start:end], num_items_in_batch=1).loss
            for start, end in itertools.pairwise(starts)
        ]
        # Control: the same row read as one causal sequence (position ids 0..n) lets documents see each other.
        leaky = model(input_ids=input_ids, labels=labels, num_items_in_batch=1).loss
    torch.testing.assert_close(packed, torch.stack(alone).sum(), rtol=1e-5, atol=1e-4)
    assert abs(float(leaky) - float(packed)) > 1e-2
    recipe.cleanup()


def test_the_training_model_is_freed_before_the_merge_loads_a_second_copy(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(tmp_path, tiny_model, write_chat_file(tmp_path / "train.jsonl", 8), max_steps=2)
    recipe = FineTuneRecipe(config)
    recipe.setup()
    assert recipe.train().completed
    trained, optimizer = weakref.ref(recipe.trainer.model), weakref.ref(recipe.trainer.optimizer)
    alive_at_merge: list[tuple[bool, bool]] = []
    load = engine.AutoModelForCausalLM.from_pretrained

    def merge_load(*args: object, **kwargs: object) -> object:
        alive_at_merge.append((trained() is not None, optimizer() is not None))
        return load(*args, **kwargs)

    monkeypatch.setattr(engine.AutoModelForCausalLM, "from_pretrained", merge_load)
    outputs = recipe.save_outputs()
    recipe.cleanup()
    assert alive_at_merge == [(False, False)], "the merge loaded the base beside the training model"
    assert outputs.merged_dir and (Path(outputs.merged_dir) / "model.safetensors").is_file()


def test_over_long_examples_are_truncated_or_rejected(tiny_model: Path, tmp_path: Path) -> None:
    long_example = {
        "messages": [
            {"role": "user", "content": "tell me everything"},
            {"role": "assistant", "content": " ".join(["river light good answer"] * 60)},
        ]
    }
    training_file = write_chat_file(tmp_path / "train.jsonl", 8, extra=[long_example])

    strict = make_config(tmp_path / "strict", tiny_model, training_file, truncate_long_examples=False)
    with pytest.raises(InvalidConfigError, match=r"exceed max_seq_length 128.*lines 9 \("):
        FineTuneRecipe(strict).setup()

    lenient = make_config(tmp_path / "lenient", tiny_model, training_file, max_steps=1)
    progress = RecordingProgress()
    recipe = FineTuneRecipe(lenient, progress)
    recipe.setup()
    warnings = [e["message"] for e in progress.of("message") if e["level"] == "warn"]
    assert any("truncated 1 example(s) to 128 tokens: lines 9" in message for message in warnings)
    assert max(len(row) for row in recipe.trainer.train_dataset["input_ids"]) <= 128
    recipe.cleanup()


def test_missing_chat_template_is_a_clear_error(model_without_template: Path, tmp_path: Path) -> None:
    training_file = write_chat_file(tmp_path / "train.jsonl", 4)
    no_template = make_config(tmp_path, model_without_template, training_file)
    with pytest.raises(MissingChatTemplateError, match="no chat template"):
        FineTuneRecipe(no_template).setup()
    assert json.loads(no_template.to_json())["chat_template"] is None


def test_qlora_trains_4bit_on_a_gpu_and_is_a_clear_error_without_one(tiny_model: Path, tmp_path: Path) -> None:
    training_file = write_chat_file(tmp_path / "train.jsonl", 8)
    qlora = make_config(tmp_path, tiny_model, training_file, quantization="qlora", max_steps=2)
    if not torch.cuda.is_available():
        with pytest.raises(InvalidConfigError, match="needs a CUDA GPU"):
            FineTuneRecipe(qlora).setup()
        return
    import bitsandbytes as bnb  # the CUDA build's QLoRA dependency (pyproject: linux x86_64)

    progress = RecordingProgress()
    recipe = FineTuneRecipe(qlora, progress)
    recipe.setup()
    quantized = [module for module in recipe.trainer.model.modules() if isinstance(module, bnb.nn.Linear4bit)]
    assert quantized, "the base model's linear layers are loaded in 4 bits"
    assert recipe.train().completed
    recipe.save_outputs()
    recipe.cleanup()
    steps = progress.of("step")
    assert [event["step"] for event in steps] == [1, 2]
    assert all(math.isfinite(event["train_loss"]) for event in steps)
    done = progress.of("done")[0]
    assert (Path(done["adapter_dir"]) / "adapter_model.safetensors").is_file()
