"""Notebooks and blocks as students hand them in, written fresh for the
realistic-variants suite (tests/test_variants_notebooks.py).

Each editor saves a notebook its own way; the fixtures follow what they write:

- JupyterLab 4: nbformat 4.5, cell ids, counts from 1, ``execution`` timing
  metadata when the "record timing" setting is on;
- VS Code: nbformat 4.2 without cell ids, ``vscode.interpreter`` metadata,
  ``orig_nbformat``, tqdm bars on stderr;
- Kaggle ("Save version" runs it with papermill): ``kaggle`` metadata,
  per-cell ``execution`` timestamps and ``papermill`` status, counts 1..n;
- Colab: nbformat 4.0, ``colab`` metadata, cells with ``id``/``outputId``,
  ``execution_count`` null (older exports: 0) on cells that printed nothing.

Training logs: the handout's ``Epoch [e/N], Train Loss: ...`` lines, tqdm bars
with metrics in the postfix, and Keras-style progress lines.
"""

from __future__ import annotations

import base64
import functools
import io

import nbformat
import numpy as np
from nbformat import v4

# The notebook-only rubric's outputs item the variant suites grade with, and the verdicts a
# notebook that ran in order and shows all three outputs gets.
OUTPUTS = """
points = 3
require = [
  { find = "curves", what = "a per-epoch training log" },
  { find = "curve_plots", what = "a plot of the training curves" },
  { find = "test_accuracy", what = "the test-accuracy print" },
]
"""
PASS_RUN = (True, "code cells ran in order")
PASS_OUT = (True, "shows all 3 required outputs")

IMPORTS = "import torch\nimport torch.nn as nn\nimport matplotlib.pyplot as plt\nfrom tqdm.auto import tqdm"
DATA = (
    "transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])\n"
    "trainset = torchvision.datasets.CIFAR10('./data', train=True, download=True, transform=transform)"
)
MODEL = "model = SimpleCNN().to(device)\noptimizer = torch.optim.Adam(model.parameters(), lr=1e-3)"
TRAIN = "history = train(model, trainloader, valloader, epochs=EPOCHS)"
CURVES = (
    "fig, ax = plt.subplots(1, 2, figsize=(12, 4))\n"
    "ax[0].plot(history['train_loss'], label='train'); ax[0].plot(history['val_loss'], label='val')\n"
    "ax[0].set_xlabel('epoch'); ax[0].set_title('Loss'); ax[0].legend()\n"
    "ax[1].plot(history['train_acc'], label='train'); ax[1].plot(history['val_acc'], label='val')\n"
    "ax[1].set_title('Accuracy'); ax[1].legend()\nplt.show()"
)
SAMPLES = (
    "images, labels = next(iter(trainloader))\n"
    "fig, axes = plt.subplots(4, 8, figsize=(10, 5))\n"
    "for ax, img, label in zip(axes.flat, images, labels):\n"
    "    ax.imshow((img.permute(1, 2, 0) * STD + MEAN).clamp(0, 1))\n"
    "    ax.set_title(classes[label], fontsize=8); ax.axis('off')\nplt.show()"
)
CONFUSION = (
    "from sklearn.metrics import confusion_matrix\ncm = confusion_matrix(y_true, y_pred)\n"
    "plt.imshow(cm, cmap='Blues'); plt.colorbar(); plt.show()"
)
TEST = "print(f'Test Accuracy: {100 * correct / total:.2f}%')"


# --- figures ------------------------------------------------------------------
def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=72, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


