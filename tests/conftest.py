"""Shared fixtures: a generated CIFAR-format data root, reference models
really trained on it (once per session), and lab 2 submissions (a complete one
graded once for every module that reads its results)."""

from __future__ import annotations

import json
import os
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]

from helpers import data, grading, labs, notebooks, submissions, train  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory) -> None:
    """Decoded splits go to a per-session cache, not the user's."""
    import os

    os.environ["AUTOGRADER_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def once(tmp_path_factory) -> Callable[[str, Callable[[], Any]], Any]:
    """``once(name, make)``: ``make()`` computed once for the whole run. With pytest-xdist
    (the default: ``-n auto``, see pyproject.toml) the first worker that needs it computes
    and pickles it, the others wait on its lock and load it, instead of each training the
    same reference models (the data roots are generated from fixed seeds, so they are the
    same in every worker)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of this run

    def compute(name: str, make: Callable[[], Any]) -> Any:
        path = root / f"once-{name}.pickle"
        with FileLock(f"{path}.lock"):
            if path.exists():
                return pickle.loads(path.read_bytes())
            value = make()
            path.write_bytes(pickle.dumps(value))
            return value

    return compute


@pytest.fixture(scope="session")
def cifar_root(tmp_path_factory) -> Path:
    return data.make_cifar(tmp_path_factory.mktemp("cifar"), train=2000, test=500)


@pytest.fixture(scope="session")
def trained_simple(cifar_root, once) -> dict:
    """The reference SimpleCNN's state_dict alone: tests that need no ResNet skip its training.
    Trained on one thread, like every model the tests train (``labs.one_thread``)."""

    def make() -> dict:
        import torch

        from reference.lab2.simple_cnn import SimpleCNN

        torch.manual_seed(0)
        with labs.one_thread():
            simple = train.train(
                SimpleCNN(), cifar_root, "cifar10", submissions.MEAN, submissions.STD, steps=150
            )
        return simple.state_dict()

    return once("trained_simple", make)


@pytest.fixture(scope="session")
def trained(cifar_root, trained_simple, once) -> dict[str, dict]:
    """Both lab 2 references' state_dicts. ResNet-18 trains on one thread too: on a busy
    2-core runner that took 58 s against 132 s with two (and a third of the CPU time)."""

    def make() -> dict:
        import torch

        from reference.lab2.resnet18 import ResNet18

        mean, std = submissions.MEAN, submissions.STD
        torch.manual_seed(0)
        with labs.one_thread():
            resnet = train.train(ResNet18(), cifar_root, "cifar10", mean, std, steps=30, batch=32, lr=1e-3)
        return resnet.state_dict()

    return {"simple": trained_simple, "resnet": once("trained_resnet", make)}


@pytest.fixture(scope="session")
def lab2_rubric():
    from autograder.rubric import load

    return load("lab2-resnet18-cifar10")


@pytest.fixture(scope="session")
def lab2_graded(tmp_path_factory, trained, cifar_root, lab2_rubric, once):
    """A complete lab 2 hand-in, zipped in its folder as students upload it, graded once with
    the leaderboard on (test_lab2.py reads its points and provenance, test_report.py its
    reports): the notebook ran and printed everything the handout asks for; its SimpleCNN
    claim is true, its ResNet-18 claim 15 points off the measured accuracy.
    Returns (graded, SimpleCNN's measured accuracy and per class, ResNet-18's, the claim)."""
    import dataclasses

    def make() -> tuple:
        tmp = tmp_path_factory.mktemp("lab2-complete")
        task1 = notebooks.measured(trained["simple"], cifar_root)
        resnet = notebooks.measured(trained["resnet"], cifar_root, "resnet")
        claim2 = round(resnet["accuracy"] + (0.15 if resnet["accuracy"] < 0.85 else -0.15), 2)
        nb = notebooks.executed_lab2(task1, task2_claim=claim2)
        folder = submissions.write_lab2(
            tmp / "StudentID_lab2", trained["simple"], trained["resnet"], notebook=nb
        )
        archive = submissions.zip_folder(folder, tmp / "StudentID_lab2.zip", prefix="StudentID_lab2/")
        rubric = dataclasses.replace(lab2_rubric, leaderboard=True)
        return grading.run(archive, rubric, cifar_root, tmp / "out"), task1, resnet, claim2

    return once("lab2_graded", make)


@pytest.fixture(scope="session")
def results_schema() -> dict:
    return json.loads((Path(__file__).parent / "helpers" / "results.schema.json").read_text())


@pytest.fixture(scope="session")
def fashion_root(tmp_path_factory) -> Path:
    """A generated Fashion-MNIST data root in torchvision's raw IDX layout."""
    return data.make_idx(tmp_path_factory.mktemp("fashion"), "fashion_mnist", train=2000, test=300)


@pytest.fixture(scope="session")
def lab4_trained(fashion_root) -> dict:
    """The lab 4 reference CNN trained on it (about a second; > 89% on the generated test split)."""
    import torch

    from reference.lab4.fashion_cnn import NORMALIZE, FashionCNN

    torch.manual_seed(0)
    from helpers import labs

    model = labs.fit(FashionCNN(), fashion_root, "fashion_mnist", NORMALIZE, steps=30, batch=32, lr=3e-3)
    return model.state_dict()
