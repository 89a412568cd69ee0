#!/usr/bin/env bash
# `lowbit verify` and `lowbit inspect --integer` on small trained runs: the summary line scripts
# read, per-layer table, first divergence, rounding modes, --dump, --min-agreement's exit status,
# and bad input (a float run, a missing folder, an unknown rounding, a layer without an integer
# form) with a clear message and exit 1 (2 for usage errors).
# Usage: verify.sh path/to/lowbit   (run from the repository root)
set -u
LOWBIT=${1:?usage: verify.sh path/to/lowbit}
source "$(dirname "$0")/common.bash"
source "$(dirname "$0")/needs.bash"
need_fmnist
EXPECT_IN=all
SMALL=(data.train_limit=2048 data.test_limit=500 train.epochs=1 train.batch_size=64 -q)
RUN="$T/w4a4"

expect train_w4a4 0 "test_acc=" -- train configs/lenet5_fmnist_w4a4.yaml --out "$RUN" "${SMALL[@]}" deploy.target=integer

# Single rounding reproduces the trained model's integers (Int32Bias: every bias on the grid), but
# for near-ties of the fake-quant model's float32 arithmetic (a few integers in a million).
expect verify_single_exact 0 \
  "^agreement=1\.0000 fake_quant_acc=0\.[0-9]{4} integer_acc=0\.[0-9]{4} images=500 rounding=single$" \
  "^input_quant +quantize +8-bit s +392000 +1\.000000 +0$" "^relu1 +requantize +4-bit u" "^fc3 +matmul" -- \
  verify "$RUN" --rounding single
ok=1
awk '$2 == "requantize" && ($5 < 0.9999 || $6 > 1) { bad = 1; print "FAIL " $0 } END { exit bad }' "$T/out" || ok=0
report verify_single_requantize_rows $ok
expect verify_tflm 0 "rounding=tflm$" "^weights=$RUN/best.h5$" -- verify "$RUN" --rounding tflm --min-agreement 0
expect verify_default_single 0 "rounding=single$" -- verify "$RUN"
expect verify_images 0 "images=100 rounding=floor$" -- verify "$RUN" --images 100 --rounding floor --min-agreement 0

# The first divergence names a layer, an image, a position and both integers (TFLM's double rounding).
expect verify_first_divergence 0 "first divergence: layer [a-z0-9_]+ \(requantize\), image [0-9]+, element \([0-9, ]+\): integer -?[0-9]+, fake-quant -?[0-9]+" -- \
  verify "$RUN" --rounding tflm --min-agreement 0

# --min-agreement above what was reached: exit 1 with the numbers.
expect_extra() { [ "$1" != verify_min_agreement ] || grep -qE "^agreement=" "$T/out" || { echo "FAIL summary line missing"; return 1; }; }
expect verify_min_agreement 1 "top-1 agreement 0\.[0-9]{4} is below --min-agreement 1\.0000" -- \
  verify "$RUN" --min-agreement 1 --rounding floor
unset -f expect_extra

# --dump: integer logits (and fake-quant logits, labels, scales) and per-layer integers in HDF5.
expect verify_dump 0 "dump=$T/dump" -- verify "$RUN" --rounding single --images 50 --dump "$T/dump"
ok=1
for f in integer_logits.h5 layers.h5; do [ -s "$T/dump/$f" ] || { echo "FAIL no $f"; ok=0; }; done
if [ "$ok" = 1 ] && "$LOWBIT_PY" -c "import h5py" 2>/dev/null; then
  "$LOWBIT_PY" - "$T/dump" <<'EOF' || ok=0
import sys, h5py, numpy as np
d = sys.argv[1]
with h5py.File(d + "/integer_logits.h5") as f:
    logits, fq, scale, labels = f["logits"][()], f["fake_quant_logits"][()], f["scale"][()], f["labels"][()]
    assert logits.shape == (50, 10) and logits.dtype == np.int32, logits.shape
    assert f.attrs["rounding"] == "single"
    # Single rounding, Int32Bias: the integer logits times their scale are the fake-quant logits
    # (but for images that inherit a float32 near-tie upstream: a few in a thousand at most).
    close = np.all(np.abs(logits * scale - fq) <= 1e-4 * np.maximum(1, np.abs(fq)), axis=1)
    assert close.mean() >= 0.96, close.mean()
    assert np.mean(np.argmax(logits * scale.astype(np.float64), 1) == np.argmax(fq, 1)) >= 0.98
