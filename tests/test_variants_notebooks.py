"""Realistic variants: notebooks as JupyterLab, VS Code, Kaggle and Colab save
them, training logs printed by the handout's loop, tqdm bars and Keras-style
progress lines, image grids next to training curves, residual blocks in the
handout's, a wrong, the pre-activation and the bottleneck order, LeNet written
with the course book's d2l helpers, and a module that goes online at import.

Every case carries the verdict a careful TA gives per rubric item, written
beside it, and the grader is asserted against it item by item: the status, and
words of the message that say why.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch
from helpers import grading, labs, rubrics
from variants import notebooks as nbv
from variants.notebooks import OUTPUTS, PASS_OUT, PASS_RUN

from autograder.rubric import load
from reference.lecture15.lenet import LeNet

pytestmark = pytest.mark.slow  # the notebook variant suite: a grade per variant


# name: (notebook, {item: (TA's verdict, words the message must hold)}, series the log must give)
NOTEBOOKS = {
    # JupyterLab 4, timing metadata on, the handout's log: nothing to object to.
    "jupyterlab": (lambda: nbv.jupyterlab(), {"notebook.run": PASS_RUN, "notebook.outputs": PASS_OUT}, 4),
    # VS Code: nbformat 4.2 (no cell ids), tqdm bars on stderr and a validation line per epoch.
    "vscode-tqdm": (
        lambda: nbv.vscode(log=nbv.tqdm_log()),
        {"notebook.run": PASS_RUN, "notebook.outputs": PASS_OUT},
        4,
    ),
    # Kaggle's saved version (papermill), Keras-style progress lines.
    "kaggle-keras": (lambda: nbv.kaggle(), {"notebook.run": PASS_RUN, "notebook.outputs": PASS_OUT}, 4),
    # Kaggle again, Keras 3's progress lines (solid bar, metrics in alphabetical order).
    "kaggle-keras3": (
        lambda: nbv.kaggle(log=[nbv.stream(nbv.keras_log(keras3=True))]),
        {"notebook.run": PASS_RUN, "notebook.outputs": PASS_OUT},
        4,
    ),
    # Colab: cells without output carry no count (null). Ran top to bottom: full marks.
    "colab-null": (
        lambda: nbv.colab(blank=None),
        {"notebook.run": (True, "ran in order"), "notebook.outputs": PASS_OUT},
        4,
    ),
    # An older Colab export writes 0 there: still not "out of order (In [0])".
    "colab-zero": (
        lambda: nbv.colab(blank=0),
        {"notebook.run": (True, "ran in order"), "notebook.outputs": PASS_OUT},
        4,
    ),
    # Colab, saved before anything ran: the TA sends it back.
    "colab-never-run": (
        lambda: nbv.colab(ran=False),
        {
            "notebook.run": (False, "was saved without running any cell"),
            "notebook.outputs": (False, "has no outputs at all"),
        },
        0,
    ),
    # JupyterLab, a cell re-run after a later one: out of order, named by cell.
    "jupyterlab-out-of-order": (
        lambda: _swap_counts(nbv.jupyterlab(), 3, 4),
        {"notebook.run": (False, "cells ran out of order (cell 5 (In [3]) after cell 4 (In [4]))")},
        4,
    ),
    # A grid of sample images and no curve plot: the grid is not a training curve.
    "samples-no-curves": (
        lambda: _drop_cell(nbv.jupyterlab(samples=True), nbv.CURVES),
        {
            "notebook.run": PASS_RUN,
            "notebook.outputs": (False, "training curves; its other figures: image grid (cell 4)"),
        },
        4,
    ),
    # Samples, curves and a confusion matrix: the curves are found, the others named.
    "samples-curves-confusion": (
        lambda: nbv.jupyterlab(samples=True, confusion=True),
        {"notebook.run": PASS_RUN, "notebook.outputs": PASS_OUT},
        4,
    ),
}


def _swap_counts(nb, a: int, b: int):
    for cell in nb.cells:
        if cell.get("execution_count") in (a, b):
            cell.execution_count = a + b - cell.execution_count
    return nb


def _drop_cell(nb, source: str):
    nb.cells = [c for c in nb.cells if c.source != source]
    return nb


@pytest.fixture(scope="module")
def notebook_rubric(tmp_path_factory):
    return rubrics.load_notebook_only(tmp_path_factory.mktemp("rubric"), OUTPUTS)


@pytest.mark.parametrize("case", list(NOTEBOOKS))
def test_notebook_variants_get_the_tas_verdict(case, tmp_path, notebook_rubric, cifar_root):
    build, verdicts, series = NOTEBOOKS[case]
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "StudentID_lab2.ipynb").write_text(nbv.write(build()))
    graded = grading.run(folder, notebook_rubric, cifar_root, tmp_path / "out")
    for item, (passed, words) in verdicts.items():
        entry = graded.test(item)
        assert (entry["status"] == "passed") is passed, (item, entry["output"])
        assert words in entry["output"].split("\n")[0], (item, entry["output"])
    runs = graded.result.item("notebook.run").data["claims"]["runs"]
    if series:  # the training log is read with its epochs and every series it printed
        assert len(runs) == 1 and runs[0]["epochs"] == list(range(1, 11)), runs
        assert len([s for s in ("train_loss", "train_acc", "val_loss", "val_acc") if s in runs[0]]) == series
        assert runs[0]["train_loss"][-1] == pytest.approx(0.5)
        assert runs[0]["val_acc"][-1] == pytest.approx(0.75)


def test_colab_cells_without_a_count_are_named_in_the_details(tmp_path, notebook_rubric, cifar_root):
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "lab.ipynb").write_text(nbv.write(nbv.colab(blank=0)))
    graded = grading.run(folder, notebook_rubric, cifar_root, tmp_path / "out")
    assert graded.message("notebook.run") == "lab.ipynb: all 6 code cells ran in order, no errors"
    details = graded.test("notebook.run")["output"]
    assert "no count recorded (Colab keeps none for a cell without output): cells 2, 4" in details
    assert graded.result.item("notebook.run").data["unrecorded"] == [2, 4]


def test_figures_are_named_in_the_details(tmp_path, notebook_rubric, cifar_root):
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "lab.ipynb").write_text(nbv.write(nbv.jupyterlab(samples=True, confusion=True)))
    graded = grading.run(folder, notebook_rubric, cifar_root, tmp_path / "out")
    details = graded.test("notebook.outputs")["output"]
    assert "figure: image grid (cell 4: imshow() of images)" in details
    assert "figure: training curve (cell 7: plot() of loss/accuracy values), 2 panels" in details
    assert "figure: confusion matrix/heatmap (cell 8: the code draws a confusion matrix/heatmap)" in details


@pytest.mark.parametrize("panels", (2, 1))
def test_loss_and_accuracy_side_by_side_are_the_two_plots_a_lab_asks_for(panels, tmp_path, cifar_root):
    """Lab 4 asks for at least two curve plots. ``plt.subplots(1, 2)`` with the loss left and
    the accuracy right shows both (the TA gives the points); all curves in one plot is one."""
    (tmp_path / "rubric").mkdir()
    (wanted,) = [
        entry
        for entry in load("lab4-cnn-fashion-mnist").item("notebook.outputs").options["require"]
        if entry.get("find") == "curve_plots"
    ]
    rubric = rubrics.load_notebook_only(
        tmp_path / "rubric",
        f"points = 1\nrequire = [{rubrics.toml({k: wanted[k] for k in ('find', 'min', 'what')})}]",
    )
    nb = nbv.jupyterlab()
    (curves,) = [c for c in nb.cells if c.source == nbv.CURVES]
    curves.outputs = [nbv.image(nbv.curves_png(panels=panels))]
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "lab.ipynb").write_text(nbv.write(nb))
    graded = grading.run(folder, rubric, cifar_root, tmp_path / "out")
    said = graded.message("notebook.outputs")
    if panels == 2:
        assert wanted["min"] == 2 and said == "lab.ipynb shows all 1 required outputs", said
        assert f"found {wanted['what']}: 2 in cell 6" in graded.test("notebook.outputs")["output"]
    else:
        assert said.startswith(f"lab.ipynb is missing {wanted['what']} (found 1, need 2)"), said


@pytest.mark.parametrize("log", ("handout", "cifar10 tutorial"))
def test_a_log_the_lab_asks_to_show_loss_and_accuracy_must_show_both(log, tmp_path, cifar_root):
    """Lab 2 asks for "a per-epoch training log (loss and accuracy)". The handout's log has
    both; the CIFAR-10 tutorial's ``[2,  4000] loss: 1.52`` lines are a log of the loss
    alone: the TA asks for the accuracy, and so does the grader, saying which log lacks it."""
    (tmp_path / "rubric").mkdir()
    (wanted,) = [
        e
        for e in load("lab2-resnet18-cifar10").item("notebook.outputs").options["require"]
        if e["find"] == "curves"
    ]
    fields = {k: wanted[k] for k in ("find", "needs", "what")}
    rubric = rubrics.load_notebook_only(
        tmp_path / "rubric", f"points = 1\nrequire = [{rubrics.toml(fields)}]"
    )
    lines = "".join(f"[{e},  2000] loss: 2.1\n[{e},  4000] loss: {1 / e:.3f}\n" for e in (1, 2, 3))
    nb = nbv.jupyterlab(log=None if log == "handout" else [nbv.stream(lines)])
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "lab.ipynb").write_text(nbv.write(nb))
    said = grading.run(folder, rubric, cifar_root, tmp_path / "out").message("notebook.outputs")
    if log == "handout":
        assert said == "lab.ipynb shows all 1 required outputs", said
    else:
        assert said.startswith(f"lab.ipynb is missing {wanted['what']}; the log in cell 5 has no accuracy"), (
            said
        )


# --- residual blocks (lecture 15's resnet.block) -----------------------------------
BLOCKS = {
    # The handout's order: full marks.
    "handout": (nbv.HANDOUT_BLOCK, True, "probe calls, in the basic order"),
    # ReLU before the addition: the TA takes the points and says where the ReLU belongs.
    "relu-before-add": (
        nbv.RELU_BEFORE_ADD,
        False,
        "Residual(3, 3) computes conv3x3-BN-ReLU-conv3x3-BN-ReLU, add the input (the ReLU belongs after the "
        "addition, not before it); the basic block is conv-BN-ReLU-conv-BN, add the input, ReLU",
    ),
    # Pre-activation: accepted by name (its parameter count differs from the reference's).
    "pre-activation": (nbv.PRE_ACTIVATION_BLOCK, True, "probe calls, in the pre-activation order"),
    # Bottleneck: accepted by name.
    "bottleneck": (nbv.BOTTLENECK_BLOCK, True, "probe calls, in the bottleneck order"),
    # BN moved after the addition: none of the accepted orders.
    "bn-after-add": (nbv.BN_AFTER_ADD, False, "computes conv3x3-BN-ReLU-conv3x3, add the input, BN-ReLU"),
}


@pytest.fixture(scope="module")
def block_rubric():
    return grading.only(load("lecture15-classic-cnns"), "resnet.block")


@pytest.mark.parametrize("case", list(BLOCKS))
def test_residual_block_orders_get_the_tas_verdict(case, tmp_path, block_rubric, fashion_root):
    source, passed, words = BLOCKS[case]
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "resnet.py").write_text(source)
    graded = grading.run(folder, block_rubric, fashion_root, tmp_path / "out")
    entry = graded.test("resnet.block")
    assert (entry["status"] == "passed") is passed, entry["output"]
    assert words in entry["output"].split("\n")[0], entry["output"]
    if case in ("pre-activation", "bottleneck"):
        assert "not compared for the" in entry["output"]


# --- LeNet: plain, with the course book's helpers, and going online at import ------
LENET_ITEMS = ("lenet.spec", "lenet.forward", "lenet.counts", "lenet.accuracy")
D2L_INSTALLED = importlib.util.find_spec("d2l") is not None
REFERENCE_LENET = Path(__file__).parents[1] / "reference" / "lecture15" / "lenet.py"


@pytest.fixture(scope="module")
def lenet_graded(tmp_path_factory, fashion_root):
    """The reference LeNet graded once; the variants must get the same verdicts."""
    tmp = tmp_path_factory.mktemp("lenet")
    rubric = grading.only(load("lecture15-classic-cnns"), *LENET_ITEMS)
    torch.manual_seed(0)
    state = LeNet().state_dict()
    plain = tmp / "plain"
    plain.mkdir()
    (plain / "lenet.py").write_text(REFERENCE_LENET.read_text())
    torch.save(state, plain / "lenet.pth")
    return rubric, state, grading.run(plain, rubric, fashion_root, tmp / "out-plain")


def _same_verdicts(variant, plain) -> None:
    for item in LENET_ITEMS:
        got, want = variant.test(item), plain.test(item)
        assert (got["status"], got.get("score")) == (want["status"], want.get("score")), (item, got["output"])
    # The TA's verdict on the reference: the structure is right; untrained weights earn no accuracy tier.
    assert [plain.test(i)["status"] for i in LENET_ITEMS] == ["passed", "passed", "passed", "failed"]


@pytest.mark.skipif(not D2L_INSTALLED, reason="setup.sh installs d2l (pip install --no-deps d2l==1.0.3)")
def test_lenet_written_with_d2l_helpers_grades_like_the_plain_one(tmp_path, lenet_graded, fashion_root):
    rubric, state, plain = lenet_graded
    folder = tmp_path / "d2l"
    folder.mkdir()
    (folder / "lenet.py").write_text(nbv.D2L_LENET)
    torch.save(state, folder / "lenet.pth")
    graded = grading.run(folder, rubric, fashion_root, tmp_path / "out")
    _same_verdicts(graded, plain)


@pytest.mark.skipif(os.geteuid() != 0, reason="tier A (own network namespace) as root")
def test_lenet_that_goes_online_at_import_grades_like_the_plain_one(
    tmp_path, lenet_graded, fashion_root, monkeypatch
):
    monkeypatch.setenv("AUTOGRADER_SANDBOX_TIER", "A")
    rubric, state, plain = lenet_graded
    folder = tmp_path / "online"
    folder.mkdir()
    reference = REFERENCE_LENET.read_text()
    (folder / "lenet.py").write_text(nbv.NETWORKED_IMPORT + reference)
    torch.save(state, folder / "lenet.pth")
    graded = grading.run(folder, rubric, fashion_root, tmp_path / "out")
    _same_verdicts(graded, plain)


# --- whole ResNet-18 (lab 7 style) with the residual item's orders option ------------
RESIDUAL_RUBRIC = """
id = "variants-residual"
title = "ResNet-18 blocks in an accepted order"
dataset = "cifar10"

