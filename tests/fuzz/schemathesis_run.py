"""One Schemathesis run against a running API, read back from its JSON report.

The CLI is what a reader reproduces by hand, so the tests drive it too: every check, every
phase (examples, coverage, fuzzing, stateful with inferred links), several identities from a
Web Fuzzing Commons auth file (object-level authorization is probed between them), and known
identifiers fed in through dictionaries so operations on one object get past the 404.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]

# How the failure codes of Schemathesis 4 group into what the evidence must show as zero.
SERVER_ERRORS = {"ST101", "ST102"}
SCHEMA_VIOLATIONS = {"ST103", "ST104", "ST105", "ST106", "ST107", "ST108", "ST109", "ST110", "ST111"}
# ST901: the custom check of tests/fuzz/hooks.py (another tenant's object in an answer).
AUTH_BYPASSES = {"ST401", "ST402", "ST901"}


@dataclass
class Identity:
    name: str
    key: str


@dataclass
class FuzzTarget:
    base_url: str
    identities: list[Identity]
    # Path parameter name -> identifiers that exist (drawn half the time, the rest is generated).
    known_ids: dict[str, list[str]] = field(default_factory=dict)
    # Identifiers no answer to the first identity may name (other tenants' objects).
    foreign_ids: list[str] = field(default_factory=list)


def max_examples() -> int:
    """Small in CI; `FUZZ_MAX_EXAMPLES` (or FULL_CHAOS=1) for the evidence run."""
    default = "25" if os.environ.get("FULL_CHAOS") == "1" else "4"
    return int(os.environ.get("FUZZ_MAX_EXAMPLES", default))


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def write_config(target: FuzzTarget, directory: Path) -> Path:
    lines = []
    for name, values in target.known_ids.items():
        lines.append(f"[dictionaries.{name}]")
        lines.append("values = [" + ", ".join(_toml_string(value) for value in values) + "]")
    lines.append("[parameters]")
    for name in target.known_ids:
        lines.append(f'"path.{name}" = {{ dictionary = "{name}", probability = 0.5 }}')
    path = directory / "schemathesis.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_auth(target: FuzzTarget, directory: Path) -> Path:
    document = {
        "auth": [
            {"name": who.name, "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {who.key}"}]}
            for who in target.identities
        ]
    }
    path = directory / "auth.json"
    path.write_text(json.dumps(document))
    return path


def command(target: FuzzTarget, directory: Path, examples: int, seed: int) -> list[str]:
    """The command line (the auth file holds the keys, so it can be printed as it is)."""
    return [
        str(Path(sys.executable).parent / "schemathesis"), "--no-color",
        "--config-file", str(write_config(target, directory)),
        "run", f"{target.base_url}/openapi.json",
        "--checks", "all",
        "--phases", "examples,coverage,fuzzing,stateful",
        "--auth-wfc", str(write_auth(target, directory)), "--auth-wfc-user", target.identities[0].name,
        "--max-examples", str(examples), "--seed", str(seed), "--workers", "1",
        "--request-timeout", "60", "--suppress-health-check", "all",
        "--report", "json", "--report-json-path", str(directory / "report.json"),
    ]  # fmt: skip


@dataclass
class FuzzResult:
    report: dict[str, Any]
    output: str
    argv: list[str]

    @property
    def output_path(self) -> Path:
        return Path(self.argv[self.argv.index("--report-json-path") + 1]).with_name("output.txt")

    def failures(self, codes: set[str]) -> dict[str, list[str]]:
        return {f["code"]: f["operations"] for f in self.report["failures"] if f["code"] in codes}

    def summary(self) -> dict[str, Any]:
        return {
            "operations_tested": self.report["operations"]["tested"],
            "operations_total": self.report["operations"]["total"],
            "test_cases": self.report["test_cases"]["generated"],
            "phases": {name: phase["status"] for name, phase in self.report["phases"].items()},
            "server_errors": self.failures(SERVER_ERRORS),
            "schema_violations": self.failures(SCHEMA_VIOLATIONS),
            "auth_bypasses": self.failures(AUTH_BYPASSES),
            "other_findings": {
                f"{f['code']} {f['title']}": f["operations"]
                for f in self.report["failures"]
                if f["code"] not in SERVER_ERRORS | SCHEMA_VIOLATIONS | AUTH_BYPASSES
            },
            "errors": self.report["errors"],
            "seconds": round(self.report["running_time"], 1),
            "max_examples": int(self.argv[self.argv.index("--max-examples") + 1]),
            "seed": self.report["seed"],
        }


def run(target: FuzzTarget, directory: Path, examples: int, seed: int = 1) -> FuzzResult:
    argv = command(target, directory, examples, seed)
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks",
        "FUZZ_FOREIGN_IDS": json.dumps(target.foreign_ids),
        "PYTHONPATH": str(REPO_ROOT),
    }
    done = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=3000)
    output = done.stdout + done.stderr
    (directory / "output.txt").write_text(output)
    report_path = directory / "report.json"
    assert report_path.exists(), f"schemathesis wrote no report (exit {done.returncode}):\n{output[-4000:]}"
    return FuzzResult(json.loads(report_path.read_text()), output, argv)
