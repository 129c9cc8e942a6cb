"""The report's figures, drawn with matplotlib's Agg canvas and inlined as
base64 PNG data URIs, so report.html is one self-contained file.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot), so drawing
them never touches global backend state or leaks open figures in a batch run.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 110
MEASURED, CLAIMED, TRAIN, VAL = "#0969da", "#bf8700", "#0969da", "#cf222e"


def _uri(fig: Figure) -> str:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def per_class(
    measured: dict[str, float | None], claimed: dict[str, float] | None = None, title: str = ""
) -> str:
    """Horizontal bars of per-class accuracy, the notebook's claims beside them."""
    names = list(measured)
    fig = Figure(figsize=(6.4, 0.38 * len(names) + 1.1))
    ax = fig.add_subplot()
    rows = range(len(names))
    values = [100 * (measured[n] or 0.0) for n in names]
    height = 0.4 if claimed else 0.7
    bars = ax.barh(
        [r - (height / 2 if claimed else 0) for r in rows],
        values,
        height=height,
        color=MEASURED,
        label="measured",
    )
    for bar, value in zip(bars, values, strict=True):
        ax.text(value + 1, bar.get_y() + bar.get_height() / 2, f"{value:.1f}%", va="center", fontsize=8)
    if claimed:
        ax.barh(
            [r + height / 2 for r in rows],
            [100 * claimed.get(n, 0.0) for n in names],
            height=height,
            color=CLAIMED,
            label="claimed in the notebook",
        )
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8, frameon=False)
    ax.set_yticks(list(rows), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 110)
    ax.set_xlabel("accuracy (%)")
    ax.set_title(title or "Per-class accuracy on the test split", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _uri(fig)


def confusion(matrix: Sequence[Sequence[int]], classes: Sequence[str], title: str = "") -> str:
    """Confusion matrix heatmap: rows true class, columns predicted, counts in the cells."""
    k = len(classes)
    fig = Figure(figsize=(0.45 * k + 2.0, 0.4 * k + 1.6))
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    top = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            if count:
                colour = "white" if count > top / 2 else "#1b1f24"
                ax.text(j, i, str(count), ha="center", va="center", fontsize=7, color=colour)
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or "Confusion matrix (test split)", fontsize=10)
    return _uri(fig)


def curves(epochs: Sequence[int], series: dict[str, Sequence[float | None]], title: str = "") -> str:
    """Loss and accuracy per epoch, redrawn from the numbers the notebook logged."""
    has_acc = any(k.endswith("acc") for k in series)
    has_loss = any(k.endswith("loss") for k in series)
    panels = [p for p, present in (("loss", has_loss), ("acc", has_acc)) if present]
    fig = Figure(figsize=(3.4 * len(panels) + 0.4, 2.9))
    for n, panel in enumerate(panels, start=1):
        ax = fig.add_subplot(1, len(panels), n)
        for side, colour in (("train", TRAIN), ("val", VAL)):
            values = series.get(f"{side}_{panel}")
            if not values:
                continue
            points = [
                (e, v * (100 if panel == "acc" else 1))
                for e, v in zip(epochs, values, strict=False)
                if v is not None
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                label = "training" if side == "train" else "validation"
                ax.plot(xs, ys, marker="o" if len(xs) <= 30 else None, ms=3, color=colour, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss" if panel == "loss" else "accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title or "Training curves (from the notebook's log)", fontsize=10)
    return _uri(fig)


def loss_histograms(
    edges: Sequence[float], train: Sequence[float], test: Sequence[float], title: str = ""
) -> str:
    """Two small histograms of per-image losses (fractions of each set) on shared bins:
    the training sample and the test split."""
    fig = Figure(figsize=(6.4, 2.3))
    widths = [b - a for a, b in zip(edges[:-1], edges[1:], strict=True)]
    top = max([*train, *test, 0.01]) * 1.1
    for n, (label, shares, colour) in enumerate(
        (("training sample", train, TRAIN), ("test split", test, VAL)), start=1
    ):
        ax = fig.add_subplot(1, 2, n)
        ax.bar(edges[:-1], [100 * v for v in shares], width=widths, align="edge", color=colour)
        ax.set_ylim(0, 100 * top)
        ax.set_xlabel("cross-entropy loss per image")
        ax.set_ylabel("% of images" if n == 1 else "")
        ax.set_title(label, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title or "Per-image losses: training sample and test split", fontsize=10)
    fig.tight_layout()
    return _uri(fig)
