#!/usr/bin/env bash
# `lowbit export mcu` on small trained runs: the generated C builds on the host with
# -std=c99 -Wall -Wextra -Werror -pedantic and its integer logits equal `lowbit verify --dump` on
# every test image; with the cross tools, the Cortex-M4 program's lines in QEMU equal the host
# runner's, the network has no float instruction or helper call, and the report carries the
# measured numbers. Bad input: a float run, an occupied folder, an unknown target.
# Usage: export_mcu.sh path/to/lowbit   (run from the repository root)
set -u
LOWBIT=${1:?usage: export_mcu.sh path/to/lowbit}
source "$(dirname "$0")/common.bash"
source "$(dirname "$0")/needs.bash"
need_fmnist
EXPECT_IN=all
SMALL=(data.train_limit=2048 data.test_limit=300 train.epochs=1 train.batch_size=64 -q)
IMAGES=$FMNIST_DIR/t10k-images-idx3-ubyte.gz
LABELS=$FMNIST_DIR/t10k-labels-idx1-ubyte.gz
cross=1
for tool in arm-none-eabi-gcc qemu-system-arm; do
  command -v $tool >/dev/null || {
    [ "${LOWBIT_REQUIRE_CROSS:-0}" = 1 ] && { echo "FAIL: $tool missing [LOWBIT_REQUIRE_CROSS=1 requires it]"; exit 1; }
    echo "skip the Cortex-M4 cases: $tool is not installed (make install-deps installs it)"; cross=0; }
done
MEASURE=(); [ $cross = 1 ] || MEASURE=(--no-measure)

# One network per weight/activation format: LeNet-5 W4A4 (int8 first/last layers, 4-bit packed
# weights and activations, per-channel requantization) and TFC W1A1 (bit-packed bipolar weights,
# thresholds, TFLM rounding).
check_network() {  # NAME CONFIG ROUNDING
  local name=$1 config=$2 rounding=$3 run="$T/$1" out="$T/out_$1"
  expect "train_$name" 0 "test_acc=" -- train $config --out "$run" "${SMALL[@]}"
  expect "verify_dump_$name" 0 "rounding=$rounding$" -- verify "$run" --rounding "$rounding" --dump "$T/dump_$name" --min-agreement 0
  expect "export_$name" 0 "^wrote $out " "activations \(rw\) +[0-9]+ B arena" "weights \(ro\) +[0-9]+ B" -- \
    export mcu "$run" -o "$out" --rounding "$rounding" --images 12 "${MEASURE[@]}"
  cp "$T/out" "$T/export_$name.txt"
  local ok=1
  make -s -C "$out" host >"$T/make.log" 2>&1 || { echo "FAIL host build"; cat "$T/make.log"; ok=0; }
  if [ $ok = 1 ]; then
    "$out/host_runner" --idx "$IMAGES" --labels "$LABELS" --images 300 >"$T/host_$name.txt" || ok=0
    grep -qE "^images=300 accuracy=0\.[0-9]{4}$" "$T/host_$name.txt" || { echo "FAIL host summary"; tail -1 "$T/host_$name.txt"; ok=0; }
    # Bit for bit: every image's class and int32 logits, as the integer engine computed them.
    head -300 "$T/host_$name.txt" | diff -q - "$T/dump_$name/integer_logits.txt" >/dev/null ||
      { echo "FAIL host runner != lowbit verify --dump"; head -300 "$T/host_$name.txt" | diff - "$T/dump_$name/integer_logits.txt" | head -4; ok=0; }
  fi
  report "host_equals_engine_$name" $ok
  [ $cross = 1 ] || return 0
  ok=1
  make -s -C "$out" qemu >"$T/qemu_$name.txt" 2>&1 || { echo "FAIL make qemu"; tail -5 "$T/qemu_$name.txt"; ok=0; }
  grep '^img ' "$T/qemu_$name.txt" | diff -q - <(head -12 "$T/host_$name.txt") >/dev/null ||
    { echo "FAIL QEMU lines != host lines"; ok=0; }
  grep -qE "^images=12 accuracy=[01]\.[0-9]{4} instructions_per_inference=[0-9]+ macs_per_instruction=[0-9]+\.[0-9]{2}$" \
    "$T/qemu_$name.txt" || { echo "FAIL QEMU summary line"; tail -2 "$T/qemu_$name.txt"; ok=0; }
  grep -qE "^step 1 [a-z0-9_]+ (conv2d|matmul) macs=[0-9]+ instructions=[0-9]+ " "$T/qemu_$name.txt" || { echo "FAIL per-step lines"; ok=0; }
  grep -qE "^stack_bytes_measured=[0-9]+$" "$T/qemu_$name.txt" || { echo "FAIL stack line"; ok=0; }
  report "qemu_equals_host_$name" $ok
  ok=1
  make -s -C "$out" floatcheck >"$T/float.log" 2>&1 || { cat "$T/float.log"; ok=0; }
  grep -q "^floatcheck: no floating-point" "$T/float.log" || ok=0
  report "no_float_$name" $ok
  ok=1
  grep -qE "instructions per inference [0-9]+ \(QEMU" "$out/report.txt" || { echo "FAIL report lacks instructions"; ok=0; }
  grep -qE "stack +[0-9]+ B static estimate \(-fstack-usage\), [0-9]+ B measured" "$out/report.txt" || { echo "FAIL report stack"; ok=0; }
  for key in flash_bytes ram_bytes code_bytes weight_bytes arena_bytes; do
    grep -qE "^  \"$key\": [0-9]+,$" "$out/report.json" || { echo "FAIL report.json lacks $key"; ok=0; }
  done
  report "report_measured_$name" $ok
}

