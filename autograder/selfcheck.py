"""``autograder check``: a student's own run of the grader, before the deadline.

It grades the student's working folder with the same rubric, the same check
code and the same sandbox as the real grader, so every item that does not
need the hidden test split gets the verdict the grader will give. Items that
do need it (accuracy tiers, claims compared with the measured accuracy) are
shown as graded later; in their place the student's checkpoint is measured
on a validation split carved from the training data: the last
``VAL_SIZE`` training images, the split the templates hold out.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from .checks import KINDS
from .data import DataError, dataset_spec, load_split
from .data.formats import write_cifar10, write_idx
from .errors import UsageError
from .grade import grade
from .result import GradeResult, ItemResult
from .rubric import Rubric, RubricError, load
from .sandbox import Tier, detect_tier
from .untrusted import rich_text

RUBRIC_FILE = ".rubric"
VAL_SIZE = 5000  # the templates' VALIDATION split: the last 5,000 training images
VAL_IMAGES = 500  # measured by default (ResNet-18 on a laptop CPU: about 10 s)
SKIPPED_FOLDERS = {"venv", "__pycache__", "wandb", "runs"}  # and every hidden folder (.git, .venv, ...)
COLAB_SAMPLES = "anscombe.json"  # in the sample_data folder Colab puts beside a notebook


class SelfCheckError(UsageError):
    """The check cannot run as asked; the message says what to do."""


@dataclass
class CheckRow:
    number: str
    id: str
    name: str
    verdict: str  # "pass", "fail", "TA", "later", "skipped"
    points: str
    why: str


@dataclass
class SelfCheck:
    rubric: Rubric
    folder: Path
    rows: list[CheckRow]
    result: GradeResult | None
    validation: dict[str, dict] = field(default_factory=dict)  # item id -> accuracy facts
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[CheckRow]:
        return [r for r in self.rows if r.verdict == "fail"]


def find_rubric(folder: Path, given: str | None) -> Rubric:
    """``--rubric``, else the ``.rubric`` file the template puts in the folder (or a parent)."""
    if given:
        return load(given)
    for place in [folder, *folder.parents][:4]:
        marker = place / RUBRIC_FILE
        if marker.is_file():
            return load(marker.read_text(encoding="utf-8").strip())
    raise SelfCheckError(
        f"which lab is this? No {RUBRIC_FILE} file in {folder} (the student template has one); "
        "pass --rubric ID, e.g. --rubric lab4-cnn-fashion-mnist"
    )


def stage(folder: Path, target: Path, exclude: list[Path]) -> list[str]:
    """Copy what the student would hand in: no data root, caches, virtual environments,
    hidden folders (Colab's ``.config``), mounted drives (Colab's ``/content/drive``: the
    whole Google Drive) or Colab's ``sample_data``; what was left out, and why."""
    skipped: list[str] = []
    excluded = [p.resolve() for p in exclude]
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        kept = []
        for name in sorted(dirs):
            path = here / name
            rel = path.relative_to(folder).as_posix()
            resolved = path.resolve()
            if name in SKIPPED_FOLDERS or name.startswith("."):
                continue
            if os.path.ismount(path):
                skipped.append(f"{rel}/ (a mounted drive)")
            elif name == "sample_data" and (path / COLAB_SAMPLES).is_file():
                skipped.append(f"{rel}/ (Colab's sample data)")
            elif resolved in excluded:
                skipped.append(f"{rel}/ (the dataset)")
            elif not any(e in resolved.parents for e in excluded):
                kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            path = here / name
            rel = path.relative_to(folder)
            if rel.as_posix() != RUBRIC_FILE and path.is_file() and not path.is_symlink():
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / rel)
    return skipped