@functools.cache
def curves_png(epochs: int = 10, panels: int = 2) -> str:
    """The CURVES cell's figure: loss and accuracy side by side, as matplotlib draws them
    (``panels=1``: all four curves in one plot)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = np.arange(1, epochs + 1)
    if panels == 1:
        fig, one = plt.subplots(figsize=(6, 4))
        ax = [one, one]
    else:
        fig, ax = plt.subplots(1, 2, figsize=(12, 4))
    ax[0].plot(e, 2.0 / e + 0.3, label="train")
    ax[0].plot(e, 2.2 / e + 0.45, label="val")
    ax[0].set_xlabel("epoch")
    ax[0].set_title("Loss")
    ax[0].legend()
    ax[1].plot(e, 0.9 - 0.5 / e, label="train")
    ax[1].plot(e, 0.8 - 0.5 / e, label="val")
    ax[1].set_title("Accuracy")
    ax[1].legend()
    return _png(fig)


@functools.cache
def samples_png(gray: bool = False, seed: int = 0) -> str:
    """The SAMPLES cell's figure: a 4x8 grid of small images (smooth blobs standing in for photos)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(4, 8, figsize=(10, 5))
    for ax in axes.flat:
        base = rng.random((4, 4, 1 if gray else 3))
        img = np.kron(base, np.ones((8, 8, 1)))  # 32x32, blocky like an up-scaled photo
        ax.imshow(img[..., 0] if gray else img, cmap="gray" if gray else None)
        ax.set_title("cat", fontsize=8)
        ax.axis("off")
    return _png(fig)


@functools.cache
def confusion_png() -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    plt.imshow(np.random.default_rng(1).integers(0, 100, (10, 10)), cmap="Blues")
    plt.colorbar()
    return _png(fig)


def image(png: str) -> nbformat.NotebookNode:
    return v4.new_output(
        "display_data", data={"image/png": png, "text/plain": "<Figure size 1200x400 with 2 Axes>"}
    )


def stream(text: str, name: str = "stdout") -> nbformat.NotebookNode:
    return v4.new_output("stream", name=name, text=text)


# --- training logs ------------------------------------------------------------
def handout_log(epochs: int = 10) -> str:
    return "".join(
        f"Epoch [{e}/{epochs}], Train Loss: {2.0 / e + 0.3:.4f}, Train Acc: {90 - 50 / e:.2f}%, "
        f"Val Loss: {2.2 / e + 0.45:.4f}, Val Acc: {80 - 50 / e:.2f}%\n"
        for e in range(1, epochs + 1)
    )


