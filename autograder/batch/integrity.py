"""Similarity across the class, for a human to look at: flags, never penalties.

Three signals, each computed without running student material:

- **checkpoints**: a digest of the tensor data inside a PyTorch zip checkpoint
  (the ``*/data/N`` storages, read with :mod:`zipfile`, never unpickled), so
  re-saving the same weights under another file name still matches;
- **code**: every ``.py`` file and notebook code cell parsed with :mod:`ast`
  and normalised (identifiers, docstrings, string and number literals erased),
  so renamed variables and reworded comments still match. Statements that
  most of the class shares (the handout's skeleton) are set aside before
  comparing, and near-identical means a Jaccard similarity of the remaining
  statements of at least ``NEAR``;
- **notebook outputs**: a digest of every printed output and figure, when there
  is enough of it to be telling. Figures are read as the notebook checks read
  them (:func:`~autograder.notebook.outputs.figure_data`: PNG, JPEG, SVG and
  Plotly), so a class that plots in SVG or Plotly is compared too.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from ..notebook.extract import MAX_CODE_BYTES, UNREADABLE, NotebookError, read_notebook
from ..notebook.outputs import figure_data, text_of
from ..submission import MAX_ZIP_DIRECTORY, Submission, SubmissionError, intake, zip_directory

NEAR = 0.8
MIN_STATEMENTS = 5  # fewer distinctive statements than this: too little to compare
MIN_OUTPUT_CHARS = 200
MAX_WEIGHT_BYTES = 4 << 30
# Listing a zip's members costs ~700 bytes each: a checkpoint of a million tiny tensors took
# 712 MB and 14.5 s. A ResNet-18 state_dict has ~120; past this many, or a directory over
# intake's MAX_ZIP_DIRECTORY (the count may lie), the file's bytes are hashed.
MAX_CHECKPOINT_ENTRIES = 10_000
STORAGE = re.compile(r"^(?:.*/)?data/(\d+)$")


@dataclass
class Fingerprints:
    weights: dict[str, str] = field(default_factory=dict)  # file -> tensor-data digest
    code: str | None = None  # digest of all normalised code
    statements: list[str] = field(default_factory=list)  # digests of normalised statements
    outputs: str | None = None  # digest of the notebook outputs, when substantial

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> Fingerprints:
        raw = raw or {}
        return cls(
            weights=dict(raw.get("weights") or {}),
            code=raw.get("code"),
            statements=list(raw.get("statements") or []),
            outputs=raw.get("outputs"),
        )


@dataclass
class Group:
    kind: str  # "checkpoint" | "code" | "near-code" | "outputs"
    members: list[str]  # student keys
    evidence: str


# --- per submission ---------------------------------------------------------------


def fingerprints(source: Path) -> Fingerprints:
    """Fingerprints of one submission (folder or zip); empty if it cannot be read."""
    with tempfile.TemporaryDirectory(prefix="autograder-fp-") as tmp:
        try:
            sub = intake(source, Path(tmp) / "sub")
        except SubmissionError:
            return Fingerprints()
        books = _notebooks(sub)
        return Fingerprints(
            weights=_weights(sub),
            **_code(sub, books),
            outputs=_outputs(books),
        )


def _weights(sub: Submission) -> dict[str, str]:
    found = {}
    for rel in sub.weights:
        path = sub.root / rel
        if path.stat().st_size <= MAX_WEIGHT_BYTES:
            found[rel.as_posix()] = weights_digest(path)
    return found


def weights_digest(path: Path) -> str:
    """The tensor bytes of a torch zip checkpoint in storage order; else the file's bytes."""
    digest = hashlib.sha256()
    declared = zip_directory(path)  # zeros for a file that is not a zip
    if 0 < declared.entries <= MAX_CHECKPOINT_ENTRIES and declared.size <= MAX_ZIP_DIRECTORY:
        try:
            with zipfile.ZipFile(path) as zf:
                storages = sorted(
                    (int(m[1]), info) for info in zf.infolist() if (m := STORAGE.match(info.filename))
                )
                if storages:
                    for number, info in storages:
                        digest.update(f"{number}:{info.file_size}\0".encode())
                        with zf.open(info) as handle:
                            while chunk := handle.read(1 << 20):
                                digest.update(chunk)
                    return "tensors:" + digest.hexdigest()
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError):
            digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return "file:" + digest.hexdigest()


