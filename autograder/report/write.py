"""Writing every output of one graded submission, atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import jinja2

from .. import untrusted
from ..result import GradeResult
from . import views
from .gradescope import clip, results_json

MD_LIMIT = 90_000  # Gradescope truncates output fields at 100,000 characters
DETAIL_LIMITS = (3000, 1200, 400)  # characters of each item's details in report.md, tried in turn


def environment(template: str) -> jinja2.Environment:
    """Every value a template shows is escaped for its form (``untrusted.jinja_env``)."""
    loader = jinja2.PackageLoader("autograder.report", "templates")
    return untrusted.jinja_env(loader, markdown=template.endswith(".md.j2"), clip=clip)


def write_atomic(path: Path, text: str) -> None:
    """``text`` as UTF-8, replacing what is not (a name's undecodable bytes, which Python keeps
    as lone surrogates, as in ``student.json`` of a Moodle folder named in Latin-1)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(untrusted.utf8(text))
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def render(result: GradeResult, template: str, view: views.Report | None = None, **extra: Any) -> str:
    p = result.provenance
    tier = (p.get("sandbox") or {}).get("tier")
    view = view or views.build(result)
    return environment(template).get_template(template).render(r=result, p=p, tier=tier, v=view, **extra)


def markdown(result: GradeResult, view: views.Report | None = None) -> str:
    """report.md within Gradescope's output limit: item details shrink before anything is cut."""
    view = view or views.build(result)
    text = ""
    for detail_limit in DETAIL_LIMITS:
        text = render(result, "report.md.j2", view, detail_limit=detail_limit)
        if len(text) <= MD_LIMIT:
            return text
    return clip(text, MD_LIMIT)


def write_all(result: GradeResult, out: Path) -> dict[str, Path]:
    out = Path(out)
    view = views.build(result)
    paths = {"results": out / "results.json", "markdown": out / "report.md", "html": out / "report.html"}
    for item in result.items:
        for name, text in (item.data.get("artifacts") or {}).items():
            target = out / views.artifact_name(name)
            write_atomic(target, text)
            paths[f"artifact:{target.name}"] = target
    write_atomic(paths["results"], json.dumps(results_json(result), indent=2, allow_nan=False))
    write_atomic(paths["markdown"], markdown(result, view))
    write_atomic(paths["html"], render(result, "report.html.j2", view))
    return paths
