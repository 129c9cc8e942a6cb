"""What a saved notebook shows: its code cells, their outputs as text, the
images and the errors, read statically from the .ipynb (nothing runs).

Cells are numbered from 1 in notebook order, markdown cells included, the way
``extract.py`` numbers them, so every message points at the same cell a
student sees when scrolling. Output text is read the way a terminal shows it
(a carriage return rewinds the line, as tqdm bars do; ANSI colours dropped).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import nbformat

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
        tags = (cell.get("metadata") or {}).get("tags") or []
        item = Cell(
            number=number,
            kind=str(cell.get("cell_type", "")),
            source=text_of(cell.get("source", "")),
            execution_count=count if isinstance(count, int) else None,
            outputs=[o for o in outputs if isinstance(o, dict)],
            tags=[t for t in tags if isinstance(t, str)],
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

    executed: int
    unexecuted: list[Cell]
    out_of_order: list[tuple[Cell, Cell]]  # (earlier cell, later cell with a smaller count)
    errors: list[tuple[Cell, dict[str, Any]]]

    @property
    def code(self) -> int:
        return self.executed + len(self.unexecuted)


def run_order(nb: nbformat.NotebookNode) -> RunOrder:
    executed, unexecuted, out_of_order, errors = 0, [], [], []
    previous: Cell | None = None
    for cell in code_cells(nb):
        errors += [(cell, e) for e in cell.errors()]
        if not cell.source.strip():
            continue
        if cell.execution_count is None:
            unexecuted.append(cell)
            continue
        executed += 1
        if previous is not None and cell.execution_count <= previous.execution_count:
            out_of_order.append((previous, cell))
        previous = cell
    return RunOrder(executed, unexecuted, out_of_order, errors)


def error_line(cell: Cell, error: dict[str, Any]) -> str:
    """'cell 7 (In [7]) raised ZeroDivisionError: division by zero'."""
    value = str(error.get("evalue", "")).strip().splitlines()
    return f"{cell.label} raised {error.get('ename', 'an error')}" + (f": {value[0][:200]}" if value else "")
