"""Image classifiers returning one logit per image (DESIGN §10).

``small``: four conv blocks (16-32-64-64 channels, BatchNorm, ReLU, 2x2 max-pool; the
first convolution has stride 2), global average pooling and a linear head: about 4 ms per
128 x 128 image and training step on one CPU thread (5x less than stride 1).

``vgg11`` / ``vgg16``: configurations A and D of Simonyan & Zisserman (2015, Table 1),
``resnet18``: He et al. (2016, Table 1, basic blocks [2, 2, 2, 2]); written here from the
papers, with parameter names laid out as torchvision's (``features.N``,
``classifier.N``; ``conv1``, ``bn1``, ``layerK.B.convJ``, ``fc``), so a state dict a user
saved from a torchvision model with ``num_classes=1`` loads with ``--weights``.
Nothing is downloaded: weights are random until trained or loaded.
"""
from __future__ import annotations

import os

import torch
from torch import nn

from ..errors import ConfigError, PersistenceError

ARCHS = ("small", "vgg11", "vgg16", "resnet18")
_VGG = {"vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
        "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                  512, 512, 512, "M"]}


class SmallCNN(nn.Module):
    def __init__(self, in_channels: int = 1, widths=(16, 32, 64, 64)):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for i, w in enumerate(widths):
            layers += [nn.Conv2d(c, w, 3, stride=2 if i == 0 else 1, padding=1, bias=False),
                       nn.BatchNorm2d(w),
                       nn.ReLU(), nn.MaxPool2d(2)]
            c = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, 1)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class VGG(nn.Module):
    def __init__(self, config: list, in_channels: int = 1, hidden: int = 4096,
                 dropout: float = 0.5):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for v in config:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=False)]
                c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(c * 49, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu2 = nn.ReLU()
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                            nn.BatchNorm2d(c_out))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu2(self.bn2(self.conv2(out)) + idt)


class ResNet18(nn.Module):
    def __init__(self, in_channels: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        c = 64
        for k, w in enumerate((64, 128, 256, 512), start=1):
            stride = 1 if k == 1 else 2
            setattr(self, f"layer{k}", nn.Sequential(BasicBlock(c, w, stride),
                                                     BasicBlock(w, w, 1)))
            c = w
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, 1)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build_backbone(arch: str, in_channels: int = 1) -> nn.Module:
    """A fresh image classifier (one logit) of architecture ``arch`` (see ``ARCHS``)."""
    if arch == "small":
        return SmallCNN(in_channels)
    if arch in _VGG:
        return VGG(_VGG[arch], in_channels)
    if arch == "resnet18":
        return ResNet18(in_channels)
    raise ConfigError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}.")


def load_backbone_weights(net: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load a state dict saved with ``torch.save(model.state_dict(), path)`` into ``net``.

    Raises
    ------
    PersistenceError
        A missing or unreadable file, or weights of another architecture (the
        mismatching parameter names and shapes are listed).
    """
    if not os.path.isfile(path):
        raise PersistenceError(f"weights file {path} does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:                                   # noqa: BLE001 - reworded
        raise PersistenceError(f"cannot read weights from {path}: {exc}; save them with "
                               "torch.save(model.state_dict(), path).") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"],
                                                                        dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise PersistenceError(f"{path} holds a {type(state).__name__}, not a state dict; "
                               "save it with torch.save(model.state_dict(), path).")
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:4])}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:4])}")
        if shapes:
            parts.append("shape of " + ", ".join(
                f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}" for k in shapes[:3]))
        raise PersistenceError(f"weights in {path} do not fit this architecture ("
                               + "; ".join(parts) + "); pass the --arch they were trained "
                               "with (one output logit, the images' channel count).")
    net.load_state_dict(state)
    return net
