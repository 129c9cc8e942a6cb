"""Submissions for UW Labs 4 and 7 and the lecture 15 exercises, built from
the student templates (their notebooks, filled with the outputs a real run
prints) and the reference solutions, with weights really trained on the
generated data. Variants break one thing each, the way students do."""

from __future__ import annotations

import contextlib
import copy
import shutil
from pathlib import Path

import nbformat
import torch
from nbformat import v4

from autograder.data import load_split
from helpers import train
from helpers.notebooks import png

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "student_template"
REFERENCE = ROOT / "reference"


@contextlib.contextmanager
def one_thread():
    """The tests' models train fastest on one thread; on a busy 2-core runner, spinning
    OpenMP workers cost several times the compute (measured: 34 s vs 4 s of CPU for a
    small CNN, 125 s vs 58 s for lab 2's ResNet-18)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit(model: torch.nn.Module, root: Path, dataset: str, normalize: dict, **kwargs) -> torch.nn.Module:
    """``helpers.train.train`` on one thread."""
    with one_thread():
        return train.train(model, root, dataset, normalize["mean"], normalize["std"], **kwargs)


def measured(model: torch.nn.Module, root: Path, dataset: str, normalize: dict) -> dict:
    """What the grader will measure: accuracy and per-class accuracy on the test split."""
    split = load_split(root, dataset, train=False)
    x = torch.from_numpy(split.images).float().div(255)
    mean = torch.tensor(normalize["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(normalize["std"]).view(1, -1, 1, 1)
    with torch.no_grad():
        predicted = model.eval()((x - mean) / std).argmax(1).numpy()
    correct = predicted == split.labels
    per_class = {name: float(correct[split.labels == k].mean()) for k, name in enumerate(split.spec.classes)}
    return {"accuracy": float(correct.mean()), "per_class": per_class}


def _stream(text: str) -> nbformat.NotebookNode:
    return v4.new_output("stream", name="stdout", text=text)


def _figure(title: str) -> nbformat.NotebookNode:
    return v4.new_output("display_data", data={"image/png": png(title), "text/plain": "<Figure>"})


def run_notebook(
    template: Path,
    truth: dict,
    epochs: int = 5,
    plots: int = 2,
    claimed: float | None = None,
    best_worst: tuple[str, str] | None = None,
) -> nbformat.NotebookNode:
    """The template notebook as a student saves it after Restart & Run All.

    ``truth`` is what the weights really do; ``claimed`` and ``best_worst``
    override what the notebook prints (a student who pasted other numbers)."""
    nb = nbformat.read(str(template), as_version=4)
    per_class = truth["per_class"]
    ranked = sorted(per_class, key=per_class.get)
    best, worst = best_worst or (ranked[-1], ranked[0])
    count = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        count += 1
        cell.execution_count = count
        source = cell.source
        if "for epoch in range" in source:
            log = "".join(
                f"Epoch [{e}/{epochs}], Train Loss: {2.0 / e:.4f}, Val Acc: {100 * (0.5 + 0.08 * e):.2f}%\n"
                for e in range(1, epochs + 1)
            )
            cell.outputs = [_stream(log)]
        elif "plt.show()" in source:
            cell.outputs = [_figure(t) for t in ("Training loss", "Validation accuracy")[:plots]]
        elif "Test Accuracy" in source:
            cell.outputs = [_stream(f"Test Accuracy: {100 * (claimed or truth['accuracy']):.2f}%\n")]
        elif "Accuracy of" in source:
            cell.outputs = [
                _stream("".join(f"Accuracy of {n:>12s}: {100 * a:.1f} %\n" for n, a in per_class.items()))
            ]
        elif "Best class" in source:
            b, w = f"{best} ({per_class[best]:.1%})", f"{worst} ({per_class[worst]:.1%})"
            cell.outputs = [_stream(f"Best class: {b}, worst class: {w}\n")]
    return nb


def write(folder: Path, files: dict[str, str | bytes | dict | nbformat.NotebookNode]) -> Path:
    """A submission folder: text, bytes, state dicts (saved with torch.save) or notebooks."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name, content in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)  # a package: models/resnet.py
        if isinstance(content, nbformat.NotebookNode):
            nbformat.write(content, str(target))
        elif isinstance(content, dict):
            torch.save(content, target)
        elif isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    return folder


def reference_source(relative: str, *edits: tuple[str, str]) -> str:
    """A reference file's text with exact edits applied (each must match once)."""
    text = (REFERENCE / relative).read_text()
    for old, new in edits:
        assert text.count(old) == 1, f"{old!r} is not unique in {relative}"
        text = text.replace(old, new)
    return text


def load_module(name: str, text: str):
    """Import a (possibly edited) source text as a module, to train it here."""
    namespace: dict = {"__name__": name}
    exec(compile(text, name, "exec"), namespace)  # noqa: S102 - test-owned code only
    return namespace


def state(model: torch.nn.Module) -> dict:
    return copy.deepcopy(model.state_dict())


def tier_points(accuracy: float, tiers) -> float:
    return next((t.points for t in tiers if t.reached(accuracy)), 0.0)


def lab4_submission(folder: Path, weights: dict, root: Path, **notebook) -> tuple[Path, dict]:
    """A lab 4 hand-in from the template: the reference CNN, its weights, the run notebook."""
    from reference.lab4.fashion_cnn import NORMALIZE, FashionCNN

    model = FashionCNN()
    model.load_state_dict(weights)
    truth = measured(model, root, "fashion_mnist", NORMALIZE)
    template = TEMPLATES / "lab4-cnn-fashion-mnist" / "lab4.ipynb"
    files = {
        "lab4.ipynb": run_notebook(template, truth, **notebook),
        "fashion_cnn.py": (REFERENCE / "lab4" / "fashion_cnn.py").read_text(),
        "fashion_cnn.pth": weights,
    }
    return write(folder, files), truth
