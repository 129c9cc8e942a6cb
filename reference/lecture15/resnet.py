"""ResNet built from a ``Residual`` block: two 3x3 convolutions with
BatchNorm, plus the input. With ``use_1x1conv`` the input goes through a
1x1 convolution (stride ``strides``) so its shape matches the main path:
``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``.

The lecture's ResNet-18 works on 96x96 input; this one is scaled to 28x28.
"""

import torch
import torch.nn.functional as F
from torch import nn

NORMALIZE = {"mean": (0.2860,), "std": (0.3530,)}


class Residual(nn.Module):
    def __init__(
        self, input_channels: int, num_channels: int, use_1x1conv: bool = False, strides: int = 1
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        self.conv3 = (
            nn.Conv2d(input_channels, num_channels, kernel_size=1, stride=strides) if use_1x1conv else None
        )
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.bn2 = nn.BatchNorm2d(num_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.conv3 is not None:
            x = self.conv3(x)
        return F.relu(y + x)


def resnet_block(input_channels: int, num_channels: int, num_residuals: int, first_block: bool = False):
    """A stage: the first Residual halves the resolution (except in the first stage)."""
    blocks = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blocks.append(Residual(input_channels, num_channels, use_1x1conv=True, strides=2))
        else:
            blocks.append(Residual(num_channels, num_channels))
    return blocks


class ResNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.b1 = nn.Sequential(nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.b2 = nn.Sequential(*resnet_block(16, 16, 2, first_block=True))
        self.b3 = nn.Sequential(*resnet_block(16, 32, 2))  # 28 -> 14
        self.b4 = nn.Sequential(*resnet_block(32, 64, 2))  # 14 -> 7
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(64, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.b4(self.b3(self.b2(self.b1(x)))))
