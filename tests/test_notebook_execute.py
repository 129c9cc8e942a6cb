"""Notebooks really run in the sandbox with nbclient: a training loop written
for 100 epochs finishes in seconds in smoke mode, reads ./data and draws a
plot; a hung cell and a failing cell fail the execution item alone, naming
the cell, while the submission's other checks (which need its own worker,
stopped during the run) keep their verdicts."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pytest
from helpers import grading, notebooks, submissions

from autograder.data import load_split
from autograder.rubric import load

RUBRIC = """
id = "nb-exec"
title = "Notebook execution"
dataset = "cifar10"

[tasks.task1]
title = "Task 1: SimpleCNN"
model = "SimpleCNN"
sources = ["*.ipynb"]

[[items]]
id = "task1.forward"
kind = "forward"
task = "task1"
name = "Task 1: forward pass"

[[items]]
id = "notebook.execute"
kind = "notebook_execute"
name = "Notebook runs top to bottom (smoke mode)"
timeout = {timeout}
cell_timeout = {cell_timeout}

[[items]]
id = "task1.counts"
kind = "counts"
task = "task1"
name = "Task 1: parameters and FLOPs"
params = {params}
macs = {macs}
"""
LAB2_TASK1 = load("lab2-resnet18-cifar10").item("task1.counts").options  # the reference's counts


def rubric_for(tmp_path, timeout: int = 150, cell_timeout: int = 40):
    path = tmp_path / "nb-exec.toml"
    counts = {"params": LAB2_TASK1["params"], "macs": LAB2_TASK1["macs"]}
    path.write_text(RUBRIC.format(timeout=timeout, cell_timeout=cell_timeout, **counts))
    return load(str(path))


def run(tmp_path, cifar_root, nb, *prefixes: str, **limits):
    """Grade ``nb`` with the items whose ids start with ``prefixes`` (default: all)."""
    notebooks.write(tmp_path / "sub", nb)
    rubric = rubric_for(tmp_path, **limits)
    rubric = grading.only(rubric, *prefixes) if prefixes else rubric
    return grading.run(tmp_path / "sub", rubric, cifar_root, tmp_path / "out")


@pytest.mark.slow  # executes a notebook in the sandbox, a kernel per run
def test_a_hundred_epoch_notebook_runs_in_smoke_mode(tmp_path, cifar_root):
    g = run(tmp_path, cifar_root, notebooks.runnable(submissions.simple_cnn_source()), "notebook")
    item = g.test("notebook.execute")
    assert item["status"] == "passed", item["output"]
    assert g.message("notebook.execute").startswith(
        "StudentID_lab.ipynb ran top to bottom in the sandbox: 7 cells in "
    )
    assert g.message("notebook.execute").endswith(
        "(smoke mode: cell 3: EPOCHS = 1; cell 3: tagged parameters; injected after it: EPOCHS = 1)"
    )
    assert "cell 2: skipped `!pip install thop`" in item["output"]
    assert "with cifar10 at ./data" in item["output"]
    # the run the TA can open: the data was read, one epoch trained, a figure drawn
    executed = nbformat.read(str(g.out / "StudentID_lab.executed.ipynb"), as_version=4)
    texts = ["".join(o.get("text", "")) for c in executed.cells for o in c.get("outputs", [])]
    assert "training images: (256, 3, 32, 32)\n" in texts
    assert any(t.startswith("Epoch 1/1 - loss: ") for t in texts) and not any("Epoch 2/" in t for t in texts)
    assert sum("image/png" in o.get("data", {}) for c in executed.cells for o in c.get("outputs", [])) == 1
    assert item["extra_data"]["cells_run"] == 7
    assert g.result.item("notebook.execute").data["runs"][0]["epochs"] == [1]


@pytest.mark.slow  # executes a notebook in the sandbox, a kernel per run
def test_a_hung_cell_fails_only_the_execution_item(tmp_path, cifar_root):
    nb = notebooks.runnable(submissions.simple_cnn_source(), "import time\ntime.sleep(600)")
    g = run(tmp_path, cifar_root, nb, timeout=100, cell_timeout=6)
    assert g.message("notebook.execute") == (
        "running StudentID_lab.ipynb: cell 7 did not finish within the 6 s per-cell limit"
    )
    assert g.result.item("notebook.execute").data["failed_cell"] == 7
    executed = nbformat.read(str(g.out / "StudentID_lab.executed.ipynb"), as_version=4)
    assert executed.cells[5].outputs  # the training cell before the hang kept its log
    # the counts check after it needed the submission's own worker again: it came back
    assert g.test("task1.forward")["status"] == g.test("task1.counts")["status"] == "passed"
    assert g.result.provenance["worker_starts"] == 2


def test_a_failing_cell_is_named_with_its_exception(tmp_path, cifar_root):
    nb = notebooks.runnable("accuracy = correct / total", parameters=False)
    g = run(tmp_path, cifar_root, nb, "notebook")
    assert g.message("notebook.execute") == (
        "running StudentID_lab.ipynb: cell 6 raised NameError: name 'correct' is not defined"
    )
    output = g.test("notebook.execute")["output"]
    assert "cell 3: EPOCHS = 1" in output  # no parameters cell: the assignment itself was rewritten
    assert "NameError: name 'correct' is not defined" in output.split("traceback:")[1]


PEEK = """from torchvision import datasets
test = datasets.CIFAR10('./data', train=False, download=True)
with open('./data/cifar-10-batches-py/test_batch', 'rb') as f:
    raw = pickle.load(f, encoding='latin1')
