"""The fine-tuning recipe: one typed config in, adapter / model / merged weights out.

    recipe = FineTuneRecipe(config, progress)
    recipe.setup()                # tokenizer, data, model, trainer; finds a checkpoint to resume
    outcome = recipe.train()      # runs to the end, or to the step where a stop was requested
    if outcome.completed:
        recipe.save_outputs()     # adapter/ or model/, merged/, step_metrics.csv, model cards
    recipe.cleanup()

Transformers + PEFT + TRL underneath (SFTTrainer, DPOTrainer). No HTTP, no database:
everything the outside world learns goes through the `ProgressCallback`.
"""

from __future__ import annotations

import gc
import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from peft import LoraConfig, PeftModel
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase, Trainer, set_seed

from app.training.callbacks import CheckpointInfo, NullProgress, ProgressCallback, TrainingOutputs
from app.training.checkpoints import (
    checkpoint_step,
    latest_checkpoint,
    prune_checkpoints,
    remove_incomplete_checkpoints,
    write_checkpoint_metrics,
)
from app.training.config import TrainingConfig
from app.training.data import load_tokenizer
from app.training.errors import InvalidConfigError
from app.training.outputs import final_metrics, write_metrics_csv, write_model_card
from app.training.process import is_rank_zero
from app.training.rows import load_rows
from app.training.trainer_bridge import RecipeTrainerCallback, StopRequest


def attention_implementation() -> str:
    """FlashAttention 2 where installed (varlen kernels make packed rows cost no more than separate
    ones); otherwise SDPA, which transformers gives a block-diagonal mask for packed rows."""
    if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


@dataclass(frozen=True)
class TrainOutcome:
    completed: bool
    step: int
    total_steps: int
    resumed_from_step: int | None


@dataclass(frozen=True)
class Precision:
    dtype: torch.dtype
    bf16: bool
    fp16: bool


