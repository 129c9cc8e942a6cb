"""Realistic variants, continued: notebooks as more editors and settings save them,
graded end to end with the notebook items alone (the grader's own parsers, no
sandbox worker: a fraction of a second per case).

Colab after a GPU session (pip, Drive and ``%%capture`` cells, tqdm widget bars
and their widget state, stderr warnings, ``executionInfo``), Colab's and
JupyterLab's Plotly figures, matplotlib figures saved as SVG or JPEG
(``InlineBackend.figure_format``) or only with ``savefig``, Seaborn, a training
log shown as a pandas DataFrame, Kaggle's ``/kaggle/input`` paths, VS Code
writing cell ids into a 4.2 notebook, duplicate cell ids, classic Jupyter
4.0-4.4, an IPython 3 (v3) notebook, a byte-order mark, a partial re-run, a
cell stopped by hand, and the exports students hand in instead of the notebook
(HTML, PDF, a jupytext script, an empty upload).

Every case carries the verdict a careful TA gives per notebook item, and the
grader is asserted against it: the status and words of the message.
"""

from __future__ import annotations

import base64
import json
import warnings

import pytest
from helpers import grading, rubrics
from nbformat import v4
from variants import notebooks as nbv
from variants.notebooks import OUTPUTS, PASS_OUT, PASS_RUN

PASSES = {"notebook.run": PASS_RUN, "notebook.outputs": PASS_OUT}
NAME = "StudentID_lab2.ipynb"
PLOTLY = "application/vnd.plotly.v1+json"
HAND_IN = "not a notebook: hand in the .ipynb file itself (Jupyter: File → Save; Colab: File → Download"


def _curves(nb, source: str | None = None, outputs=None):
    """``nb`` with its CURVES cell's code and outputs replaced."""
    cell = next(c for c in nb.cells if c.source == nbv.CURVES)
    cell.source = source if source is not None else cell.source
    cell.outputs = outputs if outputs is not None else cell.outputs
    return nb


def _counts(nb, counts: list[int]):
    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell, count in zip(code, counts, strict=True):
        cell.execution_count = count
    return nb


def _file(nb) -> dict[str, str | bytes]:
    return {NAME: nbv.write(nb)}


def _duplicate_ids():
    nb = nbv.jupyterlab()
    nb.cells[3].id = nb.cells[2].id  # a cell copied from another notebook keeps its id
    return {NAME: json.dumps(nb, indent=1)}  # nbformat.writes would repair the duplicate


def _vscode_ids():
    """VS Code (some versions) wrote cell ids into notebooks it kept at nbformat 4.2."""
    nb = nbv.vscode()
    data = json.loads(nbv.write(nb))
    for k, cell in enumerate(data["cells"]):
        cell["id"] = f"7d0c{k:04x}"
    return {NAME: json.dumps(data, indent=1)}


def _vscode_45():
    nb = nbv.vscode()
    nb.nbformat_minor = 5
    for k, cell in enumerate(nb.cells):
        cell.id = f"{k:08x}"
        cell.metadata["vscode"] = {"languageId": "python" if cell.cell_type == "code" else "markdown"}
    return nb


def _keyboard_interrupt():
    four_epochs = "".join(nbv.handout_log(10).splitlines(keepends=True)[:4])
    nb = nbv.jupyterlab(log=[nbv.stream(four_epochs), nbv.keyboard_interrupt()])
    return _file(nb)


def _savefig(with_file: bool):
    source = (
        "plt.plot(history['train_loss']); plt.plot(history['val_loss'])\n"
        "plt.savefig(os.path.join(FIG_DIR, 'curves.png'), dpi=150)\nplt.close()"
    )
    files = _file(_curves(nbv.jupyterlab(), source, []))
    if with_file:
        files["figures/curves.png"] = base64.b64decode(nbv.curves_png())
    return files


def _untitled():
    """What Colab's File → New notebook saves: one empty code cell."""
    kernel = {"name": "python3", "display_name": "Python 3"}
    nb = v4.new_notebook(metadata={"colab": {"provenance": []}, "kernelspec": kernel})
    nb.nbformat_minor = 0
    nb.cells = [v4.new_code_cell("")]
    nb.cells[0].pop("id")
    return nb


