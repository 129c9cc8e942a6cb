"""Which checkpoint belongs to which task: by file name first, else by a worker
matching the unclaimed files' keys and shapes against the built models; and the
checkpoint's tensor shapes, read by a worker that has run no student code."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...result import CheckFailed
from ...rubric import Rubric
from ...sandbox import Sandbox, SandboxError, WorkerFailure, failure_line
from ...submission import Submission
from ..limits import LOAD_TIMEOUT
from .memo import Memo, in_sandbox
from .models import Models


@dataclass
class Assignment:
    """Checkpoints chosen per task and how, and the files no worker could read."""

    chosen: dict[str, tuple[Path, str]] = field(default_factory=dict)  # task id -> (file, how chosen)
    unreadable: dict[Path, str] = field(default_factory=dict)  # file -> why it cannot be loaded

    def claimed(self, path: Path) -> bool:
        return any(path == p for p, _ in self.chosen.values())


class Weights:
    def __init__(self, rubric: Rubric, submission: Submission, sandbox: Sandbox, models: Models) -> None:
        self.rubric = rubric
        self.submission = submission
        self.sandbox = sandbox
        self.models = models
        self._memo = Memo()

    def checkpoint(self, task_id: str) -> tuple[Path, str]:
        """The checkpoint for a task and how it was chosen."""
        assignment = self._memo("assignment", self._assign)
        if task_id in assignment.chosen:
            return assignment.chosen[task_id]
        task = self.rubric.tasks[task_id]
        unreadable = {p: why for p, why in assignment.unreadable.items() if not assignment.claimed(p)}
        if unreadable:
            said = "; ".join(f"{p.as_posix()}: {why}" for p, why in unreadable.items())
            raise CheckFailed(
                f"no loadable weights file for {task.model}: {said}",
                flag=f"weights file(s) that cannot be loaded: {', '.join(p.name for p in unreadable)}",
            )
        raise CheckFailed(
            f"no weights file for {task.model}: expected one named like "
            f"{', '.join(task.weights) or '*.pth'} (found: "
            f"{', '.join(p.as_posix() for p in self.submission.weights) or 'none'})"
        )

    def _assign(self) -> Assignment:
        files = self.submission.weights
        assignment = Assignment()
        for task in self.rubric.tasks.values():
            found = self.submission.find(task.weights)
            named = [f for f in found if f in files and not assignment.claimed(f)]
            if named:
                assignment.chosen[task.id] = (named[0], f"named {named[0].name}")
        unclaimed = [f for f in files if not assignment.claimed(f)]
        waiting = [t for t in self.rubric.tasks if t not in assignment.chosen]
        if not unclaimed or not waiting:
            return assignment
        built = []
        for task_id in waiting:
            try:
                self.models.build(task_id)
                built.append(task_id)
            except CheckFailed:
                continue
        for path in unclaimed:
            if not built:
                break
            try:
                fits = self.sandbox.request(
                    "fit", LOAD_TIMEOUT, tasks=built, path=in_sandbox(self.sandbox, "submission", path)
                )["fits"]
            except WorkerFailure as exc:
                assignment.unreadable[path] = exc.message
                continue
            except SandboxError as exc:
                assignment.unreadable[path] = failure_line("loading it", exc, aside=True)
                continue
            matching = [t for t in built if isinstance(fits.get(t), dict) and fits[t].get("fits")]
            if len(matching) == 1:
                task_id = matching[0]
                model = self.rubric.tasks[task_id].model
                how = f"{path.name} matched to {model} by its keys and shapes"
                notes = fits[task_id].get("notes") or []
                assignment.chosen[task_id] = (path, how + (f" ({'; '.join(notes)})" if notes else ""))
                built.remove(task_id)
        return assignment

    def shapes(self, task_id: str) -> tuple[Path, list[dict[str, list[int]]]] | None:
        """The task's checkpoint and its tensors' shapes under each reading the loader may
        use (keys as saved first; prefixes stripped, a checkpoint dict's entry), read by a
        worker that has run no student code (None: no checkpoint, or it cannot be read: the
        accuracy item says why). The worker that held student code is stopped for it; the
        next request restarts it."""

        def read() -> tuple[Path, list[dict[str, list[int]]]] | None:
            try:
                path, _ = self.checkpoint(task_id)
                answer = self.sandbox.pristine(
                    "tensor_shapes", LOAD_TIMEOUT, path=in_sandbox(self.sandbox, "submission", path)
                )
            except (CheckFailed, WorkerFailure, SandboxError):
                return None
            options = answer.get("readings")
            if not isinstance(options, list) or not options:
                return None
            return path, [
                {
                    str(k): v
                    for k, v in shapes.items()
                    if isinstance(v, list) and all(isinstance(n, int) and not isinstance(n, bool) for n in v)
                }
                for shapes in options
                if isinstance(shapes, dict)
            ]

        return self._memo(("shapes", task_id), read)
