"""Check kinds register here, the way pytest plugins hook in.

A kind is one module under ``checks/`` and a rubric item that names it. The module
registers its verdict with ``@check("kind", ...)`` and what it contributes beyond the
verdict with hooks, ``@hook("kind", "report")`` and the like, in the same module. The
generic modules ask ``KINDS[item.kind]`` and never name a kind:

- the rubric loader: ``validate`` (the item's options), ``visibility``, ``timeout`` (raised
  to ``least_timeout(options)`` where a kind needs more),
  ``needs_task``, ``self_reported``, the ``points`` hook (options that fix the points);
- ``grade.py``: ``run``, ``prepare``, ``hidden``, the ``leaderboard`` hook;
- results.json (``report/gradescope.py``): ``measured``, the ``data`` keys it carries;
- the reports (``report/views.py``): the ``report`` hook, what the item shows;
- ``autograder check`` (``selfcheck.py``): ``slow``, ``hidden``, the ``selfcheck`` hook;
- the batch summary (``batch/summary.py``): the ``summary`` hook.

Hooks get plain data (an ``ItemResult``, its neighbours) and return plain data (the
dataclasses below), so a kind module never imports the report or batch code. One
``data`` key is common to every kind: ``flag``, a sentence for the TA, which
results.json, both reports and the batch summary show whichever kind set it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..result import ItemResult, Outcome
    from ..rubric import Item
    from .context import Context

FLAG = "flag"  # the data key any kind sets to flag an item for the TA
HOOKS = ("report", "leaderboard", "selfcheck", "summary", "points")


@dataclass
class Part:
    """One piece of a report section: ``view`` names the partial template that renders
    it (``report/templates/parts/<view>.{html,md}.j2``; ``lines`` is the generic one any
    kind can use: ``data = Lines(...)``), ``data`` is what that template shows.

    ``order`` places it within its section (claims 10, per-class accuracy 20,
    generalisation 30, training curves 40, counts 50, layers 60; default 100, after
    them). ``section`` is another section's key (an item group such as ``task1``, or
    ``RUN_SECTION``, the notebook section at the end); None: the item's own group. A
    key no item has gets a section of its own at the end, titled by the key.
    ``figures`` are plots to draw, by name: ``(function in report/plots.py, its
    arguments)``; the report puts each PNG (a data URI) in ``png`` under that name."""

    view: str
    data: Any = None
    order: int = 100
    section: str | None = None
    figures: dict[str, tuple[str, tuple[Any, ...]]] = field(default_factory=dict)
    png: dict[str, str] = field(default_factory=dict)


RUN_SECTION = "notebook-run"  # Part.section of the "Notebook" section after the item groups


@dataclass
class Lines:
    """The generic report view: a heading, sentences, and an optional table."""

    title: str
    lines: list[str] = field(default_factory=list)
    head: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)


@dataclass
class Place:
    """Where an item's report parts go: the items of its section (its id's prefix), in
    rubric order, and every section's title by key."""

    group: list[ItemResult]
    titles: dict[str, str]


@dataclass
class Shown:
    """How ``autograder check`` shows an item of a hidden kind, whose verdict waits for
    the test split: ``verdict`` "later" (``why`` comes before the generic reason) or
    "fail" (no points: ``why`` is the whole reason); ``validation``: what it measured on
    the validation split (accuracy, tier, images), printed under the table."""

    verdict: str
    why: str
    validation: dict[str, Any] | None = None


