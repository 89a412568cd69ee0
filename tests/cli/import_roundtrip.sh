#!/usr/bin/env bash
# PyTorch -> Lowbit -> PyTorch round trip (issue 4 acceptance): LeNet-5 and ResNet-8 (batch norm)
# are trained briefly in PyTorch on Fashion-MNIST, dumped with tools/torch_to_h5.py, imported
# with `lowbit import`; `lowbit eval` logits on the first 1,000 test images must equal PyTorch's
# within 1e-5 (max abs) with the same accuracy. Exported back with `lowbit export torch-h5` and
# loaded with tools/h5_to_torch.py, PyTorch must reproduce lowbit's logits to the same tolerance.
# Also: `lowbit train --init` starts from the imported weights (lr 0: same accuracy).
# Usage: import_roundtrip.sh path/to/lowbit   (run from the repository root). Skips (tests/cli/needs.bash)
# when /usr/bin/python3 lacks torch/h5py or the Fashion-MNIST package is missing.
set -u
LOWBIT=${1:?usage: import_roundtrip.sh path/to/lowbit}
PY=/usr/bin/python3  # Debian's interpreter (python3-torch, python3-h5py)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0; passes=0

source "$(dirname "$0")/needs.bash"
need_python torch h5py numpy
need_fmnist

check() {  # NAME COMMAND...: runs it, output to $T/log
  local name=$1; shift
  if "$@" >"$T/log" 2>&1; then
    passes=$((passes + 1)); echo "ok   $name"
  else
    fails=$((fails + 1)); echo "FAIL $name"; sed 's/^/     | /' "$T/log" | tail -15
  fi
}

# 1. Train both twins briefly in PyTorch; save a state dict (LeNet-5) and a whole module
#    (ResNet-8); write PyTorch's logits on the first 1,000 test images.
cat > "$T/train.py" <<'EOF'
import sys
import h5py, numpy as np, torch
sys.path.insert(0, "tools")
import torch_models, h5_to_torch as h
torch.set_num_threads(1)  # no OpenMP spinning on a busy machine
out = sys.argv[1]
x, y = h.load_fashion_mnist(True, 20000)
x = h.normalize(x, 0.2860, 0.3530)
tx, ty = h.load_fashion_mnist(False, 1000)
tx = h.normalize(tx, 0.2860, 0.3530)
for name, params, steps, bs, lr in [("lenet5", {}, 300, 64, 0.05), ("resnet8", dict(in_channels=1, input_size=28), 150, 32, 0.02)]:
    torch.manual_seed(0)
    m = torch_models.build(name, **params)
    opt = torch.optim.SGD(m.parameters(), lr=lr, momentum=0.9)
    g = np.random.default_rng(0)
    m.train()
    for s in range(steps):
        idx = g.integers(0, len(y), bs)
        loss = torch.nn.functional.cross_entropy(m(torch.from_numpy(x[idx])), torch.from_numpy(y[idx]))
        opt.zero_grad(); loss.backward(); opt.step()
    if name == "lenet5":
        torch.save(m.state_dict(), f"{out}/{name}.pt")
    else:
        torch.save(m, f"{out}/{name}.pt")  # a whole module
    logits = h.logits_of(m, tx)
    with h5py.File(f"{out}/{name}_torch_logits.h5", "w") as f:
        f.create_dataset("logits", data=logits)
        f.create_dataset("labels", data=ty.astype(np.int32))
    print(name, "trained", steps, "steps, loss", round(loss.item(), 4), "test acc", (logits.argmax(1) == ty).mean())
EOF

# compare.py A.h5 B.h5 LABEL: max abs logit difference <= 1e-5 and identical accuracy.
cat > "$T/compare.py" <<'EOF'
import sys
import h5py, numpy as np
a, b, label = sys.argv[1], sys.argv[2], sys.argv[3]
la, lb = h5py.File(a, "r")["logits"][()], h5py.File(b, "r")["logits"][()]
ya, yb = h5py.File(a, "r")["labels"][()], h5py.File(b, "r")["labels"][()]
assert la.shape == lb.shape == (1000, 10), (la.shape, lb.shape)
assert (ya == yb).all(), "labels differ"
d = float(np.abs(la.astype(np.float64) - lb).max())
acc_a, acc_b = float((la.argmax(1) == ya).mean()), float((lb.argmax(1) == yb).mean())
print(f"{label}: max abs diff {d:.3g}, accuracy {acc_a:.4f} vs {acc_b:.4f}, max |logit| {float(np.abs(la).max()):.3g}")
sys.exit(0 if d <= 1e-5 and acc_a == acc_b else 1)
EOF

check "pytorch training (lenet5 300 steps, resnet8 150 steps)" "$PY" "$T/train.py" "$T"
cat "$T/log"

