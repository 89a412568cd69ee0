#!/usr/bin/env bash
# `lowbit import` / `lowbit export` on the command line: the table, exit codes (0 ok, 1 user
# error, 2 usage), messages that name the tensor, shapes and closest names, and an existing
# output file left untouched by every failure (lzf, truncated, not HDF5, missing, wrong shape,
# --strict). Test files are written with h5py (/usr/bin/python3); skips without it.
# Usage: import_errors.sh path/to/lowbit   (run from the repository root)
set -u
LOWBIT=${1:?usage: import_errors.sh path/to/lowbit}
PY=/usr/bin/python3  # Debian's interpreter (python3-torch, python3-h5py)
EXPECT_IN=all
source "$(dirname "$0")/common.bash"

# Every import (failing ones above all) leaves an existing $T/out.h5 untouched when it fails, and
# no temporary files.
expect_before() { before=""; [ -f "$T/out.h5" ] && before=$(md5sum < "$T/out.h5"); }
expect_extra() {
  local name=$1 want=$2 bad=0
  [ "$want" -eq 0 ] && return 0
  if [ -n "$before" ] && [ "$(md5sum < "$T/out.h5")" != "$before" ]; then
    echo "FAIL $name: the existing output file changed"; bad=1
  fi
  if ls "$T"/out.h5.* >/dev/null 2>&1; then echo "FAIL $name: left temporary files: $(ls "$T"/out.h5.*)"; bad=1; fi
  return $bad
}

CFG=configs/lenet5_fmnist_fp32.yaml

source "$(dirname "$0")/needs.bash"
need_python h5py numpy

# LeNet-5 tensors in PyTorch layouts, and broken variants.
"$PY" - "$T" <<'EOF' || { echo "FAIL: could not write the test files"; echo "0 passed, 1 failed"; exit 1; }
import os, sys
import numpy as np, h5py
D = sys.argv[1]
rng = np.random.default_rng(0)
shapes = {"conv1.weight": (6, 1, 5, 5), "conv1.bias": (6,), "conv2.weight": (16, 6, 5, 5), "conv2.bias": (16,),
          "fc1.weight": (120, 400), "fc1.bias": (120,), "fc2.weight": (84, 120), "fc2.bias": (84,),
          "fc3.weight": (10, 84), "fc3.bias": (10,)}
ref = {k: (0.1 * rng.standard_normal(s)).astype(np.float32) for k, s in shapes.items()}
def write(name, tensors, **kw):
    with h5py.File(os.path.join(D, name), "w") as f:
        for k, v in tensors.items():
            f.create_dataset(k, data=v, **kw)
