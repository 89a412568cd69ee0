#!/usr/bin/env bash
# `lowbit plan`: a good run (table, totals, plan file) and bad input. Bad input must exit 1 (user
# error or limits that cannot be met) or 2 (usage) with a message naming the problem, never crash.
# Usage: plan_cli.sh path/to/lowbit   (run from the repository root)
set -u
LOWBIT=${1:?usage: plan_cli.sh path/to/lowbit}
source "$(dirname "$0")/common.bash"

# out_has NAME FILE PATTERN...: every PATTERN (grep -E) occurs in FILE.
out_has() {
  local name=$1 file=$2; shift 2
  local ok=1
  for p in "$@"; do grep -qE -- "$p" "$file" || { echo "FAIL $name: $(basename "$file") lacks /$p/"; ok=0; }; done
  report "$name" $ok
}

MB=models/mobilenet_v1.yaml

# 1. The paper's setting: MobileNetV1 0.75/224, 2,048,000 B flash, 512,000 B RAM, paper accounting.
expect paper_setting 0 -- plan $MB --param width=0.75 --flash 2048000 --ram 512000 --accounting paper -o "$T/plan.yaml"
cp "$T/out" "$T/table"
out_has paper_table "$T/table" \
  "method MixPL" "paper accounting" \
  "^ +2 +conv_pw_1 +conv2d +1,152 +8 +4 +4 " \
  "^ +26 +conv_pw_13 +conv2d +589,824 +4 +8 +8 " \
  "^ +27 +fc +linear +768,000 +4 +8 +8 " \
  "total +2,568,144 +1,931,272 +451,584" \
  "flash 1,931,272 B \(1.84 MiB\) of 2,048,000 B \(1.95 MiB\)" \
  "RAM +451,584 B \(441.00 KiB\) of 512,000 B" \
  "cuts: 3 activation, 2 weight" "planned in [0-9.]+ ms"
out_has plan_file "$T/plan.yaml" "^lowbit_plan: 1$" "^method: MixPL$" "^weight_scaling: per_layer$" \
  "^accounting: paper$" "width: 0.75" "^  conv_pw_1: +\{kind: conv2d, weights: 1152, weight_bits: 8, in_bits: 4, out_bits: 4," \
  "^  fc: +\{kind: linear, weights: 768000, weight_bits: 4, in_bits: 8, out_bits: 8,"

# 2. MixPC with sizes in units, and a run config as input (its model.params are used).
expect per_channel_units 0 -- plan $MB --param width=0.75 --flash 2MB --ram 500KiB --per-channel
out_has per_channel_table "$T/out" "method MixPC" "exact accounting" "limits: flash 2,000,000 B \(1.91 MiB\), RAM 512,000 B"
expect run_config 0 -- plan configs/mobilenet_v1_fmnist_fp32.yaml --flash 256KiB --ram 64KiB -v
out_has run_config_table "$T/out" "width=0.5" "input 1x28x28" "weights .* cut weights 8 -> 4 bits"

# 3. Limits that cannot be met: the layer, the shortfall and the smallest limits, at once.
start=$(date +%s%N)
expect infeasible_ram 1 "RAM limit 100,000 B" "conv_pw_1" "201,056 B over the limit" "--ram 301056" "--flash [0-9]+" \
  -- plan $MB --flash 2MB --ram 100000
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "     (infeasible RAM run took $ms ms including the model build)"
expect infeasible_flash 1 "flash limit 600,000 B" "every layer's weights at 2 bits" "B over the limit" "--flash [0-9]+" \
  -- plan $MB --flash 600kB --ram 512kB
expect infeasible_paper 1 "conv_pw_1" "201,056 B over" -- plan $MB --flash 2MB --ram 100000 --accounting paper

# 4. Bad limits.
expect zero_ram 1 "--ram" "must be positive" -- plan $MB --flash 2MB --ram 0
expect negative_ram 1 "--ram" "must be positive" -- plan $MB --flash 2MB --ram -5
expect negative_flash 1 "--flash" "must be positive" -- plan $MB --flash=-1MB --ram 512kB
expect bad_unit 1 "--flash" "unknown unit 'M'" "MiB" -- plan $MB --flash 2M --ram 512kB
expect not_a_size 1 "--ram" "not a size" -- plan $MB --flash 2MB --ram lots
expect fraction_of_byte 1 "whole number of bytes" -- plan $MB --flash 2MB --ram 0.5B
expect missing_flash 2 "missing --flash" -- plan $MB --ram 512kB
expect missing_ram 2 "missing --ram" -- plan $MB --flash 2MB
expect bad_accounting 1 "--accounting" "paper \| exact" -- plan $MB --flash 2MB --ram 512kB --accounting rough

# 5. Models the planner cannot use.
printf 'name: nolayers\ninput: [1, 8, 8]\nlayers:\n  - {type: relu}\n  - {type: max_pool2d}\n  - {type: flatten}\n' > "$T/m.yaml"
expect no_conv_linear 1 "nolayers" "no conv2d or linear layers" -- plan "$T/m.yaml" --flash 1MB --ram 1MB
printf 'name: m\nparams: {width: 1}\ninput: [1, size, size]\nlayers:\n  - {type: flatten}\n  - {type: linear, out_features: 10}\n' > "$T/m.yaml"
expect unknown_input_size 1 "m.yaml:3:" "input" "size" -- plan "$T/m.yaml" --flash 1MB --ram 1MB
printf 'name: m\nlayers:\n  - {type: flatten}\n  - {type: linear, out_features: 10}\n' > "$T/m.yaml"
expect missing_input 1 "m.yaml" "input must be \[C, H, W\]" -- plan "$T/m.yaml" --flash 1MB --ram 1MB
printf 'just: a map\n' > "$T/x.yaml"
expect neither_model_nor_config 1 "x.yaml" "neither a model file" -- plan "$T/x.yaml" --flash 1MB --ram 1MB
expect missing_file 1 "no-such.yaml" -- plan "$T/no-such.yaml" --flash 1MB --ram 1MB

# 6. Parameters and usage.
expect unknown_param 1 "widht" "does not exist" "width" -- plan $MB --param widht=0.5 --flash 2MB --ram 512kB
expect param_not_number 1 "--param width" "not a number" -- plan $MB --param width=wide --flash 2MB --ram 512kB
expect param_no_equals 1 "NAME=VALUE" -- plan $MB --param width --flash 2MB --ram 512kB
expect no_model_arg 2 "missing MODEL_OR_RUN_CONFIG" -- plan --flash 2MB --ram 512kB
expect extra_arg 2 "unexpected argument 'width=0.5'" -- plan $MB width=0.5 --flash 2MB --ram 512kB
expect unknown_flag 2 "unrecognised|unrecognized" -- plan $MB --flash 2MB --ram 512kB --frobnicate
expect unwritable_plan 1 "cannot write the plan file" -- plan $MB --flash 4MB --ram 2MB -o "$T/no/such/dir/plan.yaml"
"$LOWBIT" plan --help >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && grep -q -- "--per-channel" "$T/out" && grep -q -- "--accounting" "$T/out"; report help $(( $? == 0 ))

finish
