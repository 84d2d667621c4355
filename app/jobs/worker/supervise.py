"""The training process of one attempt: its command, spawn, the relay of its messages, and the control loop.

The worker never imports torch: the trainer is a child process (torchrun when a job has several
processes) that dies with the worker, reports on its stdout, and stops at a checkpoint on SIGTERM.

Under torchrun: only rank 0 writes events, and the stdout of local ranks 1.. goes to files under
the attempt's log folder (`--redirects`), so nothing but rank 0's events reaches the pipe; SIGTERM to
torchrun reaches every rank, which then gets `trainer_stop_timeout_seconds` (`--shutdown-timeout`,
30 s by default in torchrun) to write its checkpoint; each failing rank writes its own error file,
and once one has, the others (stuck in a collective with a dead peer) are given a short grace and
then killed: the job reports the first failure.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from pathlib import Path

import pynvml

from app.core.config import Settings
from app.core.worker_context import WorkerContext
from app.jobs import repository
from app.jobs.worker import mlflow_run, progress, shutdown
from app.jobs.worker.state import RunState, decode, first_failure, journal_of, rank_errors_of
from app.training.process import set_parent_death_signal

logger = logging.getLogger(__name__)
# After one rank reported its failure, how long the others get to report theirs before the attempt is killed.
RANK_FAILURE_GRACE_SECONDS = 10.0
EXIT_ERROR = 1  # the trainer's exit code for an error it reported (app/training/__main__.py)


def visible_gpu_count() -> int:
    """GPUs this worker may use, read through NVML so CUDA is never initialised here."""
    selected = os.environ.get("CUDA_VISIBLE_DEVICES")
    if selected is not None:
        return len([part for part in selected.split(",") if part.strip() not in ("", "-1")])
    try:
        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no driver, no library: no GPU
        return 0


def training_processes(settings: Settings) -> int:
    """Ranks of one job: TRAINING_PROCESSES, else one per visible GPU, else one (CPU)."""
    return settings.training_processes or max(1, visible_gpu_count())


def training_command(
    config_path: Path,
    processes: int,
    journal: Path | None = None,
    rank_errors: Path | None = None,
    log_dir: Path | None = None,
    stop_timeout_seconds: int = 600,
) -> list[str]:
    module = ["-m", "app.training", "--config", str(config_path), "--progress-fd", "1"]
    if journal is not None:
        module += ["--progress-journal", str(journal)]
    if rank_errors is not None:
        module += ["--rank-errors", str(rank_errors)]
    if processes <= 1:
        return [sys.executable, *module]
    torchrun = [str(Path(sys.executable).parent / "torchrun"), f"--nproc_per_node={processes}", "--standalone"]
    torchrun += [f"--shutdown-timeout={stop_timeout_seconds}"]
    if log_dir is not None:
        # Local ranks 1.. print to files there, never to the pipe that carries rank 0's events.
        redirects = ",".join(f"{local_rank}:1" for local_rank in range(1, processes))
        torchrun += [f"--log-dir={log_dir}", f"--redirects={redirects}"]
    return [*torchrun, *module]


async def supervise(context: WorkerContext, state: RunState, config_path: Path) -> tuple[int, float]:
    """Run the trainer to its end: (its exit code, seconds it ran). Its metrics are flushed to MLflow."""
    settings = context.settings
    log_dir = settings.logs_path / state.job.id
    log_dir.mkdir(parents=True, exist_ok=True)
    command = training_command(
        config_path,
        training_processes(settings),
        journal_of(state.work_dir, state.attempt),
        rank_errors_of(state.work_dir, state.attempt),
        log_dir / f"attempt-{state.attempt}-ranks",
        settings.trainer_stop_timeout_seconds,
    )
    started = time.monotonic()
    with (log_dir / f"attempt-{state.attempt}.log").open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            stdin=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            # torchrun too must die with this worker, or a re-queued attempt would race a zombie.
            preexec_fn=set_parent_death_signal,
        )
        assert process.stdout is not None
        reader = asyncio.create_task(_relay(context, state, process.stdout))
        control = asyncio.create_task(_control_loop(context, state, process))
        return_code = await process.wait()
        await reader
        control.cancel()
    rank_errors = rank_errors_of(state.work_dir, state.attempt)
    state.error = first_failure(state.error, rank_errors)
    if return_code < 0 and state.error is not None and any(rank_errors.glob("rank-*.json")):
        # Killed by the control loop after a rank failed: the attempt ended with that rank's error.
        return_code = EXIT_ERROR
    elapsed = time.monotonic() - started
    await mlflow_run.flush_metrics(context, state)
    return return_code, elapsed


async def _relay(context: WorkerContext, state: RunState, stream: asyncio.StreamReader) -> None:
    while line := await stream.readline():
        message = decode(line)
        if message is None:
            logger.warning("job %s: ignoring a line that is no trainer message: %r", state.job.id, line[:200])
            continue
        try:
            await progress.on_message(context, state, message)
        except Exception:
            logger.exception("job %s: could not record progress %s", state.job.id, type(message).__name__)


async def _control_loop(context: WorkerContext, state: RunState, process: asyncio.subprocess.Process) -> None:
    """Heartbeat the lease; SIGTERM the trainer on cancel, pause, or a lost lease; kill ranks left after a failure."""
    settings = context.settings
    last_heartbeat = 0.0
    rank_failed_at: float | None = None
    while process.returncode is None:
        now = time.monotonic()
        try:
            async with context.sessionmaker() as session:
                flags = await repository.heartbeat(session, state.job.id, state.attempt, settings.job_lease_seconds)
                await session.commit()
            last_heartbeat = now
        except Exception:
            logger.exception("job %s: heartbeat failed", state.job.id)
            flags = (False, False) if now - last_heartbeat < settings.job_lease_seconds else None
        if flags is None:
            state.fenced_out = True
        else:
            state.cancel, state.pause = flags
        state.shutdown = state.shutdown or shutdown.requested()
        if (state.fenced_out or state.cancel or state.pause or state.shutdown) and not state.stop_sent:
            state.stop_sent = True
            process.send_signal(signal.SIGTERM)
        if rank_failed_at is None and any(rank_errors_of(state.work_dir, state.attempt).glob("rank-*.json")):
            rank_failed_at = now
        if rank_failed_at is not None and now - rank_failed_at > RANK_FAILURE_GRACE_SECONDS:
            # A rank failed; the rest wait on a dead peer (NCCL until its 30-minute timeout). Nothing is left
            # to save: the ranks die with torchrun (their parent-death signal).
            logger.warning("job %s: a rank failed; killing the ranks still running", state.job.id)
            process.kill()
        await asyncio.sleep(settings.job_control_poll_seconds)