def _extra_cell(nb, source: str):
    nb.cells.append(v4.new_code_cell(source))
    return nb


def _test_shown(source: str, data: dict[str, str]):
    nb = nbv.jupyterlab()
    test = next(c for c in nb.cells if c.source == nbv.TEST)
    test.source, test.outputs = source, [v4.new_output("display_data", data=data)]
    return nb


def _pandas_log():
    nb = nbv.jupyterlab(log=[nbv.pandas_log()])
    train = next(c for c in nb.cells if c.source == nbv.TRAIN)
    train.source += "\ndisplay(pd.DataFrame(history))"
    return _file(nb)


JUPYTEXT = """# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.16.4
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 2: SimpleCNN on CIFAR-10

# %%
import torch
import torch.nn as nn
"""
HTML_EXPORT = (
    '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8" />\n'
    '<meta name="viewport" content="width=device-width, initial-scale=1.0">\n<title>StudentID_lab2</title>\n'
)
PDF_EXPORT = b"%PDF-1.5\n%\xd0\xd4\xc5\xd8\n3 0 obj\n<< /Length 1869 /Filter /FlateDecode >>\nstream\n"


def _not_a_notebook(what: str):
    words = f"{NAME} is {what}, {HAND_IN}"
    return {"notebook.run": (False, words), "notebook.outputs": (False, words)}


