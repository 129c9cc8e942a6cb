"""What a saved notebook shows: its code cells, their outputs as text, the
images and the errors, read statically from the .ipynb (nothing runs).

Cells are numbered from 1 in notebook order, markdown cells included, the way
``extract.py`` numbers them, so every message points at the same cell a
student sees when scrolling. Output text is read the way a terminal shows it
(a carriage return rewinds the line, as tqdm bars do; ANSI colours dropped).

Run order is judged on the execution counts the editor recorded. Jupyter
counts from 1; Colab writes 0 or null for cells it ran without output, and a
cell whose outputs or whose editor metadata (Colab's ``executionInfo``,
JupyterLab/Kaggle ``execution`` timestamps, papermill's ``status``) show a
run counts as run even without a number.

Figures are told apart (``figures``): a training curve (a line chart the
cell's code draws with ``plot``), an image grid (``imshow`` of samples), a
confusion matrix or heatmap, or another figure. The code decides when it is
unambiguous; otherwise the PNG itself does: a chart draws thin lines and text
on a plain background, a grid of sample images is mostly filled areas.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import nbformat
import numpy as np
from PIL import Image

from .. import untrusted

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
TEXT_CAP = 200_000  # per output: enough for any training log, bounded for the regexes
LINE_CAP = 20_000  # per line: a printed history dict of 2,000 epochs; longer lines are cut
NOTEBOOK_TEXT_CAP = 2_000_000  # all outputs of a notebook together; later outputs are not read


def text_of(value: Any) -> str:
    """nbformat allows a string or a list of strings for sources and texts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(v for v in value if isinstance(v, str))
    return ""


