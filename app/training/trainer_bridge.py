"""The one transformers `TrainerCallback` a recipe installs: progress out, checkpoints and stops in.

It turns Trainer logs into `ProgressCallback` events, decides when a checkpoint is due
(every N steps, each epoch end, the last step, a requested stop) and stops the loop at
a step boundary when asked, always through the Trainer's own control flags so the
saved state is exactly what `resume_from_checkpoint` expects.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from app.training.callbacks import EvalResult, ProgressCallback, StepProgress


class StopRequest:
    """Set from a signal handler; read at step boundaries (and agreed across ranks)."""

    def __init__(self) -> None:
        self.requested = False

    def set(self) -> None:
        self.requested = True


class RecipeTrainerCallback(TrainerCallback):
    def __init__(
        self,
        progress: ProgressCallback,
        stop: StopRequest,
        checkpoint_every_steps: int,
        evaluate_at_end: bool,
        on_checkpoint_saved: Callable[[int, dict[str, Any]], object],
    ) -> None:
        self._progress = progress
        self._stop = stop
        self._checkpoint_every_steps = checkpoint_every_steps
        self._evaluate_at_end = evaluate_at_end
        self._on_checkpoint_saved = on_checkpoint_saved
        self._last_saved_step: int | None = None
        self._session_start = 0.0
        self._session_first_step = 0
        self._session_first_tokens = 0
        self.latest: dict[str, Any] = {}
        self.stopped_early = False

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl:
        self._session_start = time.monotonic()
        self._session_first_step = state.global_step
        self._session_first_tokens = state.num_input_tokens_seen
        self._last_saved_step = state.global_step if state.global_step else None
        resumed = state.global_step if state.global_step else None
        self._progress.on_started(total_steps=state.max_steps, resumed_from_step=resumed)
        return control

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl:
        step = state.global_step
        if self._stop_agreed(args):
            self.stopped_early = step < state.max_steps
            control.should_training_stop = True
            control.should_save = True
        if step % self._checkpoint_every_steps == 0 or step >= state.max_steps:
            control.should_save = True
        if step >= state.max_steps and self._evaluate_at_end:
            control.should_evaluate = True
        if control.should_save and step == self._last_saved_step:
            control.should_save = False
        return control

    def on_epoch_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl:
        if state.global_step != self._last_saved_step and state.global_step > 0:
            control.should_save = True
        return control

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> TrainerControl:
        if not logs or "loss" not in logs:  # eval logs and the end-of-training summary have no "loss"
            return control
        self.latest.update(train_loss=logs["loss"], train_mean_token_accuracy=logs.get("mean_token_accuracy"))
        tokens_per_second, eta_seconds = self._rates(state)
        self._progress.on_step(
            StepProgress(
                step=state.global_step,
                total_steps=state.max_steps,
                epoch=round(float(state.epoch or 0.0), 4),
                train_loss=logs["loss"],
                learning_rate=logs.get("learning_rate"),
                tokens_per_second=tokens_per_second,
                eta_seconds=eta_seconds,
                trained_tokens=int(state.num_input_tokens_seen),
                token_accuracy=logs.get("mean_token_accuracy"),
            )
        )
        return control

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> TrainerControl:
        metrics = metrics or {}
        result = EvalResult(
            step=state.global_step,
            valid_loss=metrics.get("eval_loss"),
            valid_mean_token_accuracy=metrics.get("eval_mean_token_accuracy"),
        )
        self.latest.update(valid_loss=result.valid_loss, valid_mean_token_accuracy=result.valid_mean_token_accuracy)
        self._progress.on_eval(result)
        return control

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl:
        self._last_saved_step = state.global_step
        if state.is_world_process_zero:
            metrics = {"step": state.global_step, **{k: v for k, v in self.latest.items() if v is not None}}
            self._on_checkpoint_saved(state.global_step, metrics)
        return control

    def _rates(self, state: TrainerState) -> tuple[float | None, float | None]:
        elapsed = time.monotonic() - self._session_start
        steps_done = state.global_step - self._session_first_step
        if elapsed <= 0 or steps_done <= 0:
            return None, None
        tokens_per_second = (state.num_input_tokens_seen - self._session_first_tokens) / elapsed
        eta_seconds = (state.max_steps - state.global_step) * elapsed / steps_done
        return round(tokens_per_second, 1), round(eta_seconds, 1)

    def _stop_agreed(self, args: TrainingArguments) -> bool:
        """A stop any rank saw: every rank must save and leave at the same step or the collectives hang."""
        requested = self._stop.requested
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            flag = torch.tensor([1 if requested else 0], device=args.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            requested = bool(flag.item())
        return requested
