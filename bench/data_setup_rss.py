"""Peak memory of a training run's data setup on a large chat file, and what a retry costs.

    python bench/data_setup_rss.py               # a ~100 MB file
    python bench/data_setup_rss.py --mb 10

Writes a chat JSONL of the requested size in the tiny tokenizer's vocabulary, then, in a fresh
process each time, runs the engine's data setup as a run does it (`app.training.rows.load_rows`
into a cache folder, then TRL's best-fit-decreasing packing of the rows) while `bench/rss.RssWatch`
samples the process's resident memory: baseline after the imports and the tokenizer, peak during
the setup. The second process is a retry: it finds the tokenized rows in the cache.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = REPO_ROOT / "bench" / "out"


def write_file(path: Path, megabytes: int) -> Path:
    from app.training.tiny_data import sentence

    rng = random.Random(0)
    target = megabytes * 2**20
    with path.open("w", encoding="utf-8") as handle:
        while handle.tell() < target:
            messages = [
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": sentence(rng, 5, 40)},
                {"role": "assistant", "content": sentence(rng, 10, 200)},
            ]
            handle.write(json.dumps({"messages": messages}) + "\n")
    return path


def setup_once(data_file: Path, cache: Path) -> dict[str, Any]:
    """One data setup, measured from inside (the child process)."""
    import os

    sys.path.insert(0, str(REPO_ROOT))
    from trl.data_utils import pack_dataset

    from app.training.callbacks import NullProgress
    from app.training.config import Hyperparameters, TrainingConfig
    from app.training.data import load_tokenizer
    from app.training.rows import load_rows
    from app.training.tiny_model import build_tiny_model
    from bench.rss import RssWatch

    model = build_tiny_model(OUT_DIR / "tiny-llama")
    tokenizer = load_tokenizer(str(model))
    hyperparameters = Hyperparameters(
        n_epochs=1, batch_size=4, learning_rate=1e-4, lora_r=16, lora_alpha=32, lora_dropout=0.0,
        target_modules="all-linear", max_seq_length=1024, packing=True, warmup_ratio=0.0,
        gradient_accumulation_steps=1, eval_steps=None, beta=0.1, weight_decay=0.0, lr_scheduler_type="linear",
    )  # fmt: skip
    config = TrainingConfig(
        job_id="bench", base_model=str(model), training_file=data_file, hyperparameters=hyperparameters,
        output_dir=cache / "output", checkpoint_dir=cache / "checkpoints", data_cache_dir=cache,
    )  # fmt: skip
    messages: list[str] = []

    class Said(NullProgress):
        def on_message(self, level: str, message: str) -> None:  # type: ignore[override]
            messages.append(message)

    started = time.monotonic()
    with RssWatch(os.getpid()) as watch:
        rows = load_rows(tokenizer, config, data_file, "training_file", Said(), cache)
        packed = pack_dataset(rows.select_columns(["input_ids", "labels"]), 1024, "bfd", {})
    return {
        "seconds": round(time.monotonic() - started, 1),
        "baseline_mib": round(watch.baseline / 2**20, 1),
        "peak_mib": round(watch.peak / 2**20, 1),
        "growth_mib": watch.growth_mib,
        "rows": len(rows),
        "packed_rows": len(packed),
        "message": messages[0] if messages else "",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=100, help="size of the chat file in MiB")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(setup_once(Path(args.child[0]), Path(args.child[1]))))
        return 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    data_file = OUT_DIR / f"chat-{args.mb}mb.jsonl"
    if not data_file.is_file():
        write_file(data_file, args.mb)
    size_mib = data_file.stat().st_size / 2**20
    with tempfile.TemporaryDirectory(dir=OUT_DIR) as cache:
        runs = []
        for _ in ("first attempt", "retry"):
            command = [sys.executable, __file__, "--child", str(data_file), cache]
            result = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO_ROOT)
            runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    print(f"file: {size_mib:.1f} MiB, {runs[0]['rows']} examples, {runs[0]['packed_rows']} packed rows of 1024")
    for name, run in zip(("first attempt", "retry"), runs, strict=True):
        ratio = run["growth_mib"] / size_mib
        print(
            f"{name:<14} {run['seconds']:>7.1f} s   RSS baseline {run['baseline_mib']:.0f} MiB, peak "
            f"{run['peak_mib']:.0f} MiB, growth {run['growth_mib']:.0f} MiB = {ratio:.2f}x the file ({run['message']})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