def tqdm_log(epochs: int = 10) -> list[nbformat.NotebookNode]:
    """A tqdm bar per epoch on stderr, redrawn with \\r, metrics in its postfix, then the
    epoch's validation line on stdout: the stream outputs alternate as Jupyter saves them."""
    outputs = []
    for e in range(1, epochs + 1):
        bar = []
        for step in (1, 196, 391):
            pct = round(100 * step / 391)
            blocks = "█" * (pct // 10) + " " * (10 - pct // 10)
            bar.append(
                f"\rEpoch {e}/{epochs}: {pct:3d}%|{blocks}| {step}/391 [00:{step // 30:02d}<00:00, 31.2it/s, "
                f"acc={90 - 50 / e:.1f}, loss={2.0 / e + 0.3:.3f}]"
            )
        outputs.append(stream("".join(bar) + "\n", "stderr"))
        outputs.append(stream(f"Epoch {e}: val_loss={2.2 / e + 0.45:.4f} val_acc={0.8 - 0.5 / e:.4f}\n"))
    return outputs


def keras_log(epochs: int = 10, keras3: bool = False) -> str:
    """Keras-style progress lines as a Keras-like fit loop prints them in Jupyter: Keras 2
    redraws with backspaces and a carriage return, Keras 3 with a carriage return and a
    solid bar, metrics in alphabetical order."""
    lines = []
    for e in range(1, epochs + 1):
        loss, acc = f"{2.0 / e + 0.3:.4f}", f"{0.9 - 0.5 / e:.4f}"
        val_loss, val_acc = f"{2.2 / e + 0.45:.4f}", f"{0.8 - 0.5 / e:.4f}"
        lines.append(f"Epoch {e}/{epochs}\n")
        if keras3:
            partial = (
                f"\r 50/390 ━━━━━━━━━━━━━━━━━━━━ 10s 30ms/step - accuracy: 0.3000 - loss: {2.4 / e + 0.3:.4f}"
            )
            final = (
                f"\r390/390 ━━━━━━━━━━━━━━━━━━━━ 12s 30ms/step - accuracy: {acc} - loss: {loss} "
                f"- val_accuracy: {val_acc} - val_loss: {val_loss}"
            )
            lines.append(partial + final + "\n")
            continue
        partial = f" 50/390 [===>..........................] - ETA: 10s - loss: {2.4 / e + 0.3:.4f}"
        final = (
            f"390/390 [==============================] - 12s 30ms/step - loss: {loss} "
            f"- accuracy: {acc} - val_loss: {val_loss} - val_accuracy: {val_acc}"
        )
        lines.append(partial + "\b" * len(partial) + "\r" + final + "\n")
    return "".join(lines)


# --- notebooks by editor ------------------------------------------------------
def _cells(log: list[nbformat.NotebookNode], samples: bool, confusion: bool) -> list[nbformat.NotebookNode]:
    """The lab's cells with the outputs a real run leaves (code cells in order)."""
    cells = [v4.new_markdown_cell("# Lab 2: SimpleCNN on CIFAR-10"), v4.new_code_cell(IMPORTS)]
    cells.append(v4.new_code_cell(DATA, outputs=[stream("Files already downloaded and verified\n")]))
    if samples:
        cells.append(v4.new_code_cell(SAMPLES, outputs=[image(samples_png())]))
    cells += [v4.new_code_cell(MODEL), v4.new_code_cell(TRAIN, outputs=log)]
    cells.append(v4.new_code_cell(CURVES, outputs=[image(curves_png())]))
    if confusion:
        cells.append(v4.new_code_cell(CONFUSION, outputs=[image(confusion_png())]))
    cells.append(v4.new_code_cell(TEST, outputs=[stream("Test Accuracy: 71.23%\n")]))
    return cells


# The per-cell timing that JupyterLab ("record timing" on) and Kaggle's papermill run save.
TIMING = {
    "iopub.execute_input": "2026-10-02T14:03:11.512Z",
    "iopub.status.busy": "2026-10-02T14:03:11.511Z",
    "iopub.status.idle": "2026-10-02T14:03:12.020Z",
    "shell.execute_reply": "2026-10-02T14:03:12.019Z",
}


def _count(cells: list[nbformat.NotebookNode], start: int = 1) -> None:
    number = start
    for cell in cells:
        if cell.cell_type == "code":
            cell.execution_count = number
            number += 1


def jupyterlab(log=None, samples: bool = False, confusion: bool = False, timing: bool = True):
    nb = v4.new_notebook()
    nb.nbformat_minor = 5
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python", "version": "3.11.9", "file_extension": ".py"},
    }
    nb.cells = _cells(log or [stream(handout_log())], samples, confusion)
    _count(nb.cells)
    if timing:
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.metadata["execution"] = dict(TIMING)
    return nb


def vscode(log=None, samples: bool = False):
    """VS Code's Jupyter extension: nbformat 4.2 (no cell ids), its own metadata."""
    nb = v4.new_notebook()
    nb.nbformat_minor = 2
    nb.metadata = {
        "kernelspec": {"display_name": ".venv", "language": "python", "name": "python3"},
        "language_info": {
            "codemirror_mode": {"name": "ipython", "version": 3},
            "file_extension": ".py",
            "mimetype": "text/x-python",
            "name": "python",
            "nbconvert_exporter": "python",
            "pygments_lexer": "ipython3",
            "version": "3.11.9",
        },
        "orig_nbformat": 4,
        "vscode": {"interpreter": {"hash": "3ad933181bd8a04b432d3370b9dc3b0662ad032c4dfaa4e4f1596c5"}},
    }
    nb.cells = _cells(log or [stream(handout_log())], samples, False)
    for cell in nb.cells:
        cell.pop("id", None)
    _count(nb.cells)
    return nb


