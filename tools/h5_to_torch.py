#!/usr/bin/python3
"""Load Lowbit-exported weights into the PyTorch twin of a zoo model (docs/pytorch-interop.md).

WEIGHTS is what `lowbit export torch-h5` writes (flat dotted names, PyTorch layouts), any
state dict dumped by tools/torch_to_h5.py, or a Lowbit checkpoint itself (its /model tensors).
The twin is built with tools/torch_models.py (`--model NAME --param k=v`) and the tensors are
loaded with load_state_dict(strict=True): a missing or unexpected name is an error. Lowbit's
s32 [1] num_batches_tracked is converted to PyTorch's 0-d int64.

Then, optionally:
  --save FILE.pt        torch.save(model.state_dict(), FILE.pt)
  --logits N            evaluate the first N Fashion-MNIST test images (eval mode, the Lowbit
                        config's normalization --mean/--std): prints accuracy and the logits
                        of the first --show images
  --dump-logits FILE    with --logits: write /logits (N, classes) f32 and /labels (N) s32 to an
                        HDF5 file (the layout of `lowbit eval --dump-logits`)
  --input FILE.npy      logits for a batch of your own, float32 (N, C, H, W), already normalized

Examples:
  lowbit export torch-h5 --weights runs/lenet5_fmnist_fp32 -o lenet5_state.h5
  /usr/bin/python3 tools/h5_to_torch.py lenet5_state.h5 --model lenet5 --save lenet5.pt
  /usr/bin/python3 tools/h5_to_torch.py resnet8_state.h5 --model resnet8 --param in_channels=1 \\
      --param input_size=28 --logits 1000
  /usr/bin/python3 tools/h5_to_torch.py lenet5_state.h5 --model lenet5 --logits 1000 --dump-logits torch_logits.h5

Needs Debian's python3-torch, python3-h5py and python3-numpy: run it with /usr/bin/python3.
"""
import argparse
import gzip
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from torch_to_h5 import need_modules  # noqa: E402
FMNIST_DIR = "/usr/share/datasets/fashion-mnist"


def read_idx_gz(path):
    """An IDX file (MNIST format, gzip): big-endian magic 0 0 type ndims, dims, u8 data."""
    import numpy as np

    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not a u8 IDX file (bad magic)")
    nd = data[3]
    dims = struct.unpack(">" + "I" * nd, data[4:4 + 4 * nd])
    n = 1
    for d in dims:
        n *= d
    body = np.frombuffer(data, dtype=np.uint8, count=n, offset=4 + 4 * nd)
    return body.reshape(dims)


def load_fashion_mnist(train=False, limit=0, data_dir=FMNIST_DIR):
    """(images u8 (N, 1, 28, 28), labels int64 (N)) of Fashion-MNIST, the first `limit` if > 0."""
    import numpy as np

    split = "train" if train else "t10k"
    x = read_idx_gz(os.path.join(data_dir, f"{split}-images-idx3-ubyte.gz"))
    y = read_idx_gz(os.path.join(data_dir, f"{split}-labels-idx1-ubyte.gz"))
    if limit > 0:
        x, y = x[:limit], y[:limit]
    return x.reshape(-1, 1, x.shape[1], x.shape[2]), y.astype(np.int64)


def normalize(images_u8, mean, std):
    """Lowbit's eval transforms, bit for bit: float32 x / 255, then (x - mean) / std."""
    import numpy as np

    x = images_u8.astype(np.float32) / np.float32(255.0)
    return (x - np.float32(mean)) / np.float32(std)


def read_weights(path):
    """{dotted name: numpy array} of an HDF5 weight file (flat, nested, or a Lowbit checkpoint)."""
    import h5py

    out = {}
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        sys.exit(f"h5_to_torch.py: cannot open {path} as HDF5: {e}")
    with f:
        fmt = f.attrs.get("format")
        if isinstance(fmt, bytes):
            fmt = fmt.decode()
        root = f["model"] if fmt == "lowbit-checkpoint" else f

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "fiub":
                out[name.replace("/", ".")] = obj[()]

        root.visititems(visit)
    if not out:
        sys.exit(f"h5_to_torch.py: {path} holds no tensors")
    return out


def is_quant_state(name):
    """Lowbit's quantization state: a path part ending in _quant, or the batch-norm folding flag."""
    return any(p.endswith("_quant") or p == "bn_folded" for p in name.split("."))


