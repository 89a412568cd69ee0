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
# --force: a demo run from before moves to $RUN.old-<time> (nothing is deleted).
"$LOWBIT" train "$CONFIG" --out "$RUN" --force "$@" | tee "$out"
acc=$(sed -n 's/^test_acc=//p' "$out" | tail -1)
[ -n "$acc" ] || { echo "demo: training printed no test_acc line" >&2; exit 1; }

echo
echo "Demo done: LeNet-5 (float32) reached test accuracy $acc on the 10,000 Fashion-MNIST test images."
echo "Run folder: $RUN (config.yaml, metrics.csv, last.h5, best.h5)"
echo
echo "Next, on this model:"
next() { printf '  %-104s # %s\n' "$1" "$2"; }
next "$LOWBIT eval $RUN" "evaluate best.h5 again"
next "$LOWBIT inspect $RUN/best.h5" "what the checkpoint holds"
next "$LOWBIT calibrate configs/lenet5_fmnist_w8a8.yaml --weights $RUN --batches 20 -o w8a8.h5" "8-bit post-training quantization"
next "$LOWBIT eval --weights w8a8.h5" "its accuracy at 8 bits"
next "$LOWBIT verify w8a8.h5" "its integer-only network, run next to it on every test image"
next "$LOWBIT inspect w8a8.h5 --integer" "integer weights, M0/shift, bytes of flash and RAM"
next "$LOWBIT export torch-h5 --weights $RUN/best.h5 -o lenet5_torch.h5" "weights for PyTorch (tools/h5_to_torch.py)"
next "$LOWBIT import configs/lenet5_fmnist_w4a4_finetune.yaml --from lenet5_torch.h5 -o w4a4_init.h5" "start a 4-bit model from them"
next "$LOWBIT train configs/lenet5_fmnist_w4a4_finetune.yaml --init w4a4_init.h5" "fine-tune at 4 bits (QAT)"
next "$LOWBIT plan models/lenet5.yaml --flash 20kB --ram 2kB" "bit widths that fit a microcontroller"
echo "See docs/getting-started.md."
