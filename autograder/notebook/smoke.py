"""Preparing a notebook for a quick run: fewer epochs, no installs, no Drive.

A notebook that trains for an hour is checked in seconds by overriding its
epoch count, the way papermill does it: a cell tagged ``parameters`` gets an
injected cell after it (tagged ``injected-parameters``) that sets the smoke
values. Without such a cell, top-level constant assignments of the
documented names (``EPOCHS = 100``) are rewritten in place, and a literal
``for epoch in range(100)`` loop is shortened. Lines that cannot work in a
sandbox without network (``!pip install``, ``drive.mount``) are replaced by
``pass``, and Kaggle's dataset folder (``'/kaggle/input/<dataset>'``) becomes
``'data'``, the sandbox's copy of the dataset. Every change is listed, and the executed notebook shows them.
Only source text is parsed here; nothing runs.
"""

from __future__ import annotations

import ast
import copy
import re
from dataclasses import dataclass, field

import nbformat
from nbformat import v4

from .extract import parse_python
from .outputs import text_of

EPOCH_NAMES = ("EPOCHS", "NUM_EPOCHS", "N_EPOCHS", "num_epochs", "n_epochs", "epochs", "EPOCH", "max_epochs")
SKIP_LINES = (
    r"^\s*[!%]\s*pip\s+install",
    r"^\s*[!%]\s*(?:wget|curl|git\s+clone)",
    r"google\.colab",
    r"drive\.mount",
)
MARK = "# [autograder]"
# Kaggle's paths, in string literals: its datasets are mounted at /kaggle/input/<dataset>, the
# sandbox has the rubric's dataset at ./data; /kaggle/working is the writable working folder.
KAGGLE_PATHS = (
    (re.compile(r"""(['"])/kaggle/input/[\w.-]+"""), r"\1data"),
    (re.compile(r"""(['"])/kaggle/working"""), r"\1."),
)


@dataclass
class Prepared:
    nb: nbformat.NotebookNode
    changes: list[str] = field(default_factory=list)
    overridden: bool = False  # an epoch setting was found and overridden
    injected_at: int | None = None  # position (1-based) of the injected parameters cell

    def original(self, number: int) -> int:
        """The student's cell number for a cell number of the prepared notebook."""
        return number - 1 if self.injected_at is not None and number > self.injected_at else number


def _parseable(source: str) -> str:
    """Source with IPython magics and shell escapes blanked, line numbers kept."""
    lines = source.split("\n")
    if lines and lines[0].lstrip().startswith("%%"):
        return ""
    return "\n".join("" if line.lstrip().startswith(("%", "!", "?")) else line for line in lines)


def _names(nb: nbformat.NotebookNode) -> set[str]:
    used: set[str] = set()
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        tree = parse_python(_parseable(text_of(cell.get("source", ""))))
        if tree is None:
            continue
        used |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return used


def _skip(source: str, patterns: list[re.Pattern[str]]) -> tuple[str, list[str]]:
    lines, skipped = source.split("\n"), []
    for k, line in enumerate(lines):
        if any(p.search(line) for p in patterns) and MARK not in line:
            indent = line[: len(line) - len(line.lstrip())]
            lines[k] = f"{indent}pass  {MARK} skipped: {line.strip()}"
            skipped.append(line.strip())
    return "\n".join(lines), skipped


def _kaggle_paths(source: str) -> tuple[str, list[str]]:
    """Kaggle's dataset and working folders, in string literals, made the sandbox's."""
    notes: list[str] = []
    for pattern, new in KAGGLE_PATHS:
        for m in pattern.finditer(source):
            note = f"{m.group(0)[1:]} → {m.expand(new)[1:]}"
            if note not in notes:
                notes.append(note)
        source = pattern.sub(new, source)
    return source, notes


