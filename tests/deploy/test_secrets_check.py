"""The secrets-check one-shot and `create-admin` refuse the example secrets of .env.example."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

from app.core.secrets_check import SECRETS
from tests.deploy import compose_rules as rules


def example_values() -> dict[str, str]:
    """The uncommented assignments of .env.example: what a `docker compose up` before editing .env gets."""
    lines = (rules.REPO_ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    pairs = (line.split("=", 1) for line in lines if line and not line.startswith("#") and "=" in line)
    return {name.strip(): value.strip() for name, value in pairs}


def run(module: str, *args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(rules.REPO_ROOT), **environ}
    return subprocess.run([sys.executable, "-m", module, *args], env=env, cwd="/", capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_the_example_secrets_are_refused_by_name() -> None:
    examples = {name: value for name, value in example_values().items() if name in SECRETS}
    assert {"POSTGRES_PASSWORD", "MLFLOW_DB_PASSWORD", "REDIS_PASSWORD", "API_KEY_PEPPER"} <= set(examples)
    refused = run("app.core.secrets_check", **examples)
    assert refused.returncode == 1
    for name in examples:
        assert name in refused.stderr, refused.stderr
    real = {name: secrets.token_hex(32) for name in examples}
    accepted = run("app.core.secrets_check", **real)
    assert accepted.returncode == 0 and "no example secret in use" in accepted.stdout, accepted.stderr
    one_left = run("app.core.secrets_check", **(real | {"REDIS_PASSWORD": examples["REDIS_PASSWORD"]}))
    assert one_left.returncode == 1 and "REDIS_PASSWORD" in one_left.stderr
    assert "POSTGRES_PASSWORD" not in one_left.stderr


def test_create_admin_refuses_a_production_configuration_with_example_secrets() -> None:
    examples = example_values()
    result = run(
        "app.admin.bootstrap", "create-admin", "--email", "root@ops.example",
        ENVIRONMENT="production", API_KEY_PEPPER=examples["API_KEY_PEPPER"],
        DATABASE_URL="postgresql+asyncpg://finetune:s3cr3t-Long-enough@127.0.0.1:9/finetune",
    )  # fmt: skip
    assert result.returncode == 1
    assert "create-admin: the configuration is refused" in result.stderr and "API_KEY_PEPPER" in result.stderr
    assert result.stdout == ""  # no key printed
