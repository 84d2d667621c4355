#!/usr/bin/env bash
# Every figure of docs/evidence.md from one run on this machine: the fault, fuzzing, bad-input and
# secrets suites in their full form (FULL_CHAOS=1), then the benches. Figures land as JSON in
# the directory given (default bench/out/evidence); the suites also print them (EVIDENCE ... lines).
# Takes about an hour on 2 cores. Run it on an otherwise idle machine: the benches report ratios
# measured in the same run, but the fault tests' recovery times are wall-clock.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-bench/out/evidence}"
mkdir -p "$out"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
EVIDENCE_DIR="$out" FULL_CHAOS=1 .venv/bin/python -m pytest -q -ra tests/chaos tests/fuzz tests/bad_input tests/security
.venv/bin/python -m bench.api_load --out "$out/api_load.json"
.venv/bin/python -m bench.request_path --out "$out/request_path.json"
.venv/bin/python -m bench.dispatch --out "$out/dispatch.json"
.venv/bin/python -m bench.validation_throughput --out "$out/validation_throughput.json"
echo "figures in $out"