# name: (files of the submission, {item: (TA's verdict, words the message must hold)}, epochs logged)
CASES = {
    # Colab after a GPU session: nothing to object to; the pip/Drive/%%capture cells are not errors.
    "colab-session": (lambda: _file(nbv.colab_session()), PASSES, 10),
    # Colab's Plotly renderer saves the figure as HTML and JavaScript: a line chart of the losses.
    "colab-plotly": (
        lambda: _file(
            _curves(
                nbv.colab(),
                nbv.PLOTLY_CURVES,
                [v4.new_output("display_data", data={"text/html": nbv.plotly_colab_html()})],
            )
        ),
        PASSES,
        10,
    ),
    # JupyterLab and VS Code save Plotly's own JSON.
    "jupyterlab-plotly": (
        lambda: _file(
            _curves(
                nbv.jupyterlab(),
                nbv.PLOTLY_CURVES,
                [nbv.figure_output(PLOTLY, nbv.plotly_figure(), "Figure({...})")],
            )
        ),
        PASSES,
        10,
    ),
    # %config InlineBackend.figure_format = 'svg' (crisper plots): the same curves.
    "svg-figures": (
        lambda: _file(
            _curves(nbv.jupyterlab(), None, [nbv.figure_output("image/svg+xml", nbv.curves_figure("svg"))])
        ),
        PASSES,
        10,
    ),
    # ... = 'jpeg' (smaller files).
    "jpeg-figures": (
        lambda: _file(
            _curves(nbv.jupyterlab(), None, [nbv.figure_output("image/jpeg", nbv.curves_figure("jpeg"))])
        ),
        PASSES,
        10,
    ),
    # Seaborn's lineplot of the history DataFrame.
    "seaborn": (
        lambda: _file(
            _curves(
                nbv.jupyterlab(), "sns.set_theme()\nsns.lineplot(data=df, x='epoch', y='loss', hue='split')"
            )
        ),
        PASSES,
        10,
    ),
    # Curves saved with savefig and closed, the PNG handed in beside the notebook: the TA opens it.
    "savefig-handed-in": (lambda: _savefig(True), PASSES, 10),
    # The same notebook without the file: no curves to see anywhere.
    "savefig-not-handed-in": (
        lambda: _savefig(False),
        {"notebook.run": PASS_RUN, "notebook.outputs": (False, "missing a plot of the training curves")},
        10,
    ),
    # The training log shown as a DataFrame whose column names have spaces ("Train Loss").
    "pandas-log": (_pandas_log, PASSES, 10),
    # The test accuracy shown with display(Markdown(...)) or display(HTML(...)): the text
    # form Jupyter saves beside it is only '<IPython.core.display.Markdown object>'.
    "markdown-result": (
        lambda: _file(
            _test_shown(
                "display(Markdown(f'**Test accuracy:** {100 * correct / total:.2f}%'))",
                {
                    "text/markdown": "**Test accuracy:** 71.23%",
                    "text/plain": "<IPython.core.display.Markdown object>",
                },
            )
        ),
        PASSES,
        10,
    ),
    "html-result": (
        lambda: _file(
            _test_shown(
                "display(HTML(f'<h3>Results</h3><p><b>Test accuracy</b>: {acc:.2%}</p>'))",
                {
                    "text/html": "<h3>Results</h3><p><b>Test accuracy</b>: 71.23%</p>",
                    "text/plain": "<IPython.core.display.HTML object>",
                },
            )
        ),
        PASSES,
        10,
    ),
    # Kaggle, data from /kaggle/input, weights to /kaggle/working: nothing to object to.
    "kaggle-paths": (lambda: _file(nbv.kaggle_paths()), PASSES, 10),
    # VS Code wrote cell ids into a 4.2 notebook: the editor's doing, not the student's.
    "vscode-ids-in-4.2": (_vscode_ids, PASSES, 10),
    # Current VS Code: nbformat 4.5 with cell ids and its per-cell language metadata.
    "vscode-4.5": (lambda: _file(_vscode_45()), PASSES, 10),
    # JupyterLab with two cells sharing an id (copied between notebooks).
    "duplicate-cell-ids": (_duplicate_ids, PASSES, 10),
    # Classic Jupyter Notebook 4.0 and 4.4 with ExecuteTime metadata.
    "classic-4.0": (lambda: _file(nbv.classic(0)), PASSES, 10),
    "classic-4.4": (lambda: _file(nbv.classic(4)), PASSES, 10),
    # IPython 3 (nbformat 3): read as version 4.
    "ipython3-v3": (lambda: {NAME: nbv.v3_text()}, PASSES, 10),
    # Saved by a Windows editor with a byte-order mark.
    "byte-order-mark": (lambda: {NAME: b"\xef\xbb\xbf" + nbv.write(nbv.jupyterlab()).encode()}, PASSES, 10),
    # A cell holding only comments (the handout's "# your experiments here"), never run:
    # there is nothing in it to run.
    "comment-only-cell": (
        lambda: _file(_extra_cell(nbv.jupyterlab(), "# Optional: your own experiments here\n# TODO")),
        PASSES,
        10,
    ),
    # Training re-run at the end after the later cells: the TA asks for a clean run.
    "partial-rerun": (
        lambda: _file(_counts(nbv.jupyterlab(), [1, 2, 9, 10, 4, 5])),
        {
            "notebook.run": (False, "cells ran out of order (cell 6 (In [4]) after cell 5 (In [10])"),
            "notebook.outputs": PASS_OUT,
        },
        10,
    ),
    # Training stopped with the Stop button after 4 epochs, then the rest run.
    "keyboard-interrupt": (
        _keyboard_interrupt,
        {
            "notebook.run": (
                False,
                "cell 5 (In [4]) was stopped by hand (KeyboardInterrupt) before it finished",
            ),
            "notebook.outputs": PASS_OUT,
        },
        4,
    ),
    # Several notebooks: the TA opens the one with the work in it, whatever sorts first.
    # Colab's empty Untitled0.ipynb beside the lab's notebook.
    "untitled-beside": (
        lambda: {"lab2_cnn.ipynb": nbv.write(nbv.jupyterlab()), "Untitled0.ipynb": nbv.write(_untitled())},
        PASSES,
        10,
    ),
    # The work done in Untitled1.ipynb, the handout's template handed in unrun beside it.
    "work-in-untitled": (
        lambda: {"Untitled1.ipynb": nbv.write(nbv.colab()), NAME: nbv.write(nbv.colab(ran=False))},
        PASSES,
        10,
    ),
    # An unrun "Copy of ..." (Colab's File → Save a copy) beside the worked notebook.
    "unrun-copy-beside": (
        lambda: _file(nbv.jupyterlab()) | {f"Copy of {NAME}": nbv.write(nbv.colab(ran=False))},
        PASSES,
        10,
    ),
    # Exports handed in under the notebook's name, and an upload that failed.
    "jupytext-script": (
        lambda: {NAME: JUPYTEXT},
        _not_a_notebook("Python code (a .py export or a jupytext script)"),
        0,
    ),
    "html-export": (lambda: {NAME: HTML_EXPORT}, _not_a_notebook("an HTML page (an export)"), 0),
    "pdf-export": (lambda: {NAME: PDF_EXPORT}, _not_a_notebook("a PDF (an export)"), 0),
    "empty-upload": (
        lambda: {NAME: b""},
        _not_a_notebook("empty (the notebook was not saved, or the upload failed)"),
        0,
    ),
    # Only the HTML export, no .ipynb at all: the message says which file is the export.
    "html-instead-of-notebook": (
        lambda: {"StudentID_lab2.html": HTML_EXPORT, "simple_cnn.py": "import torch\n"},
        {
            "notebook.run": (
                False,
                "no .ipynb notebook in the submission (found: StudentID_lab2.html, simple_cnn.py); "
                f"StudentID_lab2.html is an HTML page (an export), {HAND_IN}",
            )
        },
        0,
    ),
}


