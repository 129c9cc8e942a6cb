"""GoogLeNet built from an ``Inception`` block: four parallel branches whose
outputs are concatenated along the channels, so the block outputs
``c1 + c2[1] + c3[1] + c4`` channels at the input's resolution:

1. 1x1 convolution (c1);
2. 1x1 reduction to c2[0], then 3x3 convolution (c2[1]);
3. 1x1 reduction to c3[0], then 5x5 convolution (c3[1]);
4. 3x3 max-pool (stride 1), then 1x1 convolution (c4).

The lecture's network works on 96x96 input; this one is scaled to 28x28.
"""

import torch
import torch.nn.functional as F
from torch import nn

NORMALIZE = {"mean": (0.2860,), "std": (0.3530,)}


class Inception(nn.Module):
    def __init__(self, in_channels: int, c1: int, c2: tuple[int, int], c3: tuple[int, int], c4: int) -> None:
        super().__init__()
        self.p1_1 = nn.Conv2d(in_channels, c1, kernel_size=1)
        self.p2_1 = nn.Conv2d(in_channels, c2[0], kernel_size=1)
        self.p2_2 = nn.Conv2d(c2[0], c2[1], kernel_size=3, padding=1)
        self.p3_1 = nn.Conv2d(in_channels, c3[0], kernel_size=1)
        self.p3_2 = nn.Conv2d(c3[0], c3[1], kernel_size=5, padding=2)
        self.p4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.p4_2 = nn.Conv2d(in_channels, c4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p1 = F.relu(self.p1_1(x))
        p2 = F.relu(self.p2_2(F.relu(self.p2_1(x))))
        p3 = F.relu(self.p3_2(F.relu(self.p3_1(x))))
        p4 = F.relu(self.p4_2(self.p4_1(x)))
        return torch.cat((p1, p2, p3, p4), dim=1)


class GoogLeNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),  # 28 -> 14
        )
        self.inception = nn.Sequential(
            Inception(32, 16, (16, 32), (4, 8), 8),  # 64 channels
            Inception(64, 32, (32, 48), (8, 24), 24),  # 128 channels
            nn.MaxPool2d(kernel_size=2, stride=2),  # 14 -> 7
            Inception(128, 48, (24, 64), (8, 16), 16),  # 144 channels
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(144, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.inception(self.stem(x)))