def load_into(model, arrays, source):
    """load_state_dict(strict=True) after matching Lowbit's dtype/shape conventions."""
    import numpy as np
    import torch

    ref = model.state_dict()
    sd = {}
    # Quantizer state of a QAT checkpoint (exported with --with-quant-state, or the checkpoint
    # itself): the twin is the float model, so it has no place for it.
    quant = sorted(k for k in arrays if k not in ref and is_quant_state(k))
    if quant:
        print(f"h5_to_torch.py: skipped {len(quant)} quantizer tensors of {source} ({quant[0]}, ...): "
              "the twin is the float model")
    for k, a in arrays.items():
        if k in quant:
            continue
        t = torch.from_numpy(np.array(a))
        r = ref.get(k)
        if r is not None:
            if t.shape != r.shape and t.numel() == r.numel() == 1:
                t = t.reshape(r.shape)  # num_batches_tracked: s32 [1] -> 0-d
            t = t.to(r.dtype)
        sd[k] = t
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        sys.exit(f"h5_to_torch.py: {source} does not fit the twin: {e}")
    return model


def logits_of(model, x, batch=1000):
    import torch

    model.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            outs.append(model(torch.from_numpy(x[i:i + batch])))
    return torch.cat(outs).numpy()


def main():
    ap = argparse.ArgumentParser(
        prog="h5_to_torch.py", description=__doc__.split("\n\n")[0],
        epilog=__doc__[__doc__.index("Then, optionally"):], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", help="HDF5 weights (lowbit export torch-h5, torch_to_h5.py, or a Lowbit checkpoint)")
    ap.add_argument("--model", required=True, help="twin name in tools/torch_models.py (lenet5, resnet8, ...)")
    ap.add_argument("--param", action="append", metavar="K=V", help="twin parameter (repeatable), e.g. input_size=28")
    ap.add_argument("--save", metavar="FILE.pt", help="torch.save the loaded state dict")
    ap.add_argument("--logits", type=int, default=0, metavar="N", help="evaluate the first N Fashion-MNIST test images")
    ap.add_argument("--data", default=FMNIST_DIR, help=f"Fashion-MNIST folder (default {FMNIST_DIR})")
    ap.add_argument("--mean", type=float, default=0.2860, help="normalization mean (the config's data.mean)")
    ap.add_argument("--std", type=float, default=0.3530, help="normalization std (the config's data.std)")
    ap.add_argument("--show", type=int, default=3, help="logit rows to print")
    ap.add_argument("--dump-logits", metavar="FILE.h5", help="write /logits and /labels (with --logits)")
    ap.add_argument("--input", metavar="FILE.npy", help="print logits for this float32 (N, C, H, W) batch")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    args = ap.parse_args()
    need_modules("h5_to_torch.py")
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, HERE)
    import torch_models

    params = {}
    for item in args.param or []:
        k, _, v = item.partition("=")
        try:
            params[k] = float(v) if any(c in v for c in ".eE") else int(v)
        except ValueError:
            ap.error(f"--param '{item}': expected k=v with a number (e.g. --param input_size=28)")
    try:
        model = torch_models.build(args.model, **params)
    except (KeyError, TypeError, ValueError) as e:
        sys.exit(f"h5_to_torch.py: --model {args.model}: {e.args[0] if e.args else e}")
    load_into(model, read_weights(args.weights), args.weights)
    print(f"loaded {args.weights} into {args.model} ({len(model.state_dict())} tensors, strict)")
    if args.save:
        torch.save(model.state_dict(), args.save)
        print(f"saved {args.save}")
    np.set_printoptions(precision=5, suppress=True, linewidth=160)
    if args.input:
        x = np.load(args.input).astype(np.float32)
        print(logits_of(model, x))
    if args.logits > 0:
        images, labels = load_fashion_mnist(False, args.logits, args.data)
        logits = logits_of(model, normalize(images, args.mean, args.std))
        acc = float((logits.argmax(1) == labels).mean())
        print(f"samples={len(labels)}")
        for i in range(min(args.show, len(labels))):
            print(f"logits[{i}] (label {labels[i]}): {logits[i]}")
        print(f"test_acc={acc:.4f}")
        if args.dump_logits:
            import h5py

            with h5py.File(args.dump_logits, "w") as f:
                f.create_dataset("logits", data=logits.astype(np.float32))
                f.create_dataset("labels", data=labels.astype(np.int32))
    elif args.dump_logits:
        ap.error("--dump-logits needs --logits N")


if __name__ == "__main__":
    main()
