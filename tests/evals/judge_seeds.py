"""How reliably the judge of test_fine_tune_vs_base learns, seed by seed (not a test: a measurement).

    .venv/bin/python -m tests.evals.judge_seeds 1 2 3     # about 45 s a seed on one core

Trains the judge in process (`FineTuneRecipe`, the test's file and hyperparameters, what the GPU worker's
training process runs), then asks the merged model greedily for each of its 12 training prompts and prints,
per seed, how many it answers right and by how many logits the right reply ("1" or "0") leads the other.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from app.training.engine import FineTuneRecipe
from app.training.tiny_model import build_tiny_model
from tests.evals.test_fine_tune_vs_base import FACTS, JUDGE_HYPERPARAMETERS, WRONG, judge_file, judge_messages
from tests.training.conftest import RecordingProgress, make_config


def judge_seed(model: Path, work: Path, seed: int) -> dict[str, object]:
    (work / "train.jsonl").write_bytes(judge_file())
    config = make_config(work, model, work / "train.jsonl", hyperparameters=JUDGE_HYPERPARAMETERS, seed=seed)
    started = time.monotonic()
    recipe = FineTuneRecipe(config, RecordingProgress())
    recipe.setup()
    recipe.train()
    recipe.save_outputs()
    recipe.cleanup()
    merged = config.output_dir / "merged"
    judge, tokenizer = AutoModelForCausalLM.from_pretrained(merged), AutoTokenizer.from_pretrained(merged)
    one, zero = tokenizer.convert_tokens_to_ids("1"), tokenizer.convert_tokens_to_ids("0")
    said, margins = [], []
    for (_, answer), wrong in zip(FACTS, WRONG, strict=True):
        for given, right in ((answer, "1"), (wrong, "0")):
            prompt = tokenizer.apply_chat_template(
                judge_messages(answer, given), add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            with torch.no_grad():
                out = judge.generate(**prompt, max_new_tokens=4, do_sample=False)
                logits = judge(**prompt).logits[0, -1]
            said.append(tokenizer.decode(out[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True).strip())
            lead = float(logits[one] - logits[zero])
            margins.append(round(lead if right == "1" else -lead, 3))
    right = sum(reply == want for reply, want in zip(said, "10" * len(FACTS), strict=True))
    return {"seed": seed, "right": right, "of": len(said), "said": said, "min_margin": min(margins),
            "max_margin": max(margins), "seconds": round(time.monotonic() - started)}  # fmt: skip


def main(seeds: list[int]) -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        model = build_tiny_model(Path(scratch) / "tiny-llama")
        for seed in seeds:
            work = Path(scratch) / f"seed-{seed}"
            work.mkdir()
            print(json.dumps(judge_seed(model, work, seed)), flush=True)
            shutil.rmtree(work)


if __name__ == "__main__":
    main([int(seed) for seed in sys.argv[1:]] or [1])
