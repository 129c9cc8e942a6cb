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
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import nbformat
import numpy as np
from PIL import Image

from .. import untrusted

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
TEXT_CAP = 200_000  # per output: enough for any training log, bounded for the regexes
LINE_CAP = 20_000  # per line: a printed history dict of 2,000 epochs; longer lines are cut
NOTEBOOK_TEXT_CAP = 2_000_000  # all outputs of a notebook together; later outputs are not read
NOTEBOOK_HTML_CAP = 400_000  # HTML outputs parsed (html.parser: ~1.6 µs a character at worst)


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

    def figure_count(self) -> int:
        """Figures among the outputs: PNG, JPEG, SVG or Plotly, one per output."""
        return sum(1 for o in self.outputs if figure_data(o) is not None)

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


class _HtmlText(HTMLParser):
    """An HTML output as the lines it shows: tables as pipe-separated rows
    (``| epoch | train loss |``), other text a line per block (``<p>``, ``<br>``, ...);
    ``<style>`` and ``<script>`` left out.

    pandas shows a DataFrame as HTML and as text; the text wraps wide frames, elides
    columns and splits multi-word column names into several, the HTML keeps one cell per
    column. A table's header rows are merged column by column (pandas puts the index
    name, such as ``epoch``, on a second header row)."""

    BLOCKS = frozenset({"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "pre"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.text: list[str] = []
        self.head: list[list[str]] = []
        self.rows: list[list[str]] = []
        self.row: list[str] | None = None
        self.cell: list[str] | None = None
        self.in_head = False
        self.hidden = 0  # inside <style> or <script>

    def _flush(self) -> None:
        line = " ".join("".join(self.text).split())
        if line:
            self.lines.append(line)
        self.text = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("style", "script"):
            self.hidden += 1
        elif tag == "thead":
            self.in_head = True
        elif tag == "tr":
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []
        if tag in self.BLOCKS and self.row is None:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self.hidden = max(0, self.hidden - 1)
        elif tag in ("td", "th") and self.row is not None and self.cell is not None:
            self.row.append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "tr" and self.row is not None:
            (self.head if self.in_head else self.rows).append(self.row)
            self.row = None
        elif tag == "thead":
            self.in_head = False
        elif tag == "table":
            self._table()
        elif tag in self.BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        (self.cell if self.cell is not None else self.text).append(data)

    def _table(self) -> None:
        width = max((len(r) for r in self.head + self.rows), default=0)
        names = [""] * width
        for row in self.head:
            for k, name in enumerate(row):
                names[k] = f"{names[k]} {name}".strip()
        self._flush()
        self.lines += ["| " + " | ".join(r) + " |" for r in ([names] if self.head else []) + self.rows]
        self.head, self.rows, self.row, self.cell = [], [], None, None

    def result(self) -> str:
        if self.row:  # a table never closed
            self.rows.append(self.row)
        if self.head or self.rows:
            self._table()
        self._flush()
        return "\n".join(self.lines)


HTML_OBJECT = "<IPython.core.display.HTML object>"  # the text form of display(HTML(...))


def parsed_html(output: dict[str, Any]) -> str:
    """The output's HTML, capped at ``TEXT_CAP``, when the grader reads it instead of its
    text form: it holds a table, or its text form is only ``HTML_OBJECT``; else ''."""
    data = output.get("data")
    if not isinstance(data, dict):
        return ""
    html = text_of(data.get("text/html", ""))[:TEXT_CAP]
    return html if "<table" in html or text_of(data.get("text/plain", "")).strip() == HTML_OBJECT else ""


def html_text(html: str) -> str:
    """The lines an HTML output shows (tables as pipe-separated rows)."""
    parser = _HtmlText()
    parser.feed(html[:TEXT_CAP])
    parser.close()
    return parser.result()


def output_text(output: dict[str, Any], html: str) -> str:
    """What an output shows as text: a stream's text, an error's name and value, a
    display's Markdown (``display(Markdown(...))``), else its HTML (``html``: what
    ``parsed_html`` picked, '' to read none), else its text form."""
    kind = output.get("output_type")
    if kind == "stream":
        return text_of(output.get("text", ""))
    if kind in ("execute_result", "display_data"):
        data = output.get("data") or {}
        if "text/markdown" in data:
            return text_of(data["text/markdown"])
        return (html_text(html) if html else "") or text_of(data.get("text/plain", ""))
    if kind == "error":
        return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
    return ""


def cells(nb: nbformat.NotebookNode) -> list[Cell]:
    """The cells, each with its output lines; once the notebook's outputs pass
    ``NOTEBOOK_TEXT_CAP`` characters the rest is not read (``Cell.unread``)."""
    found = []
    budget, html_left = NOTEBOOK_TEXT_CAP, NOTEBOOK_HTML_CAP
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
            html = parsed_html(output)
            if len(html) > html_left:  # past the cap, outputs are read from their text form
                html = ""
            html_left -= len(html)
            text = output_text(output, html)
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
    """nbformat's own schema validation, as one line naming the cell.

    Keys an editor adds that the notebook's format version does not list are not the
    student's doing and are accepted (``relax_add_props``): cell ids in a 4.0-4.4 notebook
    (VS Code, Colab, jupytext write them), nteract's ``outputExpanded``. Missing or
    duplicate cell ids, which nbformat repairs with a warning, are accepted silently."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nbformat.validate(nb, relax_add_props=True)  # it renames duplicate ids: none is read
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
    except Exception:  # noqa: BLE001 - nbformat's own error reporting breaks on some wrong types
        return _wrong_type(nb)
    return None


def _wrong_type(nb: nbformat.NotebookNode) -> str:
    """Where a value of the wrong type is, for what nbformat could not even report."""
    for k, cell in enumerate(nb.get("cells") or [], start=1):
        if not isinstance(cell, dict):
            return f"cell {k}: not a cell"
        for key in ("cell_type", "id"):
            if key in cell and not isinstance(cell[key], str):
                return f"cell {k} field {key}: {str(cell[key])[:40]!r} is not a string"
    return "a field holds a value of the wrong type"


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


COMMENT_ONLY = re.compile(r"^\s*#.*$", re.M)


def run_order(nb: nbformat.NotebookNode) -> RunOrder:
    """Order judged on the counts that were recorded; a cell without one is "never run"
    only when nothing else shows it ran (and, in a Colab export, only when no cell has a count)."""
    executed, unexecuted, unrecorded, out_of_order, errors = 0, [], [], [], []
    previous: Cell | None = None
    for cell in code_cells(nb):
        errors += [(cell, e) for e in cell.errors()]
        if not COMMENT_ONLY.sub("", cell.source).strip():  # nothing to run: blank or comments only
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
    """'cell 7 (In [7]) raised ZeroDivisionError: division by zero'; an interrupted cell
    (Jupyter's Stop button, Colab's stop icon) says so and what to do."""
    if error.get("ename") == "KeyboardInterrupt":
        return (
            f"{cell.label} was stopped by hand (KeyboardInterrupt) before it finished: let it run "
            "to the end (with fewer epochs if it takes too long)"
        )
    value = str(error.get("evalue", "")).strip().splitlines()
    return f"{cell.label} raised {error_name(error)}" + (f": {value[0][:200]}" if value else "")


def error_name(error: dict[str, Any]) -> str:
    """An error output's exception name, as long as a class name can sensibly be."""
    return untrusted.short(error.get("ename", "an error"), 100)


# --- figures ------------------------------------------------------------------
CURVE_CODE = re.compile(  # not subplots(; Plotly's px.line( and go.Scatter( too; the d2l book's
    # training functions (d2l.train_ch6(...)) draw their curves with its Animator
    r"\b(?!\w*subplots?\b)\w*(?:plot|curve|semilog|loglog)\w*\s*\(|\.line\s*\(|\bScatter\s*\("
    r"|\btrain_ch\d+\s*\(|\bAnimator\s*\("
)
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
    panels: int = 1  # plots side by side in it (``plt.subplots(1, 2)``), counted for a chart

    @property
    def label(self) -> str:
        panels = f", {self.panels} panels" if self.panels > 1 else ""
        return f"{KINDS[self.kind]} (cell {self.cell}: {self.why}){panels}"


@dataclass
class Look:
    """What a figure looks like: a chart (lines on a plain background), filled (pictures, a
    heatmap) or None when it cannot be told; the words saying why; its panels."""

    look: str | None
    seen: str
    panels: int = 1


# The figure types an output may carry, in the order one is picked; one output is one figure.
PLOTLY = "application/vnd.plotly.v1+json"
FIGURE_TYPES = ("image/png", "image/jpeg", "image/svg+xml", PLOTLY)
PLOTLY_HTML = re.compile(r"Plotly\.newPlot\(")  # Colab's renderer: the figure as HTML and JavaScript
PLOTLY_TRACE = re.compile(r'"type"\s*:\s*"(\w+)"')
PLOTLY_LINES = frozenset({"scatter", "scattergl"})
PLOTLY_FILLED = frozenset({"heatmap", "heatmapgl", "image", "bar", "histogram", "histogram2d", "pie"})
SVG_PICTURE = re.compile(r"<image\b")  # matplotlib embeds imshow() pictures as <image>
SVG_AXES = re.compile(r"""<g id=["'](axes_\d+)["']""")  # matplotlib names each axes' group
PLOTLY_XAXIS = re.compile(r"xaxis\d*")  # make_subplots gives each panel an x axis
MAX_PANELS = 12
PANEL_RUN = 0.12  # a frame, face or grid line runs this share of the picture at least
PANEL_GAP = 3  # pixels of another colour a run may cross (grid lines across a face)
PANEL_NEAR = 0.03  # runs that start and end this close belong to one panel
PANEL_SIMILAR = 0.6  # a panel is at least this share of the largest one (subplots are equal)
MAX_SPANS = 200


def figure_data(output: dict[str, Any]) -> tuple[str, Any] | None:
    """(type, value) of the figure an output shows: matplotlib's PNG, or its JPEG or SVG
    (``InlineBackend.figure_format``), or a Plotly figure (JSON, or Colab's HTML)."""
    data = output.get("data")
    if not isinstance(data, dict):
        return None
    for kind in FIGURE_TYPES:
        if kind in data:
            return kind, data[kind]
    html = text_of(data.get("text/html", ""))
    if html and PLOTLY_HTML.search(html, 0, TEXT_CAP):
        return "text/html", html
    return None


def looks(kind: str, value: Any) -> Look:
    """Whether a figure looks like a chart or is filled, why, and how many panels it has."""
    if kind in ("image/png", "image/jpeg"):
        codes = _colour_codes(value)
        solid = None if codes is None else solid_fraction(codes)
        if solid is None:
            return Look(None, "image unreadable")
        if solid >= SOLID_CHART:
            return Look("filled", f"{100 * solid:.0f}% of it filled")
        return Look("chart", f"{100 * solid:.0f}% of it filled", panel_count(codes))
    if kind == "image/svg+xml":
        text = text_of(value)
        if SVG_PICTURE.search(text, 0, MAX_PNG_BYTES):
            return Look("filled", "an SVG holding a picture")
        panels = len(set(SVG_AXES.findall(text, 0, MAX_PNG_BYTES)))
        return Look("chart", "an SVG of lines and text", max(1, min(panels, MAX_PANELS)))
    if kind == PLOTLY:
        traces = value.get("data") if isinstance(value, dict) else None
        types = {str(t.get("type", "scatter")) for t in traces if isinstance(t, dict)} if traces else set()
        layout = value.get("layout") if isinstance(value, dict) else None
        layout = layout if isinstance(layout, dict) else {}
        axes = [k for k in layout if isinstance(k, str) and PLOTLY_XAXIS.fullmatch(k)]
    else:  # Colab's Plotly HTML: the trace types named in the figure's JSON
        types = set(PLOTLY_TRACE.findall(text_of(value)[:TEXT_CAP])) & (PLOTLY_LINES | PLOTLY_FILLED)
        axes = []
    if types & PLOTLY_FILLED:
        return Look("filled", f"a Plotly {sorted(types & PLOTLY_FILLED)[0]}")
    if types and types <= PLOTLY_LINES:
        return Look("chart", "a Plotly line chart", max(1, min(len(axes), MAX_PANELS)))
    return Look(None, "a Plotly figure")


def _colour_codes(png_base64: Any) -> np.ndarray | None:
    """A PNG's or JPEG's pixels as 12-bit colour codes (4 bits a channel: JPEG noise and
    anti-aliasing shades fall together); None when it cannot be read within the limits."""
    text = text_of(png_base64)
    if not text or len(text) > MAX_PNG_BYTES:
        return None
    try:
        with Image.open(io.BytesIO(base64.b64decode(text))) as image:
            if image.format not in ("PNG", "JPEG") or image.width * image.height > MAX_PIXELS:
                return None
            pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError, binascii.Error, Image.DecompressionBombError):
        return None
    if min(pixels.shape[:2]) <= 2 * SOLID_RADIUS:
        return None
    codes = (pixels >> 4).astype(np.int32)
    return (codes[..., 0] << 8) | (codes[..., 1] << 4) | codes[..., 2]


def solid_fraction(codes: np.ndarray) -> float:
    """Share of the picture covered by solid non-background areas.

    The two most common colours are the background (figure and axes). A line
    chart draws thin strokes and text on it, so hardly any pixel has only
    non-background pixels around it; a grid of images is mostly such pixels
    (even a Fashion-MNIST sample's black border is not the background)."""
    background = np.bincount(codes.ravel(), minlength=4096).argsort()[-2:]
    ink = ~np.isin(codes, background)
    r, (h, w) = SOLID_RADIUS, ink.shape
    solid = ink[r : h - r, r : w - r].copy()
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            solid &= ink[r + dy : h - r + dy, r + dx : w - r + dx]
    return float(solid.sum() / ink.size)


def panel_count(codes: np.ndarray) -> int:
    """How many plots a chart holds, side by side or stacked (``plt.subplots(1, 2)``: 2).

    Every axes is a rectangle: its frame (spines), its face colour (seaborn, ggplot) or its
    grid lines run most of its width and height in a colour other than the figure's
    background (the colour of the picture's edge). Long runs are gathered by where they
    start and end; a run inside a longer one (a legend, a flat curve) or much shorter than
    the longest (a legend outside the axes) is no panel; the columns times the rows of
    panels left are the count. Measured on 268 matplotlib figures (10 styles, 72 and 100
    dpi, 1 to 6 panels, shared axes, legends outside, a long suptitle, twin axes, pandas'
    ``df.plot(subplots=True)``): all counted right (docs/rubrics.md)."""
    edge = np.concatenate([codes[0], codes[-1], codes[:, 0], codes[:, -1]])
    ink = codes != np.bincount(edge).argmax()
    columns, rows = _panel_spans(ink), _panel_spans(ink.T)
    return max(1, min(columns * rows, MAX_PANELS))


def _panel_spans(ink: np.ndarray) -> int:
    """How many panels lie side by side along the rows of ``ink``."""
    height, width = ink.shape
    shortest, near = PANEL_RUN * width, PANEL_NEAR * width
    # gaps of up to 2 * PANEL_GAP pixels closed along each row (grid lines across a face):
    # a dilation then an erosion, each a sliding window read off cumulative sums
    window = 2 * PANEL_GAP + 1
    grown = _window_any(ink, window)
    closed = ~_window_any(~grown, window) & grown
    edges = np.diff(np.pad(closed, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    starts, ends = np.nonzero(edges == 1)[1], np.nonzero(edges == -1)[1] - 1
    long = ends - starts + 1 >= shortest
    pairs = np.unique(np.stack([starts[long], ends[long]], axis=1), axis=0)[: MAX_SPANS * 10]
    spans: list[tuple[int, int]] = []  # runs that start and end alike, one entry for them all
    for start, end in pairs.tolist():
        if len(spans) < MAX_SPANS and not any(
            abs(s - start) <= near and abs(e - end) <= near for s, e in spans
        ):
            spans.append((start, end))
    kept: list[tuple[int, int]] = []  # panels never overlap: the longest first, others dropped
    for start, end in sorted(spans, key=lambda s: s[0] - s[1]):
        if all(end < s or start > e for s, e in kept):
            kept.append((start, end))
    if not kept:
        return 1
    largest = kept[0][1] - kept[0][0]
    return sum(1 for s, e in kept if e - s >= PANEL_SIMILAR * largest)


def _window_any(mask: np.ndarray, window: int) -> np.ndarray:
    """Whether any pixel within ``window // 2`` along its row is set."""
    half = window // 2
    sums = np.cumsum(np.pad(mask, ((0, 0), (half + 1, half))).astype(np.int32), axis=1)
    return sums[:, window:] - sums[:, :-window] > 0


# savefig('curves.png'), savefig(os.path.join(OUT, 'curves.png')), savefig(f'{OUT}/curves.png'):
# the file name is the last path part of a string literal among its arguments
SAVEFIG = re.compile(r"savefig\(([^)\n]{0,300})")
LITERAL = re.compile(r"""['"]([^'"\n]{1,300})['"]""")
SAVED_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "svg": "image/svg+xml"}
DEFINES = re.compile(r"^\s*def\s", re.M)


def saved_figures(cell: Cell, read: Callable[[str], bytes | None]) -> list[tuple[str, str, Any]]:
    """(file name, type, value) of the figures a cell only saves: ``plt.savefig('loss.png')``
    with a literal name, in a cell that shows no figure and defines no function (a function
    draws where it is called), whose file ``read`` finds in the submission."""
    if cell.figure_count() or DEFINES.search(cell.source):
        return []
    found = []
    names = [
        literal.group(1).replace("\\", "/").rsplit("/", 1)[-1]
        for call in SAVEFIG.finditer(cell.source)
        for literal in LITERAL.finditer(call.group(1))
    ]
    for name in names:
        suffix = name.rsplit(".", 1)[-1].lower()
        if suffix not in SAVED_TYPES or "{" in name or any(f[0] == name for f in found):
            continue
        raw = read(name)
        if raw is None:
            continue
        kind = SAVED_TYPES[suffix]
        value = raw.decode("utf-8", "replace") if kind == "image/svg+xml" else base64.b64encode(raw).decode()
        found.append((name, kind, value))
    return found


def figures(cell: Cell, read: Callable[[str], bytes | None]) -> list[Figure]:
    """What each figure a code cell shows is, judged from the code and the figure itself,
    and the figures it only saved to files (``read``: a submitted file's bytes by name)."""
    code = cell.source
    curve = bool(CURVE_CODE.search(code))  # plt.plot(train_hist) is a curve too: the PNG confirms it
    values = "loss/accuracy values" if CURVE_WORDS.search(code) else "values"
    image, matrix = bool(IMAGE_CODE.search(code)), bool(MATRIX_CODE.search(code))
    shown = [(None, *data) for data in map(figure_data, cell.outputs) if data is not None]
    found = []
    for file, kind, value in shown + saved_figures(cell, read):
        shape = looks(kind, value)
        look, seen = shape.look, shape.seen
        if matrix and not curve:
            kind, why = "matrix", "the code draws a confusion matrix/heatmap"
        elif curve and not image:
            kind = "curve" if look != "filled" else "other"
            why = f"plot() of {values}"
            why += f", but {seen}" if kind == "other" else ""
        elif image and not curve:
            kind = "image" if look != "chart" else "other"
            why = "imshow() of images"
            why += f", but the figure is a plain chart ({seen})" if kind == "other" else ""
        elif curve and image:  # one cell draws both: the image decides
            kind = {"chart": "curve", "filled": "image"}.get(look or "", "other")
            why = f"the cell draws curves and images; this figure: {seen}"
        else:
            kind = {"chart": "other", "filled": "image"}.get(look or "", "other")
            why = f"no plot()/imshow() in the cell; the figure: {seen}"
        why += f"; saved as {file}, not shown" if file else ""
        found.append(Figure(cell.number, kind, why, shape.panels))
    return found