def terminal_lines(text: str) -> list[str]:
    """Lines as a terminal leaves them: the part after the last carriage return.

    Every parser of outputs reads these lines, so the caps here bound their work: at most
    ``TEXT_CAP`` characters per output (head and tail kept), ``LINE_CAP`` per line."""
    if len(text) > TEXT_CAP:
        text = text[: TEXT_CAP // 2] + "\n" + text[-TEXT_CAP // 2 :]
    text = ANSI.sub("", text)
    lines = (line.rsplit("\r", 1)[-1] if "\r" in line else line for line in text.split("\n"))
    return [line[:LINE_CAP] for line in lines]


@dataclass
class Cell:
    number: int  # 1-based position in the notebook, markdown included
    kind: str  # "code", "markdown", "raw"
    source: str
    execution_count: int | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    text_lines: list[str] = field(default_factory=list, repr=False)  # output lines, as shown, capped
    unread: bool = False  # outputs past NOTEBOOK_TEXT_CAP: not read

    @property
    def label(self) -> str:
        """'cell 5 (In [7])': the position and the number Jupyter printed."""
        shown = f" (In [{self.execution_count}])" if self.execution_count is not None else ""
        return f"cell {self.number}{shown}"

    def lines(self) -> list[str]:
        """Every non-blank line of text this cell's outputs show, in order."""
        return [line for line in self.text_lines if line.strip()]

    def images(self) -> int:
        return sum(1 for o in self.outputs if "image/png" in (o.get("data") or {}))

    def errors(self) -> list[dict[str, Any]]:
        return [o for o in self.outputs if o.get("output_type") == "error"]

    def ran_by_metadata(self) -> bool:
        """The editor recorded a run of this cell (Colab, JupyterLab's timing, Kaggle/papermill)."""
        meta = self.metadata
        info = meta.get("executionInfo")
        if isinstance(info, dict) and info.get("status") == "ok":
            return True
        timing = meta.get("execution")
        if isinstance(timing, dict) and any(str(k).startswith("shell.execute_reply") for k in timing):
            return True
        paper = meta.get("papermill")
        return isinstance(paper, dict) and paper.get("status") == "completed"


def output_text(output: dict[str, Any]) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        return text_of(output.get("text", ""))
    if kind in ("execute_result", "display_data"):
        return text_of((output.get("data") or {}).get("text/plain", ""))
    if kind == "error":
        return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
    return ""


def cells(nb: nbformat.NotebookNode) -> list[Cell]:
    """The cells, each with its output lines; once the notebook's outputs pass
    ``NOTEBOOK_TEXT_CAP`` characters the rest is not read (``Cell.unread``)."""
    found = []
    budget = NOTEBOOK_TEXT_CAP
    for number, cell in enumerate(nb.get("cells", []), start=1):
        if not isinstance(cell, dict):
            continue
        count = cell.get("execution_count")
        outputs = cell.get("outputs") if isinstance(cell.get("outputs"), list) else []
        metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        tags = metadata.get("tags") or []
        item = Cell(
            number=number,
            kind=str(cell.get("cell_type", "")),
            source=text_of(cell.get("source", "")),
            # Jupyter counts from 1; Colab's 0 means "no count recorded"
            execution_count=count if isinstance(count, int) and count >= 1 else None,
            outputs=[o for o in outputs if isinstance(o, dict)],
            tags=[t for t in tags if isinstance(t, str)] if isinstance(tags, list) else [],
            metadata=metadata,
        )
        for output in item.outputs:
            text = output_text(output)
            cost = min(len(text), TEXT_CAP)  # terminal_lines reads no more of one output
            if cost > budget:
                item.unread, budget = True, -1
                break
            budget -= cost
            item.text_lines += terminal_lines(text)
        found.append(item)
    return found


def first_unread(cells: list[Cell]) -> str | None:
    """'outputs from cell 40 on were not read (...)', when the notebook printed too much."""
    cell = next((c for c in cells if c.unread), None)
    if cell is None:
        return None
    return (
        f"outputs from cell {cell.number} on were not read: the notebook prints over "
        f"{NOTEBOOK_TEXT_CAP:,} characters"
    )


def code_cells(nb: nbformat.NotebookNode) -> Iterator[Cell]:
    return (c for c in cells(nb) if c.kind == "code")


def schema_problem(nb: nbformat.NotebookNode) -> str | None:
    """nbformat's own schema validation, as one line naming the cell."""
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        text = str(exc)
        where = re.search(r"On instance((?:\[[^\]]*\])+)", text)
        place = ""
        if where:
            cell = re.match(r"\['cells'\]\[(\d+)\]", where.group(1))
            rest = re.findall(r"\['([^']*)'\]", where.group(1)[cell.end() if cell else 0 :])
            place = (f"cell {int(cell.group(1)) + 1}" if cell else "notebook") + (
                f" field {'.'.join(rest)}" if rest else ""
            )
        first = text.strip().splitlines()[0][:200] if text.strip() else "invalid"
        return f"{place}: {first}" if place else first
    return None


@dataclass
class RunOrder:
    """How the saved notebook was run: unexecuted cells, out-of-order counts."""

    executed: int  # cells that ran: a recorded count, outputs, or the editor's record of a run
    unexecuted: list[Cell]
    out_of_order: list[tuple[Cell, Cell]]  # (earlier cell, later cell with a smaller count)
    errors: list[tuple[Cell, dict[str, Any]]]
    unrecorded: list[Cell] = field(default_factory=list)  # Colab: no output, so no count kept

    @property
    def code(self) -> int:
        return self.executed + len(self.unexecuted)


def is_colab(nb: nbformat.NotebookNode) -> bool:
    """Saved by Google Colab (it keeps no execution count for a cell without output)."""
    meta = nb.get("metadata") if isinstance(nb.get("metadata"), dict) else {}
    return "colab" in meta


def run_order(nb: nbformat.NotebookNode) -> RunOrder:
    """Order judged on the counts that were recorded; a cell without one is "never run"
    only when nothing else shows it ran (and, in a Colab export, only when no cell has a count)."""
    executed, unexecuted, unrecorded, out_of_order, errors = 0, [], [], [], []
    previous: Cell | None = None
    for cell in code_cells(nb):
        errors += [(cell, e) for e in cell.errors()]
        if not cell.source.strip():
            continue
        if cell.execution_count is None:
            if cell.outputs or cell.ran_by_metadata():
                executed += 1
            else:
                unexecuted.append(cell)
            continue
        executed += 1
        if previous is not None and cell.execution_count <= previous.execution_count:
            out_of_order.append((previous, cell))
        previous = cell
    if is_colab(nb) and previous is not None:
        unrecorded, unexecuted = unexecuted, []
    return RunOrder(executed + len(unrecorded), unexecuted, out_of_order, errors, unrecorded)


def error_line(cell: Cell, error: dict[str, Any]) -> str:
    """'cell 7 (In [7]) raised ZeroDivisionError: division by zero'."""
    value = str(error.get("evalue", "")).strip().splitlines()
    return f"{cell.label} raised {error_name(error)}" + (f": {value[0][:200]}" if value else "")


def error_name(error: dict[str, Any]) -> str:
    """An error output's exception name, as long as a class name can sensibly be."""
    return untrusted.short(error.get("ename", "an error"), 100)


# --- figures ------------------------------------------------------------------
CURVE_CODE = re.compile(r"\b(?!\w*subplots?\b)\w*(?:plot|curve|semilog|loglog)\w*\s*\(")  # not subplots(
CURVE_WORDS = re.compile(r"loss|acc|epoch|history|curve|lr\b|learning", re.I)
IMAGE_CODE = re.compile(r"\b(?:imshow|make_grid|show_images?|show_batch|show_samples|plot_images?)\s*\(")
MATRIX_CODE = re.compile(r"confusion|heatmap\s*\(|matshow\s*\(|ConfusionMatrixDisplay", re.I)
MAX_PNG_BYTES = 8 << 20  # base64 text of one image; a figure is a few hundred KB at most
MAX_PIXELS = 16_000_000
SOLID_RADIUS = 2  # a pixel is solid when its 5x5 neighbourhood is all ink
SOLID_CHART = 0.05  # measured: line charts <= 0.003, image grids >= 0.13 (docs/rubrics.md)
KINDS = {
    "curve": "training curve",
    "image": "image grid",
    "matrix": "confusion matrix/heatmap",
    "other": "other figure",
}


@dataclass
class Figure:
    cell: int
    kind: str  # a key of KINDS
    why: str  # what decided it, for the report

    @property
    def label(self) -> str:
        return f"{KINDS[self.kind]} (cell {self.cell}: {self.why})"


def solid_fraction(png_base64: Any) -> float | None:
    """Share of the picture covered by solid non-background areas (None: unreadable).

    The two most common colours are the background (figure and axes). A line
    chart draws thin strokes and text on it, so hardly any pixel has only
    non-background pixels around it; a grid of images is mostly such pixels
    (even a Fashion-MNIST sample's black border is not the background)."""
    text = text_of(png_base64)
    if not text or len(text) > MAX_PNG_BYTES:
        return None
    try:
        with Image.open(io.BytesIO(base64.b64decode(text))) as image:
            if image.format != "PNG" or image.width * image.height > MAX_PIXELS:
                return None
            pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError, binascii.Error, Image.DecompressionBombError):
        return None
    if min(pixels.shape[:2]) <= 2 * SOLID_RADIUS:
        return None
    codes = (pixels >> 4).astype(np.int32)
    codes = (codes[..., 0] << 8) | (codes[..., 1] << 4) | codes[..., 2]
    background = np.bincount(codes.ravel(), minlength=4096).argsort()[-2:]
    ink = ~np.isin(codes, background)
    r, (h, w) = SOLID_RADIUS, ink.shape
    solid = ink[r : h - r, r : w - r].copy()
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            solid &= ink[r + dy : h - r + dy, r + dx : w - r + dx]
    return float(solid.sum() / ink.size)


