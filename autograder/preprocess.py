"""Which normalisation the submission's model expects at test time.

The same weights score 75% with the right mean/std and 53% with (0.5, 0.5),
so this is part of the grade. Sources, strongest first:

1. ``{"normalize": {"mean": [...], "std": [...]}}`` stored in the checkpoint;
2. ``NORMALIZE = {"mean": ..., "std": ...}`` declared in the student's code
   (the template's convention);
3. the ``transforms.Normalize(mean, std)`` of the test transform in the
   student's code or notebook (or a test transform with ``ToTensor`` only; or
   one ``transform`` for both splits with ``ToTensor`` only, when nothing outside
   the model normalises); a ``Normalize`` inside an ``nn.Module`` is the model's own,
   not a transform;
4. a model that normalises its own input (pixels in [0, 1]);
5. mean/std values the notebook printed;
6. the rubric's default.

Everything here reads source text and outputs statically; nothing runs.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass

from .notebook.extract import parse_python
from .notebook.outputs import NOTEBOOK_TEXT_CAP, TEXT_CAP

UNIT_RANGE = ": pixels in [0, 1]"
NUMBER = r"[-+]?\d*\.\d+(?:[eE][-+]?\d+)?|[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"
TRIPLE = rf"[\[(]\s*({NUMBER})\s*,\s*({NUMBER})\s*,\s*({NUMBER})\s*,?\s*[\])]"


@dataclass(frozen=True)
class Normalization:
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str  # where it came from, shown in the report
    twice: str = ""  # the model normalises its input too (where): said when the accuracy falls short

    def as_dict(self) -> dict[str, object]:
        return {"mean": list(self.mean), "std": list(self.std), "source": self.source}


def _literal(node: ast.AST, constants: dict[str, object]) -> object | None:
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return None


def _floats(value: object) -> tuple[float, ...] | None:
    if isinstance(value, (int, float)):
        return (float(value),)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value):
        return tuple(float(v) for v in value)
    return None


def _valid(mean: tuple[float, ...] | None, std: tuple[float, ...] | None) -> bool:
    return bool(
        mean and std and len(mean) == len(std) and all(s > 0 for s in std) and all(-10 < m < 10 for m in mean)
    )


def from_code(text: str, locate: Callable[[int], str]) -> Normalization | None:
    """A declared ``NORMALIZE`` or the test transform's ``Normalize`` in ``text``.

    ``locate`` turns a line of ``text`` into what the student knows ('lab2.ipynb
    cell 3, line 4')."""
    tree = parse_python(text)
    if tree is None:
        return None
    constants: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = _literal(node.value, constants)
            if value is not None:
                constants[node.targets[0].id] = value
    declared = constants.get("NORMALIZE")
    if isinstance(declared, dict):
        mean, std = _floats(declared.get("mean")), _floats(declared.get("std"))
        if _valid(mean, std):
            line = next(
                (
                    n.lineno
                    for n in tree.body
                    if isinstance(n, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "NORMALIZE" for t in n.targets)
                ),
                1,
            )
            return Normalization(mean, std, f"NORMALIZE declared in {locate(line)}")
    candidates: list[tuple[int, Normalization]] = []
    totensor_only: list[tuple[int, str]] = []
    in_model = {id(sub) for method in _model_methods(tree) for sub in ast.walk(method)}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign) or id(node) in in_model:  # the model's own: not a transform
            continue
        target = " ".join(ast.unparse(t) for t in node.targets).lower()
        rank = (
            0
            if any(w in target for w in ("test", "val", "eval", "infer"))
            else (2 if "train" in target else 1)
        )
        calls = [c for c in ast.walk(node.value) if isinstance(c, ast.Call)]
        normalizes = [c for c in calls if ast.unparse(c.func).endswith("Normalize")]
        for call in normalizes:
            args = list(call.args) + [k.value for k in call.keywords if k.arg in ("mean", "std")]
            if len(args) < 2:
                continue
            mean, std = _floats(_literal(args[0], constants)), _floats(_literal(args[1], constants))
            if _valid(mean, std):
                where = locate(call.lineno)
                candidates.append((rank, Normalization(mean, std, f"transforms.Normalize in {where}")))
        if not normalizes and any(ast.unparse(c.func).endswith("ToTensor") for c in calls):
            totensor_only.append((rank, locate(node.lineno)))
    if candidates:
        return sorted(candidates, key=lambda c: c[0])[0][1]
    # a test transform with ToTensor only; or one transform for both splits (``transform = ...``)
    # when nothing outside the model normalises, not even with statistics computed at run time
    normalizes = any(
        isinstance(c, ast.Call) and ast.unparse(c.func).endswith("Normalize") and id(c) not in in_model
        for c in ast.walk(tree)
    )
    if totensor_only and (min(totensor_only)[0] == 0 or (min(totensor_only)[0] == 1 and not normalizes)):
        rank, where = min(totensor_only)
        what = "test transform" if rank == 0 else "transform"
        return Normalization((0.0,), (1.0,), f"{what} without Normalize ({where}): pixels in [0, 1]")
    return None


