"""The reference solutions reproduce the handout's numbers with the grader's
own counting code (the code that runs in the sandbox worker)."""

from __future__ import annotations

import pytest

from autograder.sandbox.worker.introspect import counts
from reference.lab2.resnet18 import ResNet18
from reference.lab2.simple_cnn import SimpleCNN


def call(fn, *args, **kwargs):
    return fn(*args, **kwargs)


@pytest.mark.parametrize(
    ("model", "params", "macs", "flops"),
    [
        (SimpleCNN, 60_554, 5_840_896, 11_288_576),
        (ResNet18, 11_173_962, 557_880_320, 1_110_845_440),
        (lambda: ResNet18(imagenet_stem=True), 11_181_642, 37_219_328, 74_033_152),
    ],
    ids=["simple_cnn", "resnet18_cifar", "resnet18_imagenet_stem"],
)
def test_reference_counts(model, params, macs, flops):
    got = counts(model(), [3, 32, 32], call)
    assert (got["params"], got["macs"], got["flops"]) == (params, macs, flops)


def test_rubric_accepts_the_reference_counts(lab2_rubric):
    task2 = lab2_rubric.item("task2.counts").options
    assert 11_173_962 in task2["params"] and 11_181_642 in task2["params"]
    assert 557_880_320 in task2["macs"]
    task1 = lab2_rubric.item("task1.counts").options
    assert task1["params"] == [60_554] and task1["macs"] == [5_840_896]
