"""The grader process stays light: decoding a split happens in a short-lived
child when the grader has not imported torch, so torch's ~500 MB never sit in
the grader next to the worker (Gradescope gives both together 768 MB)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import data

PROBE = """
import sys
from autograder.data import DataError, load_split
try:
    split = load_split(sys.argv[1], "cifar10", train=False)
    print(split.images.shape, split.labels[:5].tolist(), split.official)
except DataError as exc:
    print("DataError:", exc)
print("torch imported:", "torch" in sys.modules)
"""


def probe(root, cache) -> str:
    env = {**os.environ, "AUTOGRADER_CACHE": str(cache)}
    done = subprocess.run([sys.executable, "-c", PROBE, str(root)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_uncached_split_is_decoded_without_torch_in_the_grader(tmp_path):
    root = data.make_cifar(tmp_path / "data", train=20, test=50)
    first = probe(root, tmp_path / "cache")
    assert first.splitlines()[-1] == "torch imported: False"
    assert first.startswith("(50, 3, 32, 32)") and "False" in first.splitlines()[0]  # custom, not official
    assert len(list((tmp_path / "cache").glob("cifar10-test-*.npz"))) == 1
    assert probe(root, tmp_path / "cache") == first  # the cached copy reads the same


@pytest.mark.slow  # a second decoding child (the quick subset keeps the first)
def test_unreadable_split_is_one_line_from_the_child(tmp_path):
    root = data.make_cifar(tmp_path / "data", train=20, test=50)
    (root / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle")
    out = probe(root, tmp_path / "cache").splitlines()
    assert out[0].startswith("DataError: ") and "cannot read the CIFAR-10 batches" in out[0]
    assert str(root / "cifar-10-batches-py") in out[0]
    assert out[-1] == "torch imported: False"
