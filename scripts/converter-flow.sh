#!/usr/bin/env bash
# The converter flow end to end (docs/pytorch-interop.md): a float LeNet-5 trained in PyTorch is
# dumped to HDF5, imported into the W4A4 recipe and fine-tuned with QAT in Lowbit for a few
# epochs; for comparison the same W4A4 recipe is trained from scratch for its full 10 epochs.
#
# Usage: scripts/converter-flow.sh [LOWBIT] [OUT_DIR]
#   LOWBIT   the lowbit binary (default build/lowbit)
#   OUT_DIR  working folder (default runs/converter-flow)
# Environment: QAT_EPOCHS (default 2), QAT_LR (default 0.01: fine-tuning a trained model),
#   TORCH_EPOCHS (default 10), SCRATCH=0 to skip the from-scratch run, THREADS (default 2).
# Prints one summary line per model and exits non-zero if any step fails.
set -euo pipefail
LOWBIT=${1:-build/lowbit}
OUT=${2:-runs/converter-flow}
PY=/usr/bin/python3
QAT_EPOCHS=${QAT_EPOCHS:-2}
QAT_LR=${QAT_LR:-0.01}
TORCH_EPOCHS=${TORCH_EPOCHS:-10}
SCRATCH=${SCRATCH:-1}
THREADS=${THREADS:-2}
RECIPE=configs/lenet5_fmnist_w4a4.yaml

[ -x "$LOWBIT" ] || { echo "converter-flow.sh: $LOWBIT is not an executable (build first: make, or pass the path)" >&2; exit 2; }
"$PY" -c 'import torch, h5py, numpy' 2>/dev/null ||
  { echo "converter-flow.sh: $PY lacks torch/h5py/numpy (apt-get install python3-torch python3-h5py python3-numpy)" >&2; exit 2; }
mkdir -p "$OUT"

acc_of() { tail -n 1 "$1" | sed -n 's/^test_acc=//p'; }

echo "== 1. float LeNet-5 in PyTorch ($TORCH_EPOCHS epochs, the float recipe)"
"$PY" tools/train_torch_float.py --model lenet5 --epochs "$TORCH_EPOCHS" --threads "$THREADS" \
  -o "$OUT/lenet5_float.pt" | tee "$OUT/torch.log"
torch_acc=$(acc_of "$OUT/torch.log")

echo "== 2. dump to HDF5 and import into $RECIPE"
"$PY" tools/torch_to_h5.py "$OUT/lenet5_float.pt" -o "$OUT/lenet5_float.h5"
"$LOWBIT" import "$RECIPE" --from "$OUT/lenet5_float.h5" -o "$OUT/lenet5_w4a4_init.h5" --problems-only

echo "== 3. W4A4 QAT from the imported weights ($QAT_EPOCHS epochs, lr $QAT_LR)"
"$LOWBIT" train "$RECIPE" --init "$OUT/lenet5_w4a4_init.h5" train.epochs="$QAT_EPOCHS" optimizer.lr="$QAT_LR" \
  --threads "$THREADS" --out "$OUT/qat_from_torch" | tee "$OUT/qat.log"
qat_acc=$(acc_of "$OUT/qat.log")

scratch_acc=skipped
if [ "$SCRATCH" = 1 ]; then
  echo "== 4. W4A4 QAT from scratch (the recipe's 10 epochs)"
  "$LOWBIT" train "$RECIPE" --threads "$THREADS" --out "$OUT/qat_scratch" | tee "$OUT/scratch.log"
  scratch_acc=$(acc_of "$OUT/scratch.log")
fi

echo "torch_float_acc=$torch_acc"
echo "w4a4_from_torch_${QAT_EPOCHS}ep_acc=$qat_acc"
echo "w4a4_scratch_10ep_acc=$scratch_acc"
