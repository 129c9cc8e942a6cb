"""What every check can reach: the submission, the sandbox, the data, and the
facts earlier checks established (which file defines the model, which
weights belong to which task, which normalisation applies)."""

from __future__ import annotations

import secrets
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
    defined_names,
    extract,
    read_notebook,
)
from ..result import CheckFailed, ItemResult
from ..rubric import Rubric, Task
from ..sandbox import Sandbox, SandboxError, Tier, WorkerFailure
from ..sandbox.worker import protocol
from ..submission import Submission

GENERIC_WEIGHTS = ("*.pth", "*.pt", "*.ckpt", "*.bin", "*.safetensors", "*.pkl")


@dataclass
class Source:
    """A place a model can be defined: a .py file or a notebook's definitions."""

    label: str  # what the student knows it as: 'resnet18.py', 'lab2.ipynb'
    module: str  # name given to it in the worker
    sandbox_path: str
    text: str
    extracted: ExtractedCode | None = None

    def where(self, line: int | None) -> str:
        if self.extracted is not None:
            return f"{self.label} {self.extracted.locate(line)}"
        return f"{self.label} line {line}" if line else self.label


@dataclass
class Context:
    rubric: Rubric
    submission: Submission
    sandbox: Sandbox
    data_root: Path | None
    device: str
    results: dict[str, ItemResult] = field(default_factory=dict)
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
                    code = self.memo(f"extracted:{rel.as_posix()}", lambda rel=rel: self._extract(rel))
                except CheckFailed as exc:
                    self._memo["source_errors"][1].append(str(exc))
                    continue
                name = f"nb_{len(found)}.py"
                target = self.sandbox.job.extracted / name
                target.write_text(code.text, encoding="utf-8")
                target.chmod(0o644)
                found.append(
                    Source(
                        rel.as_posix(),
                        f"nb_{len(found)}",
                        self.in_sandbox("extracted", name),
                        code.text,
                        code,
                    )
                )
        return found

    def _extract(self, rel: Path) -> ExtractedCode:
        """A notebook's definitions, once per notebook (every task looks in the same one)."""
        if rel == self.notebook_path():
            return extract(self.notebook())
        try:
            return extract(read_notebook(self.submission.root / rel))
        except NotebookError as exc:
            raise CheckFailed(str(exc)) from None

    def model(self, task_id: str) -> Source:
        """Import the code defining the task's model and build it in the worker."""
        return self.memo(f"model:{task_id}", lambda: self._model(self.rubric.tasks[task_id]))

    def _model(self, task: Task) -> Source:
        sources = self.sources(task)
        source = next((s for s in sources if task.model in defined_names(s.text)), None)
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
                f"{looked}; expected in {' or '.join(task.sources)}){hint}"
            )
        try:
            self.sandbox.setup(
                "load_source", self.rubric.import_timeout, name=source.module, path=source.sandbox_path
            )
        except WorkerFailure as exc:
            raise CheckFailed(
                f"importing {source.where(exc.details.get('line'))} failed: {exc.message}"
            ) from None
        except SandboxError as exc:
            raise CheckFailed(
                f"importing {source.label} {_sandbox_words(exc)} (move training "
                'code under `if __name__ == "__main__":`)'
            ) from None
        try:
            self.sandbox.setup(
                "build",
                self.rubric.import_timeout,
                task=task.id,
                module=source.module,
                cls=task.model,
                num_classes=task.num_classes,
            )
        except WorkerFailure as exc:
            raise CheckFailed(
                f"{task.model}() failed at {source.where(exc.details.get('line'))}: {exc.message}"
            ) from None
        except SandboxError as exc:
            raise CheckFailed(f"building {task.model}() {_sandbox_words(exc)}") from None
        return source

    def task(self, task_id: str) -> Task:
        """The task as this submission needs it. With ``input_sizes`` (AlexNet on
        28x28 or up-sampled to 224) the first size the model maps to
        (N, num_classes) sets the probe shape and the test-time resize."""
        task = self.rubric.tasks[task_id]
        if not task.input_sizes:
            return task
        return self.memo(f"task:{task_id}", lambda: self._sized(task))

    def _sized(self, task: Task) -> Task:
        import dataclasses

        self.model(task.id)
        native = self.rubric.tasks[task.id].input_shape[-1]
        tried = []
        for size in task.input_sizes:
            shape = [task.input_shape[0], size, size]
            try:
                got = self.sandbox.request("forward", 60, task=task.id, input_shape=shape)
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

    # --- weights ---------------------------------------------------------
    def weights(self, task_id: str) -> tuple[Path, str]:
        """The checkpoint for a task and how it was chosen."""
        assignment = self.memo("weights", self._assign_weights)
        if task_id not in assignment:
            task = self.rubric.tasks[task_id]
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
                    "fit", self.rubric.import_timeout, tasks=built, path=self.in_sandbox("submission", path)
                )["fits"]
            except (WorkerFailure, SandboxError):
                continue
            matching = [t for t in built if isinstance(fits.get(t), dict) and fits[t].get("fits")]
            if len(matching) == 1:
                task_id = matching[0]
                model = self.rubric.tasks[task_id].model
                assignment[task_id] = (path, f"{path.name} matched to {model} by its keys and shapes")
                built.remove(task_id)
        return assignment

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
        model_source = next((s for s in sources if task.model in defined_names(s.text)), None)
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
                raise CheckFailed("no data root was given to the grader")
            try:
                return load_split(self.data_root, self.rubric.dataset, train=False)
            except DataError as exc:
                raise CheckFailed(f"the grader's test data is unusable ({exc}); "
                                  "this is not your fault: tell the course staff") from None

        return self.memo("split", load)

    def test_images(self) -> tuple[str, np.ndarray]:
        """The test images in a secret random order, written for the worker.

        Returns the sandbox path and the permutation (kept by the grader)."""

        def write():
            split = self.split()
            order = np.random.default_rng(secrets.randbits(64)).permutation(len(split.labels))
            target = self.sandbox.job.inputs / "test_images.npy"
            np.save(target, split.images[order], allow_pickle=False)
            target.chmod(0o644)
            return self.in_sandbox("inputs", "test_images.npy"), order

        return self.memo("test_images", write)


def _sandbox_words(exc: SandboxError) -> str:
    if exc.kind == "timeout":
        return f"took too long ({exc.message})"
    return f"crashed the worker ({exc.message})"
