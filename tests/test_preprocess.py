"""The normalisation a submission declares is found and used, and the report
says where it came from: the same weights score very differently with the
wrong statistics, so this is part of the grade."""

from __future__ import annotations

import dataclasses

import pytest
from helpers import grading, submissions
from nbformat.v4 import new_output

from autograder import preprocess

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.247, 0.2435, 0.2616)


def where(line: int) -> str:
    return f"lab.ipynb cell 1, line {line}"


def test_test_transform_wins_over_train_transform():
    code = (
        "m = (0.5, 0.5, 0.5)\n"
        "train_tf = T.Compose([T.ToTensor(), T.Normalize(m, (0.5, 0.5, 0.5))])\n"
        f"test_tf = T.Compose([T.ToTensor(), T.Normalize({CIFAR_MEAN}, std={CIFAR_STD})])\n"
    )
    found = preprocess.from_code(code, where)
    assert (found.mean, found.std) == (CIFAR_MEAN, CIFAR_STD)
    assert found.source == "transforms.Normalize in lab.ipynb cell 1, line 3"


def test_names_bound_to_constants_are_resolved():
    code = (
        "MEAN = [0.1, 0.2, 0.3]\nSTD = [0.4, 0.5, 0.6]\n"
        "transform = Compose([ToTensor(), Normalize(MEAN, STD)])\n"
    )
    found = preprocess.from_code(code, where)
    assert (found.mean, found.std) == ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6))


def test_declared_normalize_constant_wins():
    code = "NORMALIZE = {'mean': (0.2,), 'std': (0.3,)}\ntest_tf = Normalize((0.5,), (0.5,))\n"
    found = preprocess.from_code(code, where)
    assert (found.mean, found.std, found.source) == (
        (0.2,),
        (0.3,),
        "NORMALIZE declared in lab.ipynb cell 1, line 1",
    )


def test_test_transform_without_normalize_means_unit_range():
    found = preprocess.from_code("test_transform = transforms.Compose([transforms.ToTensor()])\n", where)
    assert (found.mean, found.std) == ((0.0,), (1.0,))
    assert "without Normalize" in found.source


def test_values_computed_at_run_time_are_not_guessed():
    code = "mean = data.mean(axis=(0, 1, 2))\ntest_tf = Normalize(mean, data.std(axis=(0, 1, 2)))\n"
    assert preprocess.from_code(code, where) is None


@pytest.mark.parametrize(
    "printed",
    [
        "Mean: tensor([0.4914, 0.4822, 0.4465])\nStd: tensor([0.2470, 0.2435, 0.2616])\n",
        "mean = [0.4914, 0.4822, 0.4465], std = [0.2470, 0.2435, 0.2616]\n",
    ],
)
def test_printed_statistics_are_read(printed):
    found = preprocess.from_outputs([printed], "lab.ipynb")
    assert found.mean == pytest.approx(CIFAR_MEAN) and found.std == pytest.approx(CIFAR_STD, abs=1e-4)


