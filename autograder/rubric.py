"""Loading a rubric file (TOML) into typed objects, rejecting mistakes with
the file, line and reason. An instructor adds a lab by writing a rubric.

The check registry is imported inside the loader: every check module imports this one.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .data.registry import DATASETS
from .errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (Gradescope's default image): the same parser, as a package
    import tomli as tomllib

RUBRICS_ENV = "AUTOGRADER_RUBRICS"
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
ITEM_KEYS = {"id", "kind", "name", "points", "task", "visibility", "timeout", "requires"}
# Seconds for a whole submission: Gradescope's default limit is 10 minutes for run_autograder,
# start-up and writing the results included; 480 s leaves two minutes of that for them.
DEFAULT_TIME_BUDGET = 480.0


class RubricError(UsageError):
    """A rubric that cannot be used; the message names file, line and reason."""


class SelfReportedWarning(UserWarning):
    """Points hang on a verdict the student's own process reports (see docs/security.md)."""


@dataclass(frozen=True)
class AccuracyTier:
    threshold: float
    points: float
    inclusive: bool  # ``at_least`` (>=) rather than ``above`` (>)

    def reached(self, value: float) -> bool:
        return value >= self.threshold if self.inclusive else value > self.threshold

    def label(self) -> str:
        return f"{'≥' if self.inclusive else '>'}{self.threshold:.0%}"


@dataclass
class Task:
    """One model the lab asks for, and where to find its code and weights."""

    id: str
    model: str  # class (or factory function) name
    sources: list[str]  # file patterns to search for the definition, in order
    weights: list[str]  # file patterns for its checkpoint, in order
    num_classes: int
    input_shape: list[int]
    resize: int | None = None
    title: str = ""
    # Input sizes the lab accepts (e.g. AlexNet on 28x28 or up-sampled to 224): the
    # first one the student's model maps to (N, num_classes) is used (ctx.models.task).
    input_sizes: list[int] = field(default_factory=list)
    # Other names accepted for the model (with a note), and whether a case/underscore
    # variant of ``model`` (``Resnet18`` for ``ResNet18``) is accepted: "similar" or "exact".
    model_aliases: list[str] = field(default_factory=list)
    model_match: str = "similar"
    size_note: str = ""  # set by ctx.models.other_size when a layer stack is judged at another size


@dataclass
class Item:
    id: str
    kind: str
    name: str
    points: float
    visibility: str
    timeout: float
    task: str | None = None
    requires: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    line: int = 0

    @property
    def manual(self) -> bool:
        return self.kind == "manual"


@dataclass
class Rubric:
    id: str
    title: str
    dataset: str
    tasks: dict[str, Task]
    items: list[Item]
    path: Path
    normalize: dict[str, list[float]] | None = None
    leaderboard: bool = False
    eval_batch_size: int = 500
    import_timeout: float = 120.0  # seconds to import a student file and build its model
    time_budget: float = DEFAULT_TIME_BUDGET  # seconds for the whole submission

    @property
    def autograded_points(self) -> float:
        return sum(i.points for i in self.items if not i.manual)

    @property
    def manual_points(self) -> float:
        return sum(i.points for i in self.items if i.manual)

    def item(self, item_id: str) -> Item:
        return next(i for i in self.items if i.id == item_id)


def rubrics_dir() -> Path:
    env = os.environ.get(RUBRICS_ENV)
    return Path(env) if env else Path(__file__).resolve().parent.parent / "rubrics"


def available() -> list[str]:
    return sorted(p.stem for p in rubrics_dir().glob("*.toml"))


def resolve(id_or_file: str) -> Path:
    path = Path(id_or_file)
    if path.suffix == ".toml" and path.is_file():
        return path
    candidate = rubrics_dir() / f"{id_or_file}.toml"
    if candidate.is_file():
        return candidate
    raise RubricError(
        f"unknown rubric {id_or_file!r}: not a .toml file and not one of "
        f"{', '.join(available()) or '(none found in ' + str(rubrics_dir()) + ')'}"
    )


def load(id_or_file: str) -> Rubric:
    path = resolve(id_or_file)
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RubricError(f"{path}: {exc}") from None
    return _Builder(path, text).build(raw)


