"""Process plumbing for the trainer: die with the parent, turn SIGTERM into a checkpointed stop."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

PR_SET_PDEATHSIG = 1


def set_parent_death_signal(sig: int = signal.SIGKILL) -> None:
    """Ask Linux to send `sig` to this process when its parent dies.

    SIGKILL, not SIGTERM: a worker that died will have its job re-leased, and a trainer still
    writing checkpoints beside the next attempt would race it. Also usable as a `preexec_fn`
    for the worker's `torchrun`, whose ranks then set it again for themselves.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    # The parent may have died before prctl ran; then we were re-parented and must go now.
    if os.getppid() == 1:
        os.kill(os.getpid(), sig)


def install_stop_handlers(request_stop: Callable[[], None]) -> None:
    """SIGTERM and SIGINT ask for a stop at the next step boundary instead of killing mid-step."""

    def handle(signum: int, frame: FrameType | None) -> None:
        request_stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def rank() -> int:
    """Global rank under torchrun; 0 for a plain process."""
    return int(os.environ.get("RANK", "0"))


def is_rank_zero() -> bool:
    """Under torchrun only global rank 0 reports; a plain process is rank 0."""
    return int(os.environ.get("RANK", "0")) == 0


def world_size() -> int:
    """Processes training together (torchrun's WORLD_SIZE); 1 for a plain process."""
    return int(os.environ.get("WORLD_SIZE", "1"))