def kaggle(log=None):
    nb = v4.new_notebook()
    nb.nbformat_minor = 4
    nb.metadata = {
        "kaggle": {
            "accelerator": "gpu",
            "dataSources": [{"sourceId": 1, "sourceType": "datasetVersion", "datasetId": 1}],
            "isGpuEnabled": True,
            "isInternetEnabled": True,
            "language": "python",
            "sourceType": "notebook",
        },
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python", "version": "3.10.13"},
        "papermill": {"default_parameters": {}, "duration": 812.4, "environment_variables": {}},
    }
    nb.cells = _cells(log or [stream(keras_log())], False, False)
    _count(nb.cells)
    for cell in nb.cells:
        cell.pop("id", None)  # nbformat 4.4: no cell ids
        cell.metadata["papermill"] = {"duration": 1.2, "exception": False, "status": "completed"}
        if cell.cell_type == "code":
            cell.metadata["execution"] = dict(TIMING)
            cell.metadata["trusted"] = True
    return nb


def colab(log=None, samples: bool = False, blank: int | None = None, ran: bool = True):
    """Colab's download: counts only on cells that printed something; ``blank`` is what
    the others get (None, or 0 in older exports). ``ran=False``: saved before running."""
    nb = v4.new_notebook()
    nb.nbformat_minor = 0
    nb.metadata = {
        "colab": {"provenance": [], "gpuType": "T4"},
        "kernelspec": {"name": "python3", "display_name": "Python 3"},
        "language_info": {"name": "python"},
        "accelerator": "GPU",
    }
    nb.cells = _cells(log or [stream(handout_log())], samples, False)
    number = 1
    for k, cell in enumerate(nb.cells):
        cell.pop("id", None)
        cell.metadata["id"] = f"cOlAb{k:03d}xyz"
        if cell.cell_type != "code":
            continue
        if not ran:
            cell.outputs, cell.execution_count = [], None
        elif cell.outputs:
            cell.metadata["colab"] = {"base_uri": "https://localhost:8080/"}
            cell.metadata["outputId"] = f"0ut{k:03d}-4f2e-11ee"
            cell.execution_count = number
            number += 1
        else:
            cell.execution_count = blank
            number += 1
    return nb


def write(nb: nbformat.NotebookNode) -> str:
    """The notebook file as the editor leaves it (nbformat validates on write)."""
    return nbformat.writes(nb)


