"""UW Lab 4: your CNN for Fashion-MNIST (1 x 28 x 28 grey images, 10 classes).

Design it yourself; it must reach more than 89% test accuracy. Keep the class
name ``FashionCNN`` and a constructor that works without arguments: the
grader builds ``FashionCNN()`` and loads ``fashion_cnn.pth`` into it.
"""

import torch
from torch import nn

# The normalisation of your test transform: pixels are scaled to [0, 1], then
# (x - mean) / std. The grader applies exactly this before calling your model.
NORMALIZE = {"mean": (0.2860,), "std": (0.3530,)}


class FashionCNN(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        # TODO: convolutional feature extractor and a classifier ending in nn.Linear(..., num_classes)
        raise NotImplementedError("FashionCNN is not written yet (fashion_cnn.py)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