def notebook_hint(staged: Path, rubric: Rubric) -> str | None:
    """On Colab or Kaggle, where the notebook is not in the working folder, how to put it
    there; None elsewhere, or when the folder has one or the rubric reads none."""
    reads = any(i.kind.startswith("notebook") or i.kind == "claims" for i in rubric.items)
    if not reads or any(p.suffix.lower() == ".ipynb" for p in staged.rglob("*")):
        return None
    if os.environ.get("COLAB_RELEASE_TAG"):
        return (
            "no notebook in this folder: Colab keeps it in your Google Drive; put a copy here "
            "(File → Download → Download .ipynb, then upload it, or !cp '/content/drive/MyDrive/Colab "
            "Notebooks/NAME.ipynb' FOLDER/ with the drive mounted) and check again"
        )
    if os.environ.get("KAGGLE_KERNEL_RUN_TYPE"):
        return (
            "no notebook in this folder: on Kaggle, download it (File → Download notebook), "
            "upload it beside your files and check again"
        )
    return None


def validation_root(data_root: Path, dataset: str, target: Path, images: int) -> tuple[Path, str]:
    """A data root whose *test* split is (a sample of) the student's validation split."""
    split = load_split(data_root, dataset, train=True)
    size = min(VAL_SIZE, len(split.labels) // 10)
    start = len(split.labels) - size
    picked = np.unique(np.linspace(start, len(split.labels) - 1, min(images, size)).astype(int))
    x, y = split.images[picked], split.labels[picked]
    if dataset == "cifar10":
        write_cifar10(target, x, y, train=False)
    else:
        write_idx(target, dataset, x[:, 0], y, train=False)
    what = (
        f"{len(picked):,} of the last {size:,} training images in {data_root / dataset_spec(dataset).folder}"
    )
    return target, what


def run(
    folder: Path,
    rubric: Rubric,
    data_root: Path | None,
    images: int = VAL_IMAGES,
    threads: int | None = None,
) -> SelfCheck:
    """Grade ``folder`` as the grader would, with the validation split in place of the test split.

    The sandbox is the grader's where bubblewrap works; elsewhere (Colab, a laptop) the
    student's own code runs as a plain process, and a note says so.
    """

    started = time.monotonic()
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise SelfCheckError(f"{folder} is not a folder")
    notes: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="autograder-check-"))
    try:
        staged = work / folder.name
        staged.mkdir()
        skipped = stage(folder, staged, [data_root] if data_root else [])
        if skipped:
            notes.append(f"left out (not submission files): {', '.join(skipped)}")
        hint = notebook_hint(staged, rubric)
        if hint:
            notes.append(hint)
        val_root, val_what = None, ""
        if data_root is not None:
            try:
                val_root, val_what = validation_root(data_root, rubric.dataset, work / "validation", images)
            except DataError as exc:
                notes.append(f"no validation accuracy: {exc}")
        else:
            notes.append(
                "no validation accuracy: no training data found; pass --data-root with the folder "
                f"your notebook downloads to (it holds {dataset_spec(rubric.dataset).folder})"
            )
        quick = dataclasses.replace(rubric, items=[i for i in rubric.items if not KINDS[i.kind].slow])
        tier = detect_tier(own_code=True)
        if tier.tier is Tier.C:
            notes.append(
                f"no sandbox here ({tier.reason.split(';')[0]}): your code ran as a plain process, "
                "which is fine for checking your own work; the grader runs it sandboxed"
            )
        result = grade(staged, quick, val_root, tier=tier, threads=threads)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # what intake skipped or could not open, as the grader's results say it
    report = SelfCheck(rubric, folder, [], result, notes=[*result.notes, *notes])
    by_id = {i.id: i for i in result.items}
    for item in rubric.items:
        got = by_id.get(item.id)
        if got is None:
            report.rows.append(
                CheckRow(
                    "", item.id, item.name, "skipped", f"{item.points:g}", "takes minutes: the grader runs it"
                )
            )
            continue
        report.rows.append(_row(got, val_root is not None, val_what, report))
    report.seconds = time.monotonic() - started
    return report