def _sources(sub: Submission, books: list[nbformat.NotebookNode]) -> list[str]:
    texts = []
    for rel in sub.python_files:
        path = sub.root / rel
        if path.stat().st_size <= MAX_CODE_BYTES:
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
    for nb in books:
        for cell in nb.cells:
            if cell.get("cell_type") == "code" and isinstance(cell.get("source"), str):
                texts.append(_without_magics(cell.source))
    return texts


def _notebooks(sub: Submission) -> list[nbformat.NotebookNode]:
    """The readable notebooks, each read once under the grader's caps."""
    books = []
    for rel in sub.notebooks:
        try:
            books.append(read_notebook(sub.root / rel))
        except NotebookError:  # an unreadable notebook just gives no fingerprint
            continue
    return books


def _without_magics(source: str) -> str:
    if source.lstrip().startswith("%%"):
        return ""
    return "\n".join(
        "" if line.lstrip().startswith(("%", "!", "?")) else line for line in source.splitlines()
    )


class _Normalise(ast.NodeTransformer):
    """Erase what copying usually changes: names, docstrings and literals."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return ast.Name(id="_", ctx=node.ctx)

    def visit_arg(self, node: ast.arg) -> ast.AST:
        return ast.arg(arg="_", annotation=None)

    def visit_alias(self, node: ast.alias) -> ast.AST:
        return ast.alias(name=node.name, asname="_" if node.asname else None)

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        value = node.value
        if isinstance(value, bool) or value is None:
            return node
        return ast.Constant(value=type(value).__name__)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        return ast.Constant(value="str")

    def _body(self, body: list[ast.stmt]) -> list[ast.stmt]:
        return [
            s
            for s in body
            if not (
                isinstance(s, ast.Expr)
                and isinstance(s.value, ast.Constant)
                and isinstance(s.value.value, str)
            )
        ]

    def generic_visit(self, node: ast.AST) -> ast.AST:
        for name in ("body", "orelse", "finalbody"):
            value = getattr(node, name, None)
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                setattr(node, name, self._body(value))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            node.name = "_"
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            node.names = ["_" for _ in node.names]
        return super().generic_visit(node)


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _code(sub: Submission, books: list[nbformat.NotebookNode]) -> dict[str, Any]:
    dumps: list[str] = []
    statements: set[str] = set()
    for text in _sources(sub, books):
        try:
            tree = _Normalise().visit(ast.parse(text))
        except UNREADABLE:  # the normaliser recurses too: a tree deep enough raises here
            continue
        dumps.append(ast.dump(tree))
        statements.update(_short(ast.dump(node)) for node in ast.walk(tree) if isinstance(node, ast.stmt))
    if not statements:
        return {"code": None, "statements": []}
    return {"code": _short("\n".join(dumps)), "statements": sorted(statements)}


def _outputs(books: list[nbformat.NotebookNode]) -> str | None:
    """A digest of the printed outputs and figures (pieces hashed as they come, not joined).

    A PNG or JPEG figure is hashed as before SVG and Plotly were read, so fingerprints
    cached by an earlier run still match for them."""
    digest = hashlib.sha256()
    size = images = 0

    def put(piece: str) -> None:  # as hashing "\0".join(pieces), without the joined copy
        nonlocal size
        digest.update(("\0" if size else "").encode() + piece.encode())
        size += max(len(piece), 1)

    for nb in books:
        for cell in nb.cells:
            for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
                text = text_of(output.get("text"))
                if text:
                    put(text)
                data = output.get("data") or {}
                for mime in ("text/plain", "text/html"):  # Colab's Plotly figure is HTML: hashed here
                    if mime in data:
                        put(mime + ":" + text_of(data[mime]))
                figure = figure_data(output)  # one figure an output, as the notebook checks count it
                if figure is not None:
                    images += 1
                    kind, value = figure
                    if kind != "text/html":
                        put(kind + ":" + (text_of(value) if isinstance(value, (str, list)) else _json(value)))
                if output.get("output_type") == "error":
                    put(f"error:{output.get('ename')}:{output.get('evalue')}")
    if not images and size < MIN_OUTPUT_CHARS:
        return None
    return digest.hexdigest()


def _json(value: Any) -> str:
    """A Plotly figure's JSON, the same text however the notebook ordered its keys."""
    return json.dumps(value, sort_keys=True, default=str)


