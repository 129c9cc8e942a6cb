"""Model code and checkpoints in the styles students hand in (CIFAR ResNet-18s
copied from the popular repositories, torchvision adaptations, SimpleCNNs with
functional activations or an ``nn.Sequential`` wrapper, checkpoints saved from
DataParallel or torch.compile, near-miss names, broken neighbours), written
fresh for the tests. ``write_*`` functions build one submission folder each."""

from __future__ import annotations

from pathlib import Path

import torch
from helpers import labs, submissions

# --- ResNet-18 ---------------------------------------------------------------
# The most-copied CIFAR ResNet-18: ``_make_layer``, a ``shortcut`` Sequential,
# F.relu in forward, a ``ResNet18()`` factory returning ``ResNet(...)``.
KUANGLIU = '''"""ResNet in PyTorch (adapted from a popular CIFAR repository)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super(BasicBlock, self).__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)

        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != self.expansion * planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, self.expansion * planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(self.expansion * planes)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        out = F.relu(out)
        return out


class ResNet(nn.Module):
    def __init__(self, block, num_blocks, num_classes=10):
        super(ResNet, self).__init__()
        self.in_planes = 64

        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(block, 64, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 128, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 256, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(block, 512, num_blocks[3], stride=2)
        self.linear = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, num_blocks, stride):
        strides = [stride] + [1] * (num_blocks - 1)
        layers = []
        for stride in strides:
            layers.append(block(self.in_planes, planes, stride))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer1(out)
        out = self.layer2(out)
        out = self.layer3(out)
        out = self.layer4(out)
        out = F.avg_pool2d(out, 4)
        out = out.view(out.size(0), -1)
        out = self.linear(out)
        return out


def ResNet18():
    return ResNet(BasicBlock, [2, 2, 2, 2])


def test():
    net = ResNet18()
    y = net(torch.randn(1, 3, 32, 32))
    print(y.size())
'''

# torchvision's naming: ``downsample`` passed into the block, ``self.inplanes``,
# ``_make_layer(block, planes, blocks, stride=1)``, CIFAR stem.
TORCHVISION_STYLE = """import torch
from torch import nn


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet18(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(BasicBlock, 64, 2)
        self.layer2 = self._make_layer(BasicBlock, 128, 2, stride=2)
        self.layer3 = self._make_layer(BasicBlock, 256, 2, stride=2)
        self.layer4 = self._make_layer(BasicBlock, 512, 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)
"""

# torchvision's own ResNet-18, adapted to CIFAR: nothing written with make_layer.
TORCHVISION_ADAPTED = """import torch.nn as nn
from torchvision.models import resnet18


def ResNet18(num_classes=10):
    model = resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model
"""

# A helper outside the class; the stages are unnamed children of one nn.Sequential.
UNNAMED_STAGES = """import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout),
        )
        self.skip = nn.Sequential()
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


def make_layer(cin, cout, n, stride):
    return nn.Sequential(Block(cin, cout, stride), *[Block(cout, cout) for _ in range(n - 1)])


class ResNet18(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
            make_layer(64, 64, 2, 1),
            make_layer(64, 128, 2, 2),
            make_layer(128, 256, 2, 2),
            make_layer(256, 512, 2, 2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        return self.fc(self.features(x))
"""


def reference_resnet(*edits: tuple[str, str]) -> str:
    return labs.reference_source("lab2/resnet18.py", *edits)


IMAGENET_STEM = (("imagenet_stem: bool = False", "imagenet_stem: bool = True"),)
BUILD_STAGE = tuple(
    (f"self.layer{k} = self.make_layer(", f"self.layer{k} = self.build_stage(") for k in range(1, 5)
) + (("    def make_layer(", "    def build_stage("),)
RESNET_CASE = (("class ResNet18(nn.Module):", "class Resnet18(nn.Module):"),)

BROKEN_EXIT = """import sys
import torch.nn as nn

if not sys.argv[0].endswith("train.py"):
    sys.exit("run this file with python train.py")


class ResNet18(nn.Module):
    pass
"""

BROKEN_SYNTAX = """import torch.nn as nn


class ResNet18(nn.Module):
    def __init__(self, num_classes=10)
        super().__init__()
"""

# --- SimpleCNN -----------------------------------------------------------------
# Activations called in forward, layers as attributes (same parameters, in order).
SIMPLE_FUNCTIONAL = """class SimpleCNN(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(64)
        self.pool = nn.MaxPool2d(2, 2)
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(64 * 8 * 8, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = self.pool(F.relu(self.bn2(self.conv2(x))))
        x = x.view(-1, 64 * 8 * 8)
        return self.fc(self.dropout(x))
"""

