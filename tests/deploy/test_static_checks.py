"""scripts/check-deploy.sh: passes on the repository, fails on broken copies.

The mutated copies are the ones a careless edit produces; each must be caught by the
specification rules and by the script's tools (dclint, docker-compose config).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy import compose_rules as rules

SCRIPT = rules.REPO_ROOT / "scripts" / "check-deploy.sh"
REQUIRED_SECRETS = rules.REQUIRED_SECRETS


@pytest.fixture(scope="module")
def tools() -> dict[str, str]:
    """Install the tools the way the script does, and return their paths."""
    done = subprocess.run([str(SCRIPT), "--install-tools"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


def _check(compose_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), "--compose", str(compose_file)], capture_output=True, text=True, timeout=300)


def test_repository_passes_every_static_check(tools: dict[str, str]) -> None:
    done = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "all checks passed" in done.stderr


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "docker-compose.yml"
    path.write_text(text, encoding="utf-8")
    return path


ORIGINAL = rules.COMPOSE_FILE.read_text(encoding="utf-8")
# (id, the edit, what the script reports); every edit also breaks a specification rule.
BROKEN_COPIES = [
    ("unpinned image", ("image: redis:7.4.5-alpine", "image: redis"), "service-image-require-explicit-tag"),
    (
        "misspelt condition",
        ("condition: service_completed_successfully", "condition: service_completed"),
        "invalid-schema",
    ),
    (
        "port published twice",
        ('"127.0.0.1:8010:8001"', '"127.0.0.1:8010:8001"\n      - "127.0.0.1:8010:8002"'),
        "no-duplicate-exported-ports",
    ),
]


@pytest.mark.parametrize(
    ("edit", "reported"), [(e, r) for _, e, r in BROKEN_COPIES], ids=[i for i, _, _ in BROKEN_COPIES]
)
def test_broken_copy_fails_rules_and_script(
    tools: dict[str, str], tmp_path: Path, edit: tuple[str, str], reported: str
) -> None:
    old, new = edit
    assert old in ORIGINAL
    broken = _write(tmp_path, ORIGINAL.replace(old, new, 1))
    assert rules.violations(yaml.safe_load(broken.read_text(encoding="utf-8"))) != []
    done = _check(broken)
    assert done.returncode != 0
    assert reported in done.stdout + done.stderr


def _render_project(tmp_path: Path, env_text: str) -> Path:
    """A folder that looks like the repository, with `env_text` as its .env."""
    project = tmp_path / "project"
    project.mkdir()
    for entry in rules.REPO_ROOT.iterdir():
        if entry.name not in {".env", ".git"}:
            (project / entry.name).symlink_to(entry)
    (project / ".env").write_text(env_text, encoding="utf-8")
    return project


def _render(tools: dict[str, str], project: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in REQUIRED_SECRETS}
    return subprocess.run(
        [tools["docker-compose"], "config"], cwd=project, capture_output=True, text=True, timeout=120, env=env
    )


def test_example_env_renders_the_stack(tools: dict[str, str], tmp_path: Path) -> None:
    example = (rules.REPO_ROOT / ".env.example").read_text(encoding="utf-8")
    done = _render(tools, _render_project(tmp_path, example))
    assert done.returncode == 0, done.stderr
    rendered = yaml.safe_load(done.stdout)
    assert rendered["services"]["user-api"]["environment"]["DATABASE_URL"] == (
        "postgresql+asyncpg://finetune:changeme-postgres-password@postgres:5432/finetune"
    )


@pytest.mark.parametrize("secret", REQUIRED_SECRETS)
def test_missing_secret_stops_compose(tools: dict[str, str], tmp_path: Path, secret: str) -> None:
    example = (rules.REPO_ROOT / ".env.example").read_text(encoding="utf-8")
    without = "\n".join(line for line in example.splitlines() if not line.startswith(f"{secret}="))
    done = _render(tools, _render_project(tmp_path, without))
    assert done.returncode != 0
    assert f"{secret} is required" in done.stderr


def test_hadolint_rejects_a_root_image(tools: dict[str, str], tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    text = (rules.REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    dockerfile.write_text(text.replace("USER 1000:1000\n", "USER root\n"), encoding="utf-8")
    done = subprocess.run([tools["hadolint"], str(dockerfile)], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "DL3002" in done.stdout  # last USER should not be root
