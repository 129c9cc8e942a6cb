"""ResNet-18 for CIFAR-10 in the layout of torchvision's ``models/resnet.py``,
with the knobs UW Lab 7 lets students turn: stage widths, kernel size,
stride of the stem. The defaults are the classic CIFAR variant (3x3 stem, no
max-pool): 11,173,962 parameters, 557,889,024 thop MACs.

Lab 7 grades any variant that is still residual: the grader finds the skip
connections in the forward pass itself, so the names below are not required.
"""

from collections.abc import Sequence

import torch
from torch import nn

NORMALIZE = {"mean": (0.4914, 0.4822, 0.4465), "std": (0.2470, 0.2435, 0.2616)}
WIDTHS = (64, 128, 256, 512)


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, kernel_size: int = 3) -> nn.Conv2d:
    """A "same"-padded convolution without bias (BatchNorm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size, stride=stride, padding=kernel_size // 2, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """The projection shortcut: matches channels and stride of the main path."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions plus the input: ``relu(F(x) + shortcut(x))``."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride, kernel_size)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes, 1, kernel_size)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(conv1x1(inplanes, planes, stride), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity  # the skip connection
        return self.relu(out)


class ResNet18(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        widths: Sequence[int] = WIDTHS,
        kernel_size: int = 3,
        blocks: Sequence[int] = (2, 2, 2, 2),
    ) -> None:
        super().__init__()
        self.inplanes = widths[0]
        self.kernel_size = kernel_size
        self.conv1 = conv3x3(3, widths[0], 1, kernel_size)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(widths[0], blocks[0], stride=1)
        self.layer2 = self._make_layer(widths[1], blocks[1], stride=2)
        self.layer3 = self._make_layer(widths[2], blocks[2], stride=2)
        self.layer4 = self._make_layer(widths[3], blocks[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3], num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = [BasicBlock(self.inplanes, planes, stride, self.kernel_size)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes, 1, self.kernel_size) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))
