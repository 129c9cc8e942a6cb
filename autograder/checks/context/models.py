"""A task's model: the files that may define it, the one that does (under its name, an
alias or a near miss), importing and building it in the worker, and the input size it
runs at."""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

from ...notebook.extract import (
    MAX_CODE_BYTES,
    UNREADABLE,
    ExtractedCode,
    NotebookError,
    as_notebook,
    defined_names,
    extract,
    loose_name,
    model_candidates,
    notebook_export,
    parse,
    parse_python,
    script_at_import,
    unreadable,
)
from ...result import CheckFailed
from ...rubric import Rubric, Task
from ...sandbox import Sandbox, SandboxError, WorkerFailure, failure_line
from ...submission import Submission
from ..limits import PROBE_TIMEOUT
from .memo import Memo, in_sandbox
from .notebooks import Notebooks

# Input sizes the classic networks are written for (AlexNet's 227, ImageNet's 224,
# CIFAR's 32, MNIST's 28, Inception's 299): tried to judge a layer stack apart from
# the input sizes a lab accepts.
OTHER_SIZES = (227, 224, 32, 28, 64, 96, 299, 256)


@dataclasses.dataclass
class Source:
    """A place a model can be defined: a .py file or a notebook's definitions."""

    label: str  # what the student knows it as: 'resnet18.py', 'lab2.ipynb'
    module: str  # name given to it in the worker
    sandbox_path: str
    text: str
    extracted: ExtractedCode | None = None
    model: str = ""  # the name the task's model was found under (an alias, a case variant)
    note: str | None = None  # how that name was accepted
    # a .py that trains (or reads the command line) when imported is graded on its definitions
    # (this source); the file itself is imported only when they cannot build the model:
    # (line the script starts at, what it does there, the file)
    whole: tuple[int, str, Source] | None = None
    export: str | None = None  # a .py saved from a notebook: why it reads as one (``notebook_export``)

    def where(self, line: int | None) -> str:
        if self.extracted is not None and line:
            return f"{self.label} {self.extracted.locate(line)}"
        return f"{self.label} line {line}" if line else self.label


@dataclasses.dataclass
class Found:
    """The files a task's patterns matched that may define its model, and why others were passed over."""

    sources: list[Source]
    problems: list[str]  # a .py file too large to read, a notebook that cannot be read


