"""What the HTML and Markdown reports show, computed once from a GradeResult.

Items are grouped by the prefix of their id (``task1.spec`` -> ``task1``), and
each group collects the evidence its checks recorded in ``data``: the layer
comparison (spec), counts against the reference, per-class accuracy and the
confusion matrix (accuracy), claimed vs measured (claims), training sample vs
test split (generalisation) and the training
curves the notebook logged (notebook, attributed to the task they belong to).
Both templates render the same view, so they carry the same content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..result import GradeResult, ItemResult
from . import plots

NOTEBOOK_KINDS = ("notebook", "notebook_outputs", "notebook_execute")
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
MAX_CURVE_ROWS = 20  # rows of a curve table in Markdown (sampled evenly)


@dataclass
class LayerRow:
    number: int
    layer: str
    name: str
    output_shape: str
    params: int
    required: str  # the required layer this one matched, or ""
    ok: bool | None  # None: not part of the required stack


@dataclass
class Layers:
    rows: list[LayerRow]
    expected: list[tuple[str, str, bool]]  # (required, found, matches)
    total_params: int


@dataclass
class CountRow:
    what: str
    value: int | None
    reference: str
    ok: bool | None  # None: no reference to compare with


@dataclass
class ClassRow:
    name: str
    measured: float | None
    claimed: float | None


@dataclass
class Accuracy:
    item: ItemResult
    rows: list[ClassRow]
    classes: list[str]
    confusion: list[list[int]]
    bar_png: str = ""
    confusion_png: str = ""


@dataclass
class Curve:
    title: str
    epochs: list[int]
    series: dict[str, list[float | None]]
    png: str = ""
    declared: int | None = None

    def table(self) -> list[dict[str, Any]]:
        """At most MAX_CURVE_ROWS rows, evenly spaced, the last epoch always included."""
        n = len(self.epochs)
        picks = (
            sorted({round(k * (n - 1) / (MAX_CURVE_ROWS - 1)) for k in range(MAX_CURVE_ROWS)}) if n else []
        )
        picks = list(range(n)) if n <= MAX_CURVE_ROWS else picks
        return [{"epoch": self.epochs[k], **{s: v[k] for s, v in self.series.items()}} for k in picks]


@dataclass
class Generalisation:
    item: ItemResult
    histogram_png: str = ""


@dataclass
class Section:
    key: str
    title: str
    items: list[ItemResult] = field(default_factory=list)
    layers: Layers | None = None
    counts: list[CountRow] = field(default_factory=list)
    accuracy: Accuracy | None = None
    claims: ItemResult | None = None
    generalisation: Generalisation | None = None
    curves: list[Curve] = field(default_factory=list)


@dataclass
class Report:
    result: GradeResult
    sections: list[Section]
    flags: list[str]
    notebook: ItemResult | None  # the static notebook check (its error list)
    artifacts: list[str]

    @property
    def notebook_items(self) -> list[ItemResult]:
        return [i for i in self.result.items if i.kind in NOTEBOOK_KINDS]


def artifact_name(name: str) -> str:
    """A file name from the submission, safe to write beside the report and to link."""
    cleaned = SAFE_NAME.sub("_", Path(name).name).lstrip(".")
    return cleaned[:120] or "artifact"


def _layers(data: dict[str, Any]) -> Layers | None:
    """The spec check's own decisions (``data["alignment"]``), shown as they were made."""
    executed, alignment = data.get("layers"), data.get("alignment")
    if not isinstance(executed, list):
        return None
    pairs, required = [], {}
    for row in alignment if isinstance(alignment, list) else []:
        pairs.append((str(row.get("required")), row.get("found") or "(nothing)", bool(row.get("ok"))))
        if isinstance(row.get("layer"), int) and not str(row.get("required")).startswith("final layer"):
            required[row["layer"]] = (str(row.get("required")), bool(row.get("ok")))
    rows = [
        LayerRow(
            k + 1,
            str(g.get("shown") or g.get("type")),
            str(g.get("name") or ""),
            "×".join(str(d) for d in g.get("output_shape") or []) or "—",
            int(g.get("params") or 0),
            required.get(k, ("", None))[0],
            required.get(k, ("", None))[1],
        )
        for k, g in enumerate(executed)
    ]
    return Layers(rows, pairs, sum(r.params for r in rows))