# --- more editors and output formats (tests/test_variants_notebook_formats.py) --------
@functools.cache
def curves_figure(fmt: str) -> str:
    """The CURVES figure as ``%config InlineBackend.figure_format`` makes Jupyter save it:
    'svg' as SVG text, 'jpeg' as base64 JPEG (matplotlib's own encoder settings)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = np.arange(1, 11)
    fig, ax = plt.subplots(1, 2, figsize=(12, 4))
    ax[0].plot(e, 2.0 / e + 0.3, label="train")
    ax[0].plot(e, 2.2 / e + 0.45, label="val")
    ax[0].legend()
    ax[1].plot(e, 0.9 - 0.5 / e, label="train")
    ax[1].plot(e, 0.8 - 0.5 / e, label="val")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=72, bbox_inches="tight")
    plt.close(fig)
    raw = buffer.getvalue()
    return raw.decode() if fmt == "svg" else base64.b64encode(raw).decode()


def figure_output(
    mime: str, value, text: str = "<Figure size 1200x400 with 2 Axes>"
) -> nbformat.NotebookNode:
    return v4.new_output("display_data", data={mime: value, "text/plain": text})


PLOTLY_CURVES = (
    "import plotly.express as px\n"
    "fig = px.line(df, x='epoch', y=['train_loss', 'val_loss'], title='Loss')\nfig.show()"
)


def plotly_figure() -> dict:
    """What ``px.line`` of two series saves (``application/vnd.plotly.v1+json``), cut short."""
    epochs = list(range(1, 11))
    return {
        "config": {"plotlyServerURL": "https://plot.ly"},
        "data": [
            {
                "mode": "lines",
                "name": name,
                "type": "scatter",
                "x": epochs,
                "xaxis": "x",
                "yaxis": "y",
                "y": [round(a / e + b, 4) for e in epochs],
                "hovertemplate": "variable=" + name,
            }
            for name, a, b in (("train_loss", 2.0, 0.3), ("val_loss", 2.2, 0.45))
        ],
        "layout": {"title": {"text": "Loss"}, "xaxis": {"title": {"text": "epoch"}, "type": "linear"}},
    }


def plotly_colab_html() -> str:
    """Colab's Plotly renderer: no JSON output, the figure inside an HTML page's script."""
    import json

    figure = plotly_figure()
    return (
        '<html>\n<head><meta charset="utf-8" /></head>\n<body>\n    <div>'
        '<script src="https://cdn.plot.ly/plotly-2.35.2.min.js"></script>\n'
        '<div id="4f1c" class="plotly-graph-div" style="height:525px; width:100%;"></div>'
        '<script type="text/javascript">window.PLOTLYENV=window.PLOTLYENV || {};'
        f'if (document.getElementById("4f1c")) {{ Plotly.newPlot("4f1c", {json.dumps(figure["data"])}, '
        f'{json.dumps(figure["layout"])}, {{"responsive": true}}) }};</script></div>\n</body>\n</html>'
    )


def pandas_log(epochs: int = 10) -> nbformat.NotebookNode:
    """The training log shown as a DataFrame (``display(pd.DataFrame(history))``): its
    column names have spaces, which the text form splits; the HTML keeps them."""
    import pandas as pd

    frame = pd.DataFrame(
        {
            "Epoch": range(1, epochs + 1),
            "Train Loss": [2.0 / e + 0.3 for e in range(1, epochs + 1)],
            "Train Acc": [0.9 - 0.5 / e for e in range(1, epochs + 1)],
            "Val Loss": [2.2 / e + 0.45 for e in range(1, epochs + 1)],
            "Val Acc": [0.8 - 0.5 / e for e in range(1, epochs + 1)],
        }
    )
    html = frame.to_html()
    style = "<style scoped>\n    .dataframe tbody tr th { vertical-align: top; }\n</style>"
    html = f"<div>\n{style}\n{html}\n</div>"
    return v4.new_output("display_data", data={"text/html": html, "text/plain": frame.to_string()})


def keyboard_interrupt() -> nbformat.NotebookNode:
    """The error Jupyter saves when the student presses Stop (Kernel → Interrupt)."""
    return v4.new_output(
        "error",
        ename="KeyboardInterrupt",
        evalue="",
        traceback=[
            "\x1b[0;31m" + "-" * 75 + "\x1b[0m",
            "\x1b[0;31mKeyboardInterrupt\x1b[0m                         Traceback (most recent call last)",
            "\x1b[0;31mKeyboardInterrupt\x1b[0m: ",
        ],
    )


def colab_session() -> nbformat.NotebookNode:
    """A Colab notebook as File → Download → .ipynb leaves it after a GPU session: pip and
    Drive cells, a ``%%capture`` cell, tqdm widget bars (their state in the notebook's
    ``widgets`` metadata), a torchvision warning on stderr, ``executionInfo`` per cell,
    the figure as PNG with its ``<Figure size ...>`` text."""
    bars = []
    for e in range(1, 11):
        bars.append(
            v4.new_output(
                "display_data",
                data={
                    "application/vnd.jupyter.widget-view+json": {
                        "model_id": f"a1b2c3d4e5{e:02d}",
                        "version_major": 2,
                        "version_minor": 0,
                    },
                    "text/plain": f"Epoch {e}/10:   0%|          | 0/391 [00:00<?, ?it/s]",
                },
            )
        )
        bars.append(stream(handout_log().splitlines(keepends=True)[e - 1]))
    nb = colab(log=bars)
    pip = v4.new_code_cell(
        "!pip install -q torchinfo thop",
        outputs=[
            stream(
                "\x1b[2K     \x1b[90m" + "━" * 40 + "\x1b[0m \x1b[32m1.6/1.6 MB\x1b[0m "
                "\x1b[31m25.3 MB/s\x1b[0m eta \x1b[36m0:00:00\x1b[0m\n"
            )
        ],
    )
    drive = v4.new_code_cell(
        "from google.colab import drive\ndrive.mount('/content/drive')",
        outputs=[stream("Mounted at /content/drive\n")],
    )
    capture = v4.new_code_cell("%%capture\n!unzip -o /content/drive/MyDrive/cifar10.zip -d data")
    for cell in (pip, drive, capture):
        cell.pop("id", None)
    nb.cells[1:1] = [pip, drive, capture]
    nb.cells[5].outputs.insert(
        0,
        stream(
            "/usr/local/lib/python3.10/dist-packages/torch/utils/data/dataloader.py:557: UserWarning: This "
            "DataLoader will create 4 worker processes in total. Our suggested max number of worker in "
            "current system is 2\n  warnings.warn(_create_warning_msg(\n",
            "stderr",
        ),
    )
    number = 1
    for k, cell in enumerate(nb.cells):
        cell.metadata["id"] = f"cOlAb{k:03d}xyz"
        if cell.cell_type != "code":
            continue
        cell.execution_count = number if cell.outputs else None
        number += 1
        cell.metadata["executionInfo"] = {
            "elapsed": 1200 + k,
            "status": "ok",
            "timestamp": 1759400000000 + k,
            "user_tz": -480,
            "user": {"displayName": "Student", "userId": "0123456789"},
        }
    nb.metadata["widgets"] = {
        "application/vnd.jupyter.widget-state+json": {  # Colab's shape: models by id, no "state" key
            f"a1b2c3d4e5{e:02d}": {
                "model_module": "@jupyter-widgets/controls",
                "model_module_version": "1.5.0",
                "model_name": "HBoxModel",
                "state": {"children": [], "layout": "IPY_MODEL_0"},
            }
            for e in range(1, 11)
        }
    }
    return nb


def kaggle_paths() -> nbformat.NotebookNode:
    """Kaggle with the dataset read from /kaggle/input and weights written to /kaggle/working."""
    nb = kaggle(log=[stream(handout_log())])
    for cell in nb.cells:
        cell.source = cell.source.replace("'./data'", "'/kaggle/input/cifar10-python'")
    nb.cells[-1].source += "\ntorch.save(model.state_dict(), '/kaggle/working/simple_cnn.pth')"
    return nb


def classic(minor: int = 0) -> nbformat.NotebookNode:
    """Classic Jupyter Notebook (4.x) with nbextensions' ExecuteTime: nbformat 4.0-4.4, no
    cell ids, ``collapsed``/``scrolled`` metadata."""
    nb = jupyterlab(timing=False)
    nb.nbformat_minor = minor
    nb.metadata["kernelspec"]["display_name"] = "Python 3"
    for cell in nb.cells:
        cell.pop("id", None)
        if cell.cell_type == "code":
            cell.metadata.update(
                collapsed=False,
                scrolled=True,
                ExecuteTime={
                    "start_time": "2026-10-02T14:03:11.512Z",
                    "end_time": "2026-10-02T14:03:12.020Z",
                },
            )
    return nb


def v3_text() -> str:
    """An IPython 2/3 notebook (nbformat 3: worksheets, ``input``, ``prompt_number``)."""
    import json

    def code(number: int, source: str, outputs: list) -> dict:
        return {
            "cell_type": "code",
            "collapsed": False,
            "input": source,
            "language": "python",
            "metadata": {},
            "outputs": outputs,
            "prompt_number": number,
        }

    def text(value: str) -> dict:
        return {"output_type": "stream", "stream": "stdout", "text": value}

    cells = [
        {"cell_type": "heading", "level": 1, "metadata": {}, "source": "Lab 2: SimpleCNN on CIFAR-10"},
        code(1, IMPORTS, []),
        code(2, TRAIN, [text(handout_log())]),
        code(
            3,
            CURVES,
            [
                {
                    "output_type": "display_data",
                    "metadata": {},
                    "png": curves_png(),
                    "text": "<matplotlib.figure.Figure at 0x7f3a2c0d5f10>",
                }
            ],
        ),
        code(4, TEST, [text("Test Accuracy: 71.23%\n")]),
    ]
    return json.dumps(
        {
            "metadata": {"name": "", "signature": ""},
            "nbformat": 3,
            "nbformat_minor": 0,
            "worksheets": [{"cells": cells, "metadata": {}}],
        },
        indent=1,
    )


# --- residual blocks (lecture 15, d2l's signature) ----------------------------
BLOCK_HEADER = """import torch
from torch import nn
from torch.nn import functional as F


