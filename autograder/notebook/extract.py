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
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..errors import SubmissionProblem
from .outputs import text_of

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


# Caps on what the grader parses (a real notebook with plots is a few MiB, a few hundred cells,
# a few hundred KiB of code): memory and time stay bounded whatever a submission holds.
MAX_NOTEBOOK_BYTES = 64 << 20
MAX_JSON_ITEMS = 250_000  # each costs the grader ~0.1 ms of nbformat, validation and parsing
MAX_CELLS = 2_000
MAX_CODE_BYTES = 2 << 20  # per .py file, and all code cells of a notebook together
BUILTIN_NAMES = frozenset(dir(builtins))


class NotebookError(SubmissionProblem):
    """The file is not a notebook nbformat can read."""


@dataclass
class ExtractedCode:
    text: str
    line_map: list[tuple[int, int, int]] = field(default_factory=list)  # (start, cell, cell_line)
    unreadable_cells: list[tuple[int, str]] = field(default_factory=list)  # (cell, why): left out
    cells: int = 0
    script: bool = False  # from a .py file saved from a notebook (``notebook_export``): no cells

    def locate(self, line: int | None) -> str:
        """'cell 4, line 2' for a line of the extracted module ('line 2' in a script)."""
        if line is None:
            return "the notebook"
        best = None
        for start, cell, cell_line in self.line_map:
            if start <= line:
                best = (cell, cell_line + line - start)
        if best and self.script:
            return f"line {best[1]}"
        return f"cell {best[0]}, line {best[1]}" if best else f"line {line}"


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """``path`` read once, within the caps, as a version 4 notebook."""
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        raise NotebookError(too_large(path.name, size))
    with path.open("rb") as handle:
        return parse_notebook(handle.read(MAX_NOTEBOOK_BYTES + 1), path.name)


def too_large(name: str, size: int) -> str:
    return (
        f"{name} is {size / (1 << 20):,.0f} MiB; the grader reads notebooks up to "
        f"{MAX_NOTEBOOK_BYTES >> 20} MiB: do not print whole tensors or datasets, keep a "
        "few plots, and save it again"
    )


HAND_IN = "hand in the .ipynb file itself (Jupyter: File → Save; Colab: File → Download → Download .ipynb)"
CELL_MARKS = re.compile(rb"^# (?:%%|In\[)", re.M)  # jupytext's percent format, nbconvert's script
SCRIPT_MARKS = re.compile(rb"^(?:# %%|# In\[|#!.*python|import \w|from \w+ import )", re.M)


