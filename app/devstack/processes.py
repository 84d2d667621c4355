"""Child processes of the embedded stack: started, waited for, and always stopped."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies (used as preexec_fn)."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def wait_until(check: Callable[[], bool], timeout: float, what: str, process: ManagedProcess | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.exited():
            raise RuntimeError(f"{what} exited with code {process.returncode()}; see {process.log_path}")
        try:
            if check():
                return
        except Exception:  # noqa: S110 - any error means "not ready yet"
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s; see {process.log_path if process else 'its log'}")


class ManagedProcess:
    """One server process with its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        own_group: bool = False,
    ) -> None:
        self.name = name
        # A server that spawns workers of its own (vLLM's engine core) runs in its own process group, so
        # the workers a crash left behind are ended before it starts again and when the stack stops.
        self.own_group = own_group
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.user = user
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        self._end_group()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self.popen = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                user=self.user,
                preexec_fn=die_with_parent,
                process_group=0 if self.own_group else None,
            )
        finally:
            log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def exited(self) -> bool:
        return self.popen is not None and self.popen.poll() is not None

    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.popen is None or self.popen.poll() is not None:
            self._end_group()
            return
        self.popen.send_signal(sig)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)
        self._end_group()

    def _end_group(self) -> None:
        """SIGKILL what is left of this process's group (its own workers, orphaned by a crash)."""
        if self.own_group and self.popen is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no clean-up runs."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(5)


class CrashLoopError(RuntimeError):
    pass


class RestartPolicy:
    """What `restart: unless-stopped` does in docker-compose.yml, for the embedded stack's processes.

    An exited process is started again with the same command; one that exits more than
    `max_restarts` times within `window_seconds` is crash-looping and the stack gives up on it.
    (Celery's Redis transport, for one, exits its worker on some broker disconnects and counts
    on the supervisor to bring it back.)
    """

    def __init__(self, max_restarts: int = 5, window_seconds: float = 300.0) -> None:
        self.max_restarts = max_restarts
        self.window_seconds = window_seconds
        self._restarts: dict[str, deque[float]] = {}

    def check(self, processes: Sequence[ManagedProcess], now: float | None = None) -> list[tuple[str, int | None]]:
        """Restart every exited process; return (name, exit code) of each one restarted."""
        now = time.monotonic() if now is None else now
        restarted = []
        for process in processes:
            if not process.exited():
                continue
            recent = self._restarts.setdefault(process.name, deque())
            while recent and now - recent[0] > self.window_seconds:
                recent.popleft()
            code = process.returncode()
            if len(recent) >= self.max_restarts:
                raise CrashLoopError(
                    f"{process.name} exited with code {code}, {len(recent) + 1} exits within "
                    f"{self.window_seconds:.0f}s; see {process.log_path}"
                )
            recent.append(now)
            process.start()
            restarted.append((process.name, code))
        return restarted


def tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env
