#!/usr/bin/env bash
# QAT features from the command line: `lowbit quantize` (resolved quantized model),
# `lowbit calibrate` (post-training calibration), the NaN/Inf guard of `lowbit train`, and
# recipe errors (exit 1 with a message naming the layer / key; usage errors exit 2).
# Usage: quant_features.sh path/to/lowbit   (run from the repository root)
set -u
LOWBIT=${1:?usage: quant_features.sh path/to/lowbit}
EXPECT_IN=all
source "$(dirname "$0")/common.bash"

# 1. lowbit quantize: the resolved W4A4 LeNet-5.
expect quantize_w4a4 0 "wrote $T/q.yaml" "249840 weight bits" -- \
  quantize models/lenet5.yaml configs/lenet5_fmnist_w4a4.yaml -o "$T/q.yaml"
for pat in "^weight_bits: 249840" "name: conv2" "type: quant_conv2d" "preset: Int8WeightPerChannelFloat" \
           "int_range: \[-7, 7\]" "int_range: \[-127, 127\]" "int_range: \[0, 15\]" "preset: Uint8ActPerTensorFloat" \
           "percentile: 99.999" "preset: Int32Bias" "output_shape: \[16, 10, 10\]" "float: \{type: linear, out_features: 120\}"; do
  if grep -qE -- "$pat" "$T/q.yaml"; then passes=$((passes + 1)); else echo "FAIL quantize_w4a4: q.yaml lacks /$pat/"; fails=$((fails + 1)); fi
done
# A bare recipe file (the quant: map itself) with Int32Bias, shared adds and BN folding, to stdout.
cat > "$T/r.yaml" <<'YAML'
weights: Int8WeightPerChannelFloat
activations: Uint8ActPerTensorFloat
input: Int8ActPerTensorFloat
bias: Int32Bias
bits: 4
add: shared
bn_fold: {delay_epochs: 2}
YAML
expect quantize_resnet8_stdout 0 "type: quant_eltwise_add" "shared_input_quant:" "external_scale: true" \
  "bn_fold: \{batch_norm: stage1_bn1, delay_epochs: 2\}" "^weight_bits: " -- quantize models/resnet8.yaml "$T/r.yaml"
expect quantize_usage 2 "give MODEL.yaml and RECIPE.yaml" -- quantize models/lenet5.yaml
printf 'weights: {preset: Int8WeightPerChanelFloat}\n' > "$T/bad.yaml"
expect quantize_unknown_preset 1 "bad.yaml:1:" "unknown quantizer preset 'Int8WeightPerChanelFloat'" \
  "Int8WeightPerChannelFloat" -- quantize models/lenet5.yaml "$T/bad.yaml"
printf 'weights: Int8WeightPerTensorFloat\nlayers:\n  conv9: {weights: {bits: 3}}\n' > "$T/bad.yaml"
expect quantize_override_no_layer 1 "quant.layers.conv9 names no layer" "conv1, relu1" -- \
  quantize models/lenet5.yaml "$T/bad.yaml"
printf 'weights: Int8WeightPerTensorFloat\nactivations: Uint8ActPerTensorFloat\nadd: require_equal\n' > "$T/bad.yaml"
expect add_cannot_share 1 "quant.add: require_equal" "add 'stage1_add' cannot share a scale" "stage1_bn2" -- \
  quantize models/resnet8.yaml "$T/bad.yaml"
printf 'weights: Int8WeightPerTensorFloat\nbias: Int16Bias\n' > "$T/bad.yaml"
expect external_bias_needs_input_scale 1 "layer 'conv1'" "Int16Bias" "no quantizer upstream" -- \
  quantize models/lenet5.yaml "$T/bad.yaml"
printf 'weights: Int8WeightPerTensorFloat\nbit_cost: 0.1\n' > "$T/bad.yaml"
expect bit_cost_without_learned_bits 1 "quant.bit_cost" "learned_bits: true" -- quantize models/lenet5.yaml "$T/bad.yaml"
printf 'weights: {preset: SignedBinaryWeightPerTensorConst, learned_bits: true}\n' > "$T/bad.yaml"
expect learned_bits_binary 1 "learned bit width needs an integer quantizer" -- quantize models/lenet5.yaml "$T/bad.yaml"

# 2. Training and calibration on Fashion-MNIST (skipped without the data set).
source "$(dirname "$0")/needs.bash"
if have_fmnist_for "training and calibration cases"; then
  small=(data.train_limit=512 data.test_limit=200 train.epochs=1 train.batch_size=64)
  # NaN/Inf guard: an absurd learning rate stops the run at once, naming step, layer and quantizer.
  expect nan_guard 1 "training diverged at epoch 1, step [0-9]+" "layer [a-z0-9_]+" "quantizer [a-z0-9_]+\.(weight|act|bias)_quant" -- \
    train configs/lenet5_fmnist_w4a4.yaml -q -o "$T/nan" "${small[@]}" optimizer.lr=1e38 optimizer.momentum=0
  # Learned bit widths: the run ends with its weight-bit count.
  expect learned_bits_train 0 "test_acc=" -- \
    train configs/lenet5_fmnist_learned_bits.yaml -q -o "$T/lb" "${small[@]}"
  if grep -qE "^weight_bits=[0-9]+" "$T/lb/weight_bits.txt" 2>/dev/null; then passes=$((passes + 1)); else
    echo "FAIL learned_bits_train: no weight_bits.txt"; fails=$((fails + 1)); fi
  # Post-training calibration from a float checkpoint; the calibrated checkpoint evaluates the same.
  "$LOWBIT" train configs/lenet5_fmnist_fp32.yaml -q -o "$T/fp32" "${small[@]}" >/dev/null 2>&1
  expect calibrate 0 "batches=4" "calibrated=5" "test_acc=0\.[0-9]+" -- \
    calibrate configs/lenet5_fmnist_w8a8.yaml --batches 4 --weights "$T/fp32" -o "$T/cal.h5" data.test_limit=200
  acc=$(grep test_acc= "$T/out" | tail -1)
  "$LOWBIT" eval --weights "$T/cal.h5" data.test_limit=200 > "$T/eval" 2>&1
  if [ "$(grep test_acc= "$T/eval" | tail -1)" = "$acc" ]; then passes=$((passes + 1)); echo "ok   calibrated_checkpoint_evaluates_the_same"; else
    echo "FAIL calibrated checkpoint: $(tail -1 "$T/eval") vs $acc"; fails=$((fails + 1)); fi
  # A checkpoint that was never evaluated in training says so.
  expect inspect_no_evaluation 0 "best test_acc none," -- inspect "$T/cal.h5"
  expect calibrate_needs_batches 2 "give --batches N" -- calibrate configs/lenet5_fmnist_w8a8.yaml
  expect calibrate_float_config 1 "no quant: recipe" -- calibrate configs/lenet5_fmnist_fp32.yaml --batches 2
fi

finish
