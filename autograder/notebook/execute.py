"""Running a submitted notebook in a sandbox of its own (grader side).

Why a second sandbox rather than the submission's worker: the notebook needs
a dataset (``./data``) and a kernel, and neither belongs next to the worker
that computes the graded accuracy. The notebook gets a separate job folder
with a copy of the dataset bound read-only, in which the test split is a
stand-in without the hidden labels (``data/staging.py``); the submission's
worker is stopped while it runs. The copy lives under an unguessable name in
a folder other uids cannot list, and is deleted as soon as the run ends.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from ..data import DataError
from ..data.staging import stage_without_test_labels
from ..sandbox import Sandbox, SandboxError, Tier, WorkerFailure, failure_line
from ..sandbox.launcher import Job
from ..sandbox.worker import protocol
from .extract import MAX_NOTEBOOK_BYTES, parse_notebook
from .smoke import Prepared

SETUP_SECONDS = 90.0  # at most: worker start, copying the submission, kernel start-up


def budget(limit: float) -> float:
    """Seconds the cells may take within an item's ``limit``: the rest is for start-up."""
    return max(limit - SETUP_SECONDS, 0.75 * limit)


@dataclass
class Execution:
    status: str  # ok, error, timeout, total_timeout, dead_kernel, no_kernel, sandbox
    message: str
    answer: dict[str, Any]
    notebook: nbformat.NotebookNode | None
    log: str
    stand_in: str = ""  # what the notebook's test split held instead of the hidden one


def _read_back(path: Path) -> nbformat.NotebookNode:
    """The executed notebook, read as hostile input: no links, no FIFOs, bounded size."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_NOTEBOOK_BYTES:
            raise ValueError(
                f"the executed notebook is not a regular file under {MAX_NOTEBOOK_BYTES >> 20} MiB"
            )
        raw = handle.read(MAX_NOTEBOOK_BYTES + 1)
    return parse_notebook(raw, "the executed notebook")


def _clean(answer: dict[str, Any]) -> dict[str, Any]:
    """The worker's summary with the types the check expects (anything else dropped)."""
    kinds = {
        "status": str,
        "message": str,
        "ename": str,
        "evalue": str,
        "cells_run": int,
        "failed_cell": int,
        "limit": (int, float),
        "seconds": (int, float),
        "kernel_seconds": (int, float),
        "outputs_cut": int,
    }
    return {
        k: v for k, v in answer.items() if k in kinds and isinstance(v, kinds[k]) and not isinstance(v, bool)
    }


def run(
    sandbox: Sandbox,
    prepared: Prepared,
    data: tuple[Path, str] | None,
    cell_timeout: float,
    limit: float,
) -> Execution:
    """Execute ``prepared.nb`` in a fresh sandbox beside ``sandbox``'s job folder, within ``limit`` s.

    ``data`` is (data root, dataset name) when the notebook gets a dataset at ``./data``."""
    total = budget(limit)
    main = sandbox.job
    root = main.root / f"nbexec-{secrets.token_hex(12)}"
    root.mkdir(mode=0o711)
    root.chmod(0o711)
    inputs = root / "inputs"
    inputs.mkdir(mode=0o755)
    nbformat.write(prepared.nb, str(inputs / "notebook.ipynb"))
    (inputs / "notebook.ipynb").chmod(0o644)
    tier_a = sandbox.tier.tier is Tier.A
    sandbox.close()  # the submission's own worker stops before the notebook's sandbox starts
    try:
        data_path, binds, stand_in = None, [], ""
        if data is not None:
            staged = root / secrets.token_hex(16)
            try:
                stand_in = stage_without_test_labels(data[0], data[1], staged)
            except DataError as exc:
                return Execution("sandbox", f"the dataset could not be staged: {exc}", {}, None, "")
            data_path, binds = str(staged), [staged]
        job = Job(
            root=root,
            submission=main.submission,
            extracted=root / "extracted",
            inputs=inputs,
            out=root / "out",
            lib=root / "lib",
            data_binds=binds,
        )
        args = {
            "notebook": f"{protocol.SANDBOX_INPUTS}/notebook.ipynb"
            if tier_a
            else str(inputs / "notebook.ipynb"),
            "submission": protocol.SANDBOX_SUBMISSION if tier_a else str(main.submission),
            "out_name": "executed.ipynb",
            "cell_timeout": cell_timeout,
            "total": total,
            "data": data_path,
        }
        limits = dataclasses.replace(sandbox.limits, single_process=False)  # the kernel is a process
        done = _in_sandbox(Sandbox(sandbox.tier, job, limits, sandbox.deadline), args, limit)
        done.stand_in = stand_in
        return done
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _in_sandbox(box: Sandbox, args: dict[str, Any], limit: float) -> Execution:
    with box:
        try:
            answer = box.request("execute_notebook", limit, **args)
        except (WorkerFailure, SandboxError) as exc:
            return Execution("sandbox", failure_line("the notebook run", exc), {}, None, box.output())
        answer = _clean(answer)
        try:
            executed = _read_back(box.job.out / "executed.ipynb")
        except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds on hostile files
            return Execution(
                "sandbox",
                f"the executed notebook came back unreadable ({type(exc).__name__}: {str(exc)[:200]})",
                answer,
                None,
                box.output(),
            )
        return Execution(
            str(answer.get("status", "")), str(answer.get("message", "")), answer, executed, box.output()
        )
