"""The Cerbos policy decision point, run as a child process on the policies in `policies/`.

The binary comes from `scripts/install-cerbos.sh` (npm package, pinned version).
Policies are read once at start (`watchForChanges: false`): a policy edit takes
effect on restart, so a running stack never serves half-written files.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import yaml

from app.devstack.processes import ManagedProcess, free_port, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
POLICIES_DIR = REPO_ROOT / "policies"
INSTALL_DIR = REPO_ROOT / "tools" / "cerbos"
HOST = "127.0.0.1"


class CerbosNotInstalledError(RuntimeError):
    pass


def cerbos_binary(install_dir: Path = INSTALL_DIR) -> Path:
    """The installed `cerbos` binary; raises with the command that installs it when missing."""
    binary = install_dir / "cerbos"
    if not binary.is_file():
        raise CerbosNotInstalledError(
            f"Cerbos is not installed at {binary}: run scripts/install-cerbos.sh (downloads it from npm)"
        )
    return binary


class CerbosServer:
    """`cerbos server` on 127.0.0.1 with a generated config; ports default to free ones."""

    def __init__(
        self,
        work_dir: Path,
        http_port: int | None = None,
        grpc_port: int | None = None,
        policies_dir: Path = POLICIES_DIR,
        binary: Path | None = None,
        admin_api: bool = False,
    ) -> None:
        self.work_dir = work_dir.resolve()
        self.http_port = http_port or free_port(HOST)
        self.grpc_port = grpc_port or free_port(HOST)
        self.policies_dir = policies_dir.resolve()
        self.binary = binary or cerbos_binary()
        # Cerbos' Admin API (with its default credentials, so for throwaway instances only): lets a test
        # reload edited policies the way an operator does (`cerbosctl store reload`).
        self.admin_api = admin_api
        self.config_path = self.work_dir / "cerbos.yaml"
        self.process = ManagedProcess(
            "cerbos",
            [str(self.binary), "server", f"--config={self.config_path}"],
            self.work_dir / "cerbos.log",
        )

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    @property
    def grpc_address(self) -> str:
        return f"{HOST}:{self.grpc_port}"

    def config(self) -> dict[str, Any]:
        server: dict[str, Any] = {"httpListenAddr": f"{HOST}:{self.http_port}", "grpcListenAddr": self.grpc_address}
        if self.admin_api:
            server["adminAPI"] = {"enabled": True}
        return {
            "server": server,
            "storage": {
                "driver": "disk",
                "disk": {"directory": str(self.policies_dir), "watchForChanges": False},
            },
            # The embedded stack runs offline; telemetry would only try to reach the internet.
            "telemetry": {"disabled": True},
        }

    def start(self, timeout: float = 120.0) -> None:
        # Cerbos compiles every policy before it serves: a second idle, tens of seconds on loaded cores.
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        self.process.start()
        try:
            wait_until(self.healthy, timeout, "Cerbos", self.process)
        except BaseException:
            self.stop()
            raise

    def healthy(self) -> bool:
        response = httpx.get(f"{self.url}/_cerbos/health", timeout=1)
        return response.status_code == 200 and response.json().get("status") == "SERVING"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (Cerbos drains and exits), then SIGKILL after `timeout` seconds."""
        self.process.stop(timeout=timeout)

    def __enter__(self) -> CerbosServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
