"""The ``spec`` verdict on the equivalent ways students write the handout's SimpleCNN stack
(unit level: the worker's layer recording and the check's comparison, no sandbox).

Each case is the SimpleCNN with one line written another way; a TA accepts the
equivalent spellings and fails the real mistakes, with a message naming the fix."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F  # noqa: N812 - the spelling students use
from torch import nn

from autograder.checks import spec
from autograder.sandbox.worker import introspect

# the handout's stack (SimpleCNN on 3x32x32), every pooling and dropout layer required
LAYERS = [
    {"type": "Conv2d", "in_channels": 3, "out_channels": 32, "kernel_size": 3, "padding": 1},
    {"type": "BatchNorm2d", "num_features": 32},
    {"type": "ReLU"},
    {"type": "MaxPool2d", "kernel_size": 2, "stride": 2},
    {"type": "Conv2d", "in_channels": 32, "out_channels": 64, "kernel_size": 3, "padding": 1},
    {"type": "BatchNorm2d", "num_features": 64},
    {"type": "ReLU"},
    {"type": "MaxPool2d", "kernel_size": 2, "stride": 2},
    {"type": "Dropout", "p": 0.5},
]
FINAL = {"type": "Linear", "out_features": 10}
BETWEEN = ["Flatten"]  # a rubric that leaves Identity out of ``between``

SIMPLE = """
class SimpleCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = {conv1}
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(64)
        self.pool = {pool}
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(64 * 8 * 8, 10)
        {extra}

    def forward(self, x):
        x = {pool1}
        x = self.pool({relu}(self.bn2(self.conv2(x))))
        x = {flatten}
        x = {dropout}
        return {out}
