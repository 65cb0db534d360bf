#!/usr/bin/env bash
# GPU check of issue 19 (item 8), at most 8 minutes on a lent accelerator: a Qwen3-0.6B-shaped
# model with random bf16 weights (no hub needed), adaptation wall time at the paper's defaults,
# batched multi-adapter serving tokens/s at 1/16/64 sessions, peak GPU memory; JSON to
# $OUT/gpu.json (or benchmarks/results/gpu.json). Pass --dry-run to check it on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-benchmarks/results}"
python="${PYTHON:-$(command -v python3 || command -v python)}"
[ -x .venv/bin/python ] && python=.venv/bin/python
mkdir -p "$out"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
exec timeout --kill-after=10 470 "$python" benchmarks/gpu_bench.py --out "$out/gpu.json" "$@"
