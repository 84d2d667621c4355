"""The training process of one attempt: its command, spawn, the relay of its messages, and the control loop.

The worker never imports torch: the trainer is a child process (torchrun when several GPUs are
visible) that dies with the worker, reports on its stdout, and stops at a checkpoint on SIGTERM.
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

from app.core.worker_context import WorkerContext
from app.jobs import repository
from app.jobs.worker import mlflow_run, progress, shutdown
from app.jobs.worker.state import RunState, decode, journal_of
from app.training.process import set_parent_death_signal

logger = logging.getLogger(__name__)


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


def training_command(config_path: Path, gpus: int, journal: Path | None = None) -> list[str]:
    module = ["-m", "app.training", "--config", str(config_path), "--progress-fd", "1"]
    if journal is not None:
        module += ["--progress-journal", str(journal)]
    if gpus > 1:
        torchrun = str(Path(sys.executable).parent / "torchrun")
        return [torchrun, f"--nproc_per_node={gpus}", "--standalone", *module]
    return [sys.executable, *module]


async def supervise(context: WorkerContext, state: RunState, config_path: Path) -> tuple[int, float]:
    """Run the trainer to its end: (its exit code, seconds it ran). Its metrics are flushed to MLflow."""
    log_dir = context.settings.logs_path / state.job.id
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with (log_dir / f"attempt-{state.attempt}.log").open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            *training_command(config_path, visible_gpu_count(), journal_of(state.work_dir, state.attempt)),
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
    """Heartbeat the lease; SIGTERM the trainer on cancel, pause, or a lost lease."""
    settings = context.settings
    last_heartbeat = 0.0
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
        await asyncio.sleep(settings.job_control_poll_seconds)