write("good.h5", ref)
write("lzf.h5", ref, compression="lzf")
write("missing.h5", {k: v for k, v in ref.items() if k != "fc3.bias"})
write("extra.h5", dict(ref, **{"fc4.weight": np.zeros((3, 3), np.float32)}))
write("shape.h5", dict(ref, **{"fc1.weight": np.zeros((120, 256), np.float32)}))
write("renamed.h5", {k.replace("conv", "features.c"): v for k, v in ref.items()})
data = open(os.path.join(D, "good.h5"), "rb").read()
open(os.path.join(D, "trunc.h5"), "wb").write(data[: len(data) // 3])
open(os.path.join(D, "text.h5"), "w").write("this is not HDF5\n")
EOF

# A good import: table, checkpoint usable by eval.
expect good 0 "ok +conv1.weight +\[6, 1, 5, 5\]" "summary: 10 matched, 0 missing, 0 shape mismatch, 0 unused" \
  "wrote .*out.h5" -- import "$CFG" --from "$T/good.h5" -o "$T/out.h5"
expect inspect_imported 0 "lowbit-checkpoint|format" -- inspect "$T/out.h5"

# Every failure below must leave out.h5 as it is.
expect lzf 1 "lzf" "filter 32000" -- import "$CFG" --from "$T/lzf.h5" -o "$T/out.h5"
expect truncated 1 "trunc.h5" "truncated" -- import "$CFG" --from "$T/trunc.h5" -o "$T/out.h5"
expect not_hdf5 1 "text.h5" "not an HDF5 file" -- import "$CFG" --from "$T/text.h5" -o "$T/out.h5"
expect no_such_file 1 "nope.h5" -- import "$CFG" --from "$T/nope.h5" -o "$T/out.h5"
expect missing 1 "MISSING +fc3.bias" "'fc3.bias' \[10\] \(closest in file: " "--allow-missing" \
  -- import "$CFG" --from "$T/missing.h5" -o "$T/out.h5"
expect wrong_shape 1 "SHAPE +fc1.weight" "'fc1.weight': file \[120, 256\], model \[120, 400\]" \
  -- import "$CFG" --from "$T/shape.h5" -o "$T/out.h5"
expect strict_unused 1 "UNUSED" "fc4.weight' \[3, 3\] \(closest in model: " "--strict" \
  -- import "$CFG" --from "$T/extra.h5" --strict -o "$T/out.h5"
expect names_match_nothing 1 "'conv1.weight' \[6, 1, 5, 5\] \(closest in file: features.c1.weight \(same size\)" "--map" \
  -- import "$CFG" --from "$T/renamed.h5" -o "$T/out.h5"
expect bad_map 1 "expected OLD=NEW" -- import "$CFG" --from "$T/good.h5" --map conv1 -o "$T/out.h5"
expect strict_and_allow 2 "exclude each other" -- import "$CFG" --from "$T/good.h5" --strict --allow-missing -o "$T/out.h5"
expect no_output 2 "-o CKPT.h5" -- import "$CFG" --from "$T/good.h5"
expect no_config 2 "missing CONFIG" -- import --from "$T/good.h5" -o "$T/out.h5"
expect help 0 "--allow-missing" "examples:" -- import --help

# What succeeds.
expect unused_ok 0 "UNUSED +- +fc4.weight" "1 unused file tensor" -- import "$CFG" --from "$T/extra.h5" -o "$T/x1.h5"
expect allow_missing 0 "MISSING +fc3.bias" "keep their initial values" \
  -- import "$CFG" --from "$T/missing.h5" --allow-missing -o "$T/x2.h5"
expect map 0 "summary: 10 matched" -- import "$CFG" --from "$T/renamed.h5" --map features.c1=conv1 --map features.c2=conv2 \
  -o "$T/x3.h5"
expect eval_dump_logits 0 "test_acc=" -- eval --weights "$T/out.h5" data.test_limit=100 --dump-logits "$T/logits.h5"
"$PY" -c "import h5py, sys; f = h5py.File(sys.argv[1], 'r'); assert f['logits'].shape == (100, 10) and f['labels'].shape == (100,)" \
  "$T/logits.h5" 2>"$T/err"
report "dump_logits_shapes" $((1 - $?))

# export
expect export 0 "wrote .*exp.h5: 10 tensors" -- export torch-h5 --weights "$T/out.h5" -o "$T/exp.h5"
expect export_not_checkpoint 1 "not a Lowbit checkpoint" -- export torch-h5 --weights "$T/good.h5" -o "$T/out.h5"
expect export_unknown_format 2 "unknown format 'onnx'" -- export onnx --weights "$T/x1.h5" -o "$T/out.h5"
expect export_no_weights 2 "--weights" -- export torch-h5 -o "$T/out.h5"
expect reimport_export 0 "summary: 10 matched" -- import "$CFG" --from "$T/exp.h5" --strict -o "$T/x4.h5"

# train --init
expect init_and_resume 2 "only one" -- train "$CFG" --init "$T/x1.h5" --resume "$T/x1.h5"
expect init_wrong_model 1 "in the checkpoint but" -- train configs/resnet8_fmnist_fp32.yaml --init "$T/x1.h5" -q --out "$T/run"
# Float weights into a quantization-aware run: the quantizers start fresh, and the note says so.
expect init_float_into_qat 0 "note: --init: 15 quantizer tensors \(input_quant\.act_quant\.value, \.\.\.\) are not in .*x1\.h5; the quantizers start fresh" -- \
  train configs/lenet5_fmnist_w4a4.yaml --init "$T/x1.h5" --out "$T/qat" data.train_limit=256 data.test_limit=100 train.epochs=1

finish