@pytest.fixture(scope="module")
def notebook_rubric(tmp_path_factory):
    return rubrics.load_notebook_only(tmp_path_factory.mktemp("rubric"), OUTPUTS)


def grade(files: dict[str, str | bytes], tmp_path, rubric, data_root):
    folder = tmp_path / "sub"
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return grading.run(folder, rubric, data_root, tmp_path / "out")


@pytest.mark.parametrize("case", list(CASES))
def test_notebook_formats_get_the_tas_verdict(case, tmp_path, notebook_rubric, cifar_root):
    build, verdicts, epochs = CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nbformat's repair warnings are the grader's business
        graded = grade(build(), tmp_path, notebook_rubric, cifar_root)
    for item, (passed, words) in verdicts.items():
        entry = graded.test(item)
        assert (entry["status"] == "passed") is passed, (item, entry["output"])
        assert words in entry["output"].split("\n")[0], (item, entry["output"])
    if epochs:  # the training log is read with its epochs and every series it printed
        (run,) = graded.result.item("notebook.run").data["claims"]["runs"]
        assert run["epochs"] == list(range(1, epochs + 1)), run
        assert all(s in run for s in ("train_loss", "train_acc", "val_loss", "val_acc")), run


def test_a_figure_saved_to_a_file_is_named_with_its_file(tmp_path, notebook_rubric, cifar_root):
    graded = grade(_savefig(True), tmp_path, notebook_rubric, cifar_root)
    details = graded.test("notebook.outputs")["output"]
    assert (
        "figure: training curve (cell 6: plot() of loss/accuracy values; saved as curves.png, "
        "not shown), 2 panels"
        in details
    )


def test_the_notebooks_not_graded_are_named(tmp_path, notebook_rubric, cifar_root):
    files = _file(nbv.jupyterlab()) | {f"Copy of {NAME}": nbv.write(nbv.colab(ran=False))}
    graded = grade(files, tmp_path, notebook_rubric, cifar_root)
    assert graded.message("notebook.run") == f"{NAME}: all 6 code cells ran in order, no errors"
    assert f"other notebooks, not graded: Copy of {NAME}" in graded.test("notebook.run")["output"]


def test_plotly_and_svg_figures_are_told_apart_from_pictures(tmp_path, notebook_rubric, cifar_root):
    """A Plotly heatmap (a confusion matrix) and an SVG holding a picture grid are not curves."""
    heatmap = {"data": [{"type": "heatmap", "z": [[5, 1], [2, 7]]}], "layout": {}}
    svg_grid = (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
        '<image width="32" height="32" xlink:href="data:image/png;base64,AAAA"/></svg>'
    )
    nb = _curves(
        nbv.jupyterlab(),
        "fig = px.imshow(cm)\nfig.show()\nshow_images(samples)",
        [nbv.figure_output(PLOTLY, heatmap), nbv.figure_output("image/svg+xml", svg_grid)],
    )
    graded = grade(_file(nb), tmp_path, notebook_rubric, cifar_root)
    assert graded.test("notebook.outputs")["status"] == "failed"
    assert graded.message("notebook.outputs").endswith(
        "missing a plot of the training curves; its other figures: image grid (cell 6), image grid (cell 6) "
        "(2/3 required outputs shown)"
    )
