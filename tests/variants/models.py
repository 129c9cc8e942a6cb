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

# The other most-copied CIFAR ResNet (written for CIFAR-100): the paper's stage names
# ``conv2_x`` ... ``conv5_x``, blocks with a ``residual_function`` Sequential, a lower-case
# ``resnet18()`` factory.
CIFAR100_STYLE = """import torch.nn as nn


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.residual_function = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(
                out_channels, out_channels * BasicBlock.expansion, kernel_size=3, padding=1, bias=False
            ),
            nn.BatchNorm2d(out_channels * BasicBlock.expansion),
        )
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != BasicBlock.expansion * out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(
                    in_channels, out_channels * BasicBlock.expansion, kernel_size=1, stride=stride, bias=False
                ),
                nn.BatchNorm2d(out_channels * BasicBlock.expansion),
            )

    def forward(self, x):
        return nn.ReLU(inplace=True)(self.residual_function(x) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, block, num_block, num_classes=10):
        super().__init__()
        self.in_channels = 64
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True)
        )
        self.conv2_x = self._make_layer(block, 64, num_block[0], 1)
        self.conv3_x = self._make_layer(block, 128, num_block[1], 2)
        self.conv4_x = self._make_layer(block, 256, num_block[2], 2)
        self.conv5_x = self._make_layer(block, 512, num_block[3], 2)
        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, out_channels, num_blocks, stride):
        strides = [stride] + [1] * (num_blocks - 1)
        layers = []
        for stride in strides:
            layers.append(block(self.in_channels, out_channels, stride))
            self.in_channels = out_channels * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        output = self.conv1(x)
        output = self.conv2_x(output)
        output = self.conv3_x(output)
        output = self.conv4_x(output)
        output = self.conv5_x(output)
        output = self.avg_pool(output)
        output = output.view(output.size(0), -1)
        return self.fc(output)


def resnet18():
    return ResNet(BasicBlock, [2, 2, 2, 2])
"""

# The same network with PyTorch's default ``bias=True`` on every convolution (most students
# never pass ``bias=False``): each conv feeds a BatchNorm, which cancels the bias, so it is the
# reference network with 4,800 redundant parameters.
KUANGLIU_BIAS = KUANGLIU.replace(", bias=False", "")
# The control: the same 4,800 extra parameters, but the stem's and each block's first conv go
# through ReLU before their BatchNorm, so those biases do change the network.
KUANGLIU_BIAS_RELU_FIRST = KUANGLIU_BIAS.replace(
    "F.relu(self.bn1(self.conv1(x)))", "self.bn1(F.relu(self.conv1(x)))"
)

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

# Trained on a Colab GPU, CUDA hard-coded (line 10: ``device = torch.device("cuda")``); the
# grader has no GPU and runs each request on the CPU, with a note
CUDA_DEVICE = (("from torch import nn\n", 'from torch import nn\n\ndevice = torch.device("cuda")\n'),)
CUDA_INIT = reference_resnet(
    *CUDA_DEVICE, ("self.fc = nn.Linear(512, num_classes)", "self.fc = nn.Linear(512, num_classes).cuda()")
)
CUDA_FORWARD = reference_resnet(*CUDA_DEVICE, ("x = self.stem(x)", "x = self.stem(x.to(device))"))
CUDA_FACTORY = reference_resnet(
    (
        "x = self.stem(x)",
        'mean = torch.tensor([0.5, 0.5, 0.5], device="cuda").view(1, 3, 1, 1)\n'
        "        x = self.stem(x - mean)",
    ),
)
CUDA_TOP_LEVEL = reference_resnet(*CUDA_DEVICE) + "\n\nmodel = ResNet18().to(device)\n"

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

# Dropout called as a function without ``training=self.training``: on in eval mode too.
SIMPLE_DROPOUT_ON = SIMPLE_FUNCTIONAL.replace("self.fc(self.dropout(x))", "self.fc(F.dropout(x, 0.5))")
# The input centred on its batch's mean inside forward: an image's answer depends on its batch.
SIMPLE_BATCH_CENTRED = SIMPLE_FUNCTIONAL.replace(
    "x = self.pool(F.relu(self.bn1(self.conv1(x))))",
    "x = x - x.mean(dim=0, keepdim=True)\n        x = self.pool(F.relu(self.bn1(self.conv1(x))))",
)

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