class Models:
    """Everything about finding, importing and building the tasks' models, memoised per
    submission. ``task(id)`` is how a check gets a task."""

    def __init__(
        self, rubric: Rubric, submission: Submission, sandbox: Sandbox, notebooks: Notebooks
    ) -> None:
        self.rubric = rubric
        self.submission = submission
        self.sandbox = sandbox
        self.notebooks = notebooks
        self._memo = Memo()

    # --- the task ----------------------------------------------------------
    def task(self, task_id: str, sized: bool = True) -> Task:
        """The task as this submission needs it. With ``input_sizes`` (AlexNet on 28x28
        or up-sampled to 224) the model is built and the first size it maps to
        (N, num_classes) sets the probe shape and the test-time resize.

        ``sized=False``: the task as the rubric declares it, for its names and file
        patterns only (nothing is built; its ``input_shape`` is the dataset's)."""
        task = self.rubric.tasks[task_id]
        if not sized or not task.input_sizes:
            return task
        return self._memo(("task", task_id), lambda: self._sized(task))

    def other_size(self, task_id: str, failure: CheckFailed) -> Task:
        """For judging a layer stack apart from the input size: when the model does
        not run at the sizes the lab accepts, the sizes the classic networks are
        written for are tried, and the task comes back with ``size_note`` saying
        which one ran. Without one, ``failure`` (what went wrong at the lab's size)."""
        self.build(task_id)
        task = self.rubric.tasks[task_id]
        return self._memo(("other-size", task_id), lambda: self._any_size(task, failure))

    def _sized(self, task: Task) -> Task:
        self.build(task.id)
        native = task.input_shape[-1]
        tried = []
        for size in task.input_sizes:
            shape = [task.input_shape[0], size, size]
            try:
                got = self.sandbox.request("forward", PROBE_TIMEOUT, task=task.id, input_shape=shape)
            except (WorkerFailure, SandboxError) as exc:
                tried.append(f"{size}x{size}: {exc.message}")
                continue
            if got.get("output_shape") == [8, task.num_classes]:
                resize = None if size == native else size
                return dataclasses.replace(task, input_shape=shape, resize=resize)
            tried.append(f"{size}x{size}: output {got.get('output_shape')}")
        raise CheckFailed(
            f"{task.model} maps none of the accepted input sizes to (N, {task.num_classes}) logits "
            f"({'; '.join(tried)})"
        )

    def _any_size(self, task: Task, failure: CheckFailed) -> Task:
        accepted = task.input_sizes or [task.input_shape[-1]]
        for size in [s for s in OTHER_SIZES if s not in accepted]:
            shape = [task.input_shape[0], size, size]
            try:
                got = self.sandbox.request("forward", PROBE_TIMEOUT, task=task.id, input_shape=shape)
            except WorkerFailure:
                continue
            except SandboxError:  # a hang or a crash: no other size will do better
                break
            if got.get("output_shape") == [8, task.num_classes]:
                said = ", ".join(f"{s}x{s}" for s in accepted)
                return dataclasses.replace(
                    task,
                    input_shape=shape,
                    size_note=f"judged at {size}x{size}, the size {task.model} is built for; "
                    f"this lab accepts {said}",
                )
        raise failure

    # --- where the model is defined ----------------------------------------
    def sources(self, task: Task) -> list[Source]:
        """The files the task's patterns match that the grader can read as code (a
        notebook's definitions extracted into a module of their own)."""
        return self._found(task).sources

    def _found(self, task: Task) -> Found:
        return self._memo(("sources", task.id), lambda: self._scan(task))

    def _scan(self, task: Task) -> Found:
        found = Found([], [])
        for rel in self.submission.find(task.sources):
            if rel.suffix.lower() == ".py":
                path = self.submission.root / rel
                if path.stat().st_size > MAX_CODE_BYTES:
                    found.problems.append(
                        f"{rel.as_posix()} is over {MAX_CODE_BYTES >> 20} MiB, more than the grader "
                        "reads as Python code: keep data out of .py files"
                    )
                    continue
                text = path.read_text(encoding="utf-8", errors="replace")
                export = notebook_export(text)
                if export is not None:  # graded as the notebook it was saved from
                    source = self._definitions(task, rel, text, len(found.sources))
                    source.export = export
                    found.sources.append(source)
                    continue
                module = "py_" + "_".join(rel.with_suffix("").parts)
                source = Source(rel.as_posix(), module, in_sandbox(self.sandbox, "submission", rel), text)
                script = script_at_import(text)
                if script is not None:  # its definitions first; the file if they are not enough
                    extracted = self._definitions(task, rel, text, len(found.sources))
                    extracted.whole = (*script, source)
                    source = extracted
                found.sources.append(source)
            elif rel.suffix.lower() == ".ipynb":
                try:
                    code = self._extract(rel, self._roots(task))
                except (CheckFailed, NotebookError) as exc:
                    found.problems.append(str(exc))
                    continue
                found.sources.append(self._extracted(task, rel, code, len(found.sources)))
        return found

    @staticmethod
    def _roots(task: Task) -> frozenset[str]:
        return frozenset(loose_name(n) for n in [task.model, *task.model_aliases])

    def _definitions(self, task: Task, rel: Path, text: str, n: int) -> Source:
        """A .py file's definitions, extracted as from the one-cell notebook it was saved from."""
        code = extract(parse(as_notebook(text)), self._local_modules(), self._roots(task))
        return self._extracted(task, rel, dataclasses.replace(code, script=True), n)

    def _extracted(self, task: Task, rel: Path, code: ExtractedCode, n: int) -> Source:
        """A notebook's definitions (or a notebook export's) written as a module of their
        own: one module per task, each keeping only the imports its model needs."""
        module = f"nb_{re.sub(r'[^0-9A-Za-z_]', '_', task.id)}_{n}"
        name = f"{module}.py"
        target = self.sandbox.job.extracted / name
        target.write_text(code.text, encoding="utf-8")
        target.chmod(0o644)
        return Source(rel.as_posix(), module, in_sandbox(self.sandbox, "extracted", name), code.text, code)

    def _local_modules(self) -> frozenset[str]:
        """Names under which the student's own .py files can be imported."""
        return frozenset(
            rel.parts[0] if len(rel.parts) > 1 else rel.stem
            for rel in self.submission.files
            if rel.suffix.lower() == ".py"
        )

    def _extract(self, rel: Path, roots: frozenset[str]) -> ExtractedCode:
        """A notebook's definitions for a model going by ``roots``: parsed once per notebook,
        assembled per task (tasks differ in which imports of the student's files they keep)."""
        return extract(self.notebooks.parsed(rel), self._local_modules(), roots)

    def full_text(self, source: Source) -> tuple[str, Callable[[int], str]]:
        """Source text and a line -> place function. For notebooks: every code
        cell, since the test transform usually sits in a data cell."""
        if source.extracted is None or source.extracted.script:
            return source.text, lambda line: f"{source.label}, line {line}"
        try:
            nb = self.notebooks.read()
        except CheckFailed:
            return source.text, lambda line: source.where(line)
        lines: list[str] = []
        places: list[tuple[int, int]] = []
        for number, cell in enumerate(nb.cells, start=1):
            if cell.get("cell_type") != "code":
                continue
            text = cell.get("source", "")
            text = text if isinstance(text, str) else "".join(text)
            for k, line in enumerate(text.splitlines(), start=1):
                lines.append("" if line.lstrip().startswith(("%", "!")) else line)
                places.append((number, k))
            lines.append("")
            places.append((number, 0))

        def locate(line: int) -> str:
            cell, k = places[line - 1] if 0 < line <= len(places) else (0, line)
            return f"{source.label} cell {cell}, line {k}"

        joined = "\n".join(lines)
        if parse_python(joined) is None:
            return source.text, lambda line: source.where(line)
        return joined, locate

    # --- importing and building ----------------------------------------------
    def build(self, task_id: str) -> Source:
        """Import the code defining the task's model and build it in the worker."""
        return self._memo(("model", task_id), lambda: self._build(self.rubric.tasks[task_id]))

    def note(self, task_id: str) -> str | None:
        """How the task's model was found when not under its exact name, and whether its file
        asked for CUDA the grader ran on the CPU (else None)."""
        source = self._memo.found(("model", task_id))
        if source is None:
            return None
        place = self.sandbox.cuda.get(source.sandbox_path)
        if place is None:
            return source.note
        line, what = place
        cuda = f"your code asks for CUDA ({source.where(line)}: {what}); graded on the CPU: no GPU here"
        return f"{source.note}; {cuda}" if source.note else cuda

    def _build(self, task: Task) -> Source:
        found = self._found(task)
        sources = found.sources
        source, name, note = self._find_model(task, sources)
        if source is None:
            looked = ", ".join(s.label for s in sources) or "no matching files"
            broken = [
                s for s in sources if not defined_names(s.text) and s.text.strip() and s.extracted is None
            ]
            hint = ""
            for s in broken:
                try:
                    compile(s.text, s.label, "exec")
                except UNREADABLE as exc:
                    hint = f"; {s.label} {unreadable(exc)}"
            for s in sources:  # a notebook cell Python cannot read is left out of its definitions
                if s.extracted is not None and s.extracted.unreadable_cells and not hint:
                    cell, why = s.extracted.unreadable_cells[0]
                    hint = f"; {s.label} cell {cell}: {why} (the grader leaves out a cell Python cannot read)"
            problems = list(dict.fromkeys(found.problems))
            if problems:
                raise CheckFailed(
                    f"{'; '.join(problems)}; no other file defines {task.model} "
                    f"(expected in {' or '.join(task.sources)})"
                )
            raise CheckFailed(
                f"no class or function named {task.model} found (looked in "
                f"{looked}; expected in {' or '.join(task.sources)}){hint}{note}"
            )
        if source.whole is not None:
            line, what, whole = source.whole
            script = (
                f"{source.label} {what} when imported (line {line}): graded on its "
                'definitions; put that script under `if __name__ == "__main__":`'
            )
            try:
                return self._load(task, source, name, f"{note}; {script}" if note else script)
            except CheckFailed:  # the definitions need the script: the file as it is, as before
                source = whole
        elif source.export is not None:
            exported = (
                f"{source.label} was saved from a notebook ({source.export}): "
                "graded on its definitions, like a notebook"
            )
            note = f"{note}; {exported}" if note else exported
        return self._load(task, source, name, note)

    def _load(self, task: Task, source: Source, name: str, note: str) -> Source:
        """Import ``source`` and build ``name`` from it in the worker, as the task's model."""
        source.model, source.note = name, note or None
        self._import(source, hint=True)
        try:
            self.sandbox.setup(
                "build",
                self.rubric.import_timeout,
                task=task.id,
                module=source.module,
                cls=name,
                num_classes=task.num_classes,
                input_shape=task.input_shape,  # lazy layers (d2l style) get their shapes from it
                other_shapes=[  # or from another size the lab accepts (a LazyLinear AlexNet at 224)
                    [task.input_shape[0], s, s] for s in task.input_sizes if s != task.input_shape[-1]
                ],
            )
        except WorkerFailure as exc:
            raise CheckFailed(
                failure_line(f"{name}()", exc, where=source.where(exc.details.get("line")))
            ) from None
        except SandboxError as exc:
            raise CheckFailed(failure_line(f"building {name}()", exc, aside=True)) from None
        return source

    def _find_model(self, task: Task, sources: list[Source]) -> tuple[Source | None, str, str]:
        """The source defining the task's model, the name found, and a note: the exact
        name first, then the rubric's aliases, then (``model_match = "similar"``) one
        unambiguous case/underscore variant. Without a source, the note lists what
        the grader did find, so the student sees the near miss."""
        for name in (task.model, *task.model_aliases):
            source = next((s for s in sources if name in defined_names(s.text)), None)
            if source is not None:
                note = "" if name == task.model else f"{name} accepted for {task.model} (a rubric alias)"
                return source, name, note
        seen: list[tuple[Source, str, str]] = []
        for s in sources:
            text, locate = self.full_text(s)
            for name, line, what in model_candidates(text):
                if all(name != n for _, n, _ in seen):
                    said = f"{what} {name}" if what in ("class", "function") else f"{name} = {what}"
                    seen.append((s, name, f"{said} ({locate(line)})"))
        similar = [
            (s, n)
            for s, n, _ in seen
            if loose_name(n) == loose_name(task.model) and n in defined_names(s.text)
        ]
        if task.model_match == "similar" and len(similar) == 1:
            s, name = similar[0]
            return s, name, f"found {name}, not {task.model}: accepted (only case/underscores differ)"
        if not seen:
            return None, "", ""
        shown = "; ".join(w for _, _, w in seen[:6])
        more = f" (+{len(seen) - 6} more)" if len(seen) > 6 else ""
        return None, "", f"; the grader found: {shown}{more}"

    def defining(self, task_id: str, name: str) -> Source:
        """The task's source defining ``name`` (a building block the lecture names),
        imported in the worker once. A file that also defines the task's model is
        imported by building the model (a model that fails to build is another item's)."""
        task = self.rubric.tasks[task_id]
        sources = self.sources(task)
        source = next((s for s in sources if name in defined_names(s.text)), None)
        if source is None:
            looked = ", ".join(s.label for s in sources) or "no matching files"
            raise CheckFailed(
                f"no function or class named {name} found (looked in {looked}; "
                f"expected in {' or '.join(task.sources)})"
            )
        if task.model in defined_names(source.text):
            with contextlib.suppress(CheckFailed):
                self.build(task.id)  # imports the same file
        if not any(
            op == "load_source" and a.get("name") == source.module for op, a, _ in self.sandbox.setup_steps
        ):
            self._import(source)
        return source

    def _import(self, source: Source, hint: bool = False) -> None:
        """Import ``source`` in the worker (replayed after a restart); a failure is one line
        with the file and line. ``hint``: a timeout suggests moving training code under
        ``if __name__ == "__main__":`` (a model file that trains at import)."""
        try:
            self.sandbox.setup(
                "load_source", self.rubric.import_timeout, name=source.module, path=source.sandbox_path
            )
        except WorkerFailure as exc:
            where = source.where(exc.details.get("line"))
            raise CheckFailed(failure_line(f"importing {where}", exc)) from None
        except SandboxError as exc:
            line = failure_line(f"importing {source.label}", exc, aside=hint)
            if hint:
                line += ' (move training code under `if __name__ == "__main__":`)'
            raise CheckFailed(line) from None