@pytest.fixture(scope="module")
def wrong_default(lab2_rubric):
    """Task 1 only, with a rubric default the model was not trained with."""
    rubric = grading.only(lab2_rubric, "task1")
    return dataclasses.replace(rubric, normalize={"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]})


@pytest.mark.slow  # trains the reference ResNet-18 (the session's trained fixture)
def test_printed_statistics_rescue_the_grade(tmp_path, trained, cifar_root, wrong_default):
    computed = (
        "mean = trainset.data.mean(axis=(0, 1, 2)) / 255\nstd = trainset.data.std(axis=(0, 1, 2)) / 255\n"
        "test_transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])"
    )
    printed = "print('mean:', mean, 'std:', std)"
    nb = submissions.lab2_notebook(test_transform=computed, extra_cells=[printed])
    nb.cells[-1].outputs = [
        new_output(
            "stream", name="stdout", text="mean: [0.4914, 0.4822, 0.4465] std: [0.2470, 0.2435, 0.2616]\n"
        )
    ]
    folder = submissions.write_lab2(tmp_path / "s", trained["simple"], None, notebook=nb, resnet_source="")
    graded = grading.run(folder, wrong_default, cifar_root, tmp_path / "out")
    item = graded.test("task1.accuracy")
    assert (
        item["extra_data"]["normalization"]["source"]
        == "mean/std printed in the outputs of StudentID_lab2.ipynb"
    )
    assert item["score"] == 20


@pytest.mark.slow  # trains the reference ResNet-18 (the session's trained fixture)
def test_checkpoint_statistics_win_and_the_default_is_said(tmp_path, trained, cifar_root, wrong_default):
    def graded_with(name: str, weights: dict) -> grading.Graded:
        """Task 1's ``weights`` from a notebook without a test transform, graded in ``tmp_path / name``."""
        notebook = submissions.lab2_notebook(test_transform="test_transform = None")
        folder = submissions.write_lab2(tmp_path / name, weights, None, resnet_source="", notebook=notebook)
        return grading.run(folder, wrong_default, cifar_root, tmp_path / f"out-{name}")

    stored = {
        "state_dict": trained["simple"],
        "normalize": {"mean": list(CIFAR_MEAN), "std": list(CIFAR_STD)},
    }
    graded = graded_with("a", stored)
    assert (
        graded.test("task1.accuracy")["extra_data"]["normalization"]["source"] == "stored in the checkpoint"
    )
    assert graded.test("task1.accuracy")["score"] == 20

    graded = graded_with("b", trained["simple"])
    item = graded.test("task1.accuracy")
    assert item["extra_data"]["normalization"]["source"].startswith("the rubric's default")
    assert "the rubric's default" in item["output"]


MODEL_NORMALIZES = f"""
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = transforms.Normalize({CIFAR_MEAN}, {CIFAR_STD})
        self.fc = nn.Linear(3072, 10)

    def forward(self, x):
        return self.fc(self.norm(x).flatten(1))
"""


@pytest.mark.parametrize(
    ("code", "found"),
    [
        # one transform for both splits, ToTensor only, nothing else normalises: [0, 1]
        ("transform = transforms.Compose([transforms.ToTensor()])\n", ((0.0,), (1.0,))),
        # ... and the same where only the model normalises (its Normalize is not a transform)
        (MODEL_NORMALIZES + "transform = T.Compose([T.ToTensor()])\n", ((0.0,), (1.0,))),
        # the control: a Normalize outside the model, statistics computed at run time: not guessed
        (
            "transform = T.ToTensor()\nmean, std = stats(trainset)\n"
            "test_tf = T.Compose([T.ToTensor(), T.Normalize(mean, std)])\n",
            None,
        ),
        (MODEL_NORMALIZES, None),  # no transform at all: normalizes_itself's
        # a Dataset's transform is a transform
        (
            "class Cifar(Dataset):\n    def __init__(self):\n"
            f"        self.transform = T.Compose([T.ToTensor(), T.Normalize({CIFAR_MEAN}, {CIFAR_STD})])\n",
            (CIFAR_MEAN, CIFAR_STD),
        ),
    ],
)
def test_a_transform_is_told_from_the_models_own_normalisation(code, found):
    got = preprocess.from_code(code, where)
    assert (got and (got.mean, got.std)) == found


def test_a_model_that_normalises_its_input_takes_pixels_in_unit_range():
    buffers = (
        "class SimpleCNN(nn.Module):\n    def forward(self, x):\n"
        "        x = (x - self.mean) / self.std\n        return self.net(x)\n"
    )
    for code, what in (
        (MODEL_NORMALIZES, "transforms.Normalize in"),
        (buffers, "(x - self.mean) / self.std in"),
    ):
        model = "Net" if "class Net" in code else "SimpleCNN"
        got = preprocess.normalizes_itself(code, where, model)
        assert (got.mean, got.std) == ((0.0,), (1.0,)) and what in got.source, got.source
        assert preprocess.normalizes_itself(code, where, "Other") is None  # another task's model
    # the control: a layer normalising by its input's own statistics is not the dataset's
    layer = buffers.replace("(x - self.mean) / self.std", "(x - x.mean()) / (x.std() + 1e-5)")
    assert preprocess.normalizes_itself(layer, where, "SimpleCNN") is None