class _Builder:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def fail(self, line: int, reason: str) -> RubricError:
        return RubricError(f"{self.path}:{line}: {reason}")

    def line_of(self, pattern: str, occurrence: int = 0) -> int:
        hits = [n for n, text in enumerate(self.lines, 1) if re.search(pattern, text)]
        return hits[occurrence] if len(hits) > occurrence else 1

    def build(self, raw: dict[str, Any]) -> Rubric:
        for key in ("id", "title", "dataset"):
            if not isinstance(raw.get(key), str):
                raise self.fail(1, f"missing top-level string '{key}'")
        if raw["dataset"] not in DATASETS:
            raise self.fail(
                self.line_of(r"^dataset"), f"unknown dataset {raw['dataset']!r}; known: {', '.join(DATASETS)}"
            )
        spec = DATASETS[raw["dataset"]]
        tasks = {tid: self.task(tid, body, spec) for tid, body in raw.get("tasks", {}).items()}
        raw_items = raw.get("items")
        if not isinstance(raw_items, list) or not raw_items:
            raise self.fail(1, "no [[items]]")
        items = [self.item(n, body, tasks) for n, body in enumerate(raw_items)]
        ids = [i.id for i in items]
        for item in items:
            if ids.count(item.id) > 1:
                raise self.fail(item.line, f"item id {item.id!r} is used twice")
            for req in item.requires:
                if req not in ids or ids.index(req) >= ids.index(item.id):
                    raise self.fail(item.line, f"{item.id} requires {req!r}, which is not an earlier item")
        self.warn_self_reported(items)
        normalize = raw.get("normalize")
        if normalize is not None and not (isinstance(normalize, dict) and {"mean", "std"} <= set(normalize)):
            raise self.fail(self.line_of(r"^\[normalize\]|^normalize"), "normalize needs 'mean' and 'std'")
        return Rubric(
            id=raw["id"],
            title=raw["title"],
            dataset=raw["dataset"],
            tasks=tasks,
            items=items,
            path=self.path,
            normalize=normalize,
            leaderboard=bool(raw.get("leaderboard", False)),
            eval_batch_size=int(raw.get("eval_batch_size", 500)),
            import_timeout=float(raw.get("import_timeout", 120)),
            time_budget=self.seconds(raw, "time_budget", DEFAULT_TIME_BUDGET),
        )

    def warn_self_reported(self, items: list[Item]) -> None:
        from .checks import registry  # the kinds register when checks is imported (a cycle otherwise)

        paying = {r for i in items if i.points > 0 for r in i.requires}
        gating = [
            i.id for i in items if registry.KINDS[i.kind].self_reported and (i.points > 0 or i.id in paying)
        ]
        if gating:
            warnings.warn(
                SelfReportedWarning(
                    f"{self.path.name}: {', '.join(gating)} carry or gate points on what the student's "
                    "own process reports about its model; import-time code can forge that "
                    "(docs/security.md, 'What stays forgeable')"
                ),
                stacklevel=4,
            )

    def seconds(self, raw: dict[str, Any], key: str, default: float) -> float:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise self.fail(self.line_of(rf"^{key}\b"), f"{key} must be a positive number of seconds")
        return float(value)

    def task(self, tid: str, body: dict[str, Any], spec) -> Task:
        line = self.line_of(rf"^\[tasks\.{re.escape(tid)}\]")
        if not isinstance(body.get("model"), str):
            raise self.fail(line, f'task {tid} needs model = "ClassName"')

        def strings(key: str, default: list[str], what: str = "file patterns") -> list[str]:
            value = body.get(key, default)
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise self.fail(line, f"task {tid}: '{key}' must be a list of {what}")
            return value

        return Task(
            id=tid,
            model=body["model"],
            sources=strings("sources", ["*.py", "*.ipynb"]),
            weights=strings("weights", []),
            num_classes=int(body.get("num_classes", 10)),
            input_shape=list(body.get("input_shape", spec.input_shape)),
            resize=body.get("resize"),
            title=str(body.get("title", tid)),
            input_sizes=self.sizes(tid, body.get("input_sizes", []), line),
            model_aliases=strings("model_aliases", [], "class or function names"),
            model_match=self.choice(tid, "model_match", body.get("model_match", "similar"), line),
        )

    def choice(self, tid: str, key: str, value: object, line: int) -> str:
        if value not in ("similar", "exact"):
            raise self.fail(line, f'task {tid}: {key} must be "similar" or "exact"')
        return str(value)

    def sizes(self, tid: str, value: object, line: int) -> list[int]:
        if not (isinstance(value, list) and all(isinstance(v, int) and v > 0 for v in value)):
            raise self.fail(line, f"task {tid}: input_sizes must be a list of image sizes, e.g. [28, 224]")
        return value

    def item(self, index: int, body: dict[str, Any], tasks: dict[str, Task]) -> Item:
        from .checks import registry

        line = (
            self.line_of(rf"^\s*id\s*=\s*\"{re.escape(str(body.get('id', '')))}\"")
            if "id" in body
            else self.line_of(r"^\[\[items\]\]", index)
        )
        for key in ("id", "kind", "name"):
            if not isinstance(body.get(key), str):
                raise self.fail(line, f"item {index + 1} is missing the string field '{key}'")
        kind = body["kind"]
        if kind not in registry.KINDS:
            raise self.fail(
                line,
                f"item {body['id']}: unknown kind {kind!r}; known kinds: {', '.join(sorted(registry.KINDS))}",
            )
        points = body.get("points", 0)
        if not isinstance(points, (int, float)) or points < 0:
            raise self.fail(line, f"item {body['id']}: points must be a number >= 0")
        visibility = body.get("visibility", registry.KINDS[kind].visibility)
        if visibility not in VISIBILITIES:
            raise self.fail(line, f"item {body['id']}: visibility must be one of {', '.join(VISIBILITIES)}")
        task = body.get("task")
        if task is not None and task not in tasks:
            raise self.fail(line, f"item {body['id']}: unknown task {task!r}")
        options = {k: v for k, v in body.items() if k not in ITEM_KEYS}
        check = registry.KINDS[kind]
        if check.needs_task and task is None:
            raise self.fail(line, f'item {body["id"]}: kind {kind} needs task = "..."')
        try:
            options = check.validate(options)
        except ValueError as exc:
            raise self.fail(line, f"item {body['id']}: {exc}") from None
        if check.points is not None:
            try:
                check.points(options, float(points))
            except ValueError as exc:
                raise self.fail(line, f"item {body['id']}: {exc}") from None
        timeout = float(body.get("timeout", check.timeout))
        if check.least_timeout is not None:
            timeout = max(timeout, check.least_timeout(options))
        requires = body.get("requires", [])
        if not isinstance(requires, list):
            raise self.fail(line, f"item {body['id']}: requires must be a list of item ids")
        return Item(
            id=body["id"],
            kind=kind,
            name=body["name"],
            points=float(points),
            visibility=visibility,
            timeout=timeout,
            task=task,
            requires=requires,
            options=options,
            line=line,
        )


