"""What the HTML and Markdown reports show, computed once from a GradeResult.

Items are grouped by the prefix of their id (``task1.spec`` -> ``task1``) into
sections. What a section shows besides the score table comes from its items'
kinds: each kind's ``report`` hook (``checks/registry.py``) turns an item's
result into parts, plain data that a partial template renders
(``templates/parts/<view>.{html,md}.j2``), from what the check measured and
decided; nothing here recomputes a verdict. A part may belong to another
section (a notebook's training log goes with its task) or to the Notebook
section at the end. This module draws the parts' figures (``plots``) and
sorts each section's parts by their ``order``. Both templates render the same
view, so they carry the same content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..checks.registry import FLAG, KINDS, RUN_SECTION, Part, Place
from ..result import GradeResult, ItemResult
from . import plots

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


@dataclass
class Section:
    key: str
    title: str
    items: list[ItemResult] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)


@dataclass
class Report:
    result: GradeResult
    sections: list[Section]
    run: Section  # the Notebook section after the others (RUN_SECTION)
    flags: list[str]
    artifacts: list[str]


def artifact_name(name: str) -> str:
    """A file name from the submission, safe to write beside the report and to link."""
    cleaned = SAFE_NAME.sub("_", Path(name).name).lstrip(".")
    return cleaned[:120] or "artifact"


def group_key(item_id: str) -> str:
    return item_id.split(".")[0] if "." in item_id else ""


def _title(key: str, items: list[ItemResult]) -> str:
    heads = {i.name.split(":")[0].strip() for i in items if ":" in i.name}
    return heads.pop() if len(heads) == 1 else key


def _draw(part: Part) -> Part:
    part.png = {name: getattr(plots, function)(*args) for name, (function, args) in part.figures.items()}
    return part


def build(result: GradeResult) -> Report:
    groups: dict[str, list[ItemResult]] = {}
    for item in result.items:
        groups.setdefault(group_key(item.id), []).append(item)
    sections = {
        key: Section(key, _title(key, items) if key else "Submission", items) for key, items in groups.items()
    }
    run = Section(RUN_SECTION, "Notebook")
    titles = {key: section.title for key, section in sections.items()}
    for item in result.items:
        kind = KINDS.get(item.kind)
        if kind is None or kind.report is None:
            continue
        key = group_key(item.id)
        for part in kind.report(item, Place(groups[key], titles)):
            where = key if part.section is None else part.section
            target = (
                run if where == RUN_SECTION else sections.setdefault(where, Section(where, where.title()))
            )
            target.parts.append(_draw(part))
    for section in [*sections.values(), run]:
        section.parts.sort(key=lambda p: p.order)
    flags = [str(i.data[FLAG]) for i in result.items if i.data.get(FLAG)]
    artifacts = sorted(artifact_name(name) for i in result.items for name in (i.data.get("artifacts") or {}))
    return Report(result, list(sections.values()), run, flags, artifacts)
