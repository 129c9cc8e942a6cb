"""The definitions in a notebook, as an importable module, without its training.

Only imports, function and class definitions, and assignments of plain
constants (and of ``torch.device``/``transforms`` calls) are kept: a cell that
loads data or trains for an hour contributes nothing, so importing the module
takes seconds. Line numbers are mapped back to cells for error messages.
"""

from __future__ import annotations

import ast
import builtins
import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

SAFE_CALLS = (
    "torch.device",
    "torch.cuda.is_available",
    "device",
    "Compose",
    "Normalize",
    "ToTensor",
    "Resize",
    "transforms.",
    "T.",
    "tuple",
    "list",
    "dict",
    "float",
    "int",
)


class NotebookError(Exception):
    """The file is not a notebook nbformat can read."""


@dataclass
class ExtractedCode:
    text: str
    line_map: list[tuple[int, int, int]] = field(default_factory=list)  # (start, cell, cell_line)
    syntax_errors: list[str] = field(default_factory=list)
    cells: int = 0

    def locate(self, line: int | None) -> str:
        """'cell 4, line 2' for a line of the extracted module."""
        if line is None:
            return "the notebook"
        best = None
        for start, cell, cell_line in self.line_map:
            if start <= line:
                best = (cell, cell_line + line - start)
        return f"cell {best[0]}, line {best[1]}" if best else f"line {line}"


def read_notebook(path: Path) -> nbformat.NotebookNode:
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        json.loads(text)  # nbformat hides the position of a JSON error; students need it
        nb = nbformat.reads(text, as_version=4)
    except json.JSONDecodeError as exc:
        raise NotebookError(
            f"{path.name} is not valid JSON (line {exc.lineno}, column "
            f"{exc.colno}: {exc.msg}); re-save it from Jupyter"
        ) from None
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds
        raise NotebookError(f"{path.name} is not a readable notebook: {exc}") from None
    if not isinstance(nb.get("cells"), list):
        raise NotebookError(f"{path.name} has no cells")
    return nb


