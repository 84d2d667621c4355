"""How a training run reports progress: typed messages, a small Protocol, and the JSON-lines writer.

The recipe only ever talks to a `ProgressCallback`; a notebook can pass any object with these
methods. `JsonLinesProgress` writes each message as one JSON line whose `event` names its kind
(`MESSAGE_KINDS`); the GPU worker reads them back into the same dataclasses
(`app.jobs.worker.state.decode`), so both sides share one definition. No torch here.
"""

from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Literal, Protocol

Level = Literal["info", "warn"]


@dataclass(frozen=True)
class Started:
    total_steps: int
    resumed_from_step: int | None


@dataclass(frozen=True)
class StepProgress:
    step: int
    total_steps: int
    epoch: float
    train_loss: float | None
    learning_rate: float | None
    tokens_per_second: float | None
    eta_seconds: float | None
    trained_tokens: int
    token_accuracy: float | None


@dataclass(frozen=True)
class EvalResult:
    step: int
    valid_loss: float | None
    valid_mean_token_accuracy: float | None


@dataclass(frozen=True)
class CheckpointInfo:
    step: int
    path: str
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckpointPruned:
    path: str


@dataclass(frozen=True)
class LogMessage:
    level: Level
    message: str


@dataclass(frozen=True)
class TrainingOutputs:
    output_dir: str
    adapter_dir: str | None
    merged_dir: str | None
    model_dir: str
    trained_tokens: int
    metrics_csv: str


@dataclass(frozen=True)
class RunFailed:
    """Why the run stopped with an error: a stable code (docs/training.md) and a message for the user.

    `rank` and `at` (Unix time) say which torchrun rank failed and when: the worker reports the first
    failure, since the other ranks then fail only because a peer is gone.
    """

    code: str
    message: str
    rank: int = 0
    at: float | None = None


TrainerMessage = (
    Started | StepProgress | EvalResult | CheckpointInfo | CheckpointPruned | LogMessage | TrainingOutputs | RunFailed
)
# The `event` of each message on the wire.
MESSAGE_KINDS: dict[str, type[TrainerMessage]] = {
    "started": Started,
    "step": StepProgress,
    "eval": EvalResult,
    "checkpoint": CheckpointInfo,
    "checkpoint_pruned": CheckpointPruned,
    "message": LogMessage,
    "done": TrainingOutputs,
    "error": RunFailed,
}
KIND_OF: dict[type[TrainerMessage], str] = {message_type: kind for kind, message_type in MESSAGE_KINDS.items()}


class ProgressCallback(Protocol):
    def on_started(self, total_steps: int, resumed_from_step: int | None) -> None: ...

    def on_step(self, progress: StepProgress) -> None: ...

    def on_eval(self, result: EvalResult) -> None: ...

    def on_checkpoint(self, checkpoint: CheckpointInfo) -> None: ...

    def on_checkpoint_pruned(self, path: str) -> None: ...

    def on_message(self, level: Level, message: str) -> None: ...

    def on_done(self, outputs: TrainingOutputs) -> None: ...


class NullProgress:
    """For ranks other than 0, which train but never report."""

    def on_started(self, total_steps: int, resumed_from_step: int | None) -> None:
        pass

    def on_step(self, progress: StepProgress) -> None:
        pass

    def on_eval(self, result: EvalResult) -> None:
        pass

    def on_checkpoint(self, checkpoint: CheckpointInfo) -> None:
        pass

    def on_checkpoint_pruned(self, path: str) -> None:
        pass

    def on_message(self, level: Level, message: str) -> None:
        pass

    def on_done(self, outputs: TrainingOutputs) -> None:
        pass


class JsonLinesProgress:
    """One JSON object per line, flushed at once, in the protocol docs/training.md describes.

    With a journal, every line is appended there first: a reader killed before it read the
    stream (the worker) leaves nothing lost, as the next attempt replays the journal.
    """

    def __init__(self, stream: IO[str], journal: IO[str] | None = None) -> None:
        self._stream = stream
        self._journal = journal
        self._lock = threading.Lock()

    @classmethod
    def to_fd(cls, fd: int, journal: str | None = None) -> JsonLinesProgress:
        stream = os.fdopen(fd, "w", buffering=1, encoding="utf-8", closefd=False)
        return cls(stream, open(journal, "a", buffering=1, encoding="utf-8") if journal else None)

    def on_started(self, total_steps: int, resumed_from_step: int | None) -> None:
        self.send(Started(total_steps, resumed_from_step))

    def on_step(self, progress: StepProgress) -> None:
        self.send(progress)

    def on_eval(self, result: EvalResult) -> None:
        self.send(result)

    def on_checkpoint(self, checkpoint: CheckpointInfo) -> None:
        self.send(checkpoint)

    def on_checkpoint_pruned(self, path: str) -> None:
        self.send(CheckpointPruned(path))

    def on_message(self, level: Level, message: str) -> None:
        self.send(LogMessage(level, message))

    def on_done(self, outputs: TrainingOutputs) -> None:
        self.send(outputs)

    def on_error(self, failure: RunFailed) -> None:
        self.send(failure)

    def send(self, message: TrainerMessage) -> None:
        self.emit(KIND_OF[type(message)], **asdict(message))

    def emit(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, **_finite(fields)}, separators=(",", ":"))
        with self._lock:
            if self._journal is not None:
                self._journal.write(line + "\n")
                self._journal.flush()
            self._stream.write(line + "\n")
            self._stream.flush()


def _finite(value: Any) -> Any:
    """NaN and infinity are not JSON: report them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
