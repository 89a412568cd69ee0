"""PyTorch twins of the lowbit model zoo (models/*.yaml).

Each twin is written independently of its YAML file (it is the oracle the zoo is tested
against, tests/models/test_zoo.cpp), with the same layers in the same order and the same
names, so that ``model.state_dict()`` keys are exactly lowbit's parameter and buffer names
("<layer name>.weight", ".bias", ".running_mean", ".running_var", ".num_batches_tracked").
Layers without state (activations, pooling, flatten, dropout) carry the YAML names too.

    import torch_models
    m = torch_models.build("mobilenet_v1", width=0.25, input_size=32, num_classes=10)

``build(name, **params)`` takes the YAML file's ``params:`` (same names, same defaults).
Runs with Debian's python3-torch (1.13); only torch is needed.

One difference in the state dicts: PyTorch's num_batches_tracked is a 0-d int64 tensor,
lowbit's a (1) int32 tensor; ``load_lowbit_state`` converts.
"""
import math
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["MODELS", "build", "load_lowbit_state", "Conv2dSame"]


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow SAME padding: output = ceil(input / stride), the odd padding
    row/column at the bottom/right. The state dict is a plain Conv2d's."""

    def __init__(self, *args, **kwargs):
        kwargs.pop("padding", None)
        super().__init__(*args, padding=0, **kwargs)

    @staticmethod
    def _pad(size, k, s, d):
        out = (size + s - 1) // s
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        return total // 2, total - total // 2

    def forward(self, x):
        top, bottom = self._pad(x.shape[2], self.kernel_size[0], self.stride[0], self.dilation[0])
        left, right = self._pad(x.shape[3], self.kernel_size[1], self.stride[1], self.dilation[1])
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


class GlobalAvgPool(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3), keepdim=True)


def _seq(layers):
    return nn.Sequential(OrderedDict(layers))


# ---- models ---------------------------------------------------------------------------------

def lenet5(in_channels=1, input_size=28, num_classes=10):
    s = (input_size // 2 - 4) // 2  # conv 5 pad 2, pool 2, conv 5, pool 2
    return _seq([
        ("conv1", nn.Conv2d(in_channels, 6, 5, padding=2)),
        ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(6, 16, 5)),
        ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(16 * s * s, 120)),
        ("relu3", nn.ReLU()),
        ("fc2", nn.Linear(120, 84)),
        ("relu4", nn.ReLU()),
        ("fc3", nn.Linear(84, num_classes)),
    ])


class ResNet8(nn.Module):
    """MLPerf Tiny ResNet-8 (see models/resnet8.yaml)."""

    def __init__(self, in_channels=3, input_size=32, num_classes=10):
        super().__init__()
        del input_size  # any size: global pooling
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        cin = 16
        for stage, (cout, stride) in enumerate([(16, 1), (32, 2), (64, 2)], 1):
            setattr(self, f"stage{stage}_conv1", nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False))
            setattr(self, f"stage{stage}_bn1", nn.BatchNorm2d(cout))
            setattr(self, f"stage{stage}_conv2", nn.Conv2d(cout, cout, 3, padding=1, bias=False))
            setattr(self, f"stage{stage}_bn2", nn.BatchNorm2d(cout))
            if stride != 1:
                setattr(self, f"stage{stage}_shortcut", nn.Conv2d(cin, cout, 1, stride=stride))
            cin = cout
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        for stage in (1, 2, 3):
            m = lambda n: getattr(self, f"stage{stage}_{n}")  # noqa: E731
            y = F.relu(m("bn1")(m("conv1")(x)))
            y = m("bn2")(m("conv2")(y))
            shortcut = m("shortcut")(x) if stage > 1 else x
            x = F.relu(y + shortcut)
        x = x.mean(dim=(2, 3))
        return self.fc(x)


MOBILENET_V1_PAIRS = [  # (pointwise output channels at width 1, depthwise stride)
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
]


def mobilenet_v1(width=1.0, input_size=224, in_channels=3, num_classes=1000):
    """MobileNetV1 with TF SAME padding and ReLU6 (see models/mobilenet_v1.yaml)."""
    del input_size  # any size: SAME padding and global pooling

    def ch(n):
        return int(n * width)

    layers = [
        ("conv1", Conv2dSame(in_channels, ch(32), 3, stride=2, bias=False)),
        ("conv1_bn", nn.BatchNorm2d(ch(32))),
        ("conv1_relu", nn.ReLU6()),
    ]
    cin = ch(32)
    for i, (n, stride) in enumerate(MOBILENET_V1_PAIRS, 1):
        cout = ch(n)
        layers += [
            (f"conv_dw_{i}", Conv2dSame(cin, cin, 3, stride=stride, groups=cin, bias=False)),
            (f"conv_dw_{i}_bn", nn.BatchNorm2d(cin)),
            (f"conv_dw_{i}_relu", nn.ReLU6()),
            (f"conv_pw_{i}", Conv2dSame(cin, cout, 1, bias=False)),
            (f"conv_pw_{i}_bn", nn.BatchNorm2d(cout)),
            (f"conv_pw_{i}_relu", nn.ReLU6()),
        ]
        cin = cout
    layers += [("pool", GlobalAvgPool()), ("flatten", nn.Flatten()), ("fc", nn.Linear(cin, num_classes))]
    return _seq(layers)


