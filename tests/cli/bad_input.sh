#!/usr/bin/env bash
# Bad input to `lowbit train`: each case must exit non-zero (1) with a message that names the
# file, line and key (or the two shapes), and must not crash.
# Usage: bad_input.sh path/to/lowbit   (run from the repository root)
set -u
LOWBIT=${1:?usage: bad_input.sh path/to/lowbit}
source "$(dirname "$0")/common.bash"

cfg() { printf '%s\n' "$@" > "$T/c.yaml"; }
base=(
  "model:" "  path: $PWD/models/lenet5.yaml"
  "data:" "  path: $PWD/tests/cli/none"
  "train:" "  epochs: 1" "  batch_size: 64"
)

# 1. Missing data set folder.
cfg "${base[@]}"
expect missing_dataset 1 "cannot open" "tests/cli/none" "dataset-fashion-mnist|data.path" -- train "$T/c.yaml" -q
# Typo hints: a key of another section is named; an abbreviation ranks first.
expect hint_other_section 1 "config key 'train.train_limit' does not exist: did you mean data.train_limit\?" -- \
  train configs/lenet5_fmnist_fp32.yaml train.train_limit=5 -q
expect hint_abbreviation 1 "closest under 'optimizer': lr," -- train configs/lenet5_fmnist_fp32.yaml optimizer.learning_rate=0.1 -q
printf 'model: {path: models/lenet5.yaml}\ntrain: {test_limit: 3}\n' > "$T/tl.yaml"
expect hint_file_key 1 "tl.yaml:2:9: unknown config key 'train.test_limit': did you mean data.test_limit\?" -- train "$T/tl.yaml" -q
# User errors carry no C++ source locations unless asked for (--debug or LOWBIT_DEBUG=1).
expect_extra() { [ "$1" != no_source_location ] || ! grep -qE "\.(cpp|h):[0-9]+:" "$T/all" || { echo "FAIL a source location is shown"; return 1; }; }
expect no_source_location 1 "override 'train.train_limit=5'" -- train configs/lenet5_fmnist_fp32.yaml train.train_limit=5 -q
unset -f expect_extra
expect source_location_with_debug 1 "framework/config/run_config\.cpp:[0-9]+: override" -- \
  train configs/lenet5_fmnist_fp32.yaml train.train_limit=5 -q --debug
# Each dataset has its own default folder, and the message says where its files come from.
expect cifar_default_path 1 "data/cifar-10-batches-bin/data_batch_1.bin" "Debian does not package" "set data.path" -- \
  train configs/lenet5_fmnist_fp32.yaml data.dataset=cifar10 --out "$T/cifar" -q

# 2. Wrong-magic and truncated IDX files.
mkdir -p "$T/bad"
printf 'not an idx file at all' | gzip > "$T/bad/train-images-idx3-ubyte.gz"
cp "$T/bad/train-images-idx3-ubyte.gz" "$T/bad/train-labels-idx1-ubyte.gz"
cfg "model:" "  path: $PWD/models/lenet5.yaml" "data:" "  path: $T/bad"
expect wrong_magic_idx 1 "train-images-idx3-ubyte.gz" "magic" -- train "$T/c.yaml" -q
source "$(dirname "$0")/needs.bash"
if have_fmnist_for truncated_idx; then
  mkdir -p "$T/trunc"
  zcat /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz | head -c 100000 | gzip > "$T/trunc/train-images-idx3-ubyte.gz"
  cp /usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz "$T/trunc/"
  cfg "model:" "  path: $PWD/models/lenet5.yaml" "data:" "  path: $T/trunc"
  expect truncated_idx 1 "train-images-idx3-ubyte.gz" "truncated|expected" -- train "$T/c.yaml" -q
fi

# 3. Malformed YAML.
printf 'model:\n  path: [unclosed\ntrain: {epochs: 1\n' > "$T/c.yaml"
expect malformed_yaml 1 "c.yaml:[0-9]+:[0-9]+" "YAML syntax error" -- train "$T/c.yaml"

# 4. Unknown layer type.
printf 'name: m\ninput: [1, 28, 28]\nlayers:\n  - {type: flatten}\n  - {type: lineer, out_features: 10}\n' > "$T/m.yaml"
cfg "model:" "  path: $T/m.yaml"
expect unknown_layer 1 "m.yaml:5:" "unknown layer type 'lineer'" "linear" -- train "$T/c.yaml"

# 5. Mismatched channels between layers (explicit in_channels that disagrees).
printf 'name: m\ninput: [1, 28, 28]\nlayers:\n  - {type: conv2d, out_channels: 6, kernel_size: 5}\n  - {type: conv2d, in_channels: 8, out_channels: 16, kernel_size: 5}\n' > "$T/m.yaml"
expect channel_mismatch 1 "m.yaml:5:" "in_channels" "\[1, 6, 24, 24\]" -- train "$T/c.yaml"
printf 'name: m\ninput: [1, 28, 28]\nlayers:\n  - {name: a, type: conv2d, out_channels: 6, kernel_size: 3, padding: 1}\n  - {name: b, type: conv2d, out_channels: 8, kernel_size: 3, padding: 1}\n  - {type: add, from: [a, b]}\n' > "$T/m.yaml"
expect add_shape_mismatch 1 "m.yaml:6:" "\[1, 6, 28, 28\]" "\[1, 8, 28, 28\]" -- train "$T/c.yaml"
printf 'name: m\ninput: [1, 28, 28]\nlayers:\n  - {type: conv2d, out_channels: 6, kernel_size: 5}\n  - {type: linear, out_features: 10}\n' > "$T/m.yaml"
expect linear_needs_flatten 1 "m.yaml:5:" "flatten" -- train "$T/c.yaml"

# 6. Unknown config key.
cfg "model:" "  path: $PWD/models/lenet5.yaml" "train:" "  epocs: 3"
expect unknown_key 1 "c.yaml:4:3" "train.epocs" "epochs" -- train "$T/c.yaml"

# 7. Override of a key that does not exist.
cfg "model:" "  path: $PWD/models/lenet5.yaml"
expect bad_override 1 "train.epoks=3" "does not exist" "epochs" -- train "$T/c.yaml" train.epoks=3
expect bad_model_param 1 "model.params.widht" "widht" "input_size|in_channels" -- train "$T/c.yaml" model.params.widht=2

# 8. Negative batch size (in the file and as an override).
cfg "model:" "  path: $PWD/models/lenet5.yaml" "train:" "  batch_size: -4"
expect negative_batch 1 "c.yaml:4:" "train.batch_size" "positive" -- train "$T/c.yaml"
cfg "model:" "  path: $PWD/models/lenet5.yaml"
expect negative_batch_override 1 "train.batch_size=-4" "positive" -- train "$T/c.yaml" train.batch_size=-4

# 9. Wrong value types and enum values.
cfg "model:" "  path: $PWD/models/lenet5.yaml" "optimizer:" "  name: adagrad"
expect unknown_optimizer 1 "c.yaml:4:" "adagrad" "sgd \| adam \| adamw" -- train "$T/c.yaml"
cfg "model:" "  path: $PWD/models/lenet5.yaml" "optimizer:" "  lr: fast"
expect non_number 1 "c.yaml:4:" "optimizer.lr" "expected a number" -- train "$T/c.yaml"

# 10. Missing config file and usage errors.
expect missing_config 1 "no-such.yaml" -- train "$T/no-such.yaml"
expect no_config_arg 2 "missing CONFIG" -- train
expect unknown_flag 2 "unrecognised|unrecognized" -- train "$T/c.yaml" --frobnicate

finish