def _rewrite(source: str, values: dict[str, int | float], epochs: int) -> tuple[str, list[str]]:
    """Top-level ``NAME = <number>`` of an overridden name, and literal epoch loops."""
    tree = parse_python(_parseable(source))
    if tree is None:
        return source, []
    lines = source.split("\n")
    edits: list[tuple[int, int, int, str, str]] = []  # (line, start col, end col, new text, note)
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        target = node.target if isinstance(node, ast.AnnAssign) else target
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        if (
            isinstance(target, ast.Name)
            and target.id in values
            and isinstance(value, ast.Constant)
            and isinstance(value.value, (int, float))
            and not isinstance(value.value, bool)
            and value.lineno == value.end_lineno
            and value.value != values[target.id]
        ):
            new = repr(values[target.id])
            edits.append((value.lineno, value.col_offset, value.end_col_offset, new, f"{target.id} = {new}"))
    for node in ast.walk(tree):
        if not (isinstance(node, ast.For) and isinstance(node.target, ast.Name)):
            continue
        call = node.iter
        if not (
            "epoch" in node.target.id.lower()
            and isinstance(call, ast.Call)
            and isinstance(call.func, ast.Name)
            and call.func.id == "range"
            and 1 <= len(call.args) <= 2
            and all(isinstance(a, ast.Constant) and type(a.value) is int for a in call.args)
        ):
            continue
        stop = call.args[-1]
        start = call.args[0].value if len(call.args) == 2 else 0
        if stop.value - start > epochs and stop.lineno == stop.end_lineno:
            new = str(start + epochs)
            edits.append(
                (stop.lineno, stop.col_offset, stop.end_col_offset, new, f"range(..{stop.value}) → {new}")
            )
    notes = []
    for line, begin, end, new, note in sorted(edits, reverse=True):
        raw = lines[line - 1].encode()  # ast columns count UTF-8 bytes
        old = raw[begin:end].decode()
        lines[line - 1] = (raw[:begin] + new.encode() + raw[end:]).decode()
        if "#" not in raw[end:].decode():
            lines[line - 1] += f"  {MARK} smoke mode, was {old}"
        notes.append((line, note))
    return "\n".join(lines), [n for _, n in sorted(notes)]


def prepare(
    nb: nbformat.NotebookNode,
    smoke: bool,
    epochs: int = 1,
    epoch_names: tuple[str, ...] = EPOCH_NAMES,
    parameters: dict[str, int | float | str | bool] | None = None,
    skip_lines: tuple[str, ...] = SKIP_LINES,
) -> Prepared:
    """A copy of ``nb`` ready to execute, with the list of what was changed."""
    out = Prepared(copy.deepcopy(nb))
    patterns = [re.compile(p) for p in skip_lines]
    values: dict[str, int | float | str | bool] = {}
    if smoke:
        values = {name: epochs for name in epoch_names} | dict(parameters or {})
    numeric = {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    tagged = None
    for number, cell in enumerate(out.nb.cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        cell["outputs"], cell["execution_count"] = [], None
        source, skipped = _skip(text_of(cell.get("source", "")), patterns)
        out.changes += [f"cell {number}: skipped `{s[:80]}`" for s in skipped]
        source, moved = _kaggle_paths(source)
        out.changes += [f"cell {number}: {m}" for m in moved]
        if smoke:
            source, notes = _rewrite(source, numeric, epochs)
            out.changes += [f"cell {number}: {n}" for n in notes]
            out.overridden |= bool(notes)
        cell["source"] = source
        if tagged is None and "parameters" in ((cell.get("metadata") or {}).get("tags") or []):
            tagged = cell
    if smoke and tagged is not None:
        used = _names(nb)
        wanted = {k: v for k, v in values.items() if k in used or k in (parameters or {})}
        if wanted:
            body = "\n".join(f"{k} = {v!r}" for k, v in wanted.items())
            injected = v4.new_code_cell(f"# Parameters injected by the autograder (smoke mode)\n{body}")
            injected.metadata["tags"] = ["injected-parameters"]
            position = out.nb.cells.index(tagged) + 1
            out.nb.cells.insert(position, injected)
            out.injected_at = position + 1
            out.changes.append(
                f"cell {position}: tagged parameters; injected after it: "
                + ", ".join(f"{k} = {v!r}" for k, v in wanted.items())
            )
            out.overridden = True
    return out
