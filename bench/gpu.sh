#!/usr/bin/env bash
# Benchmark (c): bench/build_vllm.py on one GPU with a real 0.5B-8B instruct model, prefix caching on vs
# off; writes a markdown table to bench-gpu.md (and JSON next to it). Needs vLLM (GPU build) and the model
# locally or reachable on the Hub:
#   MODEL=Qwen/Qwen2.5-0.5B-Instruct SAMPLES=1024 STEPS=12 MAX_TOKENS=128 bash bench/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-Qwen/Qwen2.5-0.5B-Instruct}
SAMPLES=${SAMPLES:-1024}
STEPS=${STEPS:-12}
MAX_TOKENS=${MAX_TOKENS:-128}
PY=${PYTHON:-python3}
OUT=${OUT:-bench-gpu.md}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > /tmp/molspec-gpu.txt
{
  echo "# molspec build on $(cat /tmp/molspec-gpu.txt)"
  echo "model $MODEL, $SAMPLES samples x $STEPS steps, $MAX_TOKENS tokens per step, $(date -u +%F)"
  for pc in on off; do
    echo
    echo "## prefix caching $pc"
    "$PY" bench/build_vllm.py --model "$MODEL" --samples "$SAMPLES" --steps "$STEPS" --max-tokens "$MAX_TOKENS" \
      --prefix-caching "$pc" --naive-samples 8 --json "${OUT%.md}-$pc.json" 2>/dev/null | grep -E '^\||^model|^molspec'
  done
} | tee "$OUT"
