#!/usr/bin/env bash
# quant.plan: a `lowbit plan` file trained over a QAT recipe. The trained integer network has the
# planned bit widths, and its flash and RAM under the exact accounting equal the plan's, except
# the documented difference (the last layer keeps int32 logits: no multiplier, shift and zero
# points, 8 bytes per layer with per-layer scales). Bad plans are refused by name.
# Usage: plan_train.sh path/to/lowbit   (run from the repository root)
set -u
LOWBIT=${1:?usage: plan_train.sh path/to/lowbit}
source "$(dirname "$0")/common.bash"
source "$(dirname "$0")/needs.bash"
need_fmnist
EXPECT_IN=all
SMALL=(data.train_limit=2048 data.test_limit=500 train.epochs=1 train.batch_size=64 -q)

expect plan 0 "wrote $T/plan.yaml" -- plan models/lenet5.yaml --flash 20kB --ram 2kB --accounting exact -o "$T/plan.yaml"
plan_flash=$(sed -n 's/^totals: {flash: \([0-9]*\),.*/\1/p' "$T/plan.yaml")
plan_ram=$(sed -n 's/^totals: .* ram: \([0-9]*\),.*/\1/p' "$T/plan.yaml")

RUN="$T/planned"
expect train_planned 0 "test_acc=" -- train configs/lenet5_fmnist_w4a4.yaml "quant.plan=$T/plan.yaml" --out "$RUN" "${SMALL[@]}"
expect verify_planned 0 "^agreement=1\.0000 .* rounding=single$" -- verify "$RUN"
expect inspect_planned 0 "^  conv1 +w8 in8 out2 " "^  conv2 +w8 in2 out8 " "^  fc1 +w2 in8 out8 " "^  fc2 +w2 in8 out8 " \
  "^  fc3 +w8 in8 out32 .*\(int32 logits: no requantization\)" "flash_exact=[0-9]+ ram_exact=[0-9]+ ram_layer=conv1" -- \
  inspect "$RUN" --integer
ok=1
flash=$(sed -n 's/^flash_exact=\([0-9]*\) .*/\1/p' "$T/out")
ram=$(sed -n 's/^flash_exact=[0-9]* ram_exact=\([0-9]*\) .*/\1/p' "$T/out")
# The plan counts a requantization for fc3 too: 4 (multiplier) + align4(2 + 2) (shift, zero points).
[ "$flash" = "$((plan_flash - 8))" ] || { echo "FAIL flash $flash, plan $plan_flash - 8"; ok=0; }
[ "$ram" = "$plan_ram" ] || { echo "FAIL RAM $ram, plan $plan_ram"; ok=0; }
report footprint_matches_the_plan $ok

# The MCU export of the planned run: its arena is the plan's RAM, within the limit, and its
# weights + parameters are the plan's flash (less fc3's requantization, as above).
expect export_mcu_planned 0 "activations \(rw\) +$plan_ram B arena; the plan's exact accounting: $plan_ram B" \
  "network data +$((flash + 256)) B" "limit +20000 B" "limit +2000 B" -- \
  export mcu "$RUN" -o "$T/mcu" --no-measure --images 4
ok=1
[ "$plan_ram" -le 2000 ] && [ "$((flash + 256))" -le 20000 ] || { echo "FAIL over the limits"; ok=0; }
report export_mcu_within_limits $ok

# The plan is found from the run folder's stored config (its path was made absolute).
lowbit_abs=$(realpath "$LOWBIT")
( cd "$T" && "$lowbit_abs" verify "$RUN" --images 10 > "$T/all" 2>&1 ) && ok=1 || ok=0
report plan_path_absolute_in_run $ok

# Bad plans.
sed 's/^  fc1: /  fc01: /' "$T/plan.yaml" > "$T/typo.yaml"
expect plan_typo 1 "the plan has no entry for layer 'fc1' \(linear\) of model 'lenet5' \(plan entries: fc01" -- \
  train configs/lenet5_fmnist_w4a4.yaml "quant.plan=$T/typo.yaml" --out "$T/typo" "${SMALL[@]}"
expect plan_missing 1 "quant.plan: no plan file 'nope.yaml'" "lowbit plan MODEL" -- \
  train configs/lenet5_fmnist_w4a4.yaml quant.plan=nope.yaml --out "$T/nope" "${SMALL[@]}"
sed 's/^\(  conv2: .*in_bits: \)2/\14/' "$T/plan.yaml" > "$T/tied.yaml"
expect plan_inconsistent 1 "layer 'conv2': in_bits 4 disagrees with layer 'conv1'" -- \
  train configs/lenet5_fmnist_w4a4.yaml "quant.plan=$T/tied.yaml" --out "$T/tied" "${SMALL[@]}"
[ ! -e "$T/typo/last.h5" ] && [ ! -e "$T/nope/last.h5" ] && ok=1 || ok=0
report refused_plans_write_nothing $ok

finish
