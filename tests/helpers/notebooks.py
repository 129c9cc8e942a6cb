"""Notebooks as students save them: executed (with the outputs a real run
prints: a torchsummary table, a thop line, an epoch log, per-class lines,
matplotlib plots), never executed, run out of order, with an error, or with
claims that disagree with the weights. And small ones that really run in the
sandbox (a training loop written for 100 epochs, a hung cell, a crash)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import nbformat
import numpy as np
import torch
from nbformat import v4

from autograder.data import load_split
from autograder.data.registry import CIFAR10_CLASSES
from reference.lab2.resnet18 import ResNet18
from reference.lab2.simple_cnn import SimpleCNN

from . import submissions

SUMMARY = """----------------------------------------------------------------
        Layer (type)               Output Shape         Param #
================================================================
            Conv2d-1           [-1, 32, 32, 32]             896
       BatchNorm2d-2           [-1, 32, 32, 32]              64
              ReLU-3           [-1, 32, 32, 32]               0
         MaxPool2d-4           [-1, 32, 16, 16]               0
            Conv2d-5           [-1, 64, 16, 16]          18,496
       BatchNorm2d-6           [-1, 64, 16, 16]             128
              ReLU-7           [-1, 64, 16, 16]               0
         MaxPool2d-8             [-1, 64, 8, 8]               0
            Linear-9                   [-1, 10]          40,970
================================================================
Total params: 60,554
Trainable params: 60,554
Non-trainable params: 0
----------------------------------------------------------------
"""


def measured(state: dict, root: Path, model: str = "simple") -> dict:
    """What the grader will measure for these weights: accuracy and per-class accuracy."""
    net = (SimpleCNN() if model == "simple" else ResNet18()).eval()
    net.load_state_dict(state)
    split = load_split(root, "cifar10", train=False)
    x = torch.from_numpy(split.images).float().div(255)
    mean, std = (
        torch.tensor(submissions.MEAN).view(1, 3, 1, 1),
        torch.tensor(submissions.STD).view(1, 3, 1, 1),
    )
    with torch.no_grad():
        predicted = net((x - mean) / std).argmax(1).numpy()
    correct = predicted == split.labels
    per_class = {name: float(correct[split.labels == k].mean()) for k, name in enumerate(CIFAR10_CLASSES)}
    return {"accuracy": float(correct.mean()), "per_class": per_class}


def png(title: str) -> str:
    """A real matplotlib PNG, base64 as nbformat stores it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2))
    FigureCanvasAgg(fig)
    fig.add_subplot().plot(np.arange(5), np.arange(5) ** 0.5)
    fig.suptitle(title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    return base64.b64encode(buffer.getvalue()).decode()


def stream(text: str, name: str = "stdout") -> nbformat.NotebookNode:
    return v4.new_output("stream", name=name, text=text)


def epoch_log(epochs: int, final_train: float = 0.9, final_val: float = 0.85) -> str:
    """The lab handout's log format, with numbers that improve like a real run."""
    lines = []
    for e in range(1, epochs + 1):
        f = e / epochs
        lines.append(
            f"Epoch [{e}/{epochs}], Train Loss: {2.3 - 2.0 * f:.4f}, "
            f"Train Acc: {100 * (0.1 + (final_train - 0.1) * f):.2f}%, "
            f"Val Loss: {2.3 - 1.8 * f:.4f}, Val Acc: {100 * (0.1 + (final_val - 0.1) * f):.2f}%"
        )
    return "\n".join(lines) + "\n"


def executed_lab2(
    task1: dict,
    task2_claim: float | None = None,
    epochs: int = 30,
    best_worst: tuple[str, str] | None = None,
) -> nbformat.NotebookNode:
    """A fully run lab 2 notebook: SimpleCNN claims ``task1`` (accuracy, per_class),
    ResNet-18 (imported from resnet18.py) optionally claims ``task2_claim``."""
    per_class = "".join(
        f"Accuracy of {name:>10s}: {100 * acc:.1f} %\n" for name, acc in task1["per_class"].items()
    )
    ranked = sorted(task1["per_class"], key=task1["per_class"].get)
    best, worst = best_worst or (ranked[-1], ranked[0])
    extra = [
        "from torchsummary import summary\nsummary(model, (3, 32, 32))",
        "from thop import profile\nmacs, params = profile(model, inputs=(torch.randn(1, 3, 32, 32),))\n"
        "print(f'FLOPs: {macs / 1e6:.2f}M, Params: {params / 1e3:.2f}K')",
        "for name, acc in per_class.items():\n    print(f'Accuracy of {name:>10s}: {100 * acc:.1f} %')",
        "print(f'Best class: {best}, worst class: {worst}')",
        "plt.plot(history['train_acc']); plt.plot(history['val_acc']); plt.show()\n"
        "plt.plot(history['train_loss']); plt.plot(history['val_loss']); plt.show()",
        "## Task 2: ResNet-18",
        "from resnet18 import ResNet18\nresnet = ResNet18().to(device)\n"
        "for epoch in range(EPOCHS):\n    train_one_epoch(resnet)",
        "print(f'Test Accuracy: {evaluate(resnet):.2%}')",
    ]
    nb = submissions.lab2_notebook(claimed=task1["accuracy"], extra_cells=extra)
    cells = nb.cells
    cells[3].outputs = [stream(epoch_log(epochs))]  # the SimpleCNN training cell
    base = 5
    cells[base].outputs = [stream(SUMMARY)]
    cells[base + 1].outputs = [stream("FLOPs: 5.84M, Params: 60.55K\n")]
    cells[base + 2].outputs = [stream(per_class)]
    cells[base + 3].outputs = [stream(f"Best class: {best}, worst class: {worst}\n")]
    cells[base + 4].outputs = [
        v4.new_output("display_data", data={"image/png": png(t), "text/plain": "<Figure>"})
        for t in ("acc", "loss")
    ]
    heading = v4.new_markdown_cell("## Task 2: ResNet-18")
    cells[base + 5] = heading
    cells[base + 6].outputs = [stream(epoch_log(10, 0.7, 0.6))]
    claim = "" if task2_claim is None else f"Test Accuracy: {100 * task2_claim:.2f}%\n"
    cells[base + 7].outputs = [stream(claim)] if claim else []
    number = 1
    for cell in cells:
        if cell.cell_type == "code":
            cell.execution_count = number
            number += 1
    return nb


def with_counts(nb: nbformat.NotebookNode, counts: list[int | None]) -> nbformat.NotebookNode:
    """The same notebook with other execution counts (None: never run)."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell, count in zip(code, counts, strict=False):
        cell.execution_count = count
        if count is None:
            cell.outputs = []
    return nb


def error_output(ename: str, evalue: str) -> nbformat.NotebookNode:
    return v4.new_output(
        "error", ename=ename, evalue=evalue, traceback=[f"\x1b[0;31m{ename}\x1b[0m: {evalue}"]
    )


TRAIN_LOOP = """model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(8, 10))
opt = torch.optim.Adam(model.parameters(), 1e-2)
history = {'train_loss': [], 'train_acc': []}
for epoch in range(EPOCHS):
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(); loss.backward(); opt.step()
    acc = (model(x).argmax(1) == y).float().mean().item()
    history['train_loss'].append(loss.item()); history['train_acc'].append(acc)
    print(f'Epoch {epoch + 1}/{EPOCHS} - loss: {loss.item():.4f} - acc: {acc:.2%}')
    time.sleep(0.5)  # a real epoch takes minutes; 100 of these would take 50 s"""
