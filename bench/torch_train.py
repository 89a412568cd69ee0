#!/usr/bin/python3
"""PyTorch side of the training benchmark: the twin of a zoo model (tools/torch_models.py),
SGD momentum 0.9 on a fixed random batch, same batch/steps/threads as lowbit-bench.
Prints: model=NAME mode=float img_s=X steps=N batch=B threads=T rss_mb=M"""
import argparse
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tools'))
try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit('bench/torch_train.py: PyTorch missing: run with Debian /usr/bin/python3 and apt-get install python3-torch')
import torch_models  # noqa: E402
import warnings  # noqa: E402
warnings.filterwarnings('ignore')

p = argparse.ArgumentParser()
p.add_argument('--model', required=True)
p.add_argument('--param', action='append', default=[])
p.add_argument('--batch', type=int, default=128)
p.add_argument('--steps', type=int, default=50)
p.add_argument('--warmup', type=int, default=5)
p.add_argument('--threads', type=int, default=2)
p.add_argument('--input', required=True, help='C,H,W')
p.add_argument('--mode', choices=['float', 'qat'], default='float',
               help='qat: PyTorch eager-mode QAT (prepare_qat with the fbgemm qconfig)')
a = p.parse_args()
torch.set_num_threads(a.threads)
params = {k: float(v) for k, v in (s.split('=', 1) for s in a.param)}
model = torch_models.build(a.model, **params)
c, h, w = (int(v) for v in a.input.split(','))
g = torch.Generator().manual_seed(7)
x = torch.randn(a.batch, c, h, w, generator=g)
with torch.no_grad():
    classes = model(x[:2]).shape[1]
y = torch.randint(0, classes, (a.batch,), generator=g)
if a.mode == 'qat':
    import torch.ao.quantization as tq

    class Wrapped(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.quant, self.body, self.dequant = tq.QuantStub(), m, tq.DeQuantStub()

        def forward(self, x):
            return self.dequant(self.body(self.quant(x)))

    model = Wrapped(model)
    model.qconfig = tq.get_default_qat_qconfig('fbgemm')
    model.train()
    tq.prepare_qat(model, inplace=True)
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
model.train()


def step():
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


for _ in range(a.warmup):
    step()
t0 = time.perf_counter()
for _ in range(a.steps):
    step()
sec = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(f'model={a.model} mode={a.mode} img_s={a.batch * a.steps / sec:.1f} steps={a.steps} batch={a.batch} '
      f'threads={a.threads} rss_mb={rss:.1f}')
