"""The training process the GPU worker spawns (possibly under torchrun).

    python -m app.training --config CONFIG.json [--progress-fd N] [--progress-journal PATH] [--rank-errors DIR]

Writes one JSON event per line to file descriptor N (default 1; stdout is then moved
to stderr so library prints cannot corrupt the stream), and first appends it to the
journal file when one is given. Under torchrun only global rank 0 writes events; every
other rank's stdout goes to its stderr, and each rank that fails writes its own error
(an "error" line with its rank and time) to DIR/rank-<rank>.json. Exit codes: 0 done,
3 stopped by SIGTERM/SIGINT after checkpointing, 1 error (an "error" event says why).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from pydantic import ValidationError

from app.training.callbacks import JsonLinesProgress, NullProgress, ProgressCallback, RunFailed
from app.training.config import TrainingConfig
from app.training.errors import InvalidConfigError, TrainingError
from app.training.process import install_stop_handlers, is_rank_zero, rank, set_parent_death_signal, world_size

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_STOPPED = 3
OOM_ADVICE = (
    "CUDA ran out of memory. Lower batch_size (raise gradient_accumulation_steps to keep the "
    "effective batch), lower max_seq_length, keep gradient_checkpointing on, set activation_offloading, "
    "use optimizer 'paged_adamw_8bit', use quantization 'qlora', or train on more GPUs (FSDP2 shards the model)"
)
HOST_OOM_ADVICE = (
    "The worker's host memory could not hold the model or a batch ({detail}). Choose a smaller base model, "
    "lower batch_size or max_seq_length, or use quantization 'qlora'"
)
# torch's CPU allocator says so in a plain RuntimeError (CUDA's has torch.OutOfMemoryError).
HOST_OOM_MARKER = "DefaultCPUAllocator: can't allocate memory"
# A collective that failed because another rank is gone (gloo's RuntimeError, NCCL's DistBackendError).
PEER_LOST_MARKERS = ("Connection closed by peer", "Connection reset by peer", "remote process exited",
                     "NCCL communicator was aborted")  # fmt: skip
RANK_LOST = "rank_lost"


class ErrorReport:
    """Where this rank's failure goes: the event stream (rank 0) and its own file (every rank, under torchrun)."""

    def __init__(self, events: JsonLinesProgress | None, rank_errors: str | None) -> None:
        self.events = events
        self.path = Path(rank_errors) / f"rank-{rank()}.json" if rank_errors else None

    def __call__(self, code: str, message: str) -> None:
        failure = RunFailed(code, message if rank() == 0 else f"rank {rank()}: {message}", rank=rank(), at=time.time())
        print(f"error [{code}]: {failure.message}", file=sys.stderr)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps({"event": "error", **asdict(failure)}) + "\n", encoding="utf-8")
        if self.events is not None:
            self.events.on_error(failure)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    set_parent_death_signal()
    if is_rank_zero():
        events = _open_events(args.progress_fd, args.progress_journal)
    else:
        # Only rank 0 speaks on the stream: what other ranks print goes to their stderr (the job's log).
        events = None
        os.dup2(2, 1)
        sys.stdout = sys.stderr
    report = ErrorReport(events, args.rank_errors)
    progress: ProgressCallback = events or NullProgress()
    try:
        config = TrainingConfig.read(Path(args.config))
    except (OSError, ValidationError) as error:
        report("invalid_config", f"cannot read config {args.config}: {error}")
        return EXIT_ERROR
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    return _run(config, progress, report)


def _run(config: TrainingConfig, progress: ProgressCallback, report: ErrorReport) -> int:
    # torch and the engine load here, after the config was read: a bad config is reported in
    # milliseconds, not after seconds of imports.
    import torch

    from app.training.engine import FineTuneRecipe

    recipe = FineTuneRecipe(config, progress)
    install_stop_handlers(recipe.request_stop)
    stage = "setup"
    try:
        recipe.setup()
        stage = "train"
        outcome = recipe.train()
        if not outcome.completed or recipe.stop_requested:
            progress.on_message("info", f"stopped at step {outcome.step} of {outcome.total_steps}")
            return EXIT_STOPPED
        recipe.save_outputs()
        return EXIT_OK
    except torch.OutOfMemoryError:
        report("out_of_memory", OOM_ADVICE)
    except TrainingError as error:
        report(error.code, str(error))
    except ValueError as error:
        # Libraries check their arguments while the run is being built: that is a config problem.
        code = InvalidConfigError.code if stage == "setup" else TrainingError.code
        report(code, f"{type(error).__name__}: {error}")
    except Exception as error:
        if world_size() > 1 and _peer_lost(error):
            # Not this rank's fault: a peer died (killed, crashed) without a word; the worker retries the job.
            report(RANK_LOST, f"another rank stopped answering: {error}")
            return EXIT_ERROR
        if HOST_OOM_MARKER in str(error):
            # out_of_memory, not a crash: the worker does not retry it, as the next attempt would need the same.
            report("out_of_memory", _host_oom_advice(str(error)))
            return EXIT_ERROR
        logging.getLogger(__name__).exception("training failed")
        report(TrainingError.code, f"{type(error).__name__}: {error}")
    finally:
        recipe.cleanup()
    return EXIT_ERROR


def _peer_lost(error: Exception) -> bool:
    # As in _run: torch.distributed loads with torch.
    import torch.distributed

    return isinstance(error, torch.distributed.DistError) or any(marker in str(error) for marker in PEER_LOST_MARKERS)


def _host_oom_advice(error: str) -> str:
    detail = error.split(HOST_OOM_MARKER, 1)[1].split(". Error code")[0].strip(" :.")
    return HOST_OOM_ADVICE.format(detail=detail or "an allocation was refused")


def _open_events(fd: int, journal: str | None) -> JsonLinesProgress:
    if fd == 1:
        # Keep the event stream for ourselves and send everything else written to stdout to stderr.
        fd = os.dup(1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
    return JsonLinesProgress.to_fd(fd, journal)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app.training", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="TrainingConfig JSON file")
    parser.add_argument("--progress-fd", type=int, default=1, help="file descriptor for JSON-lines events")
    parser.add_argument("--progress-journal", help="append every event to this file too, before sending it")
    parser.add_argument("--rank-errors", help="folder where each failing rank writes rank-<rank>.json")
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(main())
