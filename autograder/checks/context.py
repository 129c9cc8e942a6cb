"""What every check can reach: the submission, the sandbox, the data, and the
facts earlier checks established (which file defines the model, which
weights belong to which task, which normalisation applies)."""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import preprocess
from ..data import DataError, Split, load_split
from ..notebook.extract import (
    MAX_CODE_BYTES,
    ExtractedCode,
    NotebookError,
    Parsed,
    defined_names,
    extract,
    loose_name,
    model_candidates,
    parse,
    read_notebook,
)
from ..result import CheckFailed, ItemResult, NoDataRoot
from ..rubric import Rubric, Task
from ..sandbox import Sandbox, SandboxError, Tier, WorkerFailure, failure_line
from ..sandbox.worker import protocol
from ..submission import Submission

# Input sizes the classic networks are written for (AlexNet's 227, ImageNet's 224,
# CIFAR's 32, MNIST's 28, Inception's 299): tried to judge a layer stack apart from
# the input sizes a lab accepts.
OTHER_SIZES = (227, 224, 32, 28, 64, 96, 299, 256)
# Limits of single worker requests (seconds). The item's own ``timeout`` and the
# submission's time budget cut each one further (sandbox.Deadline); importing a file
# and building its model take the rubric's ``import_timeout``.
PROBE_TIMEOUT = 60.0  # one forward pass at a candidate input size (a task's input_sizes)
LOAD_TIMEOUT = 300.0  # reading a checkpoint: matching it to a task, loading it for evaluation
TEST_IMAGES = "test_images.npy"  # in the job's inputs/ only while a request needs it


@dataclass
class Source:
    """A place a model can be defined: a .py file or a notebook's definitions."""

    label: str  # what the student knows it as: 'resnet18.py', 'lab2.ipynb'
    module: str  # name given to it in the worker
    sandbox_path: str
    text: str
    extracted: ExtractedCode | None = None
    model: str = ""  # the name the task's model was found under (an alias, a case variant)
    note: str | None = None  # how that name was accepted

    def where(self, line: int | None) -> str:
        if self.extracted is not None:
            return f"{self.label} {self.extracted.locate(line)}"
        return f"{self.label} line {line}" if line else self.label


@dataclass
class Evaluation:
    """What an accuracy item measured per test image, for the checks that compare
    other images with it (``generalisation``)."""

    task: Task  # as evaluated (input size, resize)
    source: Source
    norm: preprocess.Normalization
    batch_size: int
    losses: np.ndarray  # cross-entropy per test image; inf where the logits were not finite
    correct: np.ndarray  # bool per test image
    seconds: float | None


@dataclass
class TrainSample:
    """A fixed, seeded sample of the training split, staged for the worker like the test images."""

    path: str  # in the sandbox
    order: np.ndarray  # row i of the worker's answer is sample image order[i]
    labels: np.ndarray  # the sample's labels, in sample order (the grader's only)
    split_size: int
    provenance: dict[str, Any]


