#!/usr/bin/env bash
# Scale-out benchmark on one multi-GPU machine: a vLLM build locally (1 GPU), then through Ray with
# 1, 2, 4, ... replicas (G GPUs each), same spec and samples; prints a markdown table for BENCHMARKS.md.
#
#   pip install 'molspec[vllm,ray]'
#   bash bench/gpu_ray.sh
#   SAMPLES=4000 STEPS=16 MODEL=Qwen/Qwen2.5-1.5B-Instruct TP=1 MAX_TOKENS=128 bash bench/gpu_ray.sh
#
# MODEL: a Hub id or a local folder (default: the built-in SmolLM2-135M-Instruct, no Hub access needed).
# TP: tensor_parallel_size (GPUs per replica). REPLICAS: the replica counts to try (default 1 2 4 ... N/TP).
set -euo pipefail

SAMPLES=${SAMPLES:-2000}
STEPS=${STEPS:-12}
MODEL=${MODEL:-builtin:smollm2-135m-instruct}
TP=${TP:-1}
MAX_TOKENS=${MAX_TOKENS:-96}
MOLSPEC=${MOLSPEC:-molspec}
NGPU=$(nvidia-smi -L | wc -l)
MAXREP=$((NGPU / TP))
if [ -z "${REPLICAS:-}" ]; then
  REPLICAS=""; r=1
  while [ $r -le $MAXREP ]; do REPLICAS="$REPLICAS $r"; r=$((r * 2)); done
  case " $REPLICAS " in *" $MAXREP "*) ;; *) REPLICAS="$REPLICAS $MAXREP" ;; esac
fi

WORK=$(mktemp -d)
ray_up=0
cleanup() { [ $ray_up = 1 ] && ray stop --force >/dev/null 2>&1; rm -rf "$WORK"; }
trap cleanup EXIT

python - "$WORK" "$SAMPLES" <<'EOF'
import json, sys
work, n = sys.argv[1], int(sys.argv[2])
with open(f"{work}/questions.jsonl", "w") as fh:
    for i in range(500):
        fh.write(json.dumps({"question": f"A shop sells {i + 3} pens a day for {i % 7 + 2} days. How many pens?",
                             "gold": str((i + 3) * (i % 7 + 2))}) + "\n")
EOF

PARALLEL=""
[ "$TP" -gt 1 ] && PARALLEL="tensor_parallel_size = $TP"
cat > "$WORK/bench.mol" <<EOF
molspec 1
dataset "bench/gpu-ray" { samples = $SAMPLES  seed = 1 }
source questions = jsonl("questions.jsonl")
model synth {
  engine = "vllm"  name = "$MODEL"  temperature = 0.7  max_tokens = $MAX_TOKENS
  options { max_model_len = 8192  gpu_memory_utilization = 0.85  $PARALLEL }
}
bond explore : vdw "Self-exploration" { instruct = "Explore another way to attack the problem." }
bond deep : covalent "Deep reasoning" { instruct = "Push the current line of reasoning one step deeper." }
bond reflect : hydrogen "Self-reflection" { instruct = "Check an earlier step; say whether it holds." }
bond normal : plain "Normal operation" { instruct = "Carry out the next routine step." }
graph g {
  start   -> explore 1.0
  explore -> deep 0.5 | normal 0.3 | reflect 0.2
  deep    -> deep 0.4 | reflect 0.3 | normal 0.2 | explore 0.1
  reflect -> deep 0.5 | normal 0.3 | explore 0.2
  normal  -> deep 0.6 | reflect 0.2 | explore 0.2
  steps = $STEPS..$STEPS
}
answer { instruct = "State the final answer in \\\\boxed{}."  verify = "math" }
EOF

row() {  # name, then molspec build arguments; prints "| name | wall | tokens | tokens/s |"
  local name=$1; shift
  local t0 t1 log
  log="$WORK/$name.log"
  t0=$(date +%s.%N)
  "$MOLSPEC" build "$WORK/bench.mol" --out "$WORK/out-$name" --fresh -q "$@" 2>"$log" >/dev/null \
    || { echo "| $name | failed: $(tail -n 1 "$log") | | |"; return; }
  t1=$(date +%s.%N)
  python - "$name" "$t0" "$t1" "$log" <<'EOF'
import re, sys
name, t0, t1, log = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
m = re.search(r"generated\s+([\d,]+) steps, ([\d,]+) tokens in ([\d,.]+) s", open(log).read())
tokens, build_s = int(m.group(2).replace(",", "")), float(m.group(3).replace(",", ""))
print(f"| {name} | {t1 - t0:.1f} | {build_s:.1f} | {tokens:,} | {tokens / build_s:,.0f} |")
EOF
}

echo "machine: $NGPU x $(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1), model $MODEL, TP=$TP"
echo "workload: $SAMPLES samples x $STEPS steps + answers, max_tokens $MAX_TOKENS"
echo
echo "| run | wall s (process) | build s | tokens | tokens/s |"
echo "| --- | ---: | ---: | ---: | ---: |"
CUDA_VISIBLE_DEVICES=$(seq -s, 0 $((TP - 1))) row "local, $TP GPU" --executor local

ray start --head --num-gpus "$NGPU" --disable-usage-stats >/dev/null
ray_up=1
for r in $REPLICAS; do
  row "ray, $r x $TP GPU" --executor ray --ray-address auto --replicas "$r" --gpus-per-replica "$TP"
done