check_network lenet5 configs/lenet5_fmnist_w4a4.yaml single
# The arena of a chain equals the planner's exact accounting, byte for byte.
ok=1
grep -qE "activations \(rw\) +([0-9]+) B arena; the plan's exact accounting: \1 B" "$T/export_lenet5.txt" || { echo "FAIL arena != plan"; ok=0; }
grep -qE "network data +([0-9]+) B" "$T/export_lenet5.txt" || ok=0
report arena_equals_plan_lenet5 $ok
# Localizing a mismatch: the host runner's per-layer integers against the engine's, a corrupted
# one named by layer, image and element, and a truncated file refused.
ok=1
"$T/out_lenet5/host_runner" --idx "$IMAGES" --images 20 --dump "$T/hdump" --dump-images 5 >/dev/null || ok=0
grep -qE "^[0-9]+ relu2 5 [0-9]+$" "$T/hdump/layers/index.txt" || { echo "FAIL dump index"; ok=0; }
report host_runner_dump $ok
expect against_identical 0 "^against=$T/hdump values=[0-9]+ images=5 integers=[0-9]+ identical rounding=single$" -- \
  verify "$T/lenet5" --against "$T/hdump"
expect against_own_dump 0 "identical rounding=single$" -- verify "$T/lenet5" --against "$T/dump_lenet5"
relu2=$(ls "$T"/hdump/layers/*_relu2.i32)
printf '\x63\x00\x00\x00' | dd of="$relu2" bs=1 seek=$((4 * 1600 * 2 + 4 * 37)) conv=notrunc 2>/dev/null
expect against_names_layer 1 "^first difference: layer relu2 \(value [0-9]+\), image 2, element 37: engine -?[0-9]+, dump 99$" \
  "differs from the integer engine" -- verify "$T/lenet5" --against "$T/hdump"
head -c 100 "$relu2" > "$relu2.cut" && mv "$relu2.cut" "$relu2"
expect against_truncated 1 "relu2\.i32: 100 bytes, the index says 5 x 1600 int32 = 32000 \(truncated" -- \
  verify "$T/lenet5" --against "$T/hdump"
expect against_missing 1 "no $T/nodump/layers/index.txt" -- verify "$T/lenet5" --against "$T/nodump"

check_network tfc configs/tfc_fmnist_w1a1.yaml tflm

# Batch norm kept as per-channel multipliers (ICN): its shift rides in a bias with extra
# fraction bits (acc_shift), which the C applies as the engine does.
mkdir -p "$T/models"
cp tests/cli/models/icn.yaml "$T/models/icn.yaml"
check_network icn "configs/lenet5_fmnist_w4a4.yaml model.path=$T/models/icn.yaml" single
expect icn_acc_shift 0 "^conv1 +conv2d .* <<[0-9]+ " "^conv2 +conv2d .* <<[0-9]+ " -- inspect "$T/icn" --integer

# An earlier export is replaced; the folder holds no temporary leftovers.
expect reexport 0 "^wrote $T/out_lenet5 " -- export mcu "$T/lenet5" -o "$T/out_lenet5" --images 2 --no-measure
ok=1; ls -d "$T"/out_lenet5.* 2>/dev/null && { echo "FAIL leftovers"; ok=0; }; report no_leftovers $ok

# Bad input: exit 1, a message naming the problem, nothing written.
mkdir -p "$T/occupied"; echo keep > "$T/occupied/notes.txt"
expect occupied_folder 1 "occupied exists and is not an earlier \`lowbit export mcu\` folder" -- \
  export mcu "$T/lenet5" -o "$T/occupied" --no-measure
ok=1; [ "$(ls "$T/occupied")" = notes.txt ] || { echo "FAIL the occupied folder changed"; ok=0; }; report occupied_untouched $ok
expect unknown_target 1 "unknown --target 'esp32' for mcu \(targets: cortex-m4\)" -- \
  export mcu "$T/lenet5" -o "$T/new" --target esp32
expect train_float 0 "test_acc=" -- train configs/lenet5_fmnist_fp32.yaml --out "$T/fp32" "${SMALL[@]}"
expect float_run 1 "no quantizers|quant:|quantization" -- export mcu "$T/fp32" -o "$T/new" --no-measure
ok=1; [ ! -e "$T/new" ] && ! ls -d "$T"/new.* 2>/dev/null || { echo "FAIL something was written"; ok=0; }; report float_nothing_written $ok
expect missing_run 1 "nothere" -- export mcu "$T/nothere" -o "$T/new"
# A run whose integer network cannot be built: the layer, why, and the fix; nothing written.
mkdir -p "$T/models"
cp tests/cli/models/sig.yaml "$T/models/sig.yaml"
expect train_sigmoid 0 "test_acc=" -- train configs/lenet5_fmnist_w4a4.yaml model.path="$T/models/sig.yaml" --out "$T/sig" "${SMALL[@]}"
expect not_lowerable 1 "cannot lower sig to integers: layer s \(quant_sigmoid\): a sigmoid of an accumulator has no integer form\. Fix: " -- \
  export mcu "$T/sig" -o "$T/new"
ok=1; [ ! -e "$T/new" ] && ! ls -d "$T"/new.* 2>/dev/null || { echo "FAIL something was written"; ok=0; }; report not_lowerable_nothing_written $ok

# The host runner refuses a file that is not an image IDX of the network's size.
ok=1
make -s -C "$T/out_lenet5" host >/dev/null 2>&1 || ok=0
"$T/out_lenet5/host_runner" --idx "$LABELS" >"$T/out" 2>&1 && ok=0
grep -q "bytes per image, the network takes 784" "$T/out" || { cat "$T/out"; ok=0; }
report host_runner_bad_idx $ok
finish
