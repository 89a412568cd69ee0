#!/usr/bin/env bash
# `lowbit export torch-h5` of a quantization-aware run loads into the PyTorch twin (the float
# weights; the quantizer state is left out and named), --with-quant-state keeps that state, and
# h5_to_torch.py says what it skips when given it.
# Usage: export_qat.sh path/to/lowbit   (run from the repository root)
set -u
LOWBIT=${1:?usage: export_qat.sh path/to/lowbit}
source "$(dirname "$0")/common.bash"
source "$(dirname "$0")/needs.bash"
need_fmnist
need_python torch h5py numpy
EXPECT_IN=all
RUN="$T/w4a4"
expect train_qat 0 "test_acc=" -- train configs/lenet5_fmnist_w4a4.yaml --out "$RUN" data.train_limit=512 data.test_limit=100 train.epochs=1 -q
expect export_float_weights 0 "wrote $T/float.h5: 10 tensors" "left out [0-9]+ quantizer tensors \(input_quant\.act_quant\.[a-z_]+, \.\.\.\)" \
  "--with-quant-state keeps them" -- export torch-h5 --weights "$RUN" -o "$T/float.h5"

ok=1
"$LOWBIT_PY" tools/h5_to_torch.py "$T/float.h5" --model lenet5 > "$T/all" 2>&1 || ok=0
grep -q "loaded $T/float.h5 into lenet5 (10 tensors, strict)" "$T/all" || ok=0
report float_export_loads_in_pytorch $ok

expect export_with_state 0 "wrote $T/state.h5: [0-9]+ tensors" -- export torch-h5 --weights "$RUN" -o "$T/state.h5" --with-quant-state
ok=1
"$LOWBIT_PY" -c "import h5py, sys; f = h5py.File(sys.argv[1]); assert 'conv1.weight_quant.value' in f or any('_quant.' in k for k in f), list(f)" "$T/state.h5" || ok=0
"$LOWBIT_PY" tools/h5_to_torch.py "$T/state.h5" --model lenet5 > "$T/all" 2>&1 || ok=0
grep -qE "skipped [0-9]+ quantizer tensors of $T/state.h5 \(.*_quant\..*\): the twin is the float model" "$T/all" || ok=0
grep -q "into lenet5 (10 tensors, strict)" "$T/all" || ok=0
report state_export_skipped_by_h5_to_torch $ok

# A float run has no quantizer state: everything is written, nothing said.
FP="$T/fp"
expect train_float 0 "test_acc=" -- train configs/lenet5_fmnist_fp32.yaml --out "$FP" data.train_limit=512 data.test_limit=100 train.epochs=1 -q
expect export_float_run 0 "wrote $T/fp.h5: 10 tensors" -- export torch-h5 --weights "$FP" -o "$T/fp.h5"
ok=1; grep -q "left out" "$T/out" && ok=0
report float_run_leaves_nothing_out $ok
finish
