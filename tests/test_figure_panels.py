"""Plots side by side in one figure count as the plots they are.

The labs ask for "plots of the training loss and the validation accuracy" (at least two),
and students draw them with ``plt.subplots(1, 2)`` as often as in two figures. Each figure
here is drawn by matplotlib in the styles students use, and the grader must see as many
panels as the figure holds: no more for a legend outside the axes, a long title, twin axes
or a flat curve, no fewer for shared axes or panels almost touching.
"""

from __future__ import annotations

import base64
import io
import json

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from autograder.notebook import outputs  # noqa: E402

EPOCHS = np.arange(1, 21)
LOSS = 2.0 * np.exp(-EPOCHS / 5) + 0.3
ACCURACY = 0.9 - 0.6 * np.exp(-EPOCHS / 4)
# (style, dpi): matplotlib's default and the styles of seaborn, R and FiveThirtyEight, at the
# inline backend's 72 dpi and at 100
STYLES = (
    ("default", 72),
    ("default", 100),
    ("seaborn-v0_8-darkgrid", 72),
    ("seaborn-v0_8-whitegrid", 100),
    ("ggplot", 100),
    ("fivethirtyeight", 72),
    ("classic", 100),
    ("dark_background", 72),
)
LAYOUTS = ((1, 1), (1, 2), (2, 1), (2, 2), (1, 3))


def png(fig) -> str:  # noqa: ANN001
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def curves(ax, flat: bool = False) -> None:  # noqa: ANN001
    ax.plot(EPOCHS, LOSS, label="train loss")
    ax.plot(EPOCHS, np.full_like(LOSS, 0.5) if flat else LOSS + 0.1, label="val loss")
    ax.set_xlabel("epoch")
    ax.set_title("Loss")
    ax.legend()
    ax.grid(True)


@pytest.mark.slow  # forty figures drawn
@pytest.mark.parametrize(("style", "dpi"), STYLES)
def test_each_panel_of_a_grid_is_counted_in_every_style(style, dpi):
    for rows, columns in LAYOUTS:
        with plt.style.context(style):
            fig, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.5 * rows), dpi=dpi, squeeze=False)
            for ax in axes.flat:
                curves(ax)
            fig.suptitle("Training curves")
            fig.tight_layout()
            look = outputs.looks("image/png", png(fig))
        assert (look.look, look.panels) == ("chart", rows * columns), (style, dpi, rows, columns, look)


def drawn(case: str) -> str:
    """One figure as students draw it, by name."""
    if case == "shared y axis":
        fig, (a, b) = plt.subplots(1, 2, sharey=True)
        curves(a), curves(b)
    elif case == "shared x axis":
        fig, (a, b) = plt.subplots(2, 1, sharex=True)
        curves(a), curves(b)
    elif case == "panels almost touching":
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"wspace": 0.05})
        curves(a), curves(b)
        b.set_yticks([])
    elif case == "plt.subplot(121) and a long suptitle":
        fig = plt.figure(figsize=(12, 4))
        curves(plt.subplot(121)), curves(plt.subplot(122))
        fig.suptitle(
            "Training and validation loss and accuracy of the ResNet-18 over twenty epochs", fontsize=16
        )
    elif case == "legend outside the axes":
        fig, ax = plt.subplots()
        ax.plot(EPOCHS, LOSS, label="train loss")
        ax.plot(EPOCHS, LOSS + 0.1, label="validation loss")
        ax.legend(bbox_to_anchor=(1.02, 1), loc="upper left")
        fig.tight_layout()
    elif case == "twin axes":
        fig, ax = plt.subplots()
        ax.plot(EPOCHS, LOSS, "r")
        ax.twinx().plot(EPOCHS, ACCURACY, "b")
    elif case == "a flat validation curve":
        fig, ax = plt.subplots(figsize=(8, 3))
        curves(ax, flat=True)
    elif case == "pandas df.plot(subplots=True)":
        import pandas as pd

        frame = pd.DataFrame(
            {"loss": LOSS, "val_loss": LOSS + 0.1, "acc": ACCURACY, "val_acc": ACCURACY - 0.05}
        )
        fig = frame.plot(subplots=True, layout=(2, 2), figsize=(10, 6))[0][0].figure
    return png(fig)


CASES = {
    "shared y axis": 2,
    "shared x axis": 2,
    "panels almost touching": 2,
    "plt.subplot(121) and a long suptitle": 2,
    "legend outside the axes": 1,
    "twin axes": 1,
    "a flat validation curve": 1,
    "pandas df.plot(subplots=True)": 4,
}


@pytest.mark.parametrize("case", CASES)
def test_panels_are_counted_as_students_draw_them(case):
    look = outputs.looks("image/png", drawn(case))
    assert (look.look, look.panels) == ("chart", CASES[case]), look


def test_svg_and_plotly_figures_count_their_panels():
    fig, (a, b) = plt.subplots(1, 2)
    curves(a), curves(b)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    assert outputs.looks("image/svg+xml", buffer.getvalue()).panels == 2
    line = {"type": "scatter", "mode": "lines", "y": LOSS.tolist()}
    two = {"data": [line, {**line, "xaxis": "x2", "yaxis": "y2"}], "layout": {"xaxis": {}, "xaxis2": {}}}
    one = {"data": [line], "layout": {"xaxis": {"title": {"text": "epoch"}}}}
    assert outputs.looks(outputs.PLOTLY, json.loads(json.dumps(two))).panels == 2
    assert outputs.looks(outputs.PLOTLY, one).panels == 1


def test_a_grid_of_sample_images_is_one_filled_figure_not_panels():
    fig, axes = plt.subplots(4, 8, figsize=(10, 5))
    rng = np.random.default_rng(0)
    for ax in axes.flat:
        ax.imshow(np.kron(rng.random((4, 4, 3)), np.ones((8, 8, 1))))
        ax.axis("off")
    look = outputs.looks("image/png", png(fig))
    assert (look.look, look.panels) == ("filled", 1)


def test_the_d2l_books_training_figure_is_a_training_curve():
    """``d2l.train_ch6(net, train_iter, test_iter, ...)`` draws its loss and accuracy with the
    book's Animator as an SVG: the TA sees training curves, and so does the grader (the cell
    calls no plot() itself; it was an 'other figure' before)."""
    from nbformat import v4

    fig, ax = plt.subplots()
    curves(ax)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    shown = v4.new_output("display_data", data={"image/svg+xml": buffer.getvalue(), "text/plain": "<Figure>"})
    printed = v4.new_output("stream", name="stdout", text="loss 0.469, train acc 0.823, test acc 0.779\n")
    nb = v4.new_notebook()
    nb.cells = [
        v4.new_code_cell(
            "lr, num_epochs = 0.9, 10\nd2l.train_ch6(net, train_iter, test_iter, num_epochs, lr)"
        )
    ]
    nb.cells[0].outputs, nb.cells[0].execution_count = [printed, shown], 1
    (cell,) = outputs.cells(nb)
    (figure,) = outputs.figures(cell, lambda name: None)
    assert figure.kind == "curve", figure
