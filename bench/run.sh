#!/usr/bin/env bash
# Float training throughput, lowbit vs PyTorch (Debian's, same oneDNN) on the same model,
# batch, steps and thread count, measured in one run. Prints one line per model:
#   model=NAME mode=float lowbit=IMG_S torch=IMG_S ratio=R rss_lowbit_mb=M rss_torch_mb=M
# Usage: bench/run.sh [BUILD_DIR] (env: THREADS=2 BATCH=128 STEPS=50 MODELS="lenet5 resnet8 mobilenet_v1"
#        MODES="float qat": qat trains lowbit with bench/recipes/w4a4.yaml and PyTorch with eager-mode QAT
#        (prepare_qat, fbgemm qconfig); the qat line also prints lowbit's QAT overhead over its float run)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
THREADS=${THREADS:-2}
BATCH=${BATCH:-128}
STEPS=${STEPS:-50}
MODELS=${MODELS:-"lenet5 resnet8 mobilenet_v1"}
MODES=${MODES:-"float qat"}
PY=/usr/bin/python3
$PY -c 'import torch' 2>/dev/null || { echo "bench: $PY cannot import torch (apt-get install python3-torch)" >&2; exit 1; }
[ -x "$BUILD/lowbit-bench" ] || { echo "bench: $BUILD/lowbit-bench missing: build first (make build)" >&2; exit 1; }
export OMP_NUM_THREADS=$THREADS
params_for() {
  case "$1" in
    lenet5) echo "in_channels=1 input_size=28" ;;
    resnet8) echo "in_channels=1 input_size=32" ;;
    mobilenet_v1) echo "width=0.5 in_channels=1 input_size=32 num_classes=10" ;;
    *) echo "" ;;
  esac
}
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }
for m in $MODELS; do
  args=(); for p in $(params_for "$m"); do args+=(--param "$p"); done
  float_l=""
  for mode in $MODES; do
    extra=(); [ "$mode" = qat ] && extra=(--recipe bench/recipes/w4a4.yaml)
    lb=$("$BUILD/lowbit-bench" --model "models/$m.yaml" --name "$m" "${args[@]}" "${extra[@]}" --batch "$BATCH" --steps "$STEPS" --threads "$THREADS")
    th=$($PY bench/torch_train.py --model "$m" "${args[@]}" --mode "$mode" --input "$(echo "$lb" | field input)" --batch "$BATCH" --steps "$STEPS" --threads "$THREADS")
    l=$(echo "$lb" | field img_s); t=$(echo "$th" | field img_s)
    rl=$(echo "$lb" | field rss_mb); rt=$(echo "$th" | field rss_mb)
    ratio=$(awk -v a="$l" -v b="$t" 'BEGIN { printf "%.2f", a / b }')
    over=""
    if [ "$mode" = float ]; then float_l=$l; elif [ -n "$float_l" ]; then
      over=" qat_overhead=$(awk -v f="$float_l" -v q="$l" 'BEGIN { printf "%.0f%%", (f / q - 1) * 100 }')"
    fi
    echo "model=$m mode=$mode lowbit=$l torch=$t ratio=$ratio rss_lowbit_mb=$rl rss_torch_mb=$rt$over"
  done
done
