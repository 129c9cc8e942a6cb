"""summary.html: the class at a glance, and what needs a human.

Plots are drawn with matplotlib (Agg) and inlined as PNG, so the page is one
self-contained file a TA can mail or open offline. Every student links to
their own report.html.

matplotlib is imported only when a histogram is drawn (it costs about half a second).
"""

from __future__ import annotations

import base64
import io
import statistics
from dataclasses import dataclass, field
from typing import Any

import jinja2

from .. import untrusted
from ..checks.registry import FLAG, KINDS
from ..result import GradeResult, ItemResult
from ..rubric import Rubric
from .grades import FinalGrade
from .integrity import Group
from .moodle import Student

GROUP_LABELS = {
    "checkpoint": "Identical checkpoints",
    "code": "Identical code",
    "near-code": "Near-identical code",
    "outputs": "Identical notebook outputs",
}


@dataclass
class StudentRow:
    student: Student
    link: str  # report.html, relative to summary.html
    result: GradeResult | None
    grade: FinalGrade | None
    error: str | None = None
    reasons: list[str] = field(default_factory=list)


def item_flags(item: ItemResult) -> list[str]:
    """What a check flagged for the TA: any kind may set ``data["flag"]`` (``registry.FLAG``);
    ``claims`` does when a notebook's claimed accuracy is far from the measured one,
    ``generalisation`` when the model knows the test images better than its training images."""
    data = item.data or {}
    flag = data.get(FLAG)
    return [f"{item.name}: {flag}"] if isinstance(flag, str) and flag.strip() else []


def reasons(row: StudentRow, groups: list[Group]) -> list[str]:
    why = []
    if row.error:
        why.append(f"grader error: {row.error}")
    result = row.result
    if result is not None:
        if result.fatal:
            why.append(f"submission could not be read: {result.fatal}")
        for item in result.items:
            if "internal grader error" in item.message:
                why.append(f"grader error in {item.name}")
            why += item_flags(item)
        tier = (result.provenance.get("sandbox") or {}).get("tier")
        if tier == "C":
            why.append("graded without a sandbox (tier C)")
    for group in groups:
        if row.student.key in group.members:
            others = len(group.members) - 1
            why.append(f"{GROUP_LABELS[group.kind].lower()} with {others} other{'s' * (others != 1)}")
    return why


def _png(fig) -> str:  # noqa: ANN001 - a matplotlib Figure
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _histogram(values: list[float], xlabel: str, bins: int, limits: tuple[float, float]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2.6))
    ax.hist(values, bins=bins, range=limits, color="#3b6ea8", edgecolor="white")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("students")
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def _per_class_plot(per_class: dict[str, list[float]], what: str, limits: tuple[float, float]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(per_class)
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(names)), 3))
    ax.boxplot([per_class[n] for n in names], showfliers=True)
    ax.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right")
    ax.set_ylabel(what)
    ax.set_ylim(limits[0], limits[1] + 0.02 * (limits[1] - limits[0]))
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def _distributions(rubric: Rubric, rows: list[StudentRow]) -> list[dict[str, Any]]:
    """One section per rubric item whose kind has a ``summary`` hook: what it measured
    across the class (a histogram, and per category, hardest first)."""
    sections = []
    for rubric_item in rubric.items:
        hook = KINDS[rubric_item.kind].summary
        if hook is None:
            continue
        results = [row.result.item(rubric_item.id) for row in rows if row.result]
        found = hook([item for item in results if item is not None])
        if found is None or not found.values:
            continue
        table = [
            {
                "name": name,
                "mean": statistics.fmean(values),
                "median": statistics.median(values),
                "min": min(values),
                "max": max(values),
            }
            for name, values in found.per_class.items()
        ]
        plot = _per_class_plot(found.per_class, found.what, found.limits) if found.per_class else None
        sections.append(
            {
                "name": rubric_item.name,
                "what": found.what,
                "count": len(found.values),
                "median": statistics.median(found.values),
                "histogram": _histogram(found.values, found.xlabel, 20, found.limits),
                "per_class_plot": plot,
                "per_class": sorted(table, key=lambda r: r["mean"]),
            }
        )
    return sections


def _item_rates(rubric: Rubric, rows: list[StudentRow]) -> list[dict[str, Any]]:
    rates = []
    for rubric_item in rubric.items:
        if rubric_item.manual:
            continue
        items = [r.result.item(rubric_item.id) for r in rows if r.result and not r.result.fatal]
        items = [i for i in items if i is not None]
        passed = sum(1 for i in items if i.passed)
        rates.append(
            {
                "name": rubric_item.name,
                "points": rubric_item.points,
                "graded": len(items),
                "rate": passed / len(items) if items else 0.0,
                "mean": statistics.fmean([i.score or 0.0 for i in items]) if items else 0.0,
            }
        )
    return rates


def render(
    rubric: Rubric,
    rows: list[StudentRow],
    groups: list[Group],
    max_grade: float,
    meta: dict[str, Any],
    notes: list[str],
) -> str:
    grades = [float(r.grade.scaled(max_grade)) for r in rows if r.grade is not None]
    members = {m for g in groups for m in g.members}
    keyed = {r.student.key: r for r in rows}
    env = untrusted.jinja_env(jinja2.PackageLoader("autograder.batch", "templates"))
    return env.get_template("summary.html.j2").render(
        rubric=rubric,
        rows=rows,
        meta=meta,
        notes=notes,
        max_grade=max_grade,
        graded=len(grades),
        mean=statistics.fmean(grades) if grades else None,
        median=statistics.median(grades) if grades else None,
        score_plot=_histogram(grades, f"grade (out of {max_grade:g})", 20, (0, max_grade))
        if grades
        else None,
        items=_item_rates(rubric, rows),
        distributions=_distributions(rubric, rows),
        attention=[r for r in rows if r.reasons],
        groups=[
            {"label": GROUP_LABELS[g.kind], "evidence": g.evidence, "members": [keyed[m] for m in g.members]}
            for g in groups
            if all(m in keyed for m in g.members)
        ],
        flagged=members,
    )
