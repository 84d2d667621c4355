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
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from peft import PeftModel
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase, Trainer, set_seed

from app.training.arguments import batch_shape, fsdp2_on_cpu, gathered_state_dict, trainer_arguments
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
from app.training.model_loading import (
    attention_implementation,
    load_base_model,
    load_reference_model,
    lora_config,
    precision,
)
from app.training.outputs import final_metrics, write_metrics_csv, write_model_card
from app.training.process import is_rank_zero, world_size
from app.training.rows import load_rows
from app.training.strategy import Strategy, training_strategy
from app.training.trainer_bridge import RecipeTrainerCallback, StopRequest

BITSANDBYTES_OPTIMIZERS = ("adamw_8bit", "paged_adamw_8bit")


@dataclass(frozen=True)
class TrainOutcome:
    completed: bool
    step: int
    total_steps: int
    resumed_from_step: int | None


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
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self.strategy: Strategy = training_strategy(world_size(), config.quantization)
        self.attention = model.config._attn_implementation if model is not None else attention_implementation()

    # ---- lifecycle -------------------------------------------------------------------------

    def setup(self) -> None:
        """Load tokenizer, data and model and build the trainer. Raises InvalidConfigError early."""
        self._check_environment()
        set_seed(self.config.seed)
        self._tokenizer = load_tokenizer(self.config.base_model, self.config.revision, self.config.chat_template)
        # The arguments come first: building them starts the process group, which the data step below
        # (local rank 0 tokenizes, the others wait) and FSDP2's rank-0-only model loading need.
        arguments = self._arguments()
        with arguments.main_process_first(local=True, desc="tokenize"):
            train_dataset, eval_dataset = self._load_datasets()
        model = self._setup_model()
        self._trainer = self._setup_trainer(model, arguments, train_dataset, eval_dataset)
        rows = len(self._trainer.train_dataset)  # type: ignore[arg-type]
        unit = "packed rows" if self.config.hyperparameters.packing else "sequences"
        self.progress.on_message("info", f"{len(train_dataset)} training examples in {rows} {unit}")
        if batch_shape(self.config, self.attention).one_row_per_forward:
            self.progress.on_message(
                "info",
                f"{self.attention} attention: one packed row per forward pass, "
                f"{arguments.gradient_accumulation_steps} forward passes per optimizer step",
            )
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
        """Write the final artifacts into output_dir (rank 0 only) and report them.

        The merge loads a second copy of the base: the training model, its optimizer and every
        reference the Trainer and accelerate keep are dropped first (`release_trainer`), so the
        merge never needs room for both.
        """
        trainer, _ = self._require_trainer()
        output_dir = self.config.output_dir
        output_dir.mkdir(parents=True, exist_ok=True)
        history = list(trainer.state.log_history)
        trained_tokens = int(trainer.state.num_input_tokens_seen)
        metrics = final_metrics(history)
        metrics_csv = output_dir / "step_metrics.csv"
        adapter_dir = merged_dir = None
        if trainer.is_world_process_zero():
            write_metrics_csv(history, metrics_csv)
        if self.config.fine_tune_type == "lora":
            adapter_dir = self._save_weights(trainer, output_dir / "adapter", "adapter", metrics)
            if self.config.merge_adapter:
                del trainer
                self.release_trainer()
                merged_dir = self._save_merged(adapter_dir, output_dir / "merged", metrics)
            model_dir = merged_dir or adapter_dir
        else:
            model_dir = self._save_weights(trainer, output_dir / "model", "model", metrics)
        outputs = TrainingOutputs(
            output_dir=str(output_dir),
            adapter_dir=str(adapter_dir) if adapter_dir else None,
            merged_dir=str(merged_dir) if merged_dir else None,
            model_dir=str(model_dir),
            trained_tokens=trained_tokens,
            metrics_csv=str(metrics_csv),
        )
        self.progress.on_done(outputs)
        return outputs

    def release_trainer(self) -> None:
        """Drop the training model and optimizer: the Trainer, accelerate's lists of prepared objects, ours.

        accelerate keeps every prepared model, optimizer, scheduler and data loader in lists of its own,
        and the Trainer's callback handler holds the model, optimizer and scheduler too; dropping the
        Trainer alone would leave those alive.
        """
        self._given_model = None
        if self._trainer is not None:
            self._trainer.accelerator.free_memory()
            self._trainer = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def cleanup(self) -> None:
        self.release_trainer()
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    # ---- setup helpers ---------------------------------------------------------------------

    def _check_environment(self) -> None:
        hp = self.config.hyperparameters
        cuda = torch.cuda.is_available()
        if self.config.quantization == "qlora" and not cuda:
            raise InvalidConfigError("quantization 'qlora' needs a CUDA GPU (bitsandbytes 4-bit); none is visible")
        if hp.optimizer in BITSANDBYTES_OPTIMIZERS and not cuda:
            raise InvalidConfigError(f"optimizer {hp.optimizer!r} (bitsandbytes) needs a CUDA GPU; none is visible")
        if hp.activation_offloading and not cuda:
            raise InvalidConfigError("activation_offloading moves activations from a GPU to host memory: no GPU here")
        if self.config.quantization == "qlora" or hp.optimizer in BITSANDBYTES_OPTIMIZERS:
            try:
                import bitsandbytes  # noqa: F401  # optional (CUDA builds only): its absence is a config error
            except ImportError as error:
                raise InvalidConfigError("quantization 'qlora' and 8-bit optimizers need bitsandbytes") from error
        if not self.config.training_file.is_file():
            raise InvalidConfigError(f"training_file {self.config.training_file} does not exist")
        if self.config.validation_file is not None and not self.config.validation_file.is_file():
            raise InvalidConfigError(f"validation_file {self.config.validation_file} does not exist")

    def _arguments(self) -> Any:
        """The SFTConfig or DPOConfig of this run."""
        config, hp = self.config, self.config.hyperparameters
        arguments = trainer_arguments(config, config.validation_file is not None, self.strategy, self.attention)
        if config.method == "dpo":
            # trl loads a trainer's modules on first use: a run imports only the trainer it needs.
            from trl import DPOConfig

            return DPOConfig(**arguments, beta=hp.beta, include_num_input_tokens_seen="non_padding")
        # As above.
        from trl import SFTConfig

        return SFTConfig(
            **arguments,
            packing=hp.packing,
            packing_strategy="bfd",
            # Packed rows carry no padding at all; unpacked batches count the attention mask.
            include_num_input_tokens_seen="all" if hp.packing else "non_padding",
        )

    def _load_datasets(self) -> tuple[Dataset, Dataset | None]:
        config, tokenizer = self.config, self._tokenizer
        assert tokenizer is not None
        cache_root = config.data_cache_dir
        if cache_root is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="finetune-rows-")
            cache_root = Path(self._scratch.name)
        train = load_rows(tokenizer, config, config.training_file, "training_file", self.progress, cache_root)
        valid = None
        if config.validation_file:
            valid = load_rows(tokenizer, config, config.validation_file, "validation_file", self.progress, cache_root)
        return train, valid

    def _setup_model(self) -> PreTrainedModel:
        if self._given_model is not None:
            if self.config.quantization:
                raise InvalidConfigError("quantization applies while loading: pass no model with qlora")
            self._given_model.config.use_cache = False
            return self._given_model
        return load_base_model(self.config, self.strategy, self.progress)

    def _setup_trainer(
        self, model: PreTrainedModel, arguments: Any, train_dataset: Dataset, eval_dataset: Dataset | None
    ) -> Trainer:
        trainer: Trainer
        if self.config.method == "dpo":
            # As in _arguments.
            from trl import DPOTrainer

            trainer = DPOTrainer(
                model=model,
                ref_model=load_reference_model(self.config, self.strategy),
                args=arguments,
                train_dataset=train_dataset,
                eval_dataset=eval_dataset,
                processing_class=self._tokenizer,
                peft_config=lora_config(self.config),
            )
        else:
            # As in _arguments.
            from trl import SFTTrainer

            trainer = SFTTrainer(
                model=model,
                args=arguments,
                train_dataset=train_dataset,
                eval_dataset=eval_dataset,
                processing_class=self._tokenizer,
                peft_config=lora_config(self.config),
            )
        self._bridge = RecipeTrainerCallback(
            progress=self.progress,
            stop=self._stop,
            checkpoint_every_steps=self.config.checkpoint_every_steps,
            evaluate_at_end=eval_dataset is not None,
            on_checkpoint_saved=self.save_checkpoint,
        )
        trainer.add_callback(self._bridge)
        if self.strategy == "fsdp2" and not torch.cuda.is_available():
            fsdp2_on_cpu(trainer)
        if self.config.max_steps:
            trainer.args.max_steps = min(self.config.max_steps, self._epoch_based_steps(trainer))
        return trainer

    def _epoch_based_steps(self, trainer: Trainer) -> int:
        """Optimizer steps for n_epochs, counted as Trainer counts them (so max_steps only ever caps)."""
        assert trainer.train_dataset is not None
        args = trainer.args
        rows = len(trainer.train_dataset)  # type: ignore[arg-type]
        batches = math.ceil(rows / (args.per_device_train_batch_size * args.world_size))
        return max(1, math.ceil(batches / args.gradient_accumulation_steps)) * self.config.hyperparameters.n_epochs

    # ---- output helpers --------------------------------------------------------------------

    def _save_weights(self, trainer: Trainer, directory: Path, kind: str, metrics: dict[str, Any]) -> Path:
        assert self._tokenizer is not None
        if self.strategy == "fsdp2" and not torch.cuda.is_available():
            model: Any = trainer.model
            state_dict = gathered_state_dict(model)
            if trainer.is_world_process_zero():
                model.save_pretrained(str(directory), state_dict=state_dict)
        else:
            if self.strategy == "fsdp2":
                # Checkpoints are sharded per rank; the delivered weights are one gathered safetensors file.
                trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
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
        dtype = torch.bfloat16 if precision().bf16 else torch.float32
        device_map = {"": int(os.environ.get("LOCAL_RANK", "0"))} if torch.cuda.is_available() else None
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

    def _require_trainer(self) -> tuple[Trainer, RecipeTrainerCallback]:
        if self._trainer is None or self._bridge is None:
            raise RuntimeError("call setup() before train()")
        return self._trainer, self._bridge