# The same stack spelled other ways at once: padding="same", kernel_size=(3, 3), blocks in an
# nn.ModuleList of OrderedDict Sequentials (with an nn.Identity), torch.relu, F.max_pool2d(x, 2),
# x.reshape and F.dropout(x, 0.5, self.training).
SIMPLE_SPELLED = """from collections import OrderedDict


class SimpleCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([
            nn.Sequential(OrderedDict([
                ("conv", nn.Conv2d(3, 32, kernel_size=(3, 3), padding="same")),
                ("bn", nn.BatchNorm2d(32)),
                ("skip", nn.Identity()),
            ])),
            nn.Sequential(OrderedDict([
                ("conv", nn.Conv2d(32, 64, kernel_size=(3, 3), padding="same")),
                ("bn", nn.BatchNorm2d(64)),
            ])),
        ])
        self.classifier = nn.Linear(64 * 8 * 8, 10)

    def forward(self, x):
        for block in self.blocks:
            x = F.max_pool2d(torch.relu(block(x)), 2)
        x = x.reshape(x.shape[0], -1)
        x = F.dropout(x, 0.5, self.training)
        return self.classifier(x)
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
    test_transform: str | None = None,
    files: dict | None = None,
) -> Path:
    """A lab 2 hand-in: the notebook defining the SimpleCNN, its checkpoint, maybe resnet18.py
    (``files``: more of the student's files)."""
    nb = submissions.lab2_notebook(
        simple_cnn=NOTEBOOK_IMPORTS + simple_cnn, extra_cells=extra_cells, test_transform=test_transform
    )
    files = {"StudentID_lab2.ipynb": nb, "StudentID_lab2.pdf": submissions.PDF, **(files or {})}
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


def save_torchscript(state: dict, target: Path) -> bytes:
    """``torch.jit.save(torch.jit.script(model), PATH)``: the model as TorchScript, the
    format a deployment tutorial exports to."""
    import warnings

    from reference.lab2.simple_cnn import SimpleCNN

    model = SimpleCNN()
    model.load_state_dict(state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(model.eval()), target)
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


# --- lecture 15, lab 4 and lab 7 in more styles (issue: real student model code) ---
# LeNet with super(LeNet, self), functional pooling and torch.flatten; the max-pool
# variant with F.max_pool2d(kernel_size=..., stride=...) and x.view(x.size(0), -1).
LENET_FUNCTIONAL = """import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet(nn.Module):
    def __init__(self):
        super(LeNet, self).__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.avg_pool2d(torch.sigmoid(self.conv1(x)), 2)
        x = F.avg_pool2d(torch.sigmoid(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = torch.sigmoid(self.fc1(x))
        x = torch.sigmoid(self.fc2(x))
        return self.fc3(x)


class LeNetMaxPool(LeNet):
    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), kernel_size=2, stride=2)
        x = F.max_pool2d(F.relu(self.conv2(x)), kernel_size=2, stride=2)
        x = x.view(x.size(0), -1)
        x = F.dropout(F.relu(self.fc1(x)), 0.2, training=self.training)
        x = F.relu(self.fc2(x))
        return self.fc3(x)
"""

# torchvision's AlexNet layout (features / avgpool / classifier), one ReLU module reused
# for every activation, num_classes a required argument, nn.LazyLinear for the first FC.
ALEXNET_TORCHVISION = """import torch
from torch import nn


class AlexNet(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2)
        self.conv1 = nn.Conv2d(1, 64, kernel_size=11, stride=4, padding=2)
        self.conv2 = nn.Conv2d(64, 192, kernel_size=5, padding=2)
        self.conv3 = nn.Conv2d(192, 384, kernel_size=3, padding=1)
        self.conv4 = nn.Conv2d(384, 256, kernel_size=3, padding=1)
        self.conv5 = nn.Conv2d(256, 256, kernel_size=3, padding=1)
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=0.5),
            nn.LazyLinear(4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = self.relu(self.conv3(x))
        x = self.relu(self.conv4(x))
        x = self.pool(self.relu(self.conv5(x)))
        x = torch.flatten(self.avgpool(x), 1)
        return self.classifier(x)


model = AlexNet(num_classes=10)
print(model)
"""

# The book's current (d2l 1.0) blocks: lazy layers, no input-channel argument.
D2L_BLOCKS = """import torch
from torch import nn
from torch.nn import functional as F


def vgg_block(num_convs, out_channels):
    layers = []
    for _ in range(num_convs):
        layers.append(nn.LazyConv2d(out_channels, kernel_size=3, padding=1))
        layers.append(nn.ReLU())
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


class VGG(nn.Module):
    def __init__(self, arch=((1, 16), (1, 32), (2, 64)), num_classes=10):
        super().__init__()
        conv_blks = [vgg_block(*b) for b in arch]
        self.net = nn.Sequential(
            *conv_blks, nn.Flatten(),
            nn.LazyLinear(128), nn.ReLU(), nn.Dropout(0.5),
            nn.LazyLinear(num_classes))

    def forward(self, x):
        return self.net(x)


class Inception(nn.Module):
    # c1--c4 are the number of output channels for each branch
    def __init__(self, c1, c2, c3, c4, **kwargs):
        super(Inception, self).__init__(**kwargs)
        self.b1_1 = nn.LazyConv2d(c1, kernel_size=1)
        self.b2_1 = nn.LazyConv2d(c2[0], kernel_size=1)
        self.b2_2 = nn.LazyConv2d(c2[1], kernel_size=3, padding=1)
        self.b3_1 = nn.LazyConv2d(c3[0], kernel_size=1)
        self.b3_2 = nn.LazyConv2d(c3[1], kernel_size=5, padding=2)
        self.b4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.b4_2 = nn.LazyConv2d(c4, kernel_size=1)

    def forward(self, x):
        b1 = F.relu(self.b1_1(x))
        b2 = F.relu(self.b2_2(F.relu(self.b2_1(x))))
        b3 = F.relu(self.b3_2(F.relu(self.b3_1(x))))
        b4 = F.relu(self.b4_2(self.b4_1(x)))
        return torch.cat((b1, b2, b3, b4), dim=1)


class GoogLeNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(
            nn.LazyConv2d(16, kernel_size=3, padding=1), nn.ReLU(),
            Inception(8, (8, 16), (4, 8), 8),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            Inception(16, (16, 32), (8, 16), 16),
            nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.LazyLinear(num_classes))

    def forward(self, x):
        return self.net(x)


class Residual(nn.Module):
    \"\"\"The Residual block of ResNet models.\"\"\"
    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
        if use_1x1conv:
            self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)


class ResNet(nn.Module):
    def __init__(self, arch=((2, 16), (2, 32), (2, 64)), num_classes=10):
        super().__init__()
        self.net = nn.Sequential(nn.LazyConv2d(16, kernel_size=3, padding=1), nn.LazyBatchNorm2d(), nn.ReLU())
        for i, b in enumerate(arch):
            self.net.add_module(f'b{i+2}', self.block(*b, first_block=(i == 0)))
        self.net.add_module('last', nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.LazyLinear(num_classes)))

    def block(self, num_residuals, num_channels, first_block=False):
        blk = []
        for i in range(num_residuals):
            if i == 0 and not first_block:
                blk.append(Residual(num_channels, use_1x1conv=True, strides=2))
            else:
                blk.append(Residual(num_channels))
        return nn.Sequential(*blk)

    def forward(self, x):
        return self.net(x)
"""

# VGG from a cfg list, as torchvision's make_layers builds it; vgg_block as the lecture asks.
VGG_CFG = """import torch
import torch.nn as nn

cfg = [64, 'M', 128, 'M', 256, 256, 'M']


def vgg_block(num_convs, in_channels, out_channels):
    layers = []
    for _ in range(num_convs):
        layers += [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
        in_channels = out_channels
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


class VGG(nn.Module):
    def __init__(self, cfg=cfg, num_classes=10):
        super(VGG, self).__init__()
        blocks, in_channels, convs = [], 1, 0
        for v in cfg:
            if v == 'M':
                blocks.append(vgg_block(convs, in_channels, out))
                in_channels, convs = out, 0
            else:
                out, convs = v, convs + 1
        self.features = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(256, 256), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(256, num_classes))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)))
"""

# --- lab 2: ResNet-18 -----------------------------------------------------------
# make_layer a @staticmethod taking the input channels; the stages built with a list
# comprehension; BasicBlock.expansion; one ReLU module reused.
RESNET_STATIC = """import torch
import torch.nn as nn


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels, out_channels, stride=1):
        super(BasicBlock, self).__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels * BasicBlock.expansion:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels * BasicBlock.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels * BasicBlock.expansion))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, num_classes=10):
        super(ResNet18, self).__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self.make_layer(BasicBlock, 64, 64, 2, 1)
        self.layer2 = self.make_layer(BasicBlock, 64, 128, 2, 2)
        self.layer3 = self.make_layer(BasicBlock, 128, 256, 2, 2)
        self.layer4 = self.make_layer(BasicBlock, 256, 512, 2, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * BasicBlock.expansion, num_classes)

    @staticmethod
    def make_layer(block, in_channels, out_channels, num_blocks, stride):
        strides = [stride] + [1] * (num_blocks - 1)
        return nn.Sequential(*[
            block(in_channels if i == 0 else out_channels, out_channels, s) for i, s in enumerate(strides)
        ])

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))
"""

# make_layer as students write it when their signature is not the handout's
# (block, channels, num_blocks, stride): the reference with its four calls and its method replaced.
REFERENCE_CALLS = "".join(
    f"        self.layer{k} = self.make_layer(BasicBlock, {c}, 2, stride={s})\n"
    for k, c, s in ((1, 64, 1), (2, 128, 2), (3, 256, 2), (4, 512, 2))
)
REFERENCE_METHOD = """    def make_layer(
        self, block: type[nn.Module], channels: int, num_blocks: int, stride: int
    ) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(block(self.in_channels, channels, s))
            self.in_channels = channels
        return nn.Sequential(*layers)
"""


def make_layer_style(call: str, method: str, *edits: tuple[str, str]) -> str:
    """The reference ResNet-18 whose stages are built by ``call`` (a format string of the
    stage's input channels ``cin``, channels ``c`` and stride ``s``) with ``method``."""
    stages = ((1, 64, 64, 1), (2, 64, 128, 2), (3, 128, 256, 2), (4, 256, 512, 2))
    calls = "".join(
        f"        self.layer{k} = " + call.format(cin=i, c=c, s=s) + "\n" for k, i, c, s in stages
    )
    return reference_resnet((REFERENCE_CALLS, calls), (REFERENCE_METHOD, method), *edits)


# input channels passed in, no self.in_channels bookkeeping (the most common rewrite)
MAKE_LAYER_IN_OUT = make_layer_style(
    "self._make_layer(BasicBlock, {cin}, {c}, 2, {s})",
    """    def _make_layer(self, block, in_channels, out_channels, num_blocks, stride):
        layers = [block(in_channels, out_channels, stride)]
        for _ in range(1, num_blocks):
            layers.append(block(out_channels, out_channels, 1))
        return nn.Sequential(*layers)
""",
)
# BasicBlock hard-wired: no block parameter
MAKE_LAYER_NO_BLOCK = make_layer_style(
    "self.make_layer({c}, 2, stride={s})",
    """    def make_layer(self, out_channels, num_blocks, stride):
        strides = [stride] + [1] * (num_blocks - 1)
        layers = []
        for s in strides:
            layers.append(BasicBlock(self.in_channels, out_channels, s))
            self.in_channels = out_channels
        return nn.Sequential(*layers)
""",
)
# torchvision's names with its block fixed: _make_layer(planes, blocks, stride=1), self.inplanes
MAKE_LAYER_PLANES = make_layer_style(
    "self._make_layer({c}, 2, stride={s})",
    """    def _make_layer(self, planes, blocks, stride=1):
        layers = [BasicBlock(self.inplanes, planes, stride)]
        self.inplanes = planes
        for _ in range(1, blocks):
            layers.append(BasicBlock(self.inplanes, planes))
        return nn.Sequential(*layers)
""",
    ("        self.in_channels = 64\n", "        self.inplanes = 64\n"),
)
# keyword-only block count and stride
MAKE_LAYER_KEYWORDS = make_layer_style(
    "self.make_layer(BasicBlock, {c}, num_blocks=2, stride={s})",
    """    def make_layer(self, block, channels, *, num_blocks, stride=1):
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(block(self.in_channels, channels, s))
            self.in_channels = channels
        return nn.Sequential(*layers)
""",
)
# the controls: two blocks whatever num_blocks says; parameters whose names say nothing
MAKE_LAYER_IGNORES_COUNT = make_layer_style(
    "self._make_layer(BasicBlock, {cin}, {c}, 2, {s})",
    """    def _make_layer(self, block, in_channels, out_channels, num_blocks, stride):
        return nn.Sequential(block(in_channels, out_channels, stride), block(out_channels, out_channels, 1))
""",
)
# ResNet-18's two blocks per stage written into the helper: no count to pass
MAKE_LAYER_TWO_BLOCKS = make_layer_style(
    "self.make_layer(BasicBlock, {c}, {s})",
    """    def make_layer(self, block, out_channels, stride):
        first = block(self.in_channels, out_channels, stride)
        self.in_channels = out_channels
        return nn.Sequential(first, block(out_channels, out_channels, 1))
""",
)
MAKE_LAYER_UNNAMED = make_layer_style(
    "self.make_layer(BasicBlock, {cin}, {c}, 2, {s})",
    """    def make_layer(self, block, c1, c2, n, s):
        return nn.Sequential(block(c1, c2, s), *[block(c2, c2, 1) for _ in range(n - 1)])
""",
)

# A notebook exported by hand as a plain .py (no ! or % lines, no __main__ guard): the
# reference classes, then the notebook's data loading and 200 epochs of training.
TRAINING_SCRIPT = """

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
transform_train = transforms.Compose([
    transforms.RandomCrop(32, padding=4),
    transforms.RandomHorizontalFlip(),
    transforms.ToTensor(),
    transforms.Normalize((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
])
trainset = torchvision.datasets.CIFAR10(root="./data", train=True, download=True, transform=transform_train)
trainloader = torch.utils.data.DataLoader(trainset, batch_size=128, shuffle=True, num_workers=2)

model = ResNet18().to(device)
criterion = nn.CrossEntropyLoss()
optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=200)
for epoch in range(200):
    model.train()
    for inputs, targets in trainloader:
        inputs, targets = inputs.to(device), targets.to(device)
        optimizer.zero_grad()
        loss = criterion(model(inputs), targets)
        loss.backward()
        optimizer.step()
    scheduler.step()
    print(f"epoch {epoch}: loss {loss.item():.3f}")
torch.save(model.state_dict(), "resnet18.pth")
"""
SCRIPT_IMPORTS = (
    "from torch import nn\n",
    "from torch import nn\nimport torch.optim as optim\nimport torchvision\n"
    "import torchvision.transforms as transforms\n",
)
RESNET_SCRIPT = reference_resnet(SCRIPT_IMPORTS) + TRAINING_SCRIPT
# the controls: a top level that fails for another reason (a package the grader lacks) ...
RESNET_SUMMARY = (
    reference_resnet(("from torch import nn\n", "from torch import nn\nfrom torchsummary import summary\n"))
    + "\n\nsummary(ResNet18(), (3, 32, 32))\n"
)
# ... and a script whose model needs what the script computes (its class count from the data)
RESNET_SCRIPT_CLASSES = (
    reference_resnet(
        (
            SCRIPT_IMPORTS[0],
            SCRIPT_IMPORTS[1]
            + '\ntrainset = torchvision.datasets.CIFAR10("data", transform=transforms.ToTensor())\n'
            + "NUM_CLASSES = len(trainset.classes)\n",
        ),
        ("num_classes: int = 10,", "num_classes: int = NUM_CLASSES,"),
    )
    + TRAINING_SCRIPT.split("\nmodel = ")[0]
)

# The handout's make_layer, in a file downloaded from Colab (File > Download > .py):
# shell escapes and magics as they were typed, Drive mounted, a GPU hard-coded,
# training at the top level without a __main__ guard.
RESNET_COLAB = '''# -*- coding: utf-8 -*-
"""Lab2_ResNet18.ipynb

Automatically generated by Colab.

Original file is located at
    https://colab.research.google.com/drive/1AbCdEfGhIjKlMnOpQrStUvWxYz
"""

!pip install thop
%matplotlib inline

from google.colab import drive
drive.mount('/content/drive')

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import torchvision.transforms as transforms

device = torch.device('cuda')


class BasicBlock(nn.Module):
    def __init__(self, in_channels, channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.in_channels = 64
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self.make_layer(BasicBlock, 64, 2, stride=1)
        self.layer2 = self.make_layer(BasicBlock, 128, 2, stride=2)
        self.layer3 = self.make_layer(BasicBlock, 256, 2, stride=2)
        self.layer4 = self.make_layer(BasicBlock, 512, 2, stride=2)
        self.fc = nn.Linear(512, num_classes)

    def make_layer(self, block, channels, num_blocks, stride):
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(block(self.in_channels, channels, s))
            self.in_channels = channels
        return nn.Sequential(*layers)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(x.view(x.size(0), -1))


transform = transforms.Compose([transforms.ToTensor(),
                                transforms.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))])
trainset = torchvision.datasets.CIFAR10(root='/content/drive/MyDrive/data', train=True, download=True,
                                        transform=transform)
trainloader = torch.utils.data.DataLoader(trainset, batch_size=128, shuffle=True)

model = ResNet18().to(device)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
for epoch in range(30):
    for images, labels in trainloader:
        images, labels = images.to(device), labels.to(device)
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
torch.save(model.state_dict(), '/content/drive/MyDrive/resnet18.pth')
'''

# --- lab 7: stages in an nn.ModuleList, blocks by a module-level helper ---------
RESNET_MODULELIST = """from dataclasses import dataclass, field

import torch
from torch import nn

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class Config:
    widths: list[int] = field(default_factory=lambda: [64, 128, 256, 512])
    depths: list[int] = field(default_factory=lambda: [2, 2, 2, 2])
    num_classes: int = 10


class BasicBlock(nn.Module):
    expansion: int = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


def make_layer(in_planes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    layers = [BasicBlock(in_planes, planes, stride)]
    layers += [BasicBlock(planes, planes) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNet18(nn.Module):
    def __init__(self, num_classes: int, cfg: Config = Config()) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True)
        )
        stages, in_planes = [], 64
        for i, (w, d) in enumerate(zip(cfg.widths, cfg.depths)):
            stages.append(make_layer(in_planes, w, d, 1 if i == 0 else 2))
            in_planes = w
        self.stages = nn.ModuleList(stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.head(x)


model = ResNet18(num_classes=10).to(device)
print(model)
"""

# --- lab 4: a dataclass config, type hints, F.dropout(training=...), LazyLinear -----
FASHION_TYPED = """from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

NORMALIZE = {"mean": (0.2860,), "std": (0.3530,)}


@dataclass(frozen=True)
class CNNConfig:
    channels: tuple[int, int] = (32, 64)
    hidden: int = 128
    dropout: float = 0.25


class FashionCNN(nn.Module):
    def __init__(self, num_classes: int, config: CNNConfig = CNNConfig()) -> None:
        super(FashionCNN, self).__init__()
        c1, c2 = config.channels
        self.conv1 = nn.Conv2d(1, c1, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, kernel_size=3, padding=1)
        self.fc1 = nn.LazyLinear(config.hidden)
        self.fc2 = nn.Linear(config.hidden, num_classes)
        self.p = config.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, start_dim=1)
        x = F.dropout(F.relu(self.fc1(x)), p=self.p, training=self.training)
        return self.fc2(x)


if __name__ == "__main__":
    from torchsummary import summary
    summary(FashionCNN(10), (1, 28, 28))
"""

# Inception without the input channels but with ordinary layers: the d2l signature
# without the lazy layers that make it work (it runs only on 64-channel input).
INCEPTION_FIXED_INPUT = """import torch
from torch import nn
from torch.nn import functional as F


class Inception(nn.Module):
    def __init__(self, c1, c2, c3, c4):
        super().__init__()
        self.p1 = nn.Conv2d(64, c1, kernel_size=1)
        self.p2 = nn.Sequential(nn.Conv2d(64, c2[0], 1), nn.ReLU(), nn.Conv2d(c2[0], c2[1], 3, padding=1))
        self.p3 = nn.Sequential(nn.Conv2d(64, c3[0], 1), nn.ReLU(), nn.Conv2d(c3[0], c3[1], 5, padding=2))
        self.p4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(64, c4, 1))

    def forward(self, x):
        return torch.cat([F.relu(self.p1(x)), F.relu(self.p2(x)), F.relu(self.p3(x)), F.relu(self.p4(x))], 1)
"""

# --- round 3: scripts, exports, packages, thop, Aladdin Persson --------------------
# A train.py-style file: command-line options parsed at the top level (epochs, lr), no
# training loop in the file (it imports one); run as ``python resnet18.py`` it uses the defaults.
ARGPARSE_OPTIONS = """
parser = argparse.ArgumentParser(description="ResNet-18 on CIFAR-10")
parser.add_argument("--epochs", type=int, default=30)
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--num-classes", type=int, default=10)
args = parser.parse_args()
model = ResNet18(num_classes=args.num_classes)
optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
"""
RESNET_ARGPARSE = (
    reference_resnet(("from torch import nn\n", "from torch import nn\nimport argparse\n")) + ARGPARSE_OPTIONS
)
# ... an option without a default, parsed in a function called at the top level: ``python
# resnet18.py`` exits (usage: ... the following arguments are required: --data)
RESNET_ARGPARSE_REQUIRED = reference_resnet(
    ("from torch import nn\n", "from torch import nn\nimport argparse\n")
) + """

def get_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--epochs", type=int, default=30)
    return parser.parse_args()


args = get_args()
model = ResNet18()
"""
# ... options parsed in the student's config.py, imported by the model file
CONFIG_ARGS = """import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=30)
parser.add_argument("--num_classes", type=int, default=10)
args = parser.parse_args()
"""
RESNET_CONFIG_ARGS = (
    reference_resnet(("from torch import nn\n", "from torch import nn\n\nfrom config import args\n"))
    + "\nmodel = ResNet18(num_classes=args.num_classes)\n"
)
# ... and the epoch count read from ``sys.argv[1]`` (IndexError without it)
RESNET_ARGV = reference_resnet(("from torch import nn\n", "from torch import nn\nimport sys\n")) + (
    "\nEPOCHS = int(sys.argv[1])\nLR = float(sys.argv[2]) if len(sys.argv) > 2 else 0.1\n"
    "model = ResNet18()\n"
)

# Jupyter's File > Download as > Python (.py) (nbconvert's script exporter): magics become
# get_ipython() calls, which Python parses and cannot run outside IPython (NameError).
RESNET_NBCONVERT = (
    "#!/usr/bin/env python\n# coding: utf-8\n\n# In[1]:\n\n\n"
    "get_ipython().system('pip install thop')\n"
    "get_ipython().run_line_magic('matplotlib', 'inline')\n\n\n# In[2]:\n\n\n"
    + reference_resnet()
    + "\n\n# In[3]:\n\n\nget_ipython().run_cell_magic('time', '', 'model = ResNet18()\\nprint(model)\\n')\n"
    "\n\n# In[4]:\n\n\nget_ipython().system('nvidia-smi')\n"
)

# Aladdin Persson's ResNet tutorial, redone for CIFAR-10 with BasicBlocks: the block takes an
# ``identity_downsample`` module, ``_make_layer(block, num_residual_blocks, intermediate_channels,
# stride)`` puts the block count before the channels, a factory with image channels first.
RESNET_PERSSON = '''import torch
import torch.nn as nn


class block(nn.Module):
    expansion = 1

    def __init__(self, in_channels, intermediate_channels, identity_downsample=None, stride=1):
        super(block, self).__init__()
        self.conv1 = nn.Conv2d(
            in_channels, intermediate_channels, kernel_size=3, stride=stride, padding=1, bias=False
        )
        self.bn1 = nn.BatchNorm2d(intermediate_channels)
        self.conv2 = nn.Conv2d(
            intermediate_channels, intermediate_channels, kernel_size=3, stride=1, padding=1, bias=False
        )
        self.bn2 = nn.BatchNorm2d(intermediate_channels)
        self.relu = nn.ReLU()
        self.identity_downsample = identity_downsample
        self.stride = stride

    def forward(self, x):
        identity = x.clone()

        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.conv2(x)
        x = self.bn2(x)

        if self.identity_downsample is not None:
            identity = self.identity_downsample(identity)

        x += identity
        x = self.relu(x)
        return x


class ResNet(nn.Module):
    def __init__(self, block, layers, image_channels, num_classes):
        super(ResNet, self).__init__()
        self.in_channels = 64
        self.conv1 = nn.Conv2d(image_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()

        # Essentially the entire ResNet architecture are in these 4 lines below
        self.layer1 = self._make_layer(block, layers[0], intermediate_channels=64, stride=1)
        self.layer2 = self._make_layer(block, layers[1], intermediate_channels=128, stride=2)
        self.layer3 = self._make_layer(block, layers[2], intermediate_channels=256, stride=2)
        self.layer4 = self._make_layer(block, layers[3], intermediate_channels=512, stride=2)

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def forward(self, x):
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)

        x = self.avgpool(x)
        x = x.reshape(x.shape[0], -1)
        x = self.fc(x)
        return x

    def _make_layer(self, block, num_residual_blocks, intermediate_channels, stride):
        identity_downsample = None
        layers = []

        # Either if we half the input space for ex, 56x56 -> 28x28 (stride=2), or channels changes
        # we need to adapt the Identity (skip connection) so it will be able to be added
        # to the layer that's ahead
        if stride != 1 or self.in_channels != intermediate_channels * block.expansion:
            identity_downsample = nn.Sequential(
                nn.Conv2d(
                    self.in_channels,
                    intermediate_channels * block.expansion,
                    kernel_size=1,
                    stride=stride,
                    bias=False,
                ),
                nn.BatchNorm2d(intermediate_channels * block.expansion),
            )

        layers.append(block(self.in_channels, intermediate_channels, identity_downsample, stride))
        self.in_channels = intermediate_channels * block.expansion

        for i in range(num_residual_blocks - 1):
            layers.append(block(self.in_channels, intermediate_channels))

        return nn.Sequential(*layers)


def ResNet18(img_channel=3, num_classes=10):
    return ResNet(block, [2, 2, 2, 2], img_channel, num_classes)


def test():
    net = ResNet18(img_channel=3, num_classes=10)
    y = net(torch.randn(4, 3, 32, 32))
    print(y.size())
'''


def thop_counted(state: dict) -> dict:
    """The weights as saved after ``thop.profile(model, ...)`` by a thop that left its
    ``total_ops``/``total_params`` buffers on every module ("Unexpected key(s) in
    state_dict: "total_ops", "total_params"")."""
    from reference.lab2.simple_cnn import SimpleCNN

    counted = dict(state)
    for name, _ in SimpleCNN().named_modules():
        prefix = f"{name}." if name else ""
        counted[f"{prefix}total_ops"] = torch.zeros(1, dtype=torch.float64)
        counted[f"{prefix}total_params"] = torch.zeros(1, dtype=torch.float64)
    return counted


# simple_cnn.py that loads its own weights when imported, by a path relative to the folder it ran in
SIMPLE_LOADS_WEIGHTS = (
    "import torch\nfrom torch import nn\n\n"
    'device = torch.device("cuda" if torch.cuda.is_available() else "cpu")\n\n\n'
    + submissions.simple_cnn_source()
    + '\n\nmodel = SimpleCNN().to(device)\nmodel.load_state_dict(torch.load("simple_cnn.pth", '
    "map_location=device))\nmodel.eval()\n"
)

# forward with an extra defaulted argument (features for a t-SNE plot)
SIMPLE_RETURN_FEATURES = submissions.simple_cnn_source().replace(
    "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
    "        x = self.features(x)\n"
    "        return self.fc(self.dropout(torch.flatten(x, 1)))",
    "    def forward(self, x, return_features=False):\n"
    "        features = torch.flatten(self.features(x), 1)\n"
    "        logits = self.fc(self.dropout(features))\n"
    "        return (logits, features) if return_features else logits",
)
# the hyper-parameters in a dict the constructor needs (no default)
SIMPLE_CONFIG = submissions.simple_cnn_source().replace(
    "    def __init__(self, num_classes: int = 10) -> None:", "    def __init__(self, config):"
).replace("nn.Dropout(0.5)", 'nn.Dropout(config["dropout"])').replace(
    "nn.Linear(64 * 8 * 8, num_classes)", 'nn.Linear(64 * 8 * 8, config["num_classes"])'
)
CIFAR_STATS = "(0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)"
# the normalisation inside the model, so it takes ToTensor()'s [0, 1] pixels: buffers ...
SIMPLE_NORM_BUFFERS = submissions.simple_cnn_source().replace(
    "        super().__init__()\n",
    "        super().__init__()\n"
    '        self.register_buffer("mean", torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1))\n'
    '        self.register_buffer("std", torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1))\n',
).replace(
    "        x = self.features(x)\n", "        x = (x - self.mean) / self.std\n        x = self.features(x)\n"
)
# ... or torchvision's Normalize as a module of the model
SIMPLE_NORM_MODULE = submissions.simple_cnn_source().replace(
    "        super().__init__()\n",
    f"        super().__init__()\n        self.normalize = transforms.Normalize({CIFAR_STATS})\n",
).replace("        x = self.features(x)\n", "        x = self.features(self.normalize(x))\n")
# one transform for both splits, ToTensor() only: the model normalises
TOTENSOR_ONLY = (
    "transform = transforms.Compose([transforms.ToTensor()])\n"
    "trainset = torchvision.datasets.CIFAR10('./data', train=True, download=True, transform=transform)\n"
    "testset = torchvision.datasets.CIFAR10('./data', train=False, download=True, transform=transform)"
)


def with_stats(state: dict) -> dict:
    """The trained weights with the model's own mean/std buffers (SIMPLE_NORM_BUFFERS)."""
    from reference.lab2.simple_cnn import NORMALIZE

    return {
        "mean": torch.tensor(NORMALIZE["mean"]).view(1, 3, 1, 1),
        "std": torch.tensor(NORMALIZE["std"]).view(1, 3, 1, 1),
        **state,
    }


# A package: models/__init__.py re-exports, models/resnet.py imports its block relatively
_RESNET_HEAD, _RESNET_TAIL = reference_resnet().split("\n\nclass ResNet18", 1)
RESNET_PACKAGE = {
    "models/__init__.py": 'from .resnet import ResNet18\n\n__all__ = ["ResNet18"]\n',
    "models/blocks.py": _RESNET_HEAD + "\n",
    "models/resnet.py": "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n"
    "from .blocks import BasicBlock\n\n\nclass ResNet18" + _RESNET_TAIL,
}

# A Fashion-MNIST model that reshapes its input itself, so it takes (N, 784) rows from a
# flattened dataset as well as (N, 1, 28, 28) images
FASHION_RESHAPES = labs.reference_source(
    "lab4/fashion_cnn.py",
    (
        "        return self.classifier(self.features(x))",
        "        x = x.view(-1, 1, 28, 28)  # works for flattened (N, 784) batches too\n"
        "        return self.classifier(self.features(x))",
    ),
)