# --- across the class -------------------------------------------------------------


def find_groups(prints: dict[str, Fingerprints]) -> list[Group]:
    """Groups of students whose submissions share a checkpoint, code or outputs."""
    groups = _same_value(prints, "checkpoint", lambda f: f.weights.values())
    groups += _same_value(prints, "outputs", lambda f: [f.outputs] if f.outputs else [])
    distinctive = _distinctive(prints)
    comparable = {k: s for k, s in distinctive.items() if len(s) >= MIN_STATEMENTS}
    identical = _same_value({k: prints[k] for k in comparable}, "code", lambda f: [f.code] if f.code else [])
    groups += identical
    same = {m: n for n, g in enumerate(identical) for m in g.members}
    groups += _near(comparable, same)
    return groups


def _same_value(prints: dict[str, Fingerprints], kind: str, values) -> list[Group]:  # noqa: ANN001
    by_value: dict[str, list[str]] = {}
    for key, fp in prints.items():
        for value in set(values(fp)):
            by_value.setdefault(value, []).append(key)
    labels = {
        "checkpoint": "identical weights (tensor data {})",
        "outputs": "identical notebook outputs ({})",
        "code": "identical code after normalising names, literals and comments ({})",
    }
    groups = []
    seen: set[tuple[str, ...]] = set()
    for value, members in sorted(by_value.items()):
        members = sorted(set(members))
        if len(members) > 1 and tuple(members) not in seen:
            seen.add(tuple(members))
            groups.append(Group(kind, members, labels[kind].format(value.split(":")[-1][:12])))
    return groups


def _distinctive(prints: dict[str, Fingerprints]) -> dict[str, set[str]]:
    """Each student's statements minus those most of the class shares (the skeleton)."""
    counts: dict[str, int] = {}
    for fp in prints.values():
        for s in set(fp.statements):
            counts[s] = counts.get(s, 0) + 1
    common = max(3, len(prints) // 2)
    return {k: {s for s in fp.statements if counts[s] <= common} for k, fp in prints.items()}


def _near(sets: dict[str, set[str]], same: dict[str, int]) -> list[Group]:
    keys = sorted(sets)
    parent = {k: k for k in keys}
    scores: dict[str, list[float]] = {}

    def find(k: str) -> str:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            if a in same and same.get(b) == same[a]:
                continue
            union = len(sets[a] | sets[b])
            score = len(sets[a] & sets[b]) / union if union else 0.0
            if score >= NEAR:
                parent[find(a)] = find(b)
                scores.setdefault(a, []).append(score)
                scores.setdefault(b, []).append(score)
    clusters: dict[str, list[str]] = {}
    for k in keys:
        if k in scores:
            clusters.setdefault(find(k), []).append(k)
    groups = []
    for members in clusters.values():
        found = [s for m in members for s in scores[m]]
        share = f"{min(found):.0%}" if min(found) == max(found) else f"{min(found):.0%}–{max(found):.0%}"
        groups.append(
            Group(
                "near-code", sorted(members), f"near-identical code: {share} of distinctive statements shared"
            )
        )
    return sorted(groups, key=lambda g: g.members)
