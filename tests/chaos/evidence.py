"""Figures measured by the fault, fuzzing, bad-input and secret tests, kept for docs/evidence.md.

Each test asserts on its figures and also hands them to `record`: they are printed (`pytest -s`
shows them) and, when EVIDENCE_DIR is set, written there as `<name>.json`, so one run of
`make test-full` with EVIDENCE_DIR set gives every figure of the evidence document.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def full_chaos() -> bool:
    """The long forms (FULL_CHAOS=1, `make test-full`): every fault repeated, the big inputs sent."""
    return os.environ.get("FULL_CHAOS") == "1"


def record(name: str, figures: dict[str, Any]) -> None:
    text = json.dumps(figures, indent=2, sort_keys=True, default=str)
    print(f"\nEVIDENCE {name}: {text}")
    directory = os.environ.get("EVIDENCE_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / f"{name}.json").write_text(text + "\n")