def tier_points(options: dict[str, Any], points: float) -> None:
    """The ``points`` hook of a kind scored by tiers: its best tier gives the item's points."""
    top = max(t.points for t in options["tiers"])
    if top != points:
        raise ValueError(f"the best tier gives {top:g} points but the item is worth {points:g}")


def parse_tiers(raw: object) -> list[AccuracyTier]:
    """``[{above = 0.8, points = 20}, ...]``: thresholds strictly descending."""
    if not isinstance(raw, list) or not raw:
        raise ValueError("tiers must be a non-empty list of {above|at_least = x, points = p}")
    tiers = []
    for entry in raw:
        if (
            not isinstance(entry, dict)
            or "points" not in entry
            or (("above" in entry) == ("at_least" in entry))
        ):
            raise ValueError(f"tier {entry!r} needs points and exactly one of above / at_least")
        threshold = entry.get("above", entry.get("at_least"))
        if not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            raise ValueError(f"tier threshold {threshold!r} must be a fraction between 0 and 1")
        tiers.append(AccuracyTier(float(threshold), float(entry["points"]), "at_least" in entry))
    for first, second in zip(tiers, tiers[1:], strict=False):
        if second.threshold >= first.threshold or second.points > first.points:
            raise ValueError(
                "tiers out of order: list them from the highest threshold down, "
                f"with points not increasing ({first.label()} then {second.label()})"
            )
    return tiers