def _clean(source: str) -> str:
    """Drop IPython magics and shell escapes, keeping line numbers."""
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        return ""
    return "\n".join("" if line.lstrip().startswith(("%", "!", "?")) else line for line in lines)


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _safe_value(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            name = _dotted(sub.func)
            if not any(name == s or name.endswith("." + s) or name.startswith(s) for s in SAFE_CALLS):
                return False
        elif isinstance(
            sub,
            (
                ast.Lambda,
                ast.Await,
                ast.Yield,
                ast.NamedExpr,
                ast.ListComp,
                ast.DictComp,
                ast.SetComp,
                ast.GeneratorExp,
            ),
        ):
            return False
    return True


def _keep(node: ast.stmt, defined: set[str]) -> bool:
    """Definitions always; constants only when every name they use is defined by
    kept code (``Normalize(mean, std)`` with ``mean`` computed from the training
    set would otherwise stop the whole notebook from importing)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)):
        return True
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        used = {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)}
        return (
            all(isinstance(t, (ast.Name, ast.Tuple)) for t in targets)
            and _safe_value(node.value)
            and used <= defined | set(dir(builtins))
        )
    return False


def _defines(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
    return {n.id for t in targets if t is not None for n in ast.walk(t) if isinstance(n, ast.Name)}


def _guarded_import(segment: str, indent: str = "") -> str:
    """An import that may fail (google.colab, wandb) without hiding the model."""
    body = "\n".join("    " + line for line in segment.splitlines())
    return f"try:\n{body}\nexcept ImportError:\n    pass"


def _local_import(node: ast.stmt, local: frozenset[str]) -> bool:
    """An import of one of the student's own files (``from resnet18 import ResNet18``)."""
    if isinstance(node, ast.Import):
        return any(a.name.split(".")[0] in local for a in node.names)
    if isinstance(node, ast.ImportFrom):
        return node.level == 0 and (node.module or "").split(".")[0] in local
    return False


def _unused_local_imports(kept: list[tuple[int, str, ast.stmt]], local: frozenset[str]) -> set[int]:
    """Indices of imports of student files that no kept definition uses: the
    notebook's SimpleCNN must not depend on a resnet18.py that crashes on import."""
    used: set[str] = set()
    defined: set[str] = set()
    for _, _, node in kept:
        if not _local_import(node, local):
            used |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            defined |= _defines(node)
    drop = set()
    for k, (_, _, node) in enumerate(kept):
        if not _local_import(node, local):
            continue
        if any(a.name == "*" for a in node.names):
            needed = bool(used - defined - set(dir(builtins)))
        else:
            needed = bool(_defines(node) & used)
        if not needed:
            drop.add(k)
    return drop


def extract(nb: nbformat.NotebookNode, local_modules: frozenset[str] = frozenset()) -> ExtractedCode:
    """The notebook's definitions. ``local_modules`` names the student's own .py
    modules: an import of one is kept only when a kept definition uses it."""
    out: list[str] = ["# Definitions extracted from the notebook by the autograder."]
    result = ExtractedCode(text="")
    code_cells = [c for c in nb.cells if c.get("cell_type") == "code"]
    result.cells = len(code_cells)
    defined: set[str] = set()
    kept: list[tuple[int, str, ast.stmt]] = []
    for number, cell in enumerate(nb.cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        source = _clean(
            cell.get("source", "") if isinstance(cell.get("source"), str) else "".join(cell.get("source", []))
        )
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            result.syntax_errors.append(f"cell {number}, line {exc.lineno}: {exc.msg}")
            continue
        for node in tree.body:
            if _keep(node, defined):
                defined |= _defines(node)
                kept.append((number, source, node))
    dropped = _unused_local_imports(kept, local_modules)
    for k, (number, source, node) in enumerate(kept):
        if k in dropped:
            continue
        segment = ast.get_source_segment(source, node, padded=False)
        if segment is None:
            continue
        start = node.lineno
        if getattr(node, "decorator_list", None):
            start = min(d.lineno for d in node.decorator_list)
            segment = "\n".join(source.splitlines()[start - 1 : node.end_lineno])
        out.append(f"# cell {number}")
        first = sum(entry.count("\n") + 1 for entry in out) + 1  # entries span several lines
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            segment = _guarded_import(segment)
            result.line_map.append((first + 1, number, start))
        else:
            result.line_map.append((first, number, start))
        out.append(segment)
    result.text = "\n".join(out) + "\n"
    return result


def defined_names(text: str) -> dict[str, int]:
    """Top-level classes and functions in Python source, with their lines (no execution)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return {}
    return {
        n.name: n.lineno
        for n in tree.body
        if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
    }


MODEL_CALLS = ("Sequential", "resnet", "vgg", "alexnet", "googlenet", "lenet")
MODEL_WORDS = ("net", "cnn", "model", "mlp", "vgg", "alex", "lenet")


def model_candidates(text: str) -> list[tuple[str, int, str]]:
    """Top-level things that look like a model, as (name, line, what): classes,
    factory-like functions, and module-level ``net = nn.Sequential(...)`` (which a
    grader cannot build by name, but a student should be told it was seen)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    found: list[tuple[str, int, str]] = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.bases:
            found.append((node.name, node.lineno, "class"))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
            node.name[:1].isupper() or any(w in node.name.lower() for w in MODEL_WORDS)
        ):
            found.append((node.name, node.lineno, "function"))
        elif (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Call)
            and any(w.lower() in _dotted(node.value.func).lower() for w in MODEL_CALLS)
        ):
            found.append((node.targets[0].id, node.lineno, f"{_dotted(node.value.func)}(...)"))
    return found


def loose_name(name: str) -> str:
    """A name without case and underscores: ``Resnet_18`` and ``ResNet18`` agree."""
    return name.replace("_", "").lower()
