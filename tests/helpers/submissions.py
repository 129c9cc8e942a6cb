"""Lab 2 submissions as students hand them in: a notebook defining SimpleCNN
(with outputs), resnet18.py, weights and a PDF; variants break one thing."""

from __future__ import annotations

import inspect
import zipfile
from pathlib import Path

import nbformat
import torch
from nbformat import v4

from reference.lab2 import resnet18 as ref_resnet
from reference.lab2 import simple_cnn as ref_simple

MEAN, STD = ref_simple.NORMALIZE["mean"], ref_simple.NORMALIZE["std"]
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def simple_cnn_source() -> str:
    return inspect.getsource(ref_simple.SimpleCNN)


def lab2_notebook(
    simple_cnn: str | None = None,
    claimed: float = 0.97,
    test_transform: str | None = None,
    extra_cells: list[str] | None = None,
) -> nbformat.NotebookNode:
    nb = v4.new_notebook()
    cells = [
        "import torch\nimport torch.nn as nn\nimport torchvision\n"
        "import torchvision.transforms as transforms\n"
        "from google.colab import drive  # students on Colab\n!pip install thop",
        test_transform
        or (
            "train_transform = transforms.Compose([transforms.RandomHorizontalFlip(), "
            f"transforms.ToTensor(), transforms.Normalize({MEAN}, {STD})])\n"
            "test_transform = transforms.Compose([transforms.ToTensor(), "
            f"transforms.Normalize({MEAN}, {STD})])\n"
            "trainset = torchvision.datasets.CIFAR10('./data', train=True, download=True, "
            "transform=train_transform)"
        ),
        simple_cnn if simple_cnn is not None else simple_cnn_source(),
        "model = SimpleCNN().to('cuda')\nfor epoch in range(100):\n    train_one_epoch(model)\n"
        "torch.save(model.state_dict(), 'simple_cnn.pth')",
        f"print(f'Test Accuracy: {claimed * 100:.2f}%')",
        *(extra_cells or []),
    ]
    for k, source in enumerate(cells, start=1):
        cell = v4.new_code_cell(source, execution_count=k)
        if "Test Accuracy" in source:
            cell.outputs = [
                v4.new_output("stream", name="stdout", text=f"Test Accuracy: {claimed * 100:.2f}%\n")
            ]
        nb.cells.append(cell)
    return nb


def write_lab2(
    folder: Path,
    simple_state: dict | None,
    resnet_state: dict | None,
    notebook: nbformat.NotebookNode | None = None,
    resnet_source: str | None = None,
    simple_name: str = "simple_cnn.pth",
    resnet_name: str = "resnet18.pth",
    pdf: bool = True,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook or lab2_notebook(), str(folder / "StudentID_lab2.ipynb"))
    source = resnet_source if resnet_source is not None else Path(ref_resnet.__file__).read_text()
    if source:
        (folder / "resnet18.py").write_text(source)
    if simple_state is not None:
        torch.save(simple_state, folder / simple_name)
    if resnet_state is not None:
        torch.save(resnet_state, folder / resnet_name)
    if pdf:
        (folder / "StudentID_lab2.pdf").write_bytes(PDF)
    return folder


def zip_folder(folder: Path, target: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(target, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, prefix + path.relative_to(folder).as_posix())
    return target
