#!/usr/bin/python3
"""Dump a PyTorch state dict to HDF5 for `lowbit import` (docs/pytorch-interop.md).

Every state-dict entry becomes one flat root dataset under its dotted name ("conv1.weight",
"bn1.running_mean"), as `f.create_dataset(k, data=v.numpy())` would write it: float tensors
as float32 (bfloat16/float16/float64 are converted to float32), integer tensors as they are
(num_batches_tracked stays a 0-d int64). The file is written to OUT.tmp and renamed, so an
existing OUT is replaced only by a complete file.

The state dict comes from
  - a file saved with torch.save: a state dict, a whole module (torch.save(model)), or a
    training checkpoint dict holding one under "state_dict", "model_state_dict", "model" or
    "net" (--key picks another entry);
  - or a PyTorch twin of a Lowbit zoo model (tools/torch_models.py) with --model NAME
    [--param k=v ...]: random init (--seed) or the weights of a saved state dict (--load).

Examples:
  /usr/bin/python3 tools/torch_to_h5.py lenet5.pt -o lenet5_weights.h5
  /usr/bin/python3 tools/torch_to_h5.py checkpoint.pth --key model -o weights.h5
  /usr/bin/python3 tools/torch_to_h5.py --model resnet8 --param in_channels=1 --param input_size=28 \\
      --load resnet8.pt -o resnet8_weights.h5
  /usr/bin/python3 tools/torch_to_h5.py --model lenet5 --seed 1 -o lenet5_random.h5
  lowbit import configs/lenet5_fmnist_fp32.yaml --from lenet5_weights.h5 -o lenet5_imported.h5

Needs Debian's python3-torch, python3-h5py and python3-numpy: run it with /usr/bin/python3
(another `python3` on PATH may lack them).
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def need_modules(tool="torch_to_h5.py"):
    """Exits with a clear message when this interpreter lacks torch, h5py or numpy (shared by the
    tools in this folder)."""
    try:
        import h5py  # noqa: F401
        import numpy  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        sys.exit(f"{tool}: {e}. This tool needs PyTorch, h5py and numpy: run it with Debian's "
                 f"/usr/bin/python3 (apt-get install python3-torch python3-h5py python3-numpy); "
                 f"this interpreter is {sys.executable}")


def parse_params(items, tool="torch_to_h5.py"):
    """--param K=V items -> {K: int, float or str}."""
    params = {}
    for item in items or []:
        if "=" not in item:
            sys.exit(f"{tool}: --param '{item}': expected k=v (e.g. --param input_size=28)")
        k, v = item.split("=", 1)
        try:
            params[k] = int(v)
        except ValueError:
            try:
                params[k] = float(v)
            except ValueError:
                params[k] = v
    return params


WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net")


def state_dict_from(obj, key, source):
    import torch

    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            have = ", ".join(map(str, obj.keys())) if isinstance(obj, dict) else type(obj).__name__
            sys.exit(f"torch_to_h5.py: {source} has no entry '{key}' (it has: {have})")
        obj = obj[key]
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
        for k in WRAPPER_KEYS:
            if k in obj:
                print(f"torch_to_h5.py: using the '{k}' entry of {source}", file=sys.stderr)
                return state_dict_from(obj[k], None, source)
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            skipped = sorted(str(k) for k in obj if k not in tensors)
            print(f"torch_to_h5.py: skipping non-tensor entries of {source}: {', '.join(skipped)}", file=sys.stderr)
            return tensors
        sys.exit(f"torch_to_h5.py: {source} holds a dict without tensors (keys: {', '.join(map(str, obj))}); "
                 f"pick the entry with --key")
    sys.exit(f"torch_to_h5.py: {source} holds a {type(obj).__name__}, not a state dict or a module")


def load_saved(path):
    import torch

    sys.path.insert(0, HERE)  # so that pickled twins (torch_models) can be unpickled
    try:
        return torch.load(path, map_location="cpu")
    except FileNotFoundError:
        sys.exit(f"torch_to_h5.py: no file {path}")
    except Exception as e:  # noqa: BLE001 - torch raises many kinds
        sys.exit(f"torch_to_h5.py: cannot load {path} with torch.load: {e}")


def twin_state(args):
    import torch

    sys.path.insert(0, HERE)
    import torch_models

    torch.manual_seed(args.seed)
    try:
        model = torch_models.build(args.model, **parse_params(args.param))
    except (KeyError, TypeError, ValueError) as e:
        sys.exit(f"torch_to_h5.py: --model {args.model}: {e.args[0] if e.args else e}")
    if args.load:
        sd = state_dict_from(load_saved(args.load), args.key, args.load)
        try:
            model.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            sys.exit(f"torch_to_h5.py: {args.load} does not fit the twin {args.model}: {e}")
    return model.state_dict()


def write_h5(sd, out, gzip):
    import h5py
    import torch

    tmp = out + ".tmp"
    count = 0
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["exported_by"] = "tools/torch_to_h5.py (torch " + torch.__version__ + ")"
            for k, v in sd.items():
                if not isinstance(v, torch.Tensor):
                    print(f"torch_to_h5.py: skipping '{k}' ({type(v).__name__}, not a tensor)", file=sys.stderr)
                    continue
                if "/" in k:
                    sys.exit(f"torch_to_h5.py: name '{k}' contains '/', which HDF5 would turn into groups")
                t = v.detach().cpu().contiguous()
                if t.is_floating_point() and t.dtype != torch.float32:
                    t = t.float()
                a = t.numpy()
                kw = {"compression": "gzip", "compression_opts": 4} if gzip and a.ndim > 0 and a.size > 0 else {}
                f.create_dataset(k, data=a, **kw)  # 0-d stays a scalar dataset
                count += 1
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return count


def main():
    ap = argparse.ArgumentParser(
        prog="torch_to_h5.py", description=__doc__.split("\n\n")[0],
        epilog=__doc__[__doc__.index("Examples:"):], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", nargs="?", help="file saved with torch.save (state dict, module or checkpoint dict)")
    ap.add_argument("-o", "--out", required=True, help="HDF5 file to write")
    ap.add_argument("--key", help="entry of a checkpoint dict that holds the state dict (e.g. model)")
    ap.add_argument("--model", help="a zoo twin from tools/torch_models.py (lenet5, resnet8, ...)")
    ap.add_argument("--param", action="append", metavar="K=V", help="twin parameter (repeatable), e.g. input_size=28")
    ap.add_argument("--load", help="with --model: a saved state dict to load into the twin (strict)")
    ap.add_argument("--seed", type=int, default=0, help="with --model and no --load: torch.manual_seed for the init")
    ap.add_argument("--gzip", action="store_true", help="gzip-compress the datasets (lowbit reads gzip, not lzf)")
    args = ap.parse_args()
    need_modules()
    if args.model and args.input:
        ap.error("give either INPUT or --model NAME [--load FILE], not both")
    if not args.model and not args.input:
        ap.error("give INPUT (a torch.save file) or --model NAME")
    if (args.load or args.param) and not args.model:
        ap.error("--load and --param need --model")
    sd = twin_state(args) if args.model else state_dict_from(load_saved(args.input), args.key, args.input)
    n = write_h5(sd, args.out, args.gzip)
    print(f"wrote {args.out}: {n} tensors")


if __name__ == "__main__":
    main()