# Everything in one ``self.model = nn.Sequential(...)``: keys are saved as ``model.…``.
SIMPLE_WRAPPER = """class SimpleCNN(nn.Module):
    def __init__(self):
        super(SimpleCNN, self).__init__()
        self.model = nn.Sequential(
            nn.Conv2d(3, 32, kernel_size=3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, kernel_size=3, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(64 * 8 * 8, 10),
        )

    def forward(self, x):
        return self.model(x)
"""

# An MLP copied from an MNIST tutorial, handed in as the SimpleCNN.
SIMPLE_MLP = """class SimpleCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, 256)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x):
        x = x.view(-1, 28 * 28)
        return self.fc2(F.relu(self.fc1(x)))
"""

NOTEBOOK_IMPORTS = "import torch.nn.functional as F\n"


def simple_source(name: str = "SimpleCNN") -> str:
    return submissions.simple_cnn_source().replace("class SimpleCNN", f"class {name}")


def renamed(state: dict, source: str, name: str = "SimpleCNN") -> dict:
    """The trained reference weights under another model's key names (same order, same shapes)."""
    header = "import torch\nfrom torch import nn\nimport torch.nn.functional as F\n"
    namespace = labs.load_module("variant", header + source)
    own = namespace[name]().state_dict()
    assert [v.shape for v in own.values()] == [v.shape for v in state.values()]
    return dict(zip(own, state.values(), strict=True))


def prefixed(state: dict, prefix: str) -> dict:
    return {prefix + k: v for k, v in state.items()}


def lab2_task1(
    folder: Path,
    simple_cnn: str,
    weights: dict | bytes | None,
    weights_name: str = "simple_cnn.pth",
    extra_cells: list[str] | None = None,
    resnet: str | None = None,
) -> Path:
    """A lab 2 hand-in: the notebook defining the SimpleCNN, its checkpoint, maybe resnet18.py."""
    nb = submissions.lab2_notebook(simple_cnn=NOTEBOOK_IMPORTS + simple_cnn, extra_cells=extra_cells)
    files: dict = {"StudentID_lab2.ipynb": nb, "StudentID_lab2.pdf": submissions.PDF}
    if weights is not None:
        files[weights_name] = weights
    if resnet is not None:
        files["resnet18.py"] = resnet
    return labs.write(folder, files)


def save_whole_model(state: dict, target: Path) -> bytes:
    """``torch.save(model)``: a pickle that names the class (code runs on load)."""
    from reference.lab2.simple_cnn import SimpleCNN

    model = SimpleCNN()
    model.load_state_dict(state)
    torch.save(model, target)
    return target.read_bytes()


def truncated(state: dict, target: Path) -> bytes:
    """A checkpoint cut off halfway (an interrupted upload or Drive sync)."""
    torch.save(state, target)
    data = target.read_bytes()
    return data[: len(data) // 2]


# --- Fashion-MNIST and the lecture 15 networks ---------------------------------
def fashion_near_miss() -> str:
    """The lab 4 CNN under the name the student chose."""
    return labs.reference_source("lab4/fashion_cnn.py", ("class FashionCNN(", "class FashionMNISTCNN("))


FASHION_MLP = '''import torch
from torch import nn


class FashionCNN(nn.Module):
    """(it is an MLP)"""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Dropout(0.2),
            nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10),
        )

    def forward(self, x):
        return self.net(x)
'''

# LeNet-5 as a module-level nn.Sequential (the d2l style), no LeNet class.
LENET_SEQUENTIAL = """import torch
from torch import nn

net = nn.Sequential(
    nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
    nn.AvgPool2d(kernel_size=2, stride=2),
    nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
    nn.AvgPool2d(kernel_size=2, stride=2),
    nn.Flatten(),
    nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
    nn.Linear(120, 84), nn.Sigmoid(),
    nn.Linear(84, 10))
"""

# AlexNet as in the original paper's arithmetic: 227x227 input, 6x6x256 before the classifier.
ALEXNET_227 = """import torch
import torch.nn as nn


class AlexNet(nn.Module):
    def __init__(self, num_classes=10):
        super(AlexNet, self).__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 96, kernel_size=11, stride=4),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(96, 256, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(0.5),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)
"""
