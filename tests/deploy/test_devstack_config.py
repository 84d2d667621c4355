"""What `make run` takes from `.env` and from `DEVSTACK_<NAME>_PORT`, as the README says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from app.devstack.__main__ import _ports_from_env
from app.devstack.stack import CONFIGURED_NAMES, Ports, configured_urls
from tests.deploy import compose_rules as rules

README = (rules.REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_every_port_override_the_readme_names_moves_that_port(monkeypatch: pytest.MonkeyPatch) -> None:
    listed = re.search(r"`DEVSTACK_<NAME>_PORT` \(([^)]*)\)", README)
    assert listed, "the README no longer documents DEVSTACK_<NAME>_PORT"
    documented = re.findall(r"`([A-Z_]+)`", listed.group(1))
    assert sorted(documented) == sorted(field.name.upper() for field in fields(Ports))
    for offset, name in enumerate(documented):
        monkeypatch.setenv(f"DEVSTACK_{name}_PORT", str(20000 + offset))
    ports = _ports_from_env()
    assert [getattr(ports, name.lower()) for name in documented] == [20000 + i for i in range(len(documented))]


def test_dotenv_configures_make_run_and_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CONFIGURED_NAMES:
        monkeypatch.delenv(name, raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("# a comment\nREDIS_URL=redis://from-file:6379/0\nHF_HUB_OFFLINE=1\nDATA_DIR=\n"
                        "MLFLOW_TRACKING_URI=http://from-file:5000\nAPI_KEY_PEPPER=not-a-connection\n")  # fmt: skip
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://from-env:5000")
    expected = {"REDIS_URL": "redis://from-file:6379/0", "MLFLOW_TRACKING_URI": "http://from-env:5000",
                "HF_HUB_OFFLINE": "1"}  # fmt: skip
    assert configured_urls(env_file) == expected
    # The test harness passes no file: a developer's .env never points the suite at their servers.
    assert configured_urls() == {"MLFLOW_TRACKING_URI": "http://from-env:5000"}


def _check_only(folder: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    """`python -m app.devstack --check-only` run from `folder`, where its .env is; nothing in the environment."""
    (folder / ".env").write_text(f"DATABASE_URL={database_url}\n")
    env = {key: value for key, value in os.environ.items() if key not in CONFIGURED_NAMES}
    env["PYTHONPATH"] = str(rules.REPO_ROOT)
    return subprocess.run([sys.executable, "-m", "app.devstack", "--check-only"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_make_run_checks_the_database_its_dotenv_names(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    database_url = settings.database_url.get_secret_value()
    assert _check_only(tmp_path, database_url).returncode == 0
    broken = re.sub(r"@([^/]+)/", "@127.0.0.1:1/", database_url)
    refused = _check_only(tmp_path, broken)
    assert refused.returncode != 0 and "127.0.0.1:1" in refused.stderr, refused.stderr[-2000:]
    assert "Traceback" not in refused.stderr, refused.stderr[-2000:]
