"""Writing every output of one graded submission, atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import jinja2

from ..result import GradeResult
from .gradescope import clip, results_json

MD_LIMIT = 90_000  # Gradescope truncates output fields at 100,000 characters


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("autograder.report", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=True,
    )
    env.filters["clip"] = clip
    env.filters["mdcell"] = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
    return env


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def render(result: GradeResult, template: str, **extra: Any) -> str:
    p = result.provenance
    tier = (p.get("sandbox") or {}).get("tier")
    return environment().get_template(template).render(r=result, p=p, tier=tier, **extra)


def markdown(result: GradeResult) -> str:
    return clip(render(result, "report.md.j2"), MD_LIMIT)


def write_all(result: GradeResult, out: Path) -> dict[str, Path]:
    out = Path(out)
    paths = {"results": out / "results.json", "markdown": out / "report.md", "html": out / "report.html"}
    write_atomic(paths["results"], json.dumps(results_json(result), indent=2, allow_nan=False))
    write_atomic(paths["markdown"], markdown(result))
    write_atomic(paths["html"], render(result, "report.html.j2"))
    return paths
