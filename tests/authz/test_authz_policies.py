"""The Cerbos policy test suites (policies/tests/*_test.yaml) run by the pinned binary."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from app.devstack.cerbos import POLICIES_DIR


def compile_policies(cerbos_path: Path, policies_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(cerbos_path), "compile", "--no-color", "--output=list", str(policies_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_policy_suites_pass(cerbos_path: Path) -> None:
    result = compile_policies(cerbos_path, POLICIES_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout
    assert "ERROR" not in result.stdout


def test_policy_suites_catch_a_leak(cerbos_path: Path, tmp_path: Path) -> None:
    """Letting colleagues delete each other's files must break the suites."""
    copy = tmp_path / "policies"
    shutil.copytree(POLICIES_DIR, copy)
    file_policy = copy / "resources" / "file.yaml"
    text = file_policy.read_text()
    colleague_rule = '- actions: ["read", "download", "use"]'
    assert colleague_rule in text
    leaky = text.replace(colleague_rule, colleague_rule.replace('"use"]', '"use", "delete"]'))
    file_policy.write_text(leaky)

    result = compile_policies(cerbos_path, copy)

    assert result.returncode != 0
    assert "FAILED" in result.stdout