print('LABELS', json.dumps({'torchvision': list(test.targets), 'raw': raw['labels'],
      'first_pixels': raw['data'][:, :8].tolist()}))"""


@pytest.mark.slow  # executes a notebook in the sandbox, a kernel per run
def test_the_notebook_never_sees_the_hidden_test_labels(tmp_path, cifar_root):
    """A notebook that prints the test labels into its executed copy (which goes back to the
    student) prints a stand-in: training images with their own labels, same size and format,
    readable with the handout's ``CIFAR10('./data', download=True)``."""
    nb = notebooks.runnable("import json", PEEK)
    g = run(tmp_path, cifar_root, nb, "notebook")
    assert g.test("notebook.execute")["status"] == "passed", g.test("notebook.execute")["output"]
    assert "a stand-in of 500 training images with their labels" in g.test("notebook.execute")["output"]
    executed = nbformat.read(str(g.out / "StudentID_lab.executed.ipynb"), as_version=4)
    texts = [o.get("text", "") for c in executed.cells for o in c.get("outputs", [])]
    line = next(t for t in texts if t.startswith("LABELS"))
    seen = json.loads(line.split(" ", 1)[1])
    test = load_split(cifar_root, "cifar10", train=False)
    train = load_split(cifar_root, "cifar10", train=True)
    assert seen["torchvision"] == seen["raw"] and len(seen["raw"]) == len(test.labels) == 500
    assert seen["raw"] == train.labels[:500].tolist() != test.labels.tolist()
    pixels = np.array(seen["first_pixels"])
    assert (pixels == train.images[:500].reshape(500, -1)[:, :8]).all()
    assert not (pixels == test.images.reshape(500, -1)[:, :8]).all(axis=1).any()


@pytest.mark.slow  # executes a notebook in the sandbox, a kernel per run
def test_a_kaggle_notebook_reads_its_dataset_from_the_sandboxs_copy(tmp_path, cifar_root):
    """Kaggle's /kaggle/input/<dataset> and /kaggle/working, written as Kaggle needs them."""
    nb = notebooks.runnable("torch.save(model.state_dict(), '/kaggle/working/simple_cnn.pth')")
    kaggle = notebooks.LOAD_DATA.replace("./data/", "/kaggle/input/cifar10-python/")
    nb.cells = [nbformat.v4.new_code_cell(kaggle) if c.source == notebooks.LOAD_DATA else c for c in nb.cells]
    g = run(tmp_path, cifar_root, nb, "notebook")
    item = g.test("notebook.execute")
    assert item["status"] == "passed", item["output"]
    assert "cell 4: /kaggle/input/cifar10-python → data" in item["output"]
    assert "cell 6: /kaggle/working → ." in item["output"]
