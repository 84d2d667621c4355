"""What MLflow's job runner costs each time the embedded MLflow server starts.

    python -m bench.mlflow_start [--rounds 2] [--out bench/out/mlflow_start.json]

Starts the embedded tracking server (SQLite store, fresh data dir) with MLflow's job runner on
(MLflow's default: huey consumer processes beside the server) and off (what the platform runs),
alternating, and measures for each start: the seconds until /health answers, the CPU seconds all
its processes used until 20 s after that, their summed resident memory then, and how many there
are. Figures are medians over the rounds, and the ratios are "off" over "on" from the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from app.devstack.mlflow_server import EmbeddedMlflow
from app.devstack.processes import free_port

SETTLE_SECONDS = 20.0


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def one_start(job_runner: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as folder:
        server = EmbeddedMlflow(Path(folder) / "mlflow", free_port(), Path(folder) / "logs", job_runner=job_runner)
        began = time.monotonic()
        server.start()
        ready = time.monotonic() - began
        time.sleep(SETTLE_SECONDS)
        processes = _tree(server.process.pid)
        cpu = sum(sum(p.cpu_times()[:2]) for p in processes)
        rss = sum(p.memory_info().rss for p in processes)
        server.stop()
    return {"seconds_to_health": ready, "cpu_seconds": cpu, "rss_mib": rss / 2**20, "processes": len(processes)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/out/mlflow_start.json"))
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
    for _ in range(args.rounds):
        for name, job_runner in (("on", True), ("off", False)):
            runs[name].append(one_start(job_runner))
    medians = {name: {key: statistics.median(run[key] for run in found) for key in found[0]}
               for name, found in runs.items()}  # fmt: skip
    report: dict[str, Any] = {
        "job_runner_on": medians["on"],
        "job_runner_off": medians["off"],
        "ratios_off_over_on": {key: round(medians["off"][key] / medians["on"][key], 2) for key in medians["on"]},
        "rounds": args.rounds,
    }
    text = json.dumps(report, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
