"""The embedded stack: every server the platform needs, started and stopped by the project.

`make run` and the test harness both use it. A service whose URL is configured
(DATABASE_URL, REDIS_URL, MLFLOW_TRACKING_URI, CERBOS_URL, QDRANT_URL) is used
as it is; the others are started here, with their state under the data dir.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

import httpx
from dotenv import dotenv_values

from app.devstack.cerbos import CerbosServer
from app.devstack.inference import engine_argv, engine_env
from app.devstack.mlflow_server import EmbeddedMlflow
from app.devstack.postgres import EmbeddedPostgres
from app.devstack.processes import ManagedProcess, child_env, free_port, wait_until
from app.devstack.valkey import EmbeddedValkey

logger = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[2]
# Real servers to use instead of embedded ones, and what else the stack takes from the configuration.
CONFIGURED_NAMES = (
    "DATABASE_URL", "REDIS_URL", "MLFLOW_TRACKING_URI", "CERBOS_URL", "CERBOS_GRPC_ADDRESS", "QDRANT_URL", "DATA_DIR",
    "HF_HUB_OFFLINE", "HF_HOME",
)  # fmt: skip


@dataclass
class Ports:
    postgres: int = 5432
    redis: int = 6379
    mlflow: int = 5000
    cerbos_http: int = 3592
    cerbos_grpc: int = 3593
    vectors: int = 6333
    user_api: int = 8080
    admin_api: int = 8010
    inference: int = 8000  # the vLLM engine of the demo model (127.0.0.1 only)

    @classmethod
    def free(cls) -> Ports:
        return cls(*(free_port() for _ in fields(cls)))


@dataclass
class Stack:
    data_dir: Path
    ports: Ports = field(default_factory=Ports)
    environment: str = "development"
    configured: dict[str, str] = field(default_factory=dict)
    servers: list[object] = field(default_factory=list)
    processes: list[ManagedProcess] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.log_dir = self.data_dir / "logs" / "services"

    # --- servers -------------------------------------------------------------------------------

    def start_servers(self) -> dict[str, str]:
        """Start what is not configured; return the environment every platform process needs."""
        env = {
            "ENVIRONMENT": self.environment,
            "DATA_DIR": str(self.data_dir),
            **self._hugging_face_env(),
            "PYTHONUNBUFFERED": "1",
        }
        env["DATABASE_URL"] = self.configured.get("DATABASE_URL") or self._start_postgres()
        env["REDIS_URL"] = self.configured.get("REDIS_URL") or self._start_valkey()
        env.update(self._cerbos_env())
        env["MLFLOW_TRACKING_URI"] = self.configured.get("MLFLOW_TRACKING_URI") or self._start_mlflow()
        if self.configured.get("QDRANT_URL"):
            env["QDRANT_URL"] = self.configured["QDRANT_URL"]
        else:
            env["VECTOR_SERVICE_URL"] = self._start_vector_service(env)
        self.env = env
        return env

    def _hugging_face_env(self) -> dict[str, str]:
        """Tests never reach the hub and keep a cache of their own; `make run` downloads hub models unless told not to.

        HF_HUB_OFFLINE=1 (environment or .env) keeps `make run` offline; HF_HOME shares a cache that is already
        there (default: DATA_DIR/hf-cache).
        """
        testing = self.environment == "test"
        offline = self.configured.get("HF_HUB_OFFLINE") or ("1" if testing else "0")
        cache = (not testing and self.configured.get("HF_HOME")) or str(self.data_dir / "hf-cache")
        return {"HF_HUB_OFFLINE": offline, "TRANSFORMERS_OFFLINE": offline, "HF_HOME": cache}

    def _start_postgres(self) -> str:
        postgres = EmbeddedPostgres(self.data_dir / "postgres", self.ports.postgres, self.log_dir)
        postgres.start()
        postgres.create_database("finetune")
        self.servers.append(postgres)
        return postgres.url("finetune")

    def _start_valkey(self) -> str:
        valkey = EmbeddedValkey(self.data_dir / "valkey", self.ports.redis, self.log_dir)
        valkey.start()
        self.servers.append(valkey)
        return valkey.url()

    def _cerbos_env(self) -> dict[str, str]:
        """CERBOS_URL (HTTP) and CERBOS_GRPC_ADDRESS, which the APIs' decisions use when set."""
        if self.configured.get("CERBOS_URL"):
            grpc = self.configured.get("CERBOS_GRPC_ADDRESS")
            return {"CERBOS_URL": self.configured["CERBOS_URL"], **({"CERBOS_GRPC_ADDRESS": grpc} if grpc else {})}
        cerbos = self._start_cerbos()
        return {"CERBOS_URL": cerbos.url, "CERBOS_GRPC_ADDRESS": cerbos.grpc_address}

    def _start_cerbos(self) -> CerbosServer:
        cerbos = CerbosServer(
            policies_dir=REPO_ROOT / "policies",
            http_port=self.ports.cerbos_http,
            grpc_port=self.ports.cerbos_grpc,
            work_dir=self.data_dir / "cerbos",
        )
        cerbos.start()
        self.servers.append(cerbos)
        return cerbos

    def _start_mlflow(self) -> str:
        mlflow = EmbeddedMlflow(self.data_dir / "mlflow", self.ports.mlflow, self.log_dir)
        mlflow.start()
        self.servers.append(mlflow)
        return mlflow.url

    def _start_vector_service(self, env: dict[str, str]) -> str:
        url = f"http://127.0.0.1:{self.ports.vectors}"
        process = self.spawn(
            "vectors",
            [
                sys.executable,
                "-m",
                "app.vectors.server",
                "--path",
                str(self.data_dir / "qdrant"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.ports.vectors),
            ],
            env,
        )
        wait_until(lambda: httpx.get(f"{url}/health", timeout=1).status_code == 200, 120, "vector service", process)
        return url

    # --- platform processes --------------------------------------------------------------------

    def spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, own_group: bool = False
    ) -> ManagedProcess:
        log_path = self.log_dir / f"{name}.log"
        process = ManagedProcess(
            name, argv, log_path, env=child_env(env or self.env), cwd=REPO_ROOT, own_group=own_group
        ).start()
        self.processes.append(process)
        return process

    def start_api(self, which: str) -> ManagedProcess:
        port = self.ports.user_api if which == "user" else self.ports.admin_api
        host = "0.0.0.0" if which == "user" else "127.0.0.1"
        return self.spawn(
            f"{which}-api",
            [
                sys.executable,
                "-m",
                "uvicorn",
                f"app.api.{which}_app:app",
                "--host",
                host,
                "--port",
                str(port),
                "--no-access-log",
                # What uvicorn[standard] picks anyway, named so a missing one fails the start instead
                # of falling back to the pure-Python loop and parser.
                "--loop=uvloop",
                "--http=httptools",
            ],
        )

    def start_worker(self, queue: str, extra_env: dict[str, str] | None = None, node: str = "") -> ManagedProcess:
        """A Celery worker of `queue`; `node` tells a second worker of the same queue apart (its name, its log)."""
        celery = str(Path(sys.executable).parent / "celery")
        if queue == "gpu":
            argv = [
                celery,
                "-A",
                "app.core.celery_app",
                "worker",
                "-Q",
                "gpu",
                "--concurrency=1",
                "--pool=solo",
                f"--hostname=gpu{node}-{os.getpid()}@%h",
            ]
        else:  # "cpu" (with beat, the reconcilers' clock), "evals", or both: "cpu,evals"
            queues = queue.split(",")
            argv = [celery, "-A", "app.core.celery_app", "worker", "-Q", queue, "--concurrency=2", "--pool=prefork"]
            if "cpu" in queues:
                argv += ["--beat", f"--schedule={self.data_dir / 'celerybeat-schedule'}"]
            argv.append(f"--hostname={queues[0]}{node}-{os.getpid()}@%h")
        return self.spawn(f"worker-{queue.replace(',', '-')}{node}", argv, {**self.env, **(extra_env or {})})

    def start_inference(
        self, served_name: str, model_path: Path, port: int | None = None, max_loras: int = 4
    ) -> ManagedProcess:
        """Start a vLLM engine serving `model_path` as `served_name` at http://127.0.0.1:`port`.

        Not waited for (it loads in tens of seconds); /ready of the APIs says when it answers.
        """
        port = port or self.ports.inference
        argv = engine_argv(model_path, served_name, port, max_loras)
        return self.spawn(f"inference-{port}", argv, {**self.env, **engine_env()}, own_group=True)

    def wait_ready(self, port: int, timeout: float = 60.0) -> None:
        url = f"http://127.0.0.1:{port}/ready"
        wait_until(lambda: httpx.get(url, timeout=5).status_code == 200, timeout, url)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        for server in reversed(self.servers):
            server.stop()  # type: ignore[attr-defined]
        self.servers.clear()


def configured_urls(env_file: Path | None = None) -> dict[str, str]:
    """What is configured for the stack: the environment first, then `env_file` (`make run` passes .env, which
    every process of the platform reads too; the test harness passes nothing, so a developer's .env never points
    the tests at a real database)."""
    from_file = {key: value for key, value in dotenv_values(env_file).items() if value} if env_file else {}
    configured = {}
    for name in CONFIGURED_NAMES:
        value = os.environ.get(name) or from_file.get(name)
        if value:
            configured[name] = value
    return configured