with h5py.File(d + "/layers.h5") as f:
    names = list(f["values"].keys())
    assert any(n.endswith("_relu1") for n in names), names
    relu1 = f["values"][[n for n in names if n.endswith("_relu1")][0]][()]
    assert relu1.shape == (16, 6, 28, 28) and relu1.min() >= 0 and relu1.max() <= 15, (relu1.shape, relu1.max())
EOF
fi
report verify_dump_contents $ok

expect inspect_integer 0 "integer network of lenet5" "^conv1 +conv2d +6x28x28 +[0-9]+s s=" \
  "^relu1 +requantize .*-?[0-9]+ / -?[0-9]+ \(per ch\)" "^output: fc3 int32 logits 10" "parameter_bytes=[0-9]+ activation_bytes=[0-9]+" -- \
  inspect "$RUN" --integer

# Bad input.
FLOAT="$T/fp32"
expect train_fp32 0 "test_acc=" -- train configs/lenet5_fmnist_fp32.yaml --out "$FLOAT" "${SMALL[@]}"
expect verify_float_run 1 "is a float run \(its config has no quant: recipe\)" "lowbit train configs/lenet5_fmnist_w4a4.yaml" -- \
  verify "$FLOAT"
expect verify_missing 1 "no run folder or checkpoint at $T/nothing" -- verify "$T/nothing"
expect verify_no_arg 2 "missing RUN_DIR" -- verify
expect verify_bad_rounding 1 "unknown rounding 'nearest': use tflm" -- verify "$RUN" --rounding nearest
expect verify_bad_override 2 "unexpected argument 'extra'" -- verify "$RUN" extra

# A layer without an integer form: sigmoid on an accumulator (the recipe quantizes its output).
mkdir -p "$T/models"
cp tests/cli/models/sig.yaml "$T/models/sig.yaml"
SIG="$T/sig"
expect train_sigmoid 0 "test_acc=" -- train configs/lenet5_fmnist_w4a4.yaml model.path="$T/models/sig.yaml" --out "$SIG" "${SMALL[@]}"
expect verify_sigmoid_refused 1 "cannot lower sig to integers: layer s \(quant_sigmoid\): a sigmoid of an accumulator has no integer form\. Fix: " -- \
  verify "$SIG"
expect inspect_sigmoid_refused 1 "layer s \(quant_sigmoid\)" -- inspect "$SIG" --integer

# Before training: deploy.target=integer refuses the recipe at once (no run folder); `lowbit
# quantize` says whether a recipe deploys.
expect deploy_target_refused 1 "deploy.target is integer, but the recipe does not lower: cannot lower sig to integers: layer s \(quant_sigmoid\)" -- \
  train configs/lenet5_fmnist_w4a4.yaml model.path="$T/models/sig.yaml" deploy.target=integer --out "$T/sig2" "${SMALL[@]}"
ok=1; [ -e "$T/sig2" ] && { echo "FAIL the refused run made its folder"; ok=0; }
report deploy_target_writes_nothing $ok
expect deploy_target_unknown 1 "deploy.target" "none" "integer" -- \
  train configs/lenet5_fmnist_w4a4.yaml deploy.target=cortex-m7 --out "$T/x" "${SMALL[@]}"
expect quantize_deployable 0 "^integer-deployable: yes" -- quantize models/lenet5.yaml configs/lenet5_fmnist_w4a4.yaml -o "$T/q.yaml"
expect quantize_not_deployable 0 "^# integer-deployable: no: cannot lower sig to integers: layer s \(quant_sigmoid\): a sigmoid of an accumulator" -- \
  quantize "$T/models/sig.yaml" configs/lenet5_fmnist_w4a4.yaml

finish
