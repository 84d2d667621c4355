"""What the benches share: the embedded servers they run on, and how each writes its report.

Every bench is run as `python -m bench.<name>` from a checkout's root and starts what it measures
itself; none reads a server the machine already runs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

# For benches that touch neither MLflow nor Qdrant: pointed at a closed port instead of being started.
WITHOUT_TRACKING = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9", "QDRANT_URL": "http://127.0.0.1:9"}


def start_servers(data_dir: Path, configured: dict[str, str] | None = None) -> Any:
    """The embedded servers on free ports, migrated, and this process's settings pointed at them.

    `configured` names servers not to start (`WITHOUT_TRACKING`); the stack is returned
    started, for the caller to stop, with their addresses in `stack.env`.
    """
    from app.core.config import get_settings
    from app.core.migrations import upgrade_head
    from app.devstack.stack import Ports, Stack

    stack = Stack(data_dir=data_dir, ports=Ports.free(), environment="development", configured=configured or {})
    env = stack.start_servers()
    os.environ.update(env)
    get_settings.cache_clear()
    upgrade_head(env["DATABASE_URL"])
    return stack


def report_head(module: str) -> dict[str, Any]:
    """How the run was asked for and what it ran on: the first keys of every report."""
    return {
        "command": " ".join([f"python -m {module}", *sys.argv[1:]]),
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
    }


def write_report(out: Path, report: dict[str, Any], shown: dict[str, Any] | None = None) -> None:
    """The report as JSON at `out`, and on stdout (`shown` instead, where the file holds more)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report if shown is None else shown, indent=2))
