"""Lecture 15, exercise 2: AlexNet on Fashion-MNIST.

Either the lecture's network on input up-sampled to 224x224 (the grader
notices and up-samples the test images the same way, bilinearly), or an
adaptation to the native 28x28 input. Either way: five convolutions, then
three linear layers, the last one with 10 outputs. Weights: ``alexnet.pth``.
"""

import torch
from torch import nn

NORMALIZE = {"mean": (0.2860,), "std": (0.3530,)}


class AlexNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        # TODO: self.features (5 convolutions) and self.classifier (3 linear layers)
        raise NotImplementedError("AlexNet is not written yet (alexnet.py)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