def _row(got: ItemResult, measured: bool, val_what: str, report: SelfCheck) -> CheckRow:
    """An item as the grader will decide it; a hidden kind's item as graded later, unless
    its kind's ``selfcheck`` hook shows it otherwise (what it measured on the validation
    split, or a failure the test split will not change)."""
    if got.manual:
        return CheckRow(got.number, got.id, got.name, "TA", f"{got.max_points:g}", got.message)
    kind = KINDS[got.kind]
    if not kind.hidden:
        verdict = "pass" if got.passed else "fail"
        points = f"{got.score or 0:g}/{got.max_points:g}"
        return CheckRow(got.number, got.id, got.name, verdict, points, got.message)
    why = "graded after submission on the hidden test split"
    shown = kind.selfcheck(got, measured) if kind.selfcheck else None
    if shown is not None and shown.verdict == "fail":
        return CheckRow(got.number, got.id, got.name, "fail", f"0/{got.max_points:g}", shown.why)
    if shown is not None:
        if shown.validation is not None:
            report.validation[got.id] = {**shown.validation, "split": val_what}
        why = f"{shown.why}; {why}"
    return CheckRow(got.number, got.id, got.name, "later", f"–/{got.max_points:g}", why)


# --- command line -------------------------------------------------------------
STYLE = {"pass": "green", "fail": "bold red", "TA": "cyan", "later": "yellow", "skipped": "dim"}


def render(report: SelfCheck, console) -> None:

    table = Table(title=rich_text(f"{report.rubric.title} — self-check of {report.folder}"), show_lines=False)
    for column, justify in (("#", "right"), ("check", "left"), ("result", "left"), ("points", "right")):
        table.add_column(column, justify=justify, no_wrap=column != "check")
    table.add_column("why", overflow="fold")
    for row in report.rows:
        table.add_row(
            rich_text(row.number),
            rich_text(row.name),
            f"[{STYLE[row.verdict]}]{row.verdict}[/]",
            rich_text(row.points),
            rich_text(row.why),
        )
    console.print(table)
    for note in report.notes:
        console.print(f"note: {rich_text(note)}")
    for item_id, facts in report.validation.items():
        console.print(rich_text(f"validation ({item_id}): {facts['accuracy']:.2%} on {facts['split']}"))
    passed = sum(r.verdict == "pass" for r in report.rows)
    checked = sum(r.verdict in ("pass", "fail") for r in report.rows)
    tier = (report.result.provenance.get("sandbox") or {}).get("tier") if report.result else None
    same = "checks as the grader" if tier == "C" else f"checks and sandbox as the grader (tier {tier})"
    console.print(
        f"{passed} of {checked} checks pass"
        + (f"; fix the {len(report.failed)} marked fail before you submit" if report.failed else "")
        + f". Same {same}; {report.seconds:.0f} s."
    )


def add_arguments(parser) -> None:
    parser.add_argument("path", type=Path, nargs="?", default=Path("."), help="your lab folder (default: .)")
    parser.add_argument("--rubric", default=None, help=f"rubric id (default: from the {RUBRIC_FILE} file)")
    parser.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="where your notebook keeps the dataset (default: $AUTOGRADER_DATA, ./data, ../data)",
    )
    parser.add_argument(
        "--val-images",
        type=int,
        default=VAL_IMAGES,
        help=f"validation images to measure (default {VAL_IMAGES})",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all usable)")


def default_data_root(folder: Path, given: Path | None, dataset: str) -> Path | None:
    if given is not None:
        return given
    env = os.environ.get("AUTOGRADER_DATA")
    candidates = ([Path(env)] if env else []) + [folder / "data", folder.parent / "data"]
    sub = dataset_spec(dataset).folder
    return next((c for c in candidates if (c / sub).is_dir()), None)


def check(
    path: str | Path = ".",
    rubric: str | None = None,
    data_root: str | Path | None = None,
    val_images: int = VAL_IMAGES,
    threads: int | None = None,
) -> SelfCheck:
    """``autograder check`` from Python (a notebook cell): prints the table, returns the report.

    ``autograder.check("my_lab")``; ``report.failed`` lists the checks that fail.
    """

    folder = Path(path).resolve()
    try:
        found = find_rubric(folder, rubric)
    except RubricError as exc:
        raise SelfCheckError(str(exc)) from None
    root = default_data_root(folder, Path(data_root) if data_root else None, found.dataset)
    report = run(folder, found, root, images=val_images, threads=threads)
    render(report, Console(emoji=False))
    return report


def command(args) -> int:
    report = check(args.path, args.rubric, args.data_root, args.val_images, args.threads)
    return 1 if report.failed else 0
