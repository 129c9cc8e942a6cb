"""The saved notebook graded without running it: executed in order or not,
error outputs, required outputs, a file that is not a notebook. Each case is
graded end to end and the test reads what the student would see."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from helpers import grading, notebooks, rubrics, submissions

from autograder.checks.context import notebooks as ctx_notebooks
from autograder.data.registry import CIFAR10_CLASSES
from autograder.rubric import load
from autograder.submission import intake

TASK1 = {"accuracy": 0.846, "per_class": {n: 0.7 + 0.02 * k for k, n in enumerate(CIFAR10_CLASSES)}}


@pytest.fixture(scope="module")
def rubric():
    return load(str(rubrics.NOTEBOOK_ONLY))


def graded(
    tmp_path: Path, rubric, cifar_root, nb: nbformat.NotebookNode | None = None, raw: str | None = None
):
    folder = tmp_path / "sub"
    folder.mkdir()
    if raw is not None:
        (folder / "StudentID_lab2.ipynb").write_text(raw)
    else:
        nbformat.write(nb, str(folder / "StudentID_lab2.ipynb"))
    return grading.run(folder, rubric, cifar_root, tmp_path / "out")


def test_executed_notebook_passes_and_reports_what_it_claims(tmp_path, rubric, cifar_root):
    nb = notebooks.executed_lab2(TASK1, task2_claim=0.91)
    nb.cells[3].outputs.append(notebooks.stream("learning rate 0.001\n"))
    g = graded(tmp_path, rubric, cifar_root, nb)
    assert g.message("notebook.run") == "StudentID_lab2.ipynb: all 12 code cells ran in order, no errors"
    assert g.message("notebook.outputs") == "StudentID_lab2.ipynb shows all 8 required outputs"
    assert g.test("notebook.outputs")["score"] == 5
    claimed = g.result.item("notebook.run").data["claims"]
    assert [(c["value"], c["cell"], c["owner"]) for c in claimed["test_accuracy"]] == [
        (0.846, 5, None),
        (0.91, 13, None),
    ]
    assert len(claimed["runs"]) == 2 and claimed["runs"][0]["epochs"] == list(range(1, 31))


def test_never_executed_notebook_fails_with_what_to_do(tmp_path, rubric, cifar_root):
    nb = notebooks.with_counts(notebooks.executed_lab2(TASK1), [None] * 12)
    g = graded(tmp_path, rubric, cifar_root, nb)
    assert g.message("notebook.run") == (
        "StudentID_lab2.ipynb was saved without running any cell; run Kernel → Restart & Run All, "
        "then save the notebook before submitting"
    )
    assert g.message("notebook.outputs").startswith("StudentID_lab2.ipynb has no outputs at all")
    assert g.test("notebook.outputs")["score"] == 0


def test_cells_skipped_and_run_out_of_order_are_named(tmp_path, rubric, cifar_root):
    nb = notebooks.with_counts(notebooks.executed_lab2(TASK1), [1, 2, 3, 9, 5, None, 7, 8, 10, 11, 12, 13])
    g = graded(tmp_path, rubric, cifar_root, nb)
    assert g.message("notebook.run") == (
        "1 of 12 code cells was never run (cell 6); run Kernel → Restart & Run All, then save the "
        "notebook before submitting; cells ran out of order (cell 5 (In [5]) after cell 4 (In [9])); "
        "run Kernel → Restart & Run All, then save the notebook before submitting"
    )
    # the summary cell lost its output, the rest are still found: partial credit
    outputs = g.test("notebook.outputs")
    assert outputs["score"] == pytest.approx(5 * 6 / 8)
    assert "missing a model summary (torchsummary/torchinfo table or print(model))" in outputs["output"]
    assert "the learning rate" in outputs["output"]


def test_error_outputs_are_reported_with_their_cell(tmp_path, rubric, cifar_root):
    nb = notebooks.executed_lab2(TASK1)
    nb.cells[3].outputs = [notebooks.error_output("NameError", "name 'trainloader' is not defined")]
    nb.cells[7].outputs.append(notebooks.error_output("ZeroDivisionError", "division by zero"))
    g = graded(tmp_path, rubric, cifar_root, nb)
    assert g.message("notebook.run") == (
        "cell 4 (In [4]) raised NameError: name 'trainloader' is not defined (+1 more errors)"
    )
    assert (
        "error: cell 8 (In [8]) raised ZeroDivisionError: division by zero"
        in g.test("notebook.run")["output"]
    )
    assert g.result.item("notebook.run").data["errors"][1] == {
        "cell": 8,
        "ename": "ZeroDivisionError",
        "evalue": "division by zero",
    }
    # the failed cell's training log is gone; the ResNet-18 log still counts
    assert g.result.item("notebook.outputs").data["found"]["a per-epoch training log"] == 1


def test_a_file_that_is_not_a_notebook_fails_every_notebook_item(tmp_path, rubric, cifar_root):
    raw = nbformat.writes(submissions.lab2_notebook())[:-40]
    g = graded(tmp_path, rubric, cifar_root, raw=raw)
    for item in ("notebook.run", "notebook.outputs"):
        assert g.message(item).startswith("StudentID_lab2.ipynb is not valid JSON (line ")
        assert g.message(item).endswith("re-save it from Jupyter")


def test_a_notebook_breaking_the_format_is_named_by_cell(tmp_path, rubric, cifar_root):
    nb = notebooks.executed_lab2(TASK1)
    text = nbformat.writes(nb).replace('"execution_count": 2,', '"execution_count": "two",', 1)
    g = graded(tmp_path, rubric, cifar_root, raw=text)
    assert g.message("notebook.run").startswith(
        "StudentID_lab2.ipynb does not follow the notebook format (cell 2 field execution_count: "
        "'two' is not of type 'integer', 'null'); re-save it from Jupyter"
    )


def test_a_value_nbformat_cannot_even_report_is_named_by_cell(tmp_path, rubric, cifar_root):
    """A hand-edited cell whose cell_type is null: nbformat's own error report raises
    TypeError on it; the student still gets the cell and field."""
    nb = notebooks.executed_lab2(TASK1)
    data = json.loads(nbformat.writes(nb))
    data["cells"][2]["cell_type"] = None
    g = graded(tmp_path, rubric, cifar_root, raw=json.dumps(data))
    assert g.test("notebook.run")["status"] == "failed"
    assert g.message("notebook.run").startswith(
        "StudentID_lab2.ipynb does not follow the notebook format (cell 3 field cell_type: 'None' is not a "
        "string); re-save it from Jupyter"
    )


def test_the_graded_notebook_is_chosen_among_the_first_eight_by_name(tmp_path, monkeypatch):
    """A TA's pick (the one with outputs) is looked for among ``MAX_CANDIDATES`` notebooks
    only: a submission of many unrun copies costs a bounded read."""
    folder = tmp_path / "lab"
    for name in "abcdefgh":  # eight unrun copies sort first
        notebooks.write(folder, notebooks.runnable(), f"{name}_copy.ipynb")
    ran = notebooks.with_counts(notebooks.runnable(), [1, 2, 3])
    ran.cells[-1].outputs = [notebooks.stream("Test Accuracy: 61.00%\n")]
    notebooks.write(folder, ran, "z_lab2.ipynb")
    sub = intake(folder, tmp_path / "job")
    assert ctx_notebooks.Notebooks(sub).path().name == "a_copy.ipynb"
    monkeypatch.setattr(ctx_notebooks, "MAX_CANDIDATES", 9)  # control: looked at, it is the one
    assert ctx_notebooks.Notebooks(sub).path().name == "z_lab2.ipynb"