LOAD_DATA = """with open('./data/cifar-10-batches-py/data_batch_1', 'rb') as f:
    batch = pickle.load(f, encoding='latin1')
x = torch.tensor(np.array(batch['data'][:256]), dtype=torch.float32).view(-1, 3, 32, 32) / 255
y = torch.tensor(batch['labels'][:256])
print('training images:', tuple(x.shape))"""


def runnable(*middle: str, parameters: bool = True) -> nbformat.NotebookNode:
    """A small notebook that really runs: Colab/pip lines, a parameters cell with
    EPOCHS = 100, data from ./data, a training loop, ``middle`` cells, a plot."""
    nb = v4.new_notebook()
    params = v4.new_code_cell("EPOCHS = 100\nBATCH_SIZE = 64")
    if parameters:
        params.metadata["tags"] = ["parameters"]
    nb.cells = [
        v4.new_markdown_cell("# Lab: a CNN on CIFAR-10"),
        v4.new_code_cell(
            "import pickle, time\nimport numpy as np\nimport torch\nimport torch.nn as nn\n"
            "!pip install thop\nfrom google.colab import drive\ndrive.mount('/content/drive')"
        ),
        params,
        v4.new_code_cell(LOAD_DATA),
        v4.new_code_cell(TRAIN_LOOP),
        *[v4.new_code_cell(m) for m in middle],
        v4.new_code_cell(
            "import matplotlib.pyplot as plt\nplt.plot(history['train_loss'], label='loss')\n"
            "plt.legend()\nplt.show()"
        ),
    ]
    return nb


def write(folder: Path, nb: nbformat.NotebookNode, name: str = "StudentID_lab.ipynb") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(folder / name))
    return folder