run_model() {  # NAME CONFIG TWIN_PARAMS...
  local name=$1 config=$2; shift 2
  local params=("$@")
  # 2. Dump: LeNet-5 through the twin (--model --load), ResNet-8 from the pickled module.
  if [ "$name" = lenet5 ]; then
    check "$name: torch_to_h5 --model --load" "$PY" tools/torch_to_h5.py --model "$name" "${params[@]}" \
      --load "$T/$name.pt" -o "$T/${name}_w.h5"
  else
    check "$name: torch_to_h5 from a saved module" "$PY" tools/torch_to_h5.py "$T/$name.pt" -o "$T/${name}_w.h5"
  fi
  # 3. Import (strict: every tensor on both sides used) and evaluate.
  check "$name: lowbit import --strict" "$LOWBIT" import "$config" --from "$T/${name}_w.h5" --strict -o "$T/${name}_ckpt.h5"
  check "$name: lowbit eval --dump-logits" "$LOWBIT" eval --weights "$T/${name}_ckpt.h5" data.test_limit=1000 \
    --dump-logits "$T/${name}_lowbit_logits.h5"
  check "$name: lowbit logits == pytorch logits (1e-5, same accuracy)" \
    "$PY" "$T/compare.py" "$T/${name}_torch_logits.h5" "$T/${name}_lowbit_logits.h5" "$name pytorch -> lowbit"
  cat "$T/log"
  # 4. Export back and load into the twin (strict), PyTorch logits == lowbit's.
  check "$name: lowbit export torch-h5" "$LOWBIT" export torch-h5 --weights "$T/${name}_ckpt.h5" -o "$T/${name}_exp.h5"
  check "$name: h5_to_torch --logits --save" "$PY" tools/h5_to_torch.py "$T/${name}_exp.h5" --model "$name" "${params[@]}" \
    --logits 1000 --dump-logits "$T/${name}_back_logits.h5" --save "$T/${name}_back.pt"
  check "$name: pytorch (exported) logits == lowbit logits (1e-5, same accuracy)" \
    "$PY" "$T/compare.py" "$T/${name}_lowbit_logits.h5" "$T/${name}_back_logits.h5" "$name lowbit -> pytorch"
  cat "$T/log"
}

run_model lenet5 configs/lenet5_fmnist_fp32.yaml
run_model resnet8 configs/resnet8_fmnist_fp32.yaml --param in_channels=1 --param input_size=28

# 5. The exported file matches PyTorch's state dict exactly: names, dtypes (int64 counters, 0-d),
#    shapes and values; the saved .pt loads into a fresh twin.
cat > "$T/exact.py" <<'EOF'
import sys
import h5py, numpy as np, torch
sys.path.insert(0, "tools")
import torch_models
d = sys.argv[1]
ref = torch.load(f"{d}/resnet8.pt").state_dict()
with h5py.File(f"{d}/resnet8_exp.h5", "r") as f:
    assert sorted(f.keys()) == sorted(ref.keys()), set(f.keys()) ^ set(ref.keys())
    for k, v in ref.items():
        a = f[k][()]
        assert a.dtype == v.numpy().dtype and a.shape == tuple(v.shape), (k, a.dtype, a.shape, v.dtype, v.shape)
        assert np.array_equal(a, v.numpy()), k
m = torch_models.build("resnet8", in_channels=1, input_size=28)
m.load_state_dict(torch.load(f"{d}/resnet8_back.pt"), strict=True)
print("resnet8: exported tensors equal the PyTorch state dict bit for bit (num_batches_tracked int64 0-d)")
EOF
check "resnet8: export equals the original state dict (names, dtypes, shapes, values)" "$PY" "$T/exact.py" "$T"
cat "$T/log"

# 6. lowbit train --init starts from the imported weights: with lr 0 the weights do not move,
#    so the accuracy after one epoch equals the imported model's.
"$LOWBIT" eval --weights "$T/lenet5_ckpt.h5" data.test_limit=1000 >"$T/eval.txt" 2>&1
check "lenet5: lowbit train --init (lr 0 keeps the imported accuracy)" "$LOWBIT" train configs/lenet5_fmnist_fp32.yaml \
  --init "$T/lenet5_ckpt.h5" train.epochs=1 data.train_limit=256 data.test_limit=1000 optimizer.lr=0 -q --out "$T/run"
want=$(grep '^test_acc=' "$T/eval.txt"); got=$(grep '^test_acc=' "$T/log")
if [ -n "$want" ] && [ "$want" = "$got" ]; then
  passes=$((passes + 1)); echo "ok   lenet5: train --init accuracy $got == imported $want"
else
  fails=$((fails + 1)); echo "FAIL lenet5: train --init accuracy '$got' != imported '$want'"
fi

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
