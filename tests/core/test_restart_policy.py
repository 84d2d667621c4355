"""The embedded stack starts an exited process again, as compose's restart policy does, and gives up on a crash loop."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from app.devstack.processes import CrashLoopError, ManagedProcess, RestartPolicy


def _wait_exit(process: ManagedProcess) -> None:
    deadline = time.monotonic() + 30
    while not process.exited():
        assert time.monotonic() < deadline, "the process did not exit"
        time.sleep(0.05)


def test_an_exited_process_is_started_again_until_it_crash_loops(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    script = f"open({str(starts)!r}, 'a').write('started\\n'); raise SystemExit(7)"
    crashing = ManagedProcess("worker-gpu", [sys.executable, "-c", script], tmp_path / "worker.log").start()
    steady = ManagedProcess("user-api", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "api.log")
    steady.start()
    policy = RestartPolicy(max_restarts=2, window_seconds=100)
    try:
        _wait_exit(crashing)
        assert policy.check([crashing, steady], now=0) == [("worker-gpu", 7)]
        _wait_exit(crashing)
        assert policy.check([crashing, steady], now=10) == [("worker-gpu", 7)]
        _wait_exit(crashing)
        assert starts.read_text().count("started") == 3
        with pytest.raises(CrashLoopError, match=r"worker-gpu exited with code 7, 3 exits within 100s"):
            policy.check([crashing, steady], now=20)
        # Restarts older than the window are forgiven: a process that crashes once a day is restarted each time.
        assert policy.check([crashing], now=200) == [("worker-gpu", 7)]
        assert not steady.exited()
    finally:
        steady.kill()
        crashing.kill()
