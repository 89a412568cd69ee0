#!/usr/bin/env bash
# The converter flow end to end (docs/pytorch-interop.md): a float LeNet-5 trained in PyTorch is
# dumped to HDF5, imported into the W4A4 fine-tuning recipe (configs/lenet5_fmnist_w4a4_finetune.yaml)
# and fine-tuned with QAT in Lowbit for 2 epochs; for comparison the W4A4 recipe
# (configs/lenet5_fmnist_w4a4.yaml) is trained from scratch for its 10 epochs.
#
# Usage: scripts/converter-flow.sh [LOWBIT] [OUT_DIR]
#   LOWBIT   the lowbit binary (default build/lowbit)
#   OUT_DIR  working folder (default runs/converter-flow)
# Environment: SEEDS (default "0"; each seed runs the fine-tuning and the from-scratch run),
#   TORCH_EPOCHS (default 10), SCRATCH=0 to skip the from-scratch runs, THREADS (default 2).
# Prints one summary line per model and exits non-zero if any step fails.
set -euo pipefail
LOWBIT=${1:-build/lowbit}
OUT=${2:-runs/converter-flow}
PY=/usr/bin/python3
SEEDS=${SEEDS:-0}
TORCH_EPOCHS=${TORCH_EPOCHS:-10}
SCRATCH=${SCRATCH:-1}
THREADS=${THREADS:-2}
RECIPE=configs/lenet5_fmnist_w4a4.yaml
FINETUNE=configs/lenet5_fmnist_w4a4_finetune.yaml

[ -x "$LOWBIT" ] || { echo "converter-flow.sh: $LOWBIT is not an executable (build first: make, or pass the path)" >&2; exit 2; }
"$PY" -c 'import torch, h5py, numpy' 2>/dev/null ||
  { echo "converter-flow.sh: $PY lacks torch/h5py/numpy (apt-get install python3-torch python3-h5py python3-numpy)" >&2; exit 2; }
mkdir -p "$OUT"

acc_of() { tail -n 1 "$1" | sed -n 's/^test_acc=//p'; }

echo "== 1. float LeNet-5 in PyTorch ($TORCH_EPOCHS epochs, the float recipe)"
"$PY" tools/train_torch_float.py --model lenet5 --epochs "$TORCH_EPOCHS" --threads "$THREADS" \
  -o "$OUT/lenet5_float.pt" | tee "$OUT/torch.log"
torch_acc=$(acc_of "$OUT/torch.log")

echo "== 2. dump to HDF5 and import into $FINETUNE"
"$PY" tools/torch_to_h5.py "$OUT/lenet5_float.pt" -o "$OUT/lenet5_float.h5"
"$LOWBIT" import "$FINETUNE" --from "$OUT/lenet5_float.h5" -o "$OUT/lenet5_w4a4_init.h5" --problems-only

summary=()
for seed in $SEEDS; do
  echo "== 3. W4A4 QAT fine-tuning from the imported weights (seed $seed)"
  "$LOWBIT" train "$FINETUNE" --init "$OUT/lenet5_w4a4_init.h5" --seed "$seed" --threads "$THREADS" \
    --out "$OUT/finetune_seed$seed" --force | tee "$OUT/finetune_seed$seed.log"
  summary+=("w4a4_finetune_2ep_seed${seed}_acc=$(acc_of "$OUT/finetune_seed$seed.log")")
  if [ "$SCRATCH" = 1 ]; then
    echo "== 4. W4A4 QAT from scratch, 10 epochs (seed $seed)"
    "$LOWBIT" train "$RECIPE" --seed "$seed" --threads "$THREADS" --out "$OUT/scratch_seed$seed" --force | tee "$OUT/scratch_seed$seed.log"
    summary+=("w4a4_scratch_10ep_seed${seed}_acc=$(acc_of "$OUT/scratch_seed$seed.log")")
  fi
done

echo "torch_float_acc=$torch_acc"
printf '%s\n' "${summary[@]}"