"""
HANDOUT_BLOCK = (
    BLOCK_HEADER
    + '''class Residual(nn.Module):
    """The lecture's block: conv-BN-ReLU-conv-BN, add the input, ReLU."""

    def __init__(self, input_channels, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        if use_1x1conv:
            self.conv3 = nn.Conv2d(input_channels, num_channels, kernel_size=1, stride=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.bn2 = nn.BatchNorm2d(num_channels)

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)
'''
)
# ReLU applied before the addition (and none after): a common slip.
RELU_BEFORE_ADD = HANDOUT_BLOCK.replace(
    "        Y = self.bn2(self.conv2(Y))\n", "        Y = F.relu(self.bn2(self.conv2(Y)))\n"
).replace("        Y += X\n        return F.relu(Y)\n", "        return Y + X\n")
PRE_ACTIVATION_BLOCK = (
    BLOCK_HEADER
    + '''class Residual(nn.Module):
    """Pre-activation (He et al., 2016): BN-ReLU-conv twice, then add; nothing after."""

    def __init__(self, input_channels, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(input_channels)
        self.conv1 = nn.Conv2d(input_channels, num_channels, 3, stride=strides, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(num_channels)
        self.conv2 = nn.Conv2d(num_channels, num_channels, 3, padding=1, bias=False)
        self.shortcut = nn.Identity()
        if use_1x1conv:
            self.shortcut = nn.Conv2d(input_channels, num_channels, 1, stride=strides)

    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return out + self.shortcut(x)
'''
)
BOTTLENECK_BLOCK = (
    BLOCK_HEADER
    + '''class Residual(nn.Module):
    """Bottleneck: 1x1 down, 3x3, 1x1 up, each followed by BN (ReLU between), add, ReLU."""

    def __init__(self, input_channels, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        mid = max(num_channels // 4, 1)
        self.body = nn.Sequential(
            nn.Conv2d(input_channels, mid, kernel_size=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, kernel_size=3, stride=strides, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, num_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(num_channels),
        )
        self.shortcut = nn.Identity()
        if use_1x1conv:
            self.shortcut = nn.Sequential(
                nn.Conv2d(input_channels, num_channels, kernel_size=1, stride=strides, bias=False),
                nn.BatchNorm2d(num_channels),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.body(x)
        out += self.shortcut(x)
        return self.relu(out)
'''
)
# BN after the addition instead of inside the branch: not one of the accepted orders.
BN_AFTER_ADD = HANDOUT_BLOCK.replace("        Y = self.bn2(self.conv2(Y))\n", "        Y = self.conv2(Y)\n")
BN_AFTER_ADD = BN_AFTER_ADD.replace("        return F.relu(Y)\n", "        return F.relu(self.bn2(Y))\n")

# --- LeNet written with the course book's helpers (d2l.ai, chapter 7.6) ---------
D2L_LENET = '''import torch
from torch import nn
from d2l import torch as d2l


def init_cnn(module):
    """Initialize weights for CNNs."""
    if type(module) == nn.Linear or type(module) == nn.Conv2d:
        nn.init.xavier_uniform_(module.weight)


class LeNet(d2l.Classifier):
    """The LeNet-5 model."""

    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(),
            nn.LazyLinear(120), nn.Sigmoid(),
            nn.LazyLinear(84), nn.Sigmoid(),
            nn.LazyLinear(num_classes))


@d2l.add_to_class(d2l.Classifier)
def layer_summary(self, X_shape):
    X = torch.randn(*X_shape)
    for layer in self.net:
        X = layer(X)
        print(layer.__class__.__name__, 'output shape:\\t', X.shape)
'''
# The same file going online when imported (tier A: connection errors, as offline).
NETWORKED_IMPORT = """import urllib.request

try:  # fetch the class names once; fine offline
    CLASSES = urllib.request.urlopen("https://example.org/fashion_classes.txt", timeout=3).read()
except Exception:
    CLASSES = None
"""