@dataclass
class Context:
    rubric: Rubric
    submission: Submission
    sandbox: Sandbox
    data_root: Path | None
    device: str
    results: dict[str, ItemResult] = field(default_factory=dict)
    evaluations: dict[str, Evaluation] = field(default_factory=dict)  # accuracy item id -> per image
    _memo: dict[str, Any] = field(default_factory=dict)

    # --- paths -----------------------------------------------------------
    def in_sandbox(self, area: str, relative: Path | str) -> str:
        relative = Path(relative).as_posix()
        if self.sandbox.tier.tier is Tier.A:
            base = {
                "submission": protocol.SANDBOX_SUBMISSION,
                "extracted": protocol.SANDBOX_EXTRACTED,
                "inputs": protocol.SANDBOX_INPUTS,
            }[area]
        else:
            base = str(getattr(self.sandbox.job, area))
        return f"{base}/{relative}"

    def memo(self, key: str, compute):
        """Compute once per submission; a CheckFailed is remembered and re-raised."""
        if key not in self._memo:
            try:
                self._memo[key] = ("ok", compute())
            except CheckFailed as exc:
                self._memo[key] = ("failed", exc)
        state, value = self._memo[key]
        if state == "failed":
            raise value
        return value

    # --- notebook --------------------------------------------------------
    def notebook_path(self) -> Path | None:
        notebooks = self.submission.notebooks
        return notebooks[0] if notebooks else None

    def notebook(self):
        def load():
            path = self.notebook_path()
            if path is None:
                raise CheckFailed(
                    f"no .ipynb notebook in the submission (found: {self.submission.listing()})"
                )
            try:
                return read_notebook(self.submission.root / path)
            except NotebookError as exc:
                raise CheckFailed(str(exc)) from None

        return self.memo("notebook", load)

    # --- model sources ---------------------------------------------------
    def sources(self, task: Task) -> list[Source]:
        return self.memo(f"sources:{task.id}", lambda: self._sources(task))

    def _sources(self, task: Task) -> list[Source]:
        found: list[Source] = []
        self._memo.setdefault("source_errors", ("ok", []))
        for rel in self.submission.find(task.sources):
            if rel.suffix.lower() == ".py":
                path = self.submission.root / rel
                if path.stat().st_size > MAX_CODE_BYTES:
                    self._memo["source_errors"][1].append(
                        f"{rel.as_posix()} is over {MAX_CODE_BYTES >> 20} MiB, more than the grader "
                        "reads as Python code: keep data out of .py files"
                    )
                    continue
                text = path.read_text(encoding="utf-8", errors="replace")
                module = "py_" + "_".join(rel.with_suffix("").parts)
                found.append(Source(rel.as_posix(), module, self.in_sandbox("submission", rel), text))
            elif rel.suffix.lower() == ".ipynb":
                try:
                    roots = frozenset(loose_name(n) for n in [task.model, *task.model_aliases])
                    code = self._extract(rel, roots)
                except (CheckFailed, NotebookError) as exc:
                    self._memo["source_errors"][1].append(str(exc))
                    continue
                # one module per task: each keeps only the imports its model needs
                module = f"nb_{re.sub(r'[^0-9A-Za-z_]', '_', task.id)}_{len(found)}"
                name = f"{module}.py"
                target = self.sandbox.job.extracted / name
                target.write_text(code.text, encoding="utf-8")
                target.chmod(0o644)
                found.append(
                    Source(
                        rel.as_posix(),
                        module,
                        self.in_sandbox("extracted", name),
                        code.text,
                        code,
                    )
                )
        return found

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

        def parsed() -> Parsed:
            if rel == self.notebook_path():
                return parse(self.notebook())
            try:
                return parse(read_notebook(self.submission.root / rel))
            except NotebookError as exc:
                raise CheckFailed(str(exc)) from None

        return extract(self.memo(f"parsed:{rel.as_posix()}", parsed), self._local_modules(), roots)

    def model(self, task_id: str) -> Source:
        """Import the code defining the task's model and build it in the worker."""
        return self.memo(f"model:{task_id}", lambda: self._model(self.rubric.tasks[task_id]))

    def _model(self, task: Task) -> Source:
        sources = self.sources(task)
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
                except SyntaxError as exc:
                    hint = f"; {s.label} line {exc.lineno} has a syntax error: {exc.msg}"
            problems = list(dict.fromkeys(self._memo.get("source_errors", ("ok", []))[1]))
            if problems:
                raise CheckFailed(f"{'; '.join(problems)}; no other file defines {task.model} "
                                  f"(expected in {' or '.join(task.sources)})")
            raise CheckFailed(
                f"no class or function named {task.model} found (looked in "
                f"{looked}; expected in {' or '.join(task.sources)}){hint}{note}"
            )
        source.model, source.note = name, note or None
        try:
            self.sandbox.setup(
                "load_source", self.rubric.import_timeout, name=source.module, path=source.sandbox_path
            )
        except WorkerFailure as exc:
            raise CheckFailed(
                failure_line(f"importing {source.where(exc.details.get('line'))}", exc)
            ) from None
        except SandboxError as exc:
            raise CheckFailed(
                f"{failure_line(f'importing {source.label}', exc, aside=True)} (move training "
                'code under `if __name__ == "__main__":`)'
            ) from None
        try:
            self.sandbox.setup(
                "build",
                self.rubric.import_timeout,
                task=task.id,
                module=source.module,
                cls=name,
                num_classes=task.num_classes,
                input_shape=task.input_shape,  # lazy layers (d2l style) get their shapes from it
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
            text, locate = self._full_text(s)
            for name, line, what in model_candidates(text):
                if all(name != n for _, n, _ in seen):
                    said = f"{what} {name}" if what in ("class", "function") else f"{name} = {what}"
                    seen.append((s, name, f"{said} ({locate(line)})"))
        similar = [
            (s, n) for s, n, _ in seen
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

    def model_note(self, task_id: str) -> str | None:
        """How the task's model was found when not under its exact name (else None)."""
        state, source = self._memo.get(f"model:{task_id}", (None, None))
        return source.note if state == "ok" else None

    def task(self, task_id: str) -> Task:
        """The task as this submission needs it. With ``input_sizes`` (AlexNet on
        28x28 or up-sampled to 224) the first size the model maps to
        (N, num_classes) sets the probe shape and the test-time resize."""
        task = self.rubric.tasks[task_id]
        if not task.input_sizes:
            return task
        return self.memo(f"task:{task_id}", lambda: self._sized(task))

    def other_size(self, task_id: str, failure: CheckFailed) -> Task:
        """For judging a layer stack apart from the input size: when the model does
        not run at the sizes the lab accepts, the sizes the classic networks are
        written for are tried, and the task comes back with ``size_note`` saying
        which one ran. Without one, ``failure`` (what went wrong at the lab's size)."""
        self.model(task_id)
        return self.memo(
            f"other-size:{task_id}", lambda: self._any_size(self.rubric.tasks[task_id], failure)
        )

    def _sized(self, task: Task) -> Task:
        import dataclasses

        self.model(task.id)
        native = self.rubric.tasks[task.id].input_shape[-1]
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
        import dataclasses

        accepted = task.input_sizes or [task.input_shape[-1]]
        for size in [s for s in OTHER_SIZES if s not in accepted]:
            shape = [task.input_shape[0], size, size]
            try:
                got = self.sandbox.request("forward", 60, task=task.id, input_shape=shape)
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

    # --- weights ---------------------------------------------------------
    def weights(self, task_id: str) -> tuple[Path, str]:
        """The checkpoint for a task and how it was chosen."""
        assignment = self.memo("weights", self._assign_weights)
        if task_id not in assignment:
            task = self.rubric.tasks[task_id]
            unreadable = {
                p: why for p, why in self._memo.get("unreadable_weights", ("ok", {}))[1].items()
                if all(p != q for q, _ in assignment.values())
            }
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
        return assignment[task_id]

    def _assign_weights(self) -> dict[str, tuple[Path, str]]:
        files = self.submission.weights
        assignment: dict[str, tuple[Path, str]] = {}
        for task in self.rubric.tasks.values():
            named = [
                f
                for f in self.submission.find(task.weights)
                if f in files and all(f != p for p, _ in assignment.values())
            ]
            if named:
                assignment[task.id] = (named[0], f"named {named[0].name}")
        unclaimed = [f for f in files if all(f != p for p, _ in assignment.values())]
        waiting = [t for t in self.rubric.tasks if t not in assignment]
        if not unclaimed or not waiting:
            return assignment
        unreadable: dict[Path, str] = {}
        self._memo["unreadable_weights"] = ("ok", unreadable)
        built = []
        for task_id in waiting:
            try:
                self.model(task_id)
                built.append(task_id)
            except CheckFailed:
                continue
        for path in unclaimed:
            if not built:
                break
            try:
                fits = self.sandbox.request(
                    "fit", LOAD_TIMEOUT, tasks=built, path=self.in_sandbox("submission", path)
                )["fits"]
            except WorkerFailure as exc:
                unreadable[path] = exc.message
                continue
            except SandboxError as exc:
                unreadable[path] = failure_line("loading it", exc, aside=True)
                continue
            matching = [t for t in built if isinstance(fits.get(t), dict) and fits[t].get("fits")]
            if len(matching) == 1:
                task_id = matching[0]
                model = self.rubric.tasks[task_id].model
                how = f"{path.name} matched to {model} by its keys and shapes"
                notes = fits[task_id].get("notes") or []
                assignment[task_id] = (path, how + (f" ({'; '.join(notes)})" if notes else ""))
                built.remove(task_id)
        return assignment

    def checkpoint_shapes(self, task_id: str) -> tuple[Path, list[dict[str, list[int]]]] | None:
        """The task's checkpoint and its tensors' shapes under each reading the loader may
        use (keys as saved first; prefixes stripped, a checkpoint dict's entry), read by a
        worker that has run no student code (None: no checkpoint, or it cannot be read: the
        accuracy item says why). The worker that held student code is stopped for it; the
        next request restarts it."""

        def read() -> tuple[Path, list[dict[str, list[int]]]] | None:
            try:
                path, _ = self.weights(task_id)
                answer = self.sandbox.pristine(
                    "tensor_shapes", LOAD_TIMEOUT, path=self.in_sandbox("submission", path)
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

        return self.memo(f"checkpoint_shapes:{task_id}", read)

    # --- normalisation ---------------------------------------------------
    def normalization(self, task: Task, from_checkpoint: dict[str, Any] | None) -> preprocess.Normalization:
        if from_checkpoint:
            return preprocess.Normalization(
                tuple(from_checkpoint["mean"]), tuple(from_checkpoint["std"]), "stored in the checkpoint"
            )
        try:
            sources = self.sources(task)
        except CheckFailed:
            sources = []
        model_source = next((s for s in sources if s.model), None) or next(
            (s for s in sources if task.model in defined_names(s.text)), None
        )
        ordered = ([model_source] if model_source else []) + [s for s in sources if s is not model_source]
        for source in ordered:
            text, locate = self._full_text(source)
            found = preprocess.from_code(text, locate)
            if found:
                return found
        try:
            nb = self.notebook()
            texts = [
                o.get("text", "") if isinstance(o.get("text", ""), str) else "".join(o["text"])
                for c in nb.cells
                if c.get("cell_type") == "code"
                for o in c.get("outputs", [])
                if o.get("output_type") == "stream"
            ]
            found = preprocess.from_outputs(texts, self.notebook_path().name)
            if found:
                return found
        except CheckFailed:
            pass
        if self.rubric.normalize:
            return preprocess.Normalization(
                tuple(self.rubric.normalize["mean"]),
                tuple(self.rubric.normalize["std"]),
                "the rubric's default (nothing declared in the submission)",
            )
        spec = self.split().spec
        return preprocess.Normalization(
            spec.mean, spec.std, f"the usual {spec.name} statistics (nothing declared)"
        )

    def _full_text(self, source: Source):
        """Source text and a line -> place function. For notebooks: every code
        cell, since the test transform usually sits in a data cell."""
        if source.extracted is None:
            return source.text, lambda line: f"{source.label}, line {line}"
        try:
            nb = self.notebook()
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
        try:
            compile(joined, source.label, "exec", flags=0x400, dont_inherit=True)  # PyCF_ONLY_AST
        except SyntaxError:
            return source.text, lambda line: source.where(line)
        return joined, locate

    # --- data ------------------------------------------------------------
    def dataset_provenance(self) -> dict[str, Any] | None:
        """Files and hashes of the test split, if a check loaded it."""
        state, split = self._memo.get("split", (None, None))
        return split.provenance() if state == "ok" else None

    def split(self) -> Split:
        def load() -> Split:
            if self.data_root is None:
                raise NoDataRoot()
            try:
                return load_split(self.data_root, self.rubric.dataset, train=False)
            except DataError as exc:
                raise CheckFailed(f"the grader's test data is unusable ({exc}); "
                                  "this is not your fault: tell the course staff") from None

        return self.memo("split", load)

    @contextlib.contextmanager
    def test_images(self) -> Iterator[tuple[str, np.ndarray]]:
        """The test images in a secret random order, for the requests made inside this block.

        Yields the sandbox path and the permutation (kept by the grader). Afterwards the
        file is deleted and the worker that saw the images is stopped with whatever it
        wrote (``Sandbox.forget``): no later item's code can read them or show them back."""
        path, order = self._stage(TEST_IMAGES, self.split().images)
        try:
            yield path, order
        finally:
            (self.sandbox.job.inputs / TEST_IMAGES).unlink(missing_ok=True)
            self.sandbox.forget()

    def train_sample(self, size: int, seed: int) -> TrainSample:
        """``size`` training images drawn with ``seed`` (the same ones for every
        submission; never more than the test split has), staged without labels in
        a secret order."""

        def write() -> TrainSample:
            split = self._train_split()
            picked = training_sample(len(split.labels), min(size, len(self.split().labels)), seed)
            path, order = self._stage("train_sample.npy", split.images[picked])
            return TrainSample(path, order, split.labels[picked], len(split.labels), split.provenance())

        return self.memo(f"train_sample:{size}:{seed}", write)

    def _train_split(self) -> Split:
        if self.data_root is None:
            raise NoDataRoot()
        try:
            return load_split(self.data_root, self.rubric.dataset, train=True)
        except DataError as exc:
            raise CheckFailed(f"the grader's data root has no usable training split ({exc}); "
                              "this is not your fault: tell the course staff") from None

    def _stage(self, name: str, images: np.ndarray) -> tuple[str, np.ndarray]:
        """Images written for the worker in a secret random order; the sandbox path and the order."""
        order = np.random.default_rng(secrets.randbits(64)).permutation(len(images))
        target = self.sandbox.job.inputs / name
        np.save(target, images[order], allow_pickle=False)
        target.chmod(0o644)
        return self.in_sandbox("inputs", name), order


def training_sample(split_size: int, size: int, seed: int) -> np.ndarray:
    """Indices of the seeded training sample (sorted; the whole split when it is smaller)."""
    return np.sort(np.random.default_rng(seed).choice(split_size, min(size, split_size), replace=False))