def not_a_notebook(raw: bytes) -> str | None:
    """What a file that is not JSON is, when it is one of the exports students hand in by
    mistake: 'empty', 'a PDF', 'an HTML page (an export)', 'Python code (...)'."""
    head = raw[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        return "empty (the notebook was not saved, or the upload failed)"
    if head.startswith(b"%PDF"):
        return "a PDF (an export)"
    if head[:200].lower().startswith((b"<!doctype html", b"<html")):
        return "an HTML page (an export)"
    if SCRIPT_MARKS.search(head):
        return "Python code (a .py export or a jupytext script)"
    return None


def parse_notebook(raw: bytes, name: str) -> nbformat.NotebookNode:
    """A notebook from its bytes, parsed once, with its size and item count capped first.

    The JSON parser builds one object per ``{``, ``[`` and ``,``; counting them first
    bounds the memory a hostile file (a million empty outputs) can make the grader use."""
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise NotebookError(too_large(name, len(raw)))
    items = raw.count(b"{") + raw.count(b"[") + raw.count(b",")
    if items > MAX_JSON_ITEMS:
        raise NotebookError(
            f"{name} holds over {MAX_JSON_ITEMS:,} cells, outputs and list entries; the grader reads "
            "notebooks of reasonable size: remove the extra cells and outputs and save it again"
        )
    try:  # utf-8-sig: a byte-order mark (Windows editors write one) is not an error
        data = json.loads(raw.decode("utf-8-sig", errors="replace"))
    except json.JSONDecodeError as exc:  # nbformat hides the position of a JSON error; students need it
        what = not_a_notebook(raw)
        if what:
            raise NotebookError(f"{name} is {what}, not a notebook: {HAND_IN}") from None
        raise NotebookError(
            f"{name} is not valid JSON (line {exc.lineno}, column "
            f"{exc.colno}: {exc.msg}); re-save it from Jupyter"
        ) from None
    except RecursionError:
        raise NotebookError(f"{name} is not a notebook: its JSON is nested too deeply") from None
    except ValueError:  # an integer of over 4,300 digits (int_max_str_digits), not a JSON error
        raise NotebookError(f"{name} is not a notebook: it holds a number too long to read") from None
    del raw
    cells = data.get("cells") if isinstance(data, dict) else None
    if isinstance(cells, list) and len(cells) > MAX_CELLS:  # refused before nbformat copies them all
        raise NotebookError(
            f"{name} has {len(cells):,} cells; the grader reads notebooks of up to {MAX_CELLS:,} cells"
        )
    try:
        major, minor = nbformat.reader.get_version(data)
        nb = nbformat.convert(nbformat.versions[major].to_notebook_json(data, minor=minor), 4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds
        raise NotebookError(f"{name} is not a readable notebook: {str(exc)[:200]}") from None
    if not isinstance(nb.get("cells"), list):
        raise NotebookError(f"{name} has no cells")
    code = sum(len(text_of(c.get("source", ""))) for c in nb.cells if c.get("cell_type") == "code")
    if code > MAX_CODE_BYTES:
        raise NotebookError(
            f"{name} holds {code / (1 << 20):,.1f} MiB of code; the grader reads up to "
            f"{MAX_CODE_BYTES >> 20} MiB: load data from files instead of pasting it into cells"
        )
    return nb


# Cell magics whose body is the student's Python: timed or captured where it runs, or written
# to a module the notebook imports (``%%writefile resnet18.py`` then ``from resnet18 import``)
PYTHON_CELL_MAGIC = re.compile(r"%%(?:time|capture)\b|%%writefile\s+(?:-a\s+)?\S+\.py\s*$")


def _clean(source: str) -> str:
    """Drop IPython magics and shell escapes, keeping line numbers. A cell magic drops its
    cell (``%%bash``, ``%%html``), except the ones whose body is Python (``PYTHON_CELL_MAGIC``)."""
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        if not PYTHON_CELL_MAGIC.match(lines[0].strip()):
            return ""
        lines[0] = ""
    return "\n".join("" if line.lstrip().startswith(("%", "!", "?")) else line for line in lines)


def notebook_export(text: str) -> str | None:
    """Why a .py file is a notebook saved as Python, which Python cannot import as it is;
    None for any other file. Colab's File > Download > .py keeps the shell escapes and
    magics as typed (``!pip install thop``, ``%matplotlib inline``: "it has ! and % lines");
    Jupyter's Download as > Python (nbconvert) turns them into top-level ``get_ipython()``
    calls, which only IPython defines ("it calls get_ipython()"). Either way its top level
    is the notebook's (Drive mounted, training): it is read as the one-cell notebook it
    is (``as_notebook``). A file the magics do not explain is None: its own error."""
    tree = parse_python(text)
    if tree is not None:
        return "it calls get_ipython()" if any(map(_calls_ipython, tree.body)) else None
    cleaned = _clean(text)
    if cleaned == text or not cleaned.strip() or parse_python(cleaned) is None:
        return None
    return "it has ! and % lines"


def _calls_ipython(node: ast.stmt) -> bool:
    """A top-level statement that calls ``get_ipython()`` outside a function or class: a
    magic as nbconvert writes it (``get_ipython().system('pip install thop')``, also inside
    an ``if``), or Colab's ``IN_COLAB = 'google.colab' in str(get_ipython())``."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return False
    return any(
        isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id == "get_ipython"
        for sub in ast.walk(node)
    )


def as_notebook(text: str) -> nbformat.NotebookNode:
    """A script as the one-cell notebook it was saved from, for ``extract``."""
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(text)])


# What marks a top-level statement as a notebook's data loading or training: the calls
# (last name) of datasets, loaders, the training step, Drive and saving the result, and
# any name saying train, dataset, loader or epoch (``train(model, trainloader)``,
# ``torchvision.datasets.CIFAR10``, ``for epoch in range(30)``).
TRAINING_CALLS = frozenset(
    {"DataLoader", "backward", "step", "zero_grad", "fit", "mount", "save", "CIFAR10", "CIFAR100"}
    | {"MNIST", "FashionMNIST", "KMNIST", "EMNIST", "SVHN", "STL10", "ImageFolder"}
)
TRAINING_WORDS = ("train", "dataset", "loader", "epoch")
# What reads the command line (``args = parser.parse_args()``, ``EPOCHS = int(sys.argv[1])``):
# a train.py's options, which the grader has none of to give.
ARGUMENT_CALLS = frozenset({"parse_args", "parse_known_args"})


def script_at_import(text: str) -> tuple[int, str] | None:
    """The line of the first top-level statement of a ``.py`` file that loads data, trains,
    reads command-line arguments or loads the weights outside an ``if __name__ ==
    "__main__":`` guard (a notebook exported by hand, a train.py, a predict.py), one that
    ``extract`` drops, and what it does ("loads data or trains", "reads command-line
    arguments", "loads its weights": by a path the grader's process does not run in,
    and the grader loads the checkpoint itself); None when there is none or
    the file does not parse. Other top-level work (a print, a quick test, an exit) is not
    a script: the file is imported as it is."""
    tree = parse_python(text)
    if tree is None:
        return None
    readers = {  # the file's own functions that read them (``args = get_args()``)
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and _reads_arguments(node)
    }
    defined: set[str] = set()
    for node in tree.body:
        if _keep(node, defined):
            defined |= _defines(node)
            continue
        if isinstance(node, ast.If) and "__name__" in {
            n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)
        }:
            continue
        arguments = _reads_arguments(node)
        for sub in ast.walk(node):
            name = _dotted(sub.func) if isinstance(sub, ast.Call) else ""
            if isinstance(sub, ast.For):
                name = _dotted(sub.target)
            if name and (
                name.rsplit(".", 1)[-1] in TRAINING_CALLS or any(w in name.lower() for w in TRAINING_WORDS)
            ):
                return node.lineno, "loads data or trains"
            if arguments or name in readers:
                return node.lineno, "reads command-line arguments"
            if name == "torch.load" or name.endswith(".load_state_dict"):
                return node.lineno, "loads its weights"
    return None


def _reads_arguments(node: ast.AST) -> bool:
    """Whether ``node`` reads the command line's options: ``parser.parse_args()``,
    ``sys.argv`` (its ``[0]``, the script's own name, is not an option)."""
    subs = list(ast.walk(node))
    own_name = {id(s.value) for s in subs if isinstance(s, ast.Subscript) and ast.unparse(s.slice) == "0"}
    return any(
        (isinstance(s, ast.Call) and _dotted(s.func).rsplit(".", 1)[-1] in ARGUMENT_CALLS)
        or (isinstance(s, ast.Attribute) and _dotted(s) == "sys.argv" and id(s) not in own_name)
        for s in subs
    )


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _safe_value(node: ast.AST) -> bool:
    if _reads_arguments(node):  # sys.argv: the script's options
        return False
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
            and used <= defined | BUILTIN_NAMES
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


def _unused_local_imports(
    kept: list[tuple[int, list[str], ast.stmt]], local: frozenset[str], roots: frozenset[str]
) -> set[int]:
    """Indices of imports of student files that the task's model does not need: the
    notebook's SimpleCNN must not depend on a resnet18.py that crashes on import.

    What is needed is what the definitions reachable from ``roots`` (the names the
    task's model may go by, compared without case and underscores) use; with no such
    definition in the notebook, what any kept definition uses."""
    defining: dict[str, list[int]] = {}
    for k, (_, _, node) in enumerate(kept):
        if not _local_import(node, local):
            for name in _defines(node):
                defining.setdefault(name, []).append(k)
    names_of = {
        k: {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} for k, (_, _, node) in enumerate(kept)
    }
    start = [k for name, ks in defining.items() if loose_name(name) in roots for k in ks]
    if start:
        reached: set[int] = set()
        while start:
            k = start.pop()
            if k not in reached:
                reached.add(k)
                start += [j for name in names_of[k] for j in defining.get(name, [])]
    else:
        reached = {k for k, (_, _, node) in enumerate(kept) if not _local_import(node, local)}
    used = set().union(*(names_of[k] for k in reached)) if reached else set()
    defined = set().union(*(_defines(kept[k][2]) for k in reached)) if reached else set()
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


def _segment(lines: list[str], node: ast.stmt) -> str:
    """``ast.get_source_segment`` on lines split once per cell (it re-splits the
    whole cell for every node: quadratic in a cell of many statements)."""
    first, last = node.lineno - 1, node.end_lineno - 1
    start, end = node.col_offset, node.end_col_offset
    if first == last:
        return lines[first].encode()[start:end].decode()
    head = lines[first].encode()[start:].decode()
    tail = lines[last].encode()[:end].decode()
    return "\n".join([head, *lines[first + 1 : last], tail])


@dataclass
class Parsed:
    """A notebook's code cells parsed once: the definitions the grader keeps, in order."""

    kept: list[tuple[int, list[str], ast.stmt]]  # (cell number, the cell's lines, node)
    unreadable_cells: list[tuple[int, str]]  # (cell number, ``unreadable``'s why): left out
    cells: int


def parse(nb: nbformat.NotebookNode) -> Parsed:
    """One pass over the cells, linear in the notebook's size."""
    parsed = Parsed([], [], sum(1 for c in nb.cells if c.get("cell_type") == "code"))
    defined: set[str] = set()
    for number, cell in enumerate(nb.cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        source = _clean(text_of(cell.get("source", "")))
        try:
            tree = ast.parse(source)
        except UNREADABLE as exc:
            parsed.unreadable_cells.append((number, unreadable(exc)))
            continue
        lines = source.split("\n")  # _clean left only \n line ends
        for node in tree.body:
            if _keep(node, defined):
                defined |= _defines(node)
                parsed.kept.append((number, lines, node))
    return parsed


def extract(
    nb: nbformat.NotebookNode | Parsed,
    local_modules: frozenset[str] = frozenset(),
    roots: frozenset[str] = frozenset(),
) -> ExtractedCode:
    """The notebook's definitions as one module. ``local_modules`` names the student's
    own .py modules: an import of one is kept only when the task's model (``roots``: its
    names, without case and underscores) needs it."""
    parsed = nb if isinstance(nb, Parsed) else parse(nb)
    kept = parsed.kept
    out: list[str] = ["# Definitions extracted from the notebook by the autograder."]
    written = 1  # lines in ``out`` so far
    result = ExtractedCode(text="", unreadable_cells=list(parsed.unreadable_cells), cells=parsed.cells)
    dropped = _unused_local_imports(kept, local_modules, roots)
    for k, (number, lines, node) in enumerate(kept):
        if k in dropped:
            continue
        start = node.lineno
        if getattr(node, "decorator_list", None):
            start = min(d.lineno for d in node.decorator_list)
            segment = "\n".join(lines[start - 1 : node.end_lineno])
        else:
            segment = _segment(lines, node)
        out.append(f"# cell {number}")
        first = written + 2  # after the '# cell' line
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            segment = _guarded_import(segment)
            result.line_map.append((first + 1, number, start))
        else:
            result.line_map.append((first, number, start))
        out.append(segment)
        written += 1 + segment.count("\n") + 1
    result.text = "\n".join(out) + "\n"
    return result


# What Python raises on source it cannot read: a syntax error, a NUL byte (ValueError),
# expressions nested or chained too deep for the parser (RecursionError, MemoryError).
UNREADABLE = (SyntaxError, ValueError, RecursionError, MemoryError)


def parse_python(text: str) -> ast.Module | None:
    """Student Python source as a tree, None when it cannot be one (``UNREADABLE``). The
    student hears of it when the sandbox imports it."""
    try:
        return ast.parse(text)
    except UNREADABLE:
        return None


def unreadable(exc: BaseException) -> str:
    """Why Python could not read a file (one of ``UNREADABLE``), said after its name."""
    if isinstance(exc, SyntaxError):
        return f"line {exc.lineno} has a syntax error: {exc.msg}"
    if isinstance(exc, ValueError):
        return "holds a NUL byte, which Python cannot read: save it again as plain text"
    return "nests expressions too deeply for Python to read: write them as several statements"


def defined_names(text: str) -> dict[str, int]:
    """Top-level classes and functions in Python source, with their lines (no execution)."""
    tree = parse_python(text)
    if tree is None:
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
    tree = parse_python(text)
    if tree is None:
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
