#!/usr/bin/env bash
# Float training throughput, lowbit vs PyTorch (Debian's, same oneDNN) on the same model,
# batch, steps and thread count, measured in one run. Prints one line per model:
#   model=NAME mode=float lowbit=IMG_S torch=IMG_S ratio=R rss_lowbit_mb=M rss_torch_mb=M
# Usage: bench/run.sh [BUILD_DIR] (env: THREADS=2 BATCH=128 STEPS=50 MODELS="lenet5 resnet8 mobilenet_v1"
#        MODES="float qat": qat trains lowbit with bench/recipes/w4a4.yaml and PyTorch with eager-mode QAT
#        (prepare_qat, fbgemm qconfig); the qat line also prints lowbit's QAT overhead over its float run;
#        REPEAT=1: with N > 1 every measurement alternates lowbit and PyTorch N times and the line gives
#        the medians (img/s) and the largest RSS, for noisy machines)
# Inference (MODES containing int8, the default; INT8_MODELS="lenet5 resnet8"): Lowbit's integer
# engine on the lowered model (bench/recipes/int8.yaml) against PyTorch's int8 engine (FX convert;
# fbgemm, or onednn in Debian's torch) at the same batch and threads, plus Lowbit's float inference:
#   model=NAME mode=int8 lowbit=IMG_S torch=IMG_S ratio=R lowbit_float=IMG_S int_vs_float=R
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
THREADS=${THREADS:-2}
BATCH=${BATCH:-128}
STEPS=${STEPS:-50}
MODELS=${MODELS:-"lenet5 resnet8 mobilenet_v1"}
MODES=${MODES:-"float qat int8"}
INT8_MODELS=${INT8_MODELS:-"lenet5 resnet8"}
REPEAT=${REPEAT:-1}
[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || { echo "bench: REPEAT must be a positive integer, got '$REPEAT'" >&2; exit 1; }
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
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
for m in $MODELS; do
  args=(); for p in $(params_for "$m"); do args+=(--param "$p"); done
  float_l=""
  for mode in $MODES; do
    if [ "$mode" = int8 ]; then
      case " $INT8_MODELS " in *" $m "*) ;; *) continue ;; esac
      [ -x "$BUILD/lowbit-bench-infer" ] || { echo "bench: $BUILD/lowbit-bench-infer missing: build first" >&2; exit 1; }
      ls=(); ts=(); fs=()
      for ((r = 0; r < REPEAT; ++r)); do
        lb=$("$BUILD/lowbit-bench-infer" --model "models/$m.yaml" --name "$m" "${args[@]}" --recipe bench/recipes/int8.yaml \
             --batch "$BATCH" --threads "$THREADS")
        th=$($PY bench/torch_infer.py --model "$m" "${args[@]}" --input "$(echo "$lb" | field input)" --batch "$BATCH" --threads "$THREADS")
        ls+=("$(echo "$lb" | field int_img_s)"); fs+=("$(echo "$lb" | field float_img_s)"); ts+=("$(echo "$th" | field img_s)")
      done
      l=$(median "${ls[@]}"); t=$(median "${ts[@]}"); f=$(median "${fs[@]}")
      rep=""; [ "$REPEAT" -gt 1 ] && rep=" repeats=$REPEAT"
      echo "model=$m mode=int8 lowbit=$l torch=$t ratio=$(awk -v a="$l" -v b="$t" 'BEGIN { printf "%.2f", a / b }') lowbit_float=$f int_vs_float=$(awk -v a="$l" -v b="$f" 'BEGIN { printf "%.2f", a / b }')$rep"
      continue
    fi
    extra=(); [ "$mode" = qat ] && extra=(--recipe bench/recipes/w4a4.yaml)
    ls=(); ts=(); rl=0; rt=0
    for ((r = 0; r < REPEAT; ++r)); do
      lb=$("$BUILD/lowbit-bench" --model "models/$m.yaml" --name "$m" "${args[@]}" "${extra[@]}" --batch "$BATCH" --steps "$STEPS" --threads "$THREADS")
      th=$($PY bench/torch_train.py --model "$m" "${args[@]}" --mode "$mode" --input "$(echo "$lb" | field input)" --batch "$BATCH" --steps "$STEPS" --threads "$THREADS")
      ls+=("$(echo "$lb" | field img_s)"); ts+=("$(echo "$th" | field img_s)")
      rl=$(awk -v a="$rl" -v b="$(echo "$lb" | field rss_mb)" 'BEGIN { print (b > a ? b : a) }')
      rt=$(awk -v a="$rt" -v b="$(echo "$th" | field rss_mb)" 'BEGIN { print (b > a ? b : a) }')
    done
    l=$(median "${ls[@]}"); t=$(median "${ts[@]}")
    ratio=$(awk -v a="$l" -v b="$t" 'BEGIN { printf "%.2f", a / b }')
    over=""
    if [ "$mode" = float ]; then float_l=$l; elif [ -n "$float_l" ]; then
      over=" qat_overhead=$(awk -v f="$float_l" -v q="$l" 'BEGIN { printf "%.0f%%", (f / q - 1) * 100 }')"
    fi
    rep=""; [ "$REPEAT" -gt 1 ] && rep=" repeats=$REPEAT"
    echo "model=$m mode=$mode lowbit=$l torch=$t ratio=$ratio rss_lowbit_mb=$rl rss_torch_mb=$rt$over$rep"
  done
done