class FineTuneRecipe:
    def __init__(
        self,
        config: TrainingConfig,
        progress: ProgressCallback | None = None,
        model: PreTrainedModel | None = None,
    ) -> None:
        """`model`: an already-built base model (benchmarks, notebooks); by default the recipe
        loads `config.base_model`, whose tokenizer and chat template are used either way."""
        self.config = config
        self.progress: ProgressCallback = progress or NullProgress()
        self._given_model = model
        self._stop = StopRequest()
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self._trainer: Trainer | None = None
        self._bridge: RecipeTrainerCallback | None = None
        self._resume_from: Path | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    def setup(self) -> None:
        """Load tokenizer, data and model and build the trainer. Raises InvalidConfigError early."""
        self._check_environment()
        set_seed(self.config.seed)
        self._tokenizer = load_tokenizer(self.config.base_model, self.config.revision, self.config.chat_template)
        config, tokenizer = self.config, self._tokenizer
        train_dataset = load_rows(tokenizer, config, config.training_file, "training_file", self.progress)
        eval_dataset = None
        if config.validation_file:
            eval_dataset = load_rows(tokenizer, config, config.validation_file, "validation_file", self.progress)
        model = self._setup_model()
        self._trainer = self._setup_trainer(model, train_dataset, eval_dataset)
        rows = len(self._trainer.train_dataset)  # type: ignore[arg-type]
        unit = "packed rows" if self.config.hyperparameters.packing else "sequences"
        self.progress.on_message("info", f"{len(train_dataset)} training examples in {rows} {unit}")
        if is_rank_zero():
            for broken in remove_incomplete_checkpoints(self.config.checkpoint_dir):
                self.progress.on_message("warn", f"removed incomplete checkpoint {broken.name}")
        self._resume_from = latest_checkpoint(self.config.checkpoint_dir)
        if self._resume_from is not None:
            self.progress.on_message("info", f"resuming from {self._resume_from.name}")

    def train(self) -> TrainOutcome:
        """Train to the end, or until `request_stop`; either way the last step is checkpointed."""
        trainer, bridge = self._require_trainer()
        if self._stop.requested:
            self.progress.on_message("info", "stop requested before training started; nothing to save")
            return TrainOutcome(False, 0, 0, None)
        trainer.train(resume_from_checkpoint=str(self._resume_from) if self._resume_from else None)
        state = trainer.state
        resumed = checkpoint_step(self._resume_from) if self._resume_from else None
        completed = not bridge.stopped_early and state.global_step >= state.max_steps
        return TrainOutcome(completed, state.global_step, state.max_steps, resumed)

    def request_stop(self) -> None:
        """Signal-safe: the current optimizer step finishes, is checkpointed, and train() returns."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.requested

    @property
    def trainer(self) -> Trainer:
        """The underlying TRL trainer, for inspection (tests, notebooks); the recipe drives it."""
        return self._require_trainer()[0]

    def save_checkpoint(self, step: int, metrics: dict[str, Any]) -> CheckpointInfo:
        """Complete the checkpoint the Trainer just wrote for `step`: metrics, pruning, report.

        The Trainer itself writes the resumable state (weights, optimizer, scheduler, RNG,
        data position) when the bridge raises its `should_save` flag; this runs right after.
        """
        path = self.config.checkpoint_dir / f"checkpoint-{step}"
        write_checkpoint_metrics(path, metrics)
        checkpoint = CheckpointInfo(step=step, path=str(path), metrics=metrics)
        self.progress.on_checkpoint(checkpoint)
        for removed in prune_checkpoints(self.config.checkpoint_dir, self.config.keep_checkpoints):
            self.progress.on_checkpoint_pruned(str(removed))
        return checkpoint

    def save_outputs(self) -> TrainingOutputs:
        """Write the final artifacts into output_dir (rank 0 only) and report them."""
        trainer, _ = self._require_trainer()
        assert self._tokenizer is not None
        output_dir = self.config.output_dir
        output_dir.mkdir(parents=True, exist_ok=True)
        history = trainer.state.log_history
        metrics = final_metrics(history)
        metrics_csv = output_dir / "step_metrics.csv"
        adapter_dir = merged_dir = None
        if trainer.is_world_process_zero():
            write_metrics_csv(history, metrics_csv)
        if self.config.fine_tune_type == "lora":
            adapter_dir = self._save_weights(trainer, output_dir / "adapter", "adapter", metrics)
            if self.config.merge_adapter:
                self._release_trainer()
                merged_dir = self._save_merged(adapter_dir, output_dir / "merged", metrics)
            model_dir = merged_dir or adapter_dir
        else:
            model_dir = self._save_weights(trainer, output_dir / "model", "model", metrics)
        outputs = TrainingOutputs(
            output_dir=str(output_dir),
            adapter_dir=str(adapter_dir) if adapter_dir else None,
            merged_dir=str(merged_dir) if merged_dir else None,
            model_dir=str(model_dir),
            trained_tokens=int(trainer.state.num_input_tokens_seen),
            metrics_csv=str(metrics_csv),
        )
        self.progress.on_done(outputs)
        return outputs

    def cleanup(self) -> None:
        self._release_trainer()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    # ---- setup helpers ---------------------------------------------------------------------

    def _check_environment(self) -> None:
        if self.config.quantization == "qlora":
            if not torch.cuda.is_available():
                raise InvalidConfigError("quantization 'qlora' needs a CUDA GPU (bitsandbytes 4-bit); none is visible")
            try:
                import bitsandbytes  # noqa: F401  # optional (CUDA builds only): its absence is a config error
            except ImportError as error:
                raise InvalidConfigError("quantization 'qlora' needs the bitsandbytes package") from error
        if not self.config.training_file.is_file():
            raise InvalidConfigError(f"training_file {self.config.training_file} does not exist")
        if self.config.validation_file is not None and not self.config.validation_file.is_file():
            raise InvalidConfigError(f"validation_file {self.config.validation_file} does not exist")

    def _setup_model(self) -> PreTrainedModel:
        if self._given_model is not None:
            if self.config.quantization:
                raise InvalidConfigError("quantization applies while loading: pass no model with qlora")
            self._given_model.config.use_cache = False
            return self._given_model
        precision = self._precision()
        kwargs: dict[str, Any] = {
            "revision": self.config.revision,
            "dtype": precision.dtype,
            "attn_implementation": attention_implementation(),
        }
        if self.config.quantization == "qlora":
            # Loads bitsandbytes (CUDA builds only, seconds to import): only a QLoRA run pays for it.
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=precision.dtype,
            )
            # Each torchrun rank loads its own quantized copy onto its own GPU.
            kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
        model = AutoModelForCausalLM.from_pretrained(self.config.base_model, **kwargs)
        model.config.use_cache = False
        if self.config.quantization == "qlora":
            # As above: bitsandbytes again.
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(
                model,
                use_gradient_checkpointing=self.config.gradient_checkpointing,
                gradient_checkpointing_kwargs={"use_reentrant": False},
            )
        device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
        dtype = str(precision.dtype).removeprefix("torch.")
        attention = model.config._attn_implementation
        loaded = f"loaded {self.config.base_model} on {device} in {dtype}, {attention} attention"
        self.progress.on_message("info", loaded)
        return model

    def _precision(self) -> Precision:
        """bf16 where the GPU has it; fp16 mixed precision over fp32 weights on older GPUs; fp32 on CPU."""
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return Precision(torch.bfloat16, bf16=True, fp16=False)
        if torch.cuda.is_available():
            return Precision(torch.float32, bf16=False, fp16=True)
        return Precision(torch.float32, bf16=False, fp16=False)

    def _lora_config(self) -> LoraConfig | None:
        if self.config.fine_tune_type != "lora":
            return None
        hp = self.config.hyperparameters
        return LoraConfig(
            r=hp.lora_r,
            lora_alpha=hp.lora_alpha,
            lora_dropout=hp.lora_dropout,
            target_modules=hp.target_modules,
            bias="none",
            task_type="CAUSAL_LM",
        )

    def _trainer_arguments(self, has_eval: bool) -> dict[str, Any]:
        """TrainingArguments shared by SFT and DPO (transformers 5 names: eval_strategy, use_cpu)."""
        hp = self.config.hyperparameters
        precision = self._precision()
        use_cpu = not torch.cuda.is_available()
        eval_strategy = "no"
        if has_eval:
            eval_strategy = "steps" if hp.eval_steps else "epoch"
        return {
            "output_dir": str(self.config.checkpoint_dir),
            "num_train_epochs": hp.n_epochs,
            "max_steps": -1,  # max_steps caps the epoch-based count, see _setup_trainer
            "per_device_train_batch_size": hp.batch_size,
            "per_device_eval_batch_size": hp.batch_size,
            "gradient_accumulation_steps": hp.gradient_accumulation_steps,
            "learning_rate": hp.learning_rate,
            "weight_decay": hp.weight_decay,
            "lr_scheduler_type": hp.lr_scheduler_type,
            "warmup_steps": hp.warmup_ratio,  # < 1: a ratio of the total steps (transformers 5)
            "seed": self.config.seed,
            "data_seed": self.config.seed,
            "bf16": precision.bf16,
            "fp16": precision.fp16,
            "use_cpu": use_cpu,
            "activation_checkpointing": self.config.gradient_checkpointing,  # transformers 5 name
            "activation_checkpointing_kwargs": {"use_reentrant": False},
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

    def _setup_trainer(self, model: PreTrainedModel, train_dataset: Dataset, eval_dataset: Dataset | None) -> Trainer:
        arguments = self._trainer_arguments(eval_dataset is not None)
        hp = self.config.hyperparameters
        trainer: Trainer
        if self.config.method == "dpo":
            # trl loads a trainer's modules on first use: a run imports only the trainer it needs.
            from trl import DPOConfig, DPOTrainer

            dpo_args = DPOConfig(**arguments, beta=hp.beta, include_num_input_tokens_seen="non_padding")
            trainer = DPOTrainer(
                model=model,
                ref_model=self._reference_model(),
                args=dpo_args,
                train_dataset=train_dataset,
                eval_dataset=eval_dataset,
                processing_class=self._tokenizer,
                peft_config=self._lora_config(),
            )
        else:
            # As above.
            from trl import SFTConfig, SFTTrainer

            sft_args = SFTConfig(
                **arguments,
                packing=hp.packing,
                packing_strategy="bfd",
                # Packed rows carry no padding at all; unpacked batches count the attention mask.
                include_num_input_tokens_seen="all" if hp.packing else "non_padding",
            )
            trainer = SFTTrainer(
                model=model,
                args=sft_args,
                train_dataset=train_dataset,
                eval_dataset=eval_dataset,
                processing_class=self._tokenizer,
                peft_config=self._lora_config(),
            )
        self._bridge = RecipeTrainerCallback(
            progress=self.progress,
            stop=self._stop,
            checkpoint_every_steps=self.config.checkpoint_every_steps,
            evaluate_at_end=eval_dataset is not None,
            on_checkpoint_saved=self.save_checkpoint,
        )
        trainer.add_callback(self._bridge)
        if self.config.max_steps:
            trainer.args.max_steps = min(self.config.max_steps, self._epoch_based_steps(trainer))
        return trainer

    def _epoch_based_steps(self, trainer: Trainer) -> int:
        """Optimizer steps for n_epochs, counted as Trainer counts them (so max_steps only ever caps)."""
        assert trainer.train_dataset is not None
        hp = self.config.hyperparameters
        rows = len(trainer.train_dataset)  # type: ignore[arg-type]
        batches = math.ceil(rows / (hp.batch_size * trainer.args.world_size))
        return max(1, math.ceil(batches / hp.gradient_accumulation_steps)) * hp.n_epochs

    def _reference_model(self) -> PreTrainedModel | None:
        """Full-weight DPO needs a frozen copy of the base; LoRA DPO uses the base with adapters off."""
        if self.config.fine_tune_type == "lora":
            return None
        return AutoModelForCausalLM.from_pretrained(
            self.config.base_model, revision=self.config.revision, dtype=self._precision().dtype
        )

    # ---- output helpers --------------------------------------------------------------------

    def _save_weights(self, trainer: Trainer, directory: Path, kind: str, metrics: dict[str, Any]) -> Path:
        assert self._tokenizer is not None
        trainer.save_model(str(directory))
        if trainer.is_world_process_zero():
            # A pickle has no place in a downloadable artifact; the model card records the arguments.
            (directory / "training_args.bin").unlink(missing_ok=True)
            self._tokenizer.save_pretrained(directory)
            write_model_card(directory, self.config, kind, metrics)
        return directory

    def _save_merged(self, adapter_dir: Path, directory: Path, metrics: dict[str, Any]) -> Path | None:
        """Base weights (unquantized, even after QLoRA) with the adapter folded in."""
        if not is_rank_zero():
            return None
        assert self._tokenizer is not None
        self.progress.on_message("info", "merging the adapter into the base weights")
        dtype = torch.bfloat16 if self._precision().bf16 else torch.float32
        device_map = "auto" if torch.cuda.is_available() else None
        base = AutoModelForCausalLM.from_pretrained(
            self.config.base_model, revision=self.config.revision, dtype=dtype, device_map=device_map
        )
        merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
        merged.config.use_cache = True
        merged.save_pretrained(directory)
        self._tokenizer.save_pretrained(directory)
        write_model_card(directory, self.config, "merged", metrics)
        del base, merged
        return directory

    def _release_trainer(self) -> None:
        """Free the training model before loading another copy of the base for merging."""
        self._given_model = None
        if self._trainer is not None:
            self._trainer.model = None  # type: ignore[assignment]
            self._trainer.model_wrapped = None  # type: ignore[assignment]
            self._trainer.optimizer = None  # type: ignore[assignment]
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _require_trainer(self) -> tuple[Trainer, RecipeTrainerCallback]:
        if self._trainer is None or self._bridge is None:
            raise RuntimeError("call setup() before train()")
        return self._trainer, self._bridge