def _model_methods(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """The methods of the ``nn.Module`` classes in ``tree`` (a Dataset's are not)."""
    return [
        method
        for cls in ast.walk(tree)
        if isinstance(cls, ast.ClassDef) and any(ast.unparse(b).endswith("Module") for b in cls.bases)
        for method in cls.body
        if isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]


def normalizes_itself(text: str, locate: Callable[[int], str], model: str) -> Normalization | None:
    """Pixels in [0, 1] when ``model`` (a class in ``text``, with the classes it names)
    normalises its own input (a ``transforms.Normalize`` among its layers,
    ``(x - self.mean) / self.std`` in a method) and nothing else is declared: the grader's
    default statistics would normalise twice."""
    tree = parse_python(text)
    if tree is None:
        return None
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    if model not in classes:
        return None
    used = {model} | {n.id for n in ast.walk(classes[model]) if isinstance(n, ast.Name) and n.id in classes}
    for method in _model_methods(tree):
        if not any(method in classes[name].body for name in used):
            continue
        for sub in ast.walk(method):
            if isinstance(sub, ast.Call) and ast.unparse(sub.func).endswith("Normalize"):
                what = "transforms.Normalize"
            elif (  # its own statistics, not a batch's (``(x - x.mean()) / x.std()`` is a layer)
                isinstance(sub, ast.BinOp)
                and isinstance(sub.op, ast.Div)
                and isinstance(sub.left, ast.BinOp)
                and isinstance(sub.left.op, ast.Sub)
                and _own(sub.left.right, "mean")
                and _own(sub.right, "std")
            ):
                what = ast.unparse(sub)
            else:
                continue
            where = f"{what} in {locate(sub.lineno)}"
            said = f"{model} normalises its input itself ({where}){UNIT_RANGE}"
            return Normalization((0.0,), (1.0,), said)
    return None


def _own(node: ast.AST, word: str) -> bool:
    """``self.mean``, ``self.data_std``: an attribute of the model naming ``word``."""
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
        and word in node.attr.lower()
    )


def from_outputs(texts: list[str], label: str) -> Normalization | None:
    """mean/std a notebook printed, e.g. ``mean: tensor([0.4914, 0.4822, 0.4465])``.

    Read within the caps the other output parsers have (``notebook/outputs.py``)."""
    budget, kept = NOTEBOOK_TEXT_CAP, []
    for text in texts:
        kept.append(text[: min(TEXT_CAP, budget)])
        budget -= len(kept[-1])
        if budget <= 0:
            break
    joined = "\n".join(kept)
    mean = re.search(rf"mean[^\n\d]{{0,40}}?{TRIPLE}", joined, re.I)
    std = re.search(rf"std[^\n\d]{{0,40}}?{TRIPLE}", joined, re.I)
    if mean and std:
        m = tuple(float(v) for v in mean.groups())
        s = tuple(float(v) for v in std.groups())
        if _valid(m, s):
            return Normalization(m, s, f"mean/std printed in the outputs of {label}")
    return None
