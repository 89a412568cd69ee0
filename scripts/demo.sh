#!/usr/bin/env bash
# `make demo`: trains LeNet-5 in float32 on Fashion-MNIST (configs/lenet5_fmnist_fp32.yaml), then
# prints the test accuracy and what to run next on the trained model.
#   scripts/demo.sh BUILD_DIR [key=value ...]     e.g. scripts/demo.sh build train.epochs=1
set -euo pipefail
BUILD=${1:?usage: scripts/demo.sh BUILD_DIR [key=value ...]}
shift
LOWBIT="$BUILD/lowbit"
CONFIG=configs/lenet5_fmnist_fp32.yaml
RUN=runs/demo_lenet5_fp32
[ -x "$LOWBIT" ] || { echo "demo: $LOWBIT not built (run: make build)" >&2; exit 1; }

out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$LOWBIT" train "$CONFIG" --out "$RUN" "$@" | tee "$out"
acc=$(sed -n 's/^test_acc=//p' "$out" | tail -1)
[ -n "$acc" ] || { echo "demo: training printed no test_acc line" >&2; exit 1; }

cat <<MSG

Demo done: LeNet-5 (float32) reached test accuracy $acc on the 10,000 Fashion-MNIST test images.
Run folder: $RUN (config.yaml, metrics.csv, last.h5, best.h5)

Next:
  $LOWBIT eval $RUN                                   # evaluate best.h5 again
  $LOWBIT inspect $RUN/best.h5                        # what the checkpoint holds
  $LOWBIT quantize models/lenet5.yaml configs/lenet5_fmnist_w4a4.yaml   # the 4-bit model it would train
  $LOWBIT train configs/lenet5_fmnist_w4a4.yaml --init $RUN      # fine-tune it at 4 bits (QAT)
  $LOWBIT plan models/lenet5.yaml --flash 20kB --ram 2kB          # bit widths for a microcontroller
  $LOWBIT export torch-h5 --weights $RUN/best.h5 -o lenet5.h5     # weights back to PyTorch
See docs/getting-started.md.
MSG
