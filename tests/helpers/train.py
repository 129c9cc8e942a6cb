"""Really training reference models on the generated data (seconds on a CPU), the
way ``autograder demo`` trains its models (``autograder.demo.train_model``)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from autograder.data import load_split
from autograder.demo import train_model


def train(
    model: nn.Module,
    root: Path,
    dataset: str,
    mean,
    std,
    steps: int,
    batch: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
) -> nn.Module:
    torch.manual_seed(seed)
    split = load_split(root, dataset, train=True)
    x = torch.from_numpy(split.images).float().div(255)
    x = (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    y = torch.from_numpy(split.labels)
    return train_model(model, x, y, steps, batch, lr, seed)
