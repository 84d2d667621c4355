"""An MLflow tracking server with a SQLite backend and artifacts in the data dir."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx

from app.devstack.processes import ManagedProcess, wait_until


class EmbeddedMlflow:
    def __init__(self, data_dir: Path, port: int, log_dir: Path, job_runner: bool = False) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        # The platform tracks runs and registers models; MLflow's own job runner (GenAI evaluation jobs,
        # trace rollups: seven huey consumer processes) is not used, so it is not started
        # (`python -m bench.mlflow_start` measures what it costs; docs/evidence.md).
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": str(job_runner).lower()}
        self.process = ManagedProcess("mlflow", self._argv(), log_dir / "mlflow.log", env=env)

    def _argv(self) -> list[str]:
        mlflow = Path(sys.executable).parent / "mlflow"
        return [
            str(mlflow),
            "server",
            "--backend-store-uri",
            f"sqlite:///{self.data_dir / 'mlflow.db'}",
            "--artifacts-destination",
            str(self.data_dir / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            # Loopback names only (what DNS rebinding cannot forge), on any port: the test harness reaches
            # it through a local proxy too, whose port is in the Host header.
            "--allowed-hosts",
            "127.0.0.1:*,localhost:*",
        ]

    def start(self, timeout: float = 300.0) -> None:
        # A fresh store runs its migrations first: about 20 s on 2 idle cores, minutes on loaded ones.
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process.start()
        wait_until(self._ready, timeout, "MLflow", self.process)

    def _ready(self) -> bool:
        return httpx.get(f"{self.url}/health", timeout=1).status_code == 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.stop()