[tasks.task1]
title = "ResNet-18"
model = "ResNet18"
sources = ["resnet18.py"]
weights = ["resnet18.pth"]

[[items]]
id = "task1.residual"
kind = "residual"
task = "task1"
name = "Residual, blocks in the handout's order (or pre-activation / bottleneck)"
min_skips = 8
orders = ["basic", "pre-activation", "bottleneck"]
"""
MODELS = {
    # lab 7's reference: every block conv-BN-ReLU-conv-BN, add, ReLU.
    "reference": (
        (),
        True,
        "ResNet18 is residual: 8 skip connections (5 identity, 3 projection), blocks in the basic",
    ),
    # ReLU moved before the addition in BasicBlock: all 8 blocks wrong, the first named.
    "relu-before-add": (
        (
            (
                "        out = self.bn2(self.conv2(out))\n",
                "        out = self.relu(self.bn2(self.conv2(out)))\n",
            ),
            ("        return self.relu(out)\n", "        return out\n"),
        ),
        False,
        "ResNet18: the block of skip 1 computes conv3x3-BN-ReLU-conv3x3-BN-ReLU, add the input (the ReLU "
        "belongs after the addition, not before it); the basic block is conv-BN-ReLU-conv-BN, add the input, "
        "ReLU; also accepted: pre-activation: BN-ReLU-conv-BN-ReLU-conv, add the input; bottleneck: "
        "conv1x1-BN-ReLU-conv-BN-ReLU-conv1x1-BN, add the input, ReLU (and 7 more blocks)",
    ),
}


@pytest.mark.parametrize("case", list(MODELS))
def test_resnet_block_order_in_the_whole_model(case, tmp_path, cifar_root):
    edits, passed, words = MODELS[case]
    rubric_path = tmp_path / "variants-residual.toml"
    rubric_path.write_text(RESIDUAL_RUBRIC)
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "resnet18.py").write_text(labs.reference_source("lab7/resnet18.py", *edits))
    graded = grading.run(folder, load(str(rubric_path)), cifar_root, tmp_path / "out")
    entry = graded.test("task1.residual")
    assert (entry["status"] == "passed") is passed, entry["output"]
    assert words in entry["output"].split("\n")[0], entry["output"]
