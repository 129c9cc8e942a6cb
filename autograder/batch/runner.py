"""The batch from start to finish: intake, grading (parallel, resumable), outputs.

Order matters for a TA's time: the TA's own files (``--manual``,
``--worksheet``) are checked before any grading starts, so a typo fails in a
second, not after an hour. Grading then only covers cache misses, and each
finished submission's folder is written as soon as its record arrives.

rich's progress bar is imported only when a terminal shows it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..data import dataset_spec, load_split
from ..grade import resolve_device
from ..report import write_all
from ..report.write import write_atomic
from ..rubric import Rubric
from ..untrusted import rich_text, terminal, text_block
from . import gradebook as gb
from . import summary
from .cache import (
    ResultCache,
    cache_key,
    data_fingerprint,
    grader_fingerprint,
    result_from_dict,
    rubric_sha256,
)
from .grades import FinalGrade, ManualScores, final_grade, load_manual
from .integrity import Fingerprints, find_groups
from .job import Entry, Settings
from .moodle import Student, content_hash, discover
from .pool import LocalPool, default_workers
from .slurm import SlurmOptions, SubmititPool

STATE = ".autograder"  # inside --out: staging, cache, job logs


@dataclass
class BatchConfig:
    path: Path
    out: Path
    rubric: Rubric
    data_root: Path
    device: str = "auto"
    workers: int | None = None
    threads: int | None = None
    memory_bytes: int | None = 8 << 30
    allow_unsandboxed: bool = False
    executor: str = "local"
    slurm: SlurmOptions = field(default_factory=SlurmOptions)
    teams: bool = False
    worksheet: Path | None = None
    manual: Path | None = None
    max_grade: float | None = None
    grade_item: str | None = None
    progress: bool = True


@dataclass
class BatchOutcome:
    students: list[Student]
    rows: list[summary.StudentRow]
    paths: dict[str, Path]
    graded_now: int
    from_cache: int
    warnings: list[str]
    notes: list[str]
    seconds: float

    @property
    def errors(self) -> list[summary.StudentRow]:
        return [r for r in self.rows if r.error]


def run_batch(config: BatchConfig) -> BatchOutcome:

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o700)  # every student's grade and code: never readable by a sandbox uid (tier B)
    state = out / STATE
    state.mkdir(exist_ok=True)
    download = discover(config.path, state / "staging", teams=config.teams)
    students = download.students
    sheet = gb.Worksheet.read(config.worksheet) if config.worksheet else None
    roster = gb.Roster.from_worksheet(sheet) if sheet else None
    manual = (
        load_manual(config.manual, config.rubric, students, roster.aliases(students) if roster else {})
        if config.manual
        else ManualScores()
    )
    device = resolve_device(config.device)
    workers = config.workers or default_workers(device)
    pool = _executor(config, state, workers)
    settings = Settings(
        rubric=config.rubric,
        data_root=Path(config.data_root).resolve(),
        cache_dir=state / "cache",
        device=device,
        allow_unsandboxed=config.allow_unsandboxed,
        threads=config.threads or _threads(workers, config),
        memory_bytes=config.memory_bytes,
    )
    fixed = (
        rubric_sha256(config.rubric),
        grader_fingerprint(),
        data_fingerprint(settings.data_root, dataset_spec(config.rubric.dataset).folder),
        device,
    )
    keys = {s.key: cache_key(content_hash(s.source), *fixed) for s in students}
    folders = _folders(students)
    cache = ResultCache(settings.cache_dir)
    records: dict[str, dict[str, Any]] = {}
    for key in set(keys.values()):
        if (record := cache.get(key)) is not None:
            records[key] = record
    from_cache = len(records)
    entries = _entries(students, keys, records)
    by_key: dict[str, list[Student]] = {}
    for s in students:
        by_key.setdefault(keys[s.key], []).append(s)
    _clear_stale(out / "students", set(folders.values()))
    _clear_stale(settings.cache_dir, set(), older_than=3600)
    for key, record in records.items():
        for s in by_key[key]:
            _write_student(out, folders[s.key], s, record)
    if entries:
        _warm_test_split(settings)
    done_students = sum(len(by_key[k]) for k in records)
    started = time.monotonic()
    with _Progress(len(students), done_students, config.progress, len(entries), from_cache) as progress:
        for record in pool.run(entries, settings):
            records[record["key"]] = record
            for s in by_key.get(record["key"], []):
                _write_student(out, folders[s.key], s, record)
                progress.advance(s, record)
    return _finish(
        config,
        out,
        students,
        folders,
        keys,
        records,
        manual,
        sheet,
        roster,
        download.notes,
        {
            "graded_now": len(entries),
            "from_cache": from_cache,
            "seconds": time.monotonic() - started,
            "device": device,
            "workers": workers,
        },
    )


def _warm_test_split(settings: Settings) -> None:
    """Decode the test split into the on-disk cache once, not in every worker at once."""

    try:
        load_split(settings.data_root, settings.rubric.dataset, train=False)
    except Exception:  # noqa: BLE001 - each submission's accuracy check reports the problem itself
        return


def _threads(workers: int, config: BatchConfig) -> int:
    if config.executor == "slurm":
        return config.slurm.cpus_per_job
    return max(1, len(os.sched_getaffinity(0)) // workers)


def _executor(config: BatchConfig, state: Path, workers: int) -> LocalPool | SubmititPool:
    if config.executor == "local":
        return LocalPool(workers)
    cluster = "slurm" if config.executor == "slurm" else "local"
    return SubmititPool(state / "jobs", cluster, config.slurm, workers)


def _entries(students: list[Student], keys: dict[str, str], records: dict[str, Any]) -> list[Entry]:
    """One entry per distinct content not yet graded (identical copies are graded once)."""
    entries: dict[str, Entry] = {}
    for s in students:
        key = keys[s.key]
        if key not in records and key not in entries:
            entries[key] = Entry(key, s.source, f"{s.name} ({s.key})")
    return list(entries.values())


def _folders(students: list[Student]) -> dict[str, str]:
    taken: dict[str, str] = {}
    folders = {}
    for s in students:
        name = s.folder
        if name.casefold() in taken:
            name = f"{name}_{s.key}"
        taken[name.casefold()] = s.key
        folders[s.key] = name
    return folders


def _clear_stale(root: Path, keep: set[str], older_than: float = 0.0) -> None:
    """Folders from an earlier run whose student is no longer in the download, and
    half-written temporary files a killed run left behind (``older_than`` seconds:
    a cluster job of that run may still be writing its own)."""
    if not root.is_dir():
        return
    now = time.time()
    for folder in root.iterdir():
        if folder.name not in keep and (folder / "student.json").is_file():
            shutil.rmtree(folder)
        elif folder.is_dir():
            for leftover in folder.glob(".*.*"):
                if now - leftover.stat().st_mtime >= older_than:
                    leftover.unlink(missing_ok=True)


def _write_student(out: Path, folder: str, student: Student, record: dict[str, Any]) -> None:
    target = out / "students" / folder
    info = {
        "key": student.key,
        "name": student.name,
        "kind": student.kind,
        "source": student.source.name,
        "cache_key": record["key"],
    }
    if "result" in record and _up_to_date(target, record["key"]):
        return  # written by an earlier run from this very record
    if "result" in record:
        write_all(result_from_dict(record["result"]), target)
        (target / "error.txt").unlink(missing_ok=True)
    else:
        failure = text_block(record["error"])  # a TA may cat it in a terminal
        write_atomic(target / "error.txt", f"The grader failed on this submission: {failure}\n")
        info["error"] = record["error"]
    write_atomic(target / "student.json", json.dumps(info, indent=2, ensure_ascii=False))


def _up_to_date(target: Path, key: str) -> bool:
    try:
        written = json.loads((target / "student.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    files = ("results.json", "report.html", "report.md")
    return written.get("cache_key") == key and all((target / f).is_file() for f in files)


def _finish(
    config: BatchConfig,
    out: Path,
    students: list[Student],
    folders: dict[str, str],
    keys: dict[str, str],
    records: dict[str, dict[str, Any]],
    manual: ManualScores,
    sheet: gb.Worksheet | None,
    roster: gb.Roster | None,
    notes: list[str],
    meta: dict[str, Any],
) -> BatchOutcome:
    rubric = config.rubric
    max_grade = config.max_grade or (rubric.autograded_points + rubric.manual_points)
    warnings = list(manual.warnings)
    rows, grades, prints = [], {}, {}
    for s in students:
        record = records.get(keys[s.key], {"error": "not graded"})
        link = quote(f"students/{folders[s.key]}/report.html")
        if "result" in record:
            result = result_from_dict(record["result"])
            grades[s.key] = final_grade(result, rubric, manual, s.key)
            prints[s.key] = Fingerprints.from_dict(record.get("fingerprints"))
            rows.append(summary.StudentRow(s, link, result, grades[s.key]))
        else:
            rows.append(
                summary.StudentRow(
                    s, quote(f"students/{folders[s.key]}/error.txt"), None, None, record["error"]
                )
            )
    groups = find_groups(prints)
    for row in rows:
        row.reasons = summary.reasons(row, groups)
        if row.grade is not None:
            _write_grade(out / "students" / folders[row.student.key], row.grade, max_grade)
    paths: dict[str, Path] = {}
    book = gb.gradebook(students, grades, roster, max_grade)
    if book.rows:
        paths["gradebook"] = out / "gradebook.csv"
        gb.write_gradebook(paths["gradebook"], book, config.grade_item or rubric.title)
    else:
        warnings.append(
            "gradebook.csv not written: no student has an email or ID number. Moodle's gradebook import "
            "matches users by those; pass --worksheet (the assignment's downloaded grading worksheet) "
            "or upload the filled worksheet instead"
        )
    warnings += [f"not in gradebook.csv: {s}" for s in book.skipped]
    if sheet is not None:
        backup = out / STATE / f"{sheet.path.name}.as-downloaded"
        if not backup.exists():  # the first run's copy is the one Moodle gave
            shutil.copyfile(sheet.path, backup)
        filled = gb.fill_worksheet(sheet, students, grades)
        gb.save_worksheet(sheet)
        paths["worksheet"] = sheet.path
        warnings += [f"worksheet: {s}" for s in filled.skipped]
        warnings += [f"worksheet: no row for {k}; its grade is only in gradebook.csv" for k in filled.missing]
    ungraded = [s.key for s in students if s.key in grades and not grades[s.key].complete]
    if ungraded and rubric.manual_points:
        warnings.append(
            f"{len(ungraded)} of {len(grades)} students have no manual score yet; their grade counts the "
            f"{rubric.manual_points:g} manual points as 0 (pass --manual to merge the TA's scores)"
        )
    tiers = sorted({(r.result.provenance.get("sandbox") or {}).get("tier") or "?" for r in rows if r.result})
    html_meta = {
        **meta,
        "errors": sum(1 for r in rows if r.error),
        "grader": grader_fingerprint(),
        "tiers": tiers,
        "manual_points": rubric.manual_points,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    paths["summary"] = out / "summary.html"
    write_atomic(
        paths["summary"], summary.render(rubric, rows, groups, max_grade, html_meta, notes + warnings)
    )
    return BatchOutcome(
        students, rows, paths, meta["graded_now"], meta["from_cache"], warnings, notes, meta["seconds"]
    )


def _write_grade(folder: Path, grade: FinalGrade, max_grade: float) -> None:
    path = folder / "student.json"
    info = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    info["grade"] = {
        "autograded": grade.auto,
        "autograded_max": grade.auto_max,
        "manual": grade.manual,
        "points": grade.points,
        "max_points": grade.max_points,
        "scaled": str(grade.scaled(max_grade)),
        "max_grade": max_grade,
        "feedback": grade.feedback,
    }
    write_atomic(path, json.dumps(info, indent=2, ensure_ascii=False))


class _Progress:
    """A rich progress bar with ETA on a terminal; one line per submission otherwise."""

    def __init__(self, total: int, done: int, enabled: bool, to_grade: int, from_cache: int) -> None:
        self.total, self.done, self.enabled = total, done, enabled
        self.to_grade, self.from_cache = to_grade, from_cache  # distinct submissions, as the summary counts
        self.bar: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("[bold]grading"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.description}"),
                console=Console(stderr=True, emoji=False),
            )
            self.bar.start()
            self.task = self.bar.add_task("", total=self.total, completed=self.done)
        elif self.enabled:
            why = [f"{self.from_cache} from the cache"]
            if copies := self.total - self.to_grade - self.from_cache:
                why.append(f"{copies} identical to another, graded once")
            print(
                f"grading {self.to_grade} of {self.total} submissions ({'; '.join(why)})",
                file=sys.stderr,
                flush=True,
            )
        return self

    def advance(self, student: Student, record: dict[str, Any]) -> None:
        self.done += 1
        if "result" in record:
            r = record["result"]
            score = sum(i["score"] or 0 for i in r["items"])
            what = f"{score:g}/{sum(i['max_points'] for i in r['items'] if i['score'] is not None):g}"
        else:
            what = f"ERROR {record['error']}"
        if self.bar is not None:
            self.bar.update(self.task, advance=1, description=rich_text(f"{student.name}: {what}"))
        elif self.enabled:
            print(
                terminal(f"[{self.done}/{self.total}] {student.name} ({student.key}): {what}"),
                file=sys.stderr,
                flush=True,
            )

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
