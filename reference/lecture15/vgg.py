"""VGG built from ``vgg_block(num_convs, in_channels, out_channels)``: a run
of 3x3 "same" convolutions with ReLU, then a 2x2 max-pool that halves the
resolution. ``CONV_ARCH`` lists (num_convs, out_channels) per block; the
lecture's VGG-11 is ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512)) on
224x224 input; on 28x28 Fashion-MNIST three narrower blocks fit (28 -> 3)."""

import torch
from torch import nn

NORMALIZE = {"mean": (0.2860,), "std": (0.3530,)}
CONV_ARCH = ((1, 16), (1, 32), (2, 64))


def vgg_block(num_convs: int, in_channels: int, out_channels: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(num_convs):
        layers += [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1), nn.ReLU()]
        in_channels = out_channels
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


class VGG(nn.Module):
    def __init__(self, num_classes: int = 10, conv_arch=CONV_ARCH, size: int = 28) -> None:
        super().__init__()
        blocks, in_channels = [], 1
        for num_convs, out_channels in conv_arch:
            blocks.append(vgg_block(num_convs, in_channels, out_channels))
            in_channels, size = out_channels, size // 2
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_channels * size * size, 256),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(256, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