@dataclass
class Distribution:
    """A batch summary section: one measured value across the class (a histogram of
    ``values`` over ``limits``, the median) and, optionally, the same per category."""

    what: str  # the measured value in words: "accuracy"
    xlabel: str
    values: list[float]
    limits: tuple[float, float] = (0.0, 1.0)
    per_class: dict[str, list[float]] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckKind:
    name: str
    run: Callable[[Item, Context], Outcome]
    validate: Callable[[dict[str, Any]], dict[str, Any]]
    needs_task: bool
    timeout: float
    visibility: str = "visible"  # default Gradescope visibility of its items (a rubric may override)
    hidden: bool = False  # its verdict depends on the hidden test labels: the grader's alone
    slow: bool = False  # takes minutes (training, running a notebook): not part of a quick self-check
    # Its verdict rests on what the student's worker process reports about its own model, which
    # import-time code can forge (docs/security.md); the rubric loader warns when one gates points.
    self_reported: bool = False
    prepare: Callable[[Item, Context], None] | None = None  # grader-side work before the worker starts
    # The ``data`` keys results.json's extra_data carries (besides FLAG); the rest (layer
    # lists, histograms) is for the report only.
    measured: tuple[str, ...] = ()
    # Hooks (``@hook(kind, name)``); None: the kind contributes nothing there.
    report: Callable[[ItemResult, Place], list[Part]] | None = None
    leaderboard: Callable[[ItemResult], list[dict[str, Any]]] | None = None
    # (item, whether a validation split was measured) -> how self-check shows it; hidden kinds only
    selfcheck: Callable[[ItemResult, bool], Shown | None] | None = None
    summary: Callable[[list[ItemResult]], Distribution | None] | None = None  # one rubric item's results
    # (options, the item's points): raises ValueError when the two disagree (tiers' best points)
    points: Callable[[dict[str, Any], float], None] | None = None
    # (options) -> the least time limit such an item needs (retrain: its training budget and
    # more); the loader raises the item's timeout to it
    least_timeout: Callable[[dict[str, Any]], float] | None = None


KINDS: dict[str, CheckKind] = {}


def check(
    name: str,
    *,
    needs_task: bool = True,
    timeout: float = 60.0,
    validate: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    visibility: str = "visible",
    hidden: bool = False,
    slow: bool = False,
    self_reported: bool = False,
    prepare: Callable[[Item, Context], None] | None = None,
    measured: tuple[str, ...] = (),
    points: Callable[[dict[str, Any], float], None] | None = None,
    least_timeout: Callable[[dict[str, Any]], float] | None = None,
):
    def register(fn: Callable[[Item, Context], Outcome]):
        KINDS[name] = CheckKind(
            name,
            fn,
            validate or _no_options(name),
            needs_task,
            timeout,
            visibility=visibility,
            hidden=hidden,
            slow=slow,
            self_reported=self_reported,
            prepare=prepare,
            measured=tuple(measured),
            points=points,
            least_timeout=least_timeout,
        )
        return fn

    return register


def hook(name: str, what: str):
    """Registers the decorated function as kind ``name``'s ``what`` hook (one of HOOKS);
    the kind must be registered first (``@check`` above it in the module)."""
    if what not in HOOKS:
        raise ValueError(f"no hook {what!r}; hooks: {', '.join(HOOKS)}")

    def register(fn: Callable[..., Any]):
        if name not in KINDS:
            raise ValueError(f"hook {what} for kind {name!r}, which is not registered (yet)")
        KINDS[name] = dataclasses.replace(KINDS[name], **{what: fn})
        return fn

    return register


def measured_data(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """What results.json carries of an item's ``data``: the kind's measured keys and the flag."""
    known = KINDS.get(kind)
    keys = (*(known.measured if known else ()), FLAG)
    return {k: data[k] for k in dict.fromkeys(keys) if k in data}


def _no_options(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def validate(options: dict[str, Any]) -> dict[str, Any]:
        if options:
            raise ValueError(f"kind {name} takes no option {', '.join(sorted(options))}")
        return options

    return validate


def allowed(name: str, known: set[str], options: dict[str, Any]) -> None:
    unknown = set(options) - known
    if unknown:
        raise ValueError(
            f"kind {name} has no option {', '.join(sorted(unknown))} "
            f"(options: {', '.join(sorted(known)) or 'none'})"
        )