def ds_cnn(in_channels=1, input_h=49, input_w=10, num_classes=12):
    """MLPerf Tiny keyword-spotting DS-CNN (see models/ds_cnn.yaml)."""
    del input_h, input_w
    layers = [
        ("conv1", Conv2dSame(in_channels, 64, (10, 4), stride=2, bias=False)),
        ("conv1_bn", nn.BatchNorm2d(64)),
        ("conv1_relu", nn.ReLU()),
        ("conv1_dropout", nn.Dropout(0.2)),
    ]
    for i in range(1, 5):
        layers += [
            (f"conv_dw_{i}", Conv2dSame(64, 64, 3, groups=64, bias=False)),
            (f"conv_dw_{i}_bn", nn.BatchNorm2d(64)),
            (f"conv_dw_{i}_relu", nn.ReLU()),
            (f"conv_pw_{i}", Conv2dSame(64, 64, 1, bias=False)),
            (f"conv_pw_{i}_bn", nn.BatchNorm2d(64)),
            (f"conv_pw_{i}_relu", nn.ReLU()),
        ]
    layers += [("dropout", nn.Dropout(0.4)), ("pool", GlobalAvgPool()), ("flatten", nn.Flatten()),
               ("fc", nn.Linear(64, num_classes))]
    return _seq(layers)


def _finn_fc(hidden):
    """FINN TFC/SFC/LFC float stand-in: hardtanh activations (see models/tfc.yaml)."""

    def make(in_channels=1, input_size=28, num_classes=10):
        layers = [("flatten", nn.Flatten()), ("in_dropout", nn.Dropout(0.2))]
        fin = in_channels * input_size * input_size
        for i in (1, 2, 3):
            layers += [
                (f"fc{i}", nn.Linear(fin, hidden, bias=False)),
                (f"bn{i}", nn.BatchNorm1d(hidden)),
                (f"act{i}", nn.Hardtanh()),
                (f"dropout{i}", nn.Dropout(0.2)),
            ]
            fin = hidden
        layers.append(("fc4", nn.Linear(fin, num_classes)))
        return _seq(layers)

    return make


def cnv(in_channels=3, input_size=32, num_classes=10):
    """FINN CNV float stand-in: hardtanh activations, BN eps 1e-4 (see models/cnv.yaml)."""
    layers, cin, s = [], in_channels, input_size
    spec = [(1, 64, False), (2, 64, True), (3, 128, False), (4, 128, True), (5, 256, False), (6, 256, False)]
    for i, cout, pool in spec:
        layers += [
            (f"conv{i}", nn.Conv2d(cin, cout, 3, bias=False)),
            (f"conv{i}_bn", nn.BatchNorm2d(cout, eps=1e-4)),
            (f"conv{i}_act", nn.Hardtanh()),
        ]
        cin, s = cout, s - 2
        if pool:
            layers.append((f"pool{i // 2}", nn.MaxPool2d(2)))
            s //= 2
    if s < 1:
        raise ValueError(f"cnv: input_size {input_size} leaves no pixels after the last conv (needs >= 32)")
    layers += [
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(cin * s * s, 512, bias=False)),
        ("fc1_bn", nn.BatchNorm1d(512, eps=1e-4)),
        ("fc1_act", nn.Hardtanh()),
        ("fc2", nn.Linear(512, 512, bias=False)),
        ("fc2_bn", nn.BatchNorm1d(512, eps=1e-4)),
        ("fc2_act", nn.Hardtanh()),
        ("fc3", nn.Linear(512, num_classes)),
    ]
    return _seq(layers)


MODELS = {
    "lenet5": lenet5,
    "resnet8": ResNet8,
    "mobilenet_v1": mobilenet_v1,
    "ds_cnn": ds_cnn,
    "tfc": _finn_fc(64),
    "sfc": _finn_fc(256),
    "lfc": _finn_fc(1024),
    "cnv": cnv,
}


def build(name, **params):
    """The twin of models/<name>.yaml with the given params (the YAML's params: defaults)."""
    if name not in MODELS:
        raise KeyError(f"unknown model '{name}' (models: {', '.join(sorted(MODELS))})")
    # YAML params are numbers; integer-valued floats (e.g. 10.0 from a C++ test) become ints.
    clean = {k: (int(v) if isinstance(v, float) and k != "width" and v == math.floor(v) else v)
             for k, v in params.items()}
    return MODELS[name](**clean)


def load_lowbit_state(model, tensors):
    """Loads a {lowbit name: tensor} dict (e.g. read from a lowbit checkpoint or passed by a
    test) into `model`, converting shapes/dtypes where lowbit differs (num_batches_tracked)."""
    ref = model.state_dict()
    missing = sorted(set(ref) - set(tensors))
    extra = sorted(set(tensors) - set(ref))
    if missing or extra:
        raise KeyError(f"state mismatch: missing {missing}, unexpected {extra}")
    sd = OrderedDict()
    for k, r in ref.items():
        t = torch.as_tensor(tensors[k])
        if t.numel() != r.numel():
            raise ValueError(f"{k}: lowbit shape {tuple(t.shape)} vs torch {tuple(r.shape)}")
        sd[k] = t.reshape(r.shape).to(r.dtype)
    model.load_state_dict(sd)
    return model


if __name__ == "__main__":
    import sys

    for name in (sys.argv[1:] or sorted(MODELS)):
        m = build(name)
        n = sum(p.numel() for p in m.parameters())
        print(f"{name}: {n} parameters")