def figures(cell: Cell) -> list[Figure]:
    """What each image output of a code cell shows, judged from the code and the PNG."""
    code = cell.source
    curve = bool(CURVE_CODE.search(code))  # plt.plot(train_hist) is a curve too: the PNG confirms it
    values = "loss/accuracy values" if CURVE_WORDS.search(code) else "values"
    image, matrix = bool(IMAGE_CODE.search(code)), bool(MATRIX_CODE.search(code))
    found = []
    for output in cell.outputs:
        data = output.get("data") or {}
        if "image/png" not in data:
            continue
        solid = solid_fraction(data["image/png"])
        looks = None if solid is None else ("chart" if solid < SOLID_CHART else "filled")
        seen = f"{100 * solid:.0f}% of it filled" if solid is not None else "image unreadable"
        if matrix and not curve:
            kind, why = "matrix", "the code draws a confusion matrix/heatmap"
        elif curve and not image:
            kind = "curve" if looks != "filled" else "other"
            why = f"plot() of {values}"
            why += f", but {seen}" if kind == "other" else ""
        elif image and not curve:
            kind = "image" if looks != "chart" else "other"
            why = "imshow() of images"
            why += f", but the image is a plain chart ({seen})" if kind == "other" else ""
        elif curve and image:  # one cell draws both: the image decides
            kind = {"chart": "curve", "filled": "image"}.get(looks or "", "other")
            why = f"the cell draws curves and images; this one has {seen}"
        else:
            kind = {"chart": "other", "filled": "image"}.get(looks or "", "other")
            why = f"no plot()/imshow() in the cell; the image has {seen}"
        found.append(Figure(cell.number, kind, why))
    return found