def _counts(data: dict[str, Any]) -> list[CountRow]:
    reference = data.get("reference") or {}
    rows = []
    for key, label in (("params", "parameters"), ("macs", "MACs (thop)"), ("flops", "FLOPs")):
        value, accepted = data.get(key), reference.get(key) or []
        rows.append(
            CountRow(
                label,
                value,
                " or ".join(f"{v:,}" for v in accepted) if accepted else "—",
                value in accepted if accepted else None,
            )
        )
    return rows


def _accuracy(item: ItemResult, claimed: dict[str, Any] | None) -> Accuracy | None:
    per_class = item.data.get("per_class")
    if not isinstance(per_class, dict) or not per_class:
        return None
    claimed_values = {k: v.get("claimed") for k, v in (claimed or {}).items() if isinstance(v, dict)}
    rows = [ClassRow(name, value, claimed_values.get(name)) for name, value in per_class.items()]
    view = Accuracy(item, rows, list(per_class), item.data.get("confusion") or [])
    view.bar_png = plots.per_class(
        per_class, {k: v for k, v in claimed_values.items() if v is not None} or None
    )
    if view.confusion and len(view.confusion) == len(view.classes):
        view.confusion_png = plots.confusion(view.confusion, view.classes)
    return view


def _generalisation(item: ItemResult) -> Generalisation:
    view = Generalisation(item)
    histogram = item.data.get("histogram") or {}
    if all(isinstance(histogram.get(k), list) for k in ("edges", "train", "test")):
        view.histogram_png = plots.loss_histograms(histogram["edges"], histogram["train"], histogram["test"])
    return view


def _curve(run: dict[str, Any], title: str) -> Curve | None:
    epochs = run.get("epochs") or []
    series = {k: run[k] for k in ("train_loss", "val_loss", "train_acc", "val_acc") if run.get(k)}
    if not epochs or not series:
        return None
    cells = run.get("cells") or [run.get("cell")]
    where = f"cell{'s' if len(cells) > 1 else ''} {', '.join(str(c) for c in cells)}"
    curve = Curve(f"{title} ({where})", list(epochs), series, declared=run.get("declared_epochs"))
    curve.png = plots.curves(curve.epochs, curve.series, curve.title)
    return curve


def _title(key: str, items: list[ItemResult]) -> str:
    heads = {i.name.split(":")[0].strip() for i in items if ":" in i.name}
    return heads.pop() if len(heads) == 1 else key


def build(result: GradeResult) -> Report:
    groups: dict[str, list[ItemResult]] = {}
    for item in result.items:
        groups.setdefault(item.id.split(".")[0] if "." in item.id else "", []).append(item)
    sections = {
        key: Section(key, _title(key, items) if key else "Submission", items) for key, items in groups.items()
    }
    notebook = next((i for i in result.items if i.kind == "notebook"), None)
    for section in sections.values():
        claims = next((i for i in section.items if i.kind == "claims"), None)
        section.claims = claims
        for item in section.items:
            if item.kind == "spec" and section.layers is None:
                section.layers = _layers(item.data)
            elif item.kind == "counts" and item.data.get("params") is not None:
                section.counts = _counts(item.data)
            elif item.kind == "accuracy" and section.accuracy is None:
                section.accuracy = _accuracy(item, (claims.data.get("per_class") if claims else None))
            elif item.kind == "generalisation" and "membership_auc" in item.data:
                section.generalisation = _generalisation(item)
    runs = ((notebook.data.get("claims") or {}).get("runs") or []) if notebook else []
    for run in runs:
        owner = run.get("owner")
        target = sections.get(owner) if owner in sections else None
        if target is None:
            target = sections.setdefault("notebook", Section("notebook", "Notebook"))
        curve = _curve(run, f"{target.title} training log" if target.key != "notebook" else "Training log")
        if curve:
            target.curves.append(curve)
    flags = [str(i.data["flag"]) for i in result.items if i.data.get("flag")]
    artifacts = sorted(artifact_name(name) for i in result.items for name in (i.data.get("artifacts") or {}))
    return Report(result, list(sections.values()), flags, notebook, artifacts)
