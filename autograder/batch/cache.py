"""The batch's memory: one JSON record per graded submission content.

A record is keyed by what decides a grade: the submission's content hash, the
rubric file, the grader's own code, the test data and the device. Writes are
atomic (temporary file, then rename), so a batch killed at any moment leaves
either a whole record or none, and a re-run grades only what is missing.
Two students who handed in byte-identical files share one record.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from .. import __version__
from ..report.write import write_atomic
from ..result import GradeResult, ItemResult
from ..rubric import Rubric

PACKAGE = Path(__file__).resolve().parent.parent
RECORD_VERSION = 1


def grader_fingerprint() -> str:
    """The grader's version and a digest of the code that decides grades.

    Versions are not bumped for every fix, so the code itself is hashed; the
    batch package (summaries, CSVs) does not change grades and is left out.
    """
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(PACKAGE.rglob("*")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "batch" or "__pycache__" in rel.parts or path.suffix not in (".py", ".j2"):
            continue
        digest.update(rel.as_posix().encode() + b"\0" + path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:16]}"


def data_fingerprint(data_root: Path, folder: str) -> str:
    """The test data's identity by name, size and modification time (cheap)."""
    digest = hashlib.sha256()
    base = Path(data_root) / folder
    for path in sorted(base.rglob("*")):
        if path.is_file():
            info = path.stat()
            digest.update(
                f"{path.relative_to(base).as_posix()}\0{info.st_size}\0{info.st_mtime_ns}\n".encode()
            )
    return digest.hexdigest()


def rubric_sha256(rubric: Rubric) -> str:
    return hashlib.sha256(Path(rubric.path).read_bytes()).hexdigest()


def cache_key(content: str, rubric: str, grader: str, data: str, device: str) -> str:
    parts = {"content": content, "rubric": rubric, "grader": grader, "data": data, "device": device}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def result_to_dict(result: GradeResult) -> dict[str, Any]:
    return dataclasses.asdict(result)


def result_from_dict(raw: dict[str, Any]) -> GradeResult:
    fields = {f.name for f in dataclasses.fields(GradeResult)}
    item_fields = {f.name for f in dataclasses.fields(ItemResult)}
    items = [ItemResult(**{k: v for k, v in i.items() if k in item_fields}) for i in raw["items"]]
    return GradeResult(**{**{k: v for k, v in raw.items() if k in fields}, "items": items})


class ResultCache:
    """Records on disk under ``folder``, one file per cache key."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            record = json.loads(self.path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("version") != RECORD_VERSION or "result" not in record:
            return None
        return record

    def has(self, key: str) -> bool:
        return self.get(key) is not None

    def put(self, key: str, record: dict[str, Any]) -> None:
        write_atomic(self.path(key), json.dumps({**record, "version": RECORD_VERSION, "key": key}))
