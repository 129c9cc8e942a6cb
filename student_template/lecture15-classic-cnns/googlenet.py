"""Lecture 15, exercise 4: GoogLeNet from ``Inception``. Weights: ``googlenet.pth``.

``Inception(in_channels, c1, c2, c3, c4)``: four parallel branches on the same
input, concatenated along the channels (``torch.cat(..., dim=1)``):
1x1 conv (c1); 1x1 conv (c2[0]) then 3x3 conv (c2[1]); 1x1 conv (c3[0]) then
5x5 conv (c3[1]); 3x3 max-pool (stride 1, padding 1) then 1x1 conv (c4).
ReLU after every convolution; the resolution does not change.
"""

import torch
from torch import nn

NORMALIZE = {"mean": (0.2860,), "std": (0.3530,)}


class Inception(nn.Module):
    def __init__(self, in_channels: int, c1: int, c2: tuple, c3: tuple, c4: int) -> None:
        super().__init__()
        # TODO: the layers of the four branches

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TODO: run the branches and concatenate their outputs
        raise NotImplementedError("Inception.forward is not written yet (googlenet.py)")


class GoogLeNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2))
        self.inception = nn.Sequential(
            Inception(32, 16, (16, 32), (4, 8), 8),
            Inception(64, 32, (32, 48), (8, 24), 24),
            nn.MaxPool2d(2, 2),
            Inception(128, 48, (24, 64), (8, 16), 16),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(144, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.inception(self.stem(x)))