"""
DEFAULT = {
    "conv1": "nn.Conv2d(3, 32, 3, padding=1)",
    "pool": "nn.MaxPool2d(2)",
    "extra": "",
    "pool1": "self.pool(self.relu(self.bn1(self.conv1(x))))",
    "relu": "self.relu",
    "flatten": "torch.flatten(x, 1)",
    "dropout": "self.dropout(x)",
    "out": "self.fc(x)",
}


def student(**lines: str) -> nn.Module:
    namespace = {"nn": nn, "F": F, "torch": torch}
    exec(SIMPLE.format(**{**DEFAULT, **lines}), namespace)  # noqa: S102 - the test's own code
    return namespace["SimpleCNN"]()


def verdict(model: nn.Module, layers: list[dict] = LAYERS, final: dict | None = FINAL) -> tuple[bool, str]:
    facts = introspect.layers(model, [3, 32, 32], lambda fn, *a, **k: fn(*a, **k))
    ok, reason, _, _ = spec.compare(facts["executed"], layers, BETWEEN, final)
    return ok, reason


ACCEPTED = {
    "padding='same'": {"conv1": "nn.Conv2d(3, 32, 3, padding='same')"},
    "kernel_size=(3, 3)": {"conv1": "nn.Conv2d(3, 32, kernel_size=(3, 3), stride=1, padding=(1, 1))"},
    "MaxPool2d(2, 2)": {"pool": "nn.MaxPool2d(2, 2)"},
    "MaxPool2d keywords": {"pool": "nn.MaxPool2d(kernel_size=2, stride=2)"},
    "F.max_pool2d(x, 2)": {"pool1": "F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)"},
    "F.max_pool2d(x, (2, 2), 2)": {"pool1": "F.max_pool2d(self.relu(self.bn1(self.conv1(x))), (2, 2), 2)"},
    "F.relu": {"relu": "F.relu"},
    "torch.relu": {"relu": "torch.relu"},
    "nn.functional.relu": {"relu": "nn.functional.relu"},
    "x.relu()": {"pool1": "self.pool(self.bn1(self.conv1(x)).relu())"},
    "x.view": {"flatten": "x.view(-1, 64 * 8 * 8)"},
    "x.reshape": {"flatten": "x.reshape(x.shape[0], -1)"},
    "F.dropout with self.training": {"dropout": "F.dropout(x, 0.5, self.training)"},
    "F.dropout keywords": {"dropout": "F.dropout(x, p=.5, training=self.training)"},
    "nn.Dropout(p=.5)": {"extra": "self.dropout = nn.Dropout(p=.5)"},
    "extra nn.Identity": {
        "extra": "self.skip = nn.Identity()",
        "pool1": "self.pool(self.skip(self.relu(self.bn1(self.conv1(x)))))",
    },
    "LogSoftmax for NLLLoss": {"out": "F.log_softmax(self.fc(x), dim=1)"},
    "a layer defined but unused": {"extra": "self.fc2 = nn.Linear(128, 10)"},
}


@pytest.mark.parametrize("lines", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_an_equivalent_spelling_of_the_stack_passes(lines):
    assert verdict(student(**lines)) == (True, "")


FAILED = {
    "nn.Softmax before CrossEntropyLoss": (
        {"extra": "self.softmax = nn.Softmax(dim=1)", "out": "self.softmax(self.fc(x))"},
        "forward applies Softmax after the last layer Linear(in_features=4096, out_features=10): "
        "return the raw logits (nn.CrossEntropyLoss applies softmax itself; LogSoftmax is only for "
        "nn.NLLLoss)",
    ),
    "ReLU on the logits": (
        {"out": "F.relu(self.fc(x))"},
        "forward applies ReLU after the last layer Linear(in_features=4096, out_features=10): "
        "return the raw logits (nn.CrossEntropyLoss applies softmax itself; LogSoftmax is only for "
        "nn.NLLLoss)",
    ),
    "a convolution built in forward": (
        {"pool1": "self.pool(self.relu(self.bn1(nn.Conv2d(3, 32, 3, padding=1)(x))))"},
        "Conv2d(in_channels=3, out_channels=32, kernel_size=3, stride=1, padding=1) is not a layer "
        "of the model (built inside forward or kept in a plain list): its weights are new on every "
        "call and never trained or saved; create it in __init__ as self.<name> (nn.ModuleList for a list)",
    ),
    "F.dropout left on in eval mode": (
        {"dropout": "F.dropout(x, 0.5)"},
        "F.dropout still drops values in eval mode, so predictions are random: pass "
        "training=self.training (or use nn.Dropout)",
    ),
    "GELU where the handout says ReLU": (
        {"relu": "nn.GELU()"},
        "layer 7 of the required stack should be ReLU() but the forward pass runs GELU() [functional] there",
    ),
    "LeakyReLU where the handout says ReLU": (
        {"extra": "self.relu = nn.LeakyReLU(0.1)"},
        "layer 3 of the required stack should be ReLU() but the forward pass runs LeakyReLU() there",
    ),
}


@pytest.mark.parametrize(("lines", "message"), FAILED.values(), ids=FAILED.keys())
def test_a_real_mistake_fails_with_the_fix(lines, message):
    assert verdict(student(**lines)) == (False, message)


class Listed(nn.Module):
    """The stack in ``nn.ModuleList`` / an ``OrderedDict`` Sequential / a plain list."""

    def __init__(self, style: str) -> None:
        super().__init__()
        from collections import OrderedDict

        stack = [
            nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.5), nn.Linear(64 * 8 * 8, 10),
        ]  # fmt: skip
        if style == "ModuleList":
            self.layers = nn.ModuleList(stack)
        elif style == "OrderedDict":
            self.layers = nn.Sequential(
                OrderedDict((f"{type(m).__name__.lower()}{k}", m) for k, m in enumerate(stack))
            )
        else:
            self.layers = stack

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


@pytest.mark.parametrize("style", ["ModuleList", "OrderedDict"])
def test_a_registered_container_of_the_layers_passes(style):
    assert verdict(Listed(style)) == (True, "")


def test_a_plain_list_of_layers_fails_as_unregistered():
    ok, reason = verdict(Listed("list"))
    assert not ok and reason.startswith(
        "Conv2d(in_channels=3, out_channels=32, kernel_size=3, stride=1, padding=1)"
    )
    assert "is not a layer of the model (built inside forward or kept in a plain list)" in reason


@pytest.mark.parametrize("pool", ["nn.AdaptiveAvgPool2d((1, 1))", "nn.AvgPool2d(8)"])
@pytest.mark.parametrize(
    "required", [{"type": "AdaptiveAvgPool2d", "output_size": 1}, {"type": "AvgPool2d", "kernel_size": 8}]
)
def test_global_average_pooling_passes_in_either_spelling(pool, required):
    model = student(
        conv1="nn.Conv2d(3, 32, 3, padding=1)",
        extra=f"self.gap = {pool}; self.fc = nn.Linear(64, 10)",
        flatten="torch.flatten(self.gap(x), 1)",
    )
    assert verdict(model, [*LAYERS[:8], required], FINAL) == (True, "")


def test_a_pool_that_is_not_global_is_still_told_apart():
    model = student(
        extra="self.gap = nn.AvgPool2d(4); self.fc = nn.Linear(64 * 2 * 2, 10)",
        flatten="torch.flatten(self.gap(x), 1)",
    )
    ok, reason = verdict(model, [*LAYERS[:8], {"type": "AdaptiveAvgPool2d", "output_size": 1}], FINAL)
    assert (
        not ok and "should be AdaptiveAvgPool2d(output_size=1) but the forward pass runs AvgPool2d(" in reason
    )


class OwnWeights(nn.Module):
    """``F.conv2d`` / ``F.linear`` with the model's own (or computed) weights: real layers."""

    def __init__(self) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(32, 3, 3, 3) * 0.1)
        self.bn1 = nn.BatchNorm2d(32)
        self.w2 = nn.Parameter(torch.randn(64, 32, 3, 3) * 0.1)
        self.scale = nn.Parameter(torch.ones(64, 1, 1, 1))
        self.bn2 = nn.BatchNorm2d(64)
        self.fc = nn.Parameter(torch.randn(10, 64 * 8 * 8) * 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(F.conv2d(x, self.w1, padding=1))), 2)
        x = F.max_pool2d(F.relu(self.bn2(F.conv2d(x, self.w2 * self.scale, padding="same"))), 2)
        return F.linear(F.dropout(x.flatten(1), 0.5, self.training), self.fc)


def test_functional_layers_with_the_models_own_weights_pass():
    assert verdict(OwnWeights()) == (True, "")
