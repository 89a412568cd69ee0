#!/usr/bin/python3
"""PyTorch side of the inference benchmark: the twin of a zoo model (tools/torch_models.py)
converted to PyTorch's int8 engine (torch.ao.quantization FX graph mode: eager mode cannot convert
the residual adds of resnet8 without editing the model), calibrated on the same kind of random
batch, timed at the same batch size and thread count as lowbit-bench-infer. The quantized engine
is fbgemm where the build has it, else onednn (Debian's torch 1.13 has onednn and qnnpack only).
Prints: model=NAME img_s=X batch=B threads=T engine=E"""
import argparse
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tools'))
try:
    import torch
    import torch.ao.quantization as tq
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
except ImportError:
    sys.exit('bench/torch_infer.py: PyTorch missing: run with Debian /usr/bin/python3 and apt-get install python3-torch')
import torch_models  # noqa: E402
warnings.filterwarnings('ignore')

p = argparse.ArgumentParser()
p.add_argument('--model', required=True)
p.add_argument('--param', action='append', default=[])
p.add_argument('--batch', type=int, default=128)
p.add_argument('--iters', type=int, default=20)
p.add_argument('--warmup', type=int, default=3)
p.add_argument('--threads', type=int, default=2)
p.add_argument('--input', required=True, help='C,H,W')
a = p.parse_args()
torch.set_num_threads(a.threads)
engines = torch.backends.quantized.supported_engines
engine = next((e for e in ('fbgemm', 'x86', 'onednn', 'qnnpack') if e in engines), None)
if engine is None:
    sys.exit(f'bench/torch_infer.py: no quantized engine in this PyTorch ({engines})')
torch.backends.quantized.engine = engine
params = {k: float(v) for k, v in (s.split('=', 1) for s in a.param)}
model = torch_models.build(a.model, **params).eval()
c, h, w = (int(v) for v in a.input.split(','))
x = torch.randn(a.batch, c, h, w, generator=torch.Generator().manual_seed(7))
qconfig = tq.get_default_qconfig_mapping(engine)
prepared = prepare_fx(model, qconfig, example_inputs=(x[:2],))
with torch.no_grad():
    for _ in range(3):
        prepared(x)
    qmodel = convert_fx(prepared)
    for _ in range(a.warmup):
        qmodel(x)
    t0 = time.perf_counter()
    for _ in range(a.iters):
        qmodel(x)
    sec = time.perf_counter() - t0
print(f'model={a.model} img_s={a.batch * a.iters / sec:.1f} batch={a.batch} threads={a.threads} engine={engine}')
