"""Orchestration: rubric + submission -> result.

One sandboxed worker serves every check of a submission. Each check runs
under its own time limit (its ``timeout`` covers all of its work); whatever
happens inside one (a crash, a hang, a grader bug) fails that item alone and
the rest keep their points. The submission has a total time budget: once it is
spent the remaining items fail without running, and SIGTERM (Gradescope's own
limit) ends grading with what was graded so far, so results are always written.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import provenance, untrusted
from .checks import KINDS
from .checks.context import Context
from .machine import usable_cpus
from .result import CheckFailed, GradeResult, ItemResult, Outcome
from .rubric import Item, Rubric
from .sandbox import (
    Deadline,
    Sandbox,
    SandboxError,
    TierInfo,
    WorkerFailure,
    detect_tier,
    failure_line,
    guard,
)
from .sandbox.launcher import Job, JobFolder, Limits
from .submission import Submission, SubmissionError, intake

DEFAULT_MEMORY = 8 << 30
MESSAGE_LIMIT = 4_000  # characters of an item's one-line message (start and end kept)
DETAILS_LIMIT = 50_000  # characters of its details
TIME_BUDGET_ENV = "AUTOGRADER_TIME_BUDGET"  # seconds; overrides the rubric's time_budget
STOPPED = "not run: the grader was stopped (SIGTERM: the platform's time limit?) before this item finished"


class Stopped(BaseException):
    """SIGTERM reached the grader: finish with what was graded so far.

    A control-flow signal, not an error, so it stays outside ``errors.AutograderError``:
    a BaseException, so no check's ``except Exception`` (nor an ``except AutograderError``)
    swallows it on its way to grade()."""


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Inside this block the first SIGTERM raises Stopped in the main thread (grade()
    turns it into "not run" items and returns); later ones are ignored, so writing the
    results is not cut short. Gradescope sends SIGTERM at its limit, SIGKILL later."""

    def stop(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Stopped

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    return "cuda" if os.path.exists("/dev/nvidiactl") else "cpu"


def item_numbers(rubric: Rubric) -> dict[str, str]:
    """Stable '1.2'-style numbers: group by the id's prefix, in rubric order."""
    groups: list[str] = []
    numbers: dict[str, str] = {}
    counts: dict[str, int] = {}
    for item in rubric.items:
        group = item.id.split(".")[0]
        if group not in groups:
            groups.append(group)
        counts[group] = counts.get(group, 0) + 1
        numbers[item.id] = f"{groups.index(group) + 1}.{counts[group]}"
    return numbers


def grade(
    submission: Path,
    rubric: Rubric,
    data_root: Path | None,
    device: str = "auto",
    allow_unsandboxed: bool = False,
    threads: int | None = None,
    memory_bytes: int | None = DEFAULT_MEMORY,
    tier: TierInfo | None = None,
    time_budget: float | None = None,
) -> GradeResult:
    """Grade one submission within ``time_budget`` seconds (default: $AUTOGRADER_TIME_BUDGET,
    else the rubric's ``time_budget``)."""
    started = time.monotonic()
    env_budget = os.environ.get(TIME_BUDGET_ENV)
    deadline = Deadline(time_budget or (float(env_budget) if env_budget else rubric.time_budget), started)
    device = resolve_device(device)
    tier = tier or detect_tier(allow_unsandboxed)
    guard.check_environment()
    guard.check_secrets(tier, data_root, rubric.dataset)
    folder = JobFolder()
    workdir = folder.path
    job = Job(
        root=workdir,
        submission=workdir / "submission",
        extracted=workdir / "extracted",
        inputs=workdir / "inputs",
        out=workdir / "out",
        lib=workdir / "lib",
    )
    numbers = item_numbers(rubric)
    try:
        try:
            sub = intake(submission, job.submission)
        except SubmissionError as exc:
            return _unreadable(rubric, numbers, str(exc), tier, device, started)
        except Stopped:
            return _unreadable(rubric, numbers, STOPPED, tier, device, started)
        limits = Limits(
            memory_bytes=None if device.startswith("cuda") else memory_bytes,
            threads=threads or min(usable_cpus(), 8),  # a cgroup quota (Gradescope: ½ vCPU) counts
            device=device,
            total_memory=memory_bytes,
        )
        with Sandbox(tier, job, limits, deadline) as sandbox:
            ctx = Context(rubric=rubric, submission=sub, sandbox=sandbox, data_root=data_root, device=device)
            try:
                if any(KINDS[item.kind].hidden for item in rubric.items):
                    # Decode now, before the first check starts the worker: on a cold cache the
                    # decoding child (torch, ~500 MB) and the worker are never alive together.
                    with contextlib.suppress(CheckFailed):  # remembered; the item reports it
                        ctx.data.split()
                        for item in rubric.items:
                            if KINDS[item.kind].prepare:
                                KINDS[item.kind].prepare(item, ctx)
                for item in rubric.items:
                    if deadline.budget_left() <= 0 and not item.manual:  # a TA's item costs nothing
                        ctx.results[item.id] = _not_run(item, numbers[item.id], _spent(deadline, ctx))
                        continue
                    deadline.start_item(item.timeout)
                    ctx.results[item.id] = _run_item(item, ctx, numbers[item.id])
                    deadline.start_item(None)
            except Stopped:
                for item in rubric.items:
                    ctx.results.setdefault(item.id, _not_run(item, numbers[item.id], STOPPED))
            result = GradeResult(
                rubric_id=rubric.id,
                rubric_title=rubric.title,
                items=list(ctx.results.values()),
                provenance=provenance.collect(
                    rubric.path,
                    {f.as_posix(): sub.sha256(f) for f in sub.files},
                    sandbox.provenance(),
                    device,
                    sandbox.hello,
                    ctx.data.provenance(),
                    sandbox.starts,
                ),
                seconds=time.monotonic() - started,
                notes=list(sub.notes),
                worker_output=sandbox.output(),
            )
        result.leaderboard = _leaderboard(rubric, result)
        return result
    finally:
        folder.remove()


def _run_item(item: Item, ctx: Context, number: str) -> ItemResult:
    started = time.monotonic()
    try:
        outcome = KINDS[item.kind].run(item, ctx)
    except CheckFailed as exc:
        outcome = Outcome(False, exc.message, exc.details, exc.data)
    except (WorkerFailure, SandboxError) as exc:  # a request the check did not word itself
        outcome = Outcome(False, failure_line("the check", exc))
    except Exception as exc:  # noqa: BLE001 - a grader bug must not cost other items
        print(untrusted.traceback_text(), file=sys.stderr, end="")
        outcome = Outcome(
            False,
            f"internal grader error in this check ({type(exc).__name__}: "
            f"{exc}); please tell the course staff",
        )
    note = ctx.models.note(item.task) if item.task else None
    if note:
        outcome.details = f"note: {note}" + (f"\n{outcome.details}" if outcome.details else "")
        outcome.data = {**(outcome.data or {}), "model_note": note}
    if item.manual:
        score, passed = None, None
    else:
        score = outcome.score if outcome.score is not None else (item.points if outcome.passed else 0.0)
        blocked = [r for r in item.requires if ctx.results.get(r) and ctx.results[r].passed is False]
        if blocked and score:
            score = 0.0
            outcome.message += f" — no points, because {', '.join(blocked)} failed"
        passed = outcome.passed and not blocked
    return _result(
        item,
        number,
        score=score,
        passed=passed,
        message=outcome.message,
        details=outcome.details,
        seconds=round(time.monotonic() - started, 3),
        data=outcome.data,
    )


def _not_run(item: Item, number: str, message: str) -> ItemResult:
    if item.manual:
        return _result(item, number, score=None, passed=None, message=message)
    return _result(item, number, score=0.0, passed=False, message=message)


def _result(item: Item, number: str, **found: Any) -> ItemResult:
    """An item's result: what the rubric says of the item, and what grading ``found``, its
    message and details cut to their start and end (they quote student names, which may be
    megabytes long: a checkpoint key, an exception's text)."""
    found["message"] = untrusted.short(found["message"], MESSAGE_LIMIT)
    found["details"] = untrusted.short(found.get("details", ""), DETAILS_LIMIT)
    return ItemResult(
        id=item.id,
        number=number,
        name=item.name,
        kind=item.kind,
        max_points=item.points,
        visibility=item.visibility,
        **found,
    )


def _spent(deadline: Deadline, ctx: Context) -> str:
    """Where the budget went: the items that took longest."""
    slow = sorted(ctx.results.values(), key=lambda r: r.seconds, reverse=True)[:3]
    where = ", ".join(f"{r.id} ({r.seconds:.0f} s)" for r in slow if r.seconds >= 0.5)
    where = where or "the checks before this one"
    return f"not run: the submission's time budget ({deadline.budget:g} s) was spent in {where}"


def _unreadable(
    rubric: Rubric, numbers: dict[str, str], message: str, tier: TierInfo, device: str, started: float
) -> GradeResult:
    """The submission itself could not be read (or grading was stopped first): every item fails with why."""
    items = [_not_run(i, numbers[i.id], message) for i in rubric.items]
    return GradeResult(
        rubric.id,
        rubric.title,
        items,
        provenance.collect(rubric.path, {}, tier.as_dict(), device, None, None, 0),
        time.monotonic() - started,
        fatal=message,
    )


def _leaderboard(rubric: Rubric, result: GradeResult) -> list[dict[str, object]]:
    if not rubric.leaderboard:
        return []
    board: list[dict[str, object]] = []
    for item in result.items:
        entries = KINDS[item.kind].leaderboard
        if entries is not None:
            board += entries(item)
    return board


__all__ = ["CheckFailed", "Stopped", "Submission", "grade", "stop_on_sigterm"]
