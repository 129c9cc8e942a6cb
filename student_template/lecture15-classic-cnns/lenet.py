"""Lecture 15, exercise 1: LeNet-5 on Fashion-MNIST (1 x 28 x 28).

``LeNet``: Conv(1->6, 5x5, padding 2), sigmoid, 2x2 average pool, Conv(6->16,
5x5), sigmoid, 2x2 average pool, then Linear 400->120->84->10 with sigmoids.
``LeNetMaxPool``: the same network with max pooling (and ReLU, if you like).
Weights: ``lenet.pth`` and ``lenet_maxpool.pth``.
"""

import torch
from torch import nn

NORMALIZE = {"mean": (0.2860,), "std": (0.3530,)}


class LeNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        # TODO: self.net = nn.Sequential(...)
        raise NotImplementedError("LeNet is not written yet (lenet.py)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class LeNetMaxPool(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        # TODO: LeNet with nn.MaxPool2d instead of nn.AvgPool2d
        raise NotImplementedError("LeNetMaxPool is not written yet (lenet.py)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
