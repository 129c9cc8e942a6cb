"""One error model: every exception the grader raises on purpose derives from
``errors.AutograderError``; the command line turns every ``UsageError`` into one line and
exit status 2; one function words a failed worker request for the student."""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
from pathlib import Path
from types import SimpleNamespace

import pytest

import autograder
from autograder import cli, gradescope_entry
from autograder.batch.grades import BatchInputError
from autograder.batch.moodle import DownloadError
from autograder.data import DataError
from autograder.data.fetch import FetchError
from autograder.demo import DemoError
from autograder.errors import AutograderError, RequestFailed, SubmissionProblem, UsageError
from autograder.grade import Stopped
from autograder.gradescope_entry import NotConfigured
from autograder.gradescope_zip import BuildError
from autograder.notebook.extract import NotebookError
from autograder.result import CheckFailed, NoDataRoot
from autograder.rubric import RubricError
from autograder.sandbox import (
    Failure,
    NoAnswer,
    SandboxError,
    SandboxUnavailable,
    WorkerFailure,
    failure_line,
)
from autograder.sandbox.guard import UnsafeSetup
from autograder.selfcheck import SelfCheckError
from autograder.submission import SubmissionError

WORKER = Path(autograder.__file__).parent / "sandbox" / "worker"

FAMILIES = {
    UsageError: [
        RubricError, DataError, FetchError, DemoError, SelfCheckError, BuildError, BatchInputError,
        DownloadError, NotConfigured, SandboxUnavailable, UnsafeSetup,
    ],
    SubmissionProblem: [SubmissionError, NotebookError, CheckFailed, NoDataRoot],
    RequestFailed: [SandboxError, WorkerFailure],
}  # fmt: skip


@pytest.mark.parametrize(
    ("family", "cls"), [(f, c) for f, members in FAMILIES.items() for c in members], ids=lambda c: c.__name__
)
def test_each_error_a_user_can_meet_is_in_its_family(family, cls):
    assert issubclass(cls, family) and issubclass(family, AutograderError)
    assert cli.UsageError is UsageError  # the name cli.py always exported


def test_every_grader_side_exception_class_derives_from_the_base():
    """A new exception class anywhere in the grader joins the hierarchy. Outside it: the
    worker package (it imports nothing of the grader) and Stopped (a control-flow signal)."""
    outside = []
    for found in pkgutil.walk_packages(autograder.__path__, "autograder."):
        if found.name.startswith("autograder.sandbox.worker"):
            continue
        module = importlib.import_module(found.name)
        outside += [
            f"{module.__name__}.{value.__name__}"
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, BaseException)
            and not issubclass(value, (AutograderError, Warning))
            and value.__module__ == module.__name__
        ]
    assert outside == ["autograder.grade.Stopped"]
    assert not issubclass(Stopped, Exception)


def test_the_worker_package_imports_nothing_of_the_grader():
    for path in WORKER.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level <= 1 and not (node.module or "").startswith("autograder"), path.name
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("autograder") for a in node.names), path.name


def _raise(exc: BaseException):
    def fail(*args, **kwargs):
        raise exc

    return fail


RUBRIC = SimpleNamespace(dataset="mnist", id="stub", title="stub")
CASES = [  # (argv, where the error is raised: module, attribute, error)
    (["grade", "."], "autograder.rubric", "load", RubricError("lab.toml:3: unknown key 'x'")),
    (["grade", "."], "autograder.grade", "grade", SandboxUnavailable("no sandbox: pass --allow-unsandboxed")),
    (["grade", "."], "autograder.grade", "grade", UnsafeSetup("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 is set")),
    (["grade", "."], "autograder.grade", "grade", DataError("data/MNIST holds no test split")),
    (["batch", "."], "autograder.batch.command", "run", BatchInputError("ws.csv:1: not a worksheet")),
    (["batch", "."], "autograder.batch.command", "run", DownloadError("no submissions found in dl")),
    (["demo"], "autograder.demo", "command", DemoError("the demo needs torchvision")),
    (["check", "."], "autograder.selfcheck", "command", SelfCheckError("no .rubric file: pass --rubric ID")),
    (["data", "mnist"], "autograder.data.fetch", "command", FetchError("mnist: no network")),
    (["build-gradescope"], "autograder.gradescope_zip", "command", BuildError("cannot write the zip")),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "module", "name", "error"), CASES, ids=lambda v: type(v).__name__)
def test_cli_turns_each_usage_error_into_one_line_and_status_2(
    argv, module, name, error, monkeypatch, capsys, tmp_path
):
    monkeypatch.chdir(tmp_path)
    if argv[0] in ("grade", "batch"):
        monkeypatch.setattr("autograder.rubric.load", lambda rubric_id: RUBRIC)
        monkeypatch.setattr(cli, "data_root", lambda arg, dataset: tmp_path)
    monkeypatch.setattr(f"{module}.{name}", _raise(error))
    rubric = ["--rubric", "stub"] if argv[0] in ("grade", "batch", "build-gradescope") else []
    assert cli.main([*argv, *rubric]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"autograder: {error}\n"


def test_cli_says_a_missing_data_root_in_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr("autograder.rubric.load", lambda rubric_id: RUBRIC)
    assert cli.main(["grade", str(tmp_path), "--rubric", "stub", "--data-root", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err == (
        f"autograder: data root {tmp_path / 'none'} has no MNIST/raw for mnist "
        "(pass --data-root, or fetch it with `autograder data mnist`)\n"
    )


def test_other_errors_are_not_mistaken_for_usage(monkeypatch, tmp_path):
    """A failure that is no UsageError reaching main is a grader bug: it is not hidden."""
    monkeypatch.setattr("autograder.demo.command", _raise(CheckFailed("not a usage error")))
    with pytest.raises(CheckFailed):
        cli.main(["demo"])


def test_one_translation_words_every_way_a_request_ends():
    what = "SimpleCNN forward pass"
    crashed = WorkerFailure(Failure.CRASH, "ZeroDivisionError: division by zero", {"line": 9})
    assert failure_line(what, crashed, where="simple_cnn.py line 9") == (
        "SimpleCNN forward pass failed at simple_cnn.py line 9: ZeroDivisionError: division by zero"
    )
    assert failure_line("importing simple_cnn.py line 9", crashed, text="ZeroDivisionError") == (
        "importing simple_cnn.py line 9 failed: ZeroDivisionError"
    )
    timeout = SandboxError(NoAnswer.TIMEOUT, "no answer within the item's 8 s time limit", 8.0)
    assert failure_line(what, timeout) == "SimpleCNN forward pass did not finish within the 8 s time limit"
    assert failure_line("importing simple_cnn.py", timeout, aside=True) == (
        "importing simple_cnn.py took too long (no answer within the item's 8 s time limit)"
    )
    budget = SandboxError(NoAnswer.TIME_BUDGET, "the submission's time budget (25 s) ran out")
    assert failure_line(what, budget) == (
        "SimpleCNN forward pass was stopped: the submission's time budget (25 s) ran out"
    )
    assert failure_line("loading it", budget, aside=True) == (
        "loading it was stopped (the submission's time budget (25 s) ran out)"
    )
    died = SandboxError(NoAnswer.CRASH, "the worker process ended with exit status 3")
    assert failure_line(what, died) == (
        "SimpleCNN forward pass crashed the worker: the worker process ended with exit status 3"
    )
    assert failure_line("importing simple_cnn.py", died, aside=True) == (
        "importing simple_cnn.py crashed the worker (the worker process ended with exit status 3)"
    )


def test_no_data_root_is_told_by_data_not_by_words():
    assert NoDataRoot().data == {"no_data_root": True}
    assert NoDataRoot().message == "no data root was given to the grader"


@pytest.mark.parametrize(
    ("error", "one_line"),
    [
        (SandboxUnavailable("no sandbox: install bubblewrap"), True),
        (RuntimeError("a bug in the grader"), False),  # control: a bug keeps its traceback
    ],
    ids=["usage", "bug"],
)
def test_run_autograder_reports_a_setup_error_in_one_line(monkeypatch, capsys, tmp_path, error, one_line):
    """On Gradescope a machine without a usable sandbox is the image's setup, not a bug:
    one line on stderr and in results.json, no traceback; Gradescope always gets a file."""

    monkeypatch.setenv("AUTOGRADER_ROOT", str(tmp_path))
    monkeypatch.setenv("AUTOGRADER_RUBRIC", "demo-mnist")
    monkeypatch.setattr(gradescope_entry, "detect_tier", _raise(error))
    assert gradescope_entry.main(["--home", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    assert results["score"] == 0 and str(error) in results["output"]
    assert err.endswith(f"{'' if one_line else type(error).__name__ + ': '}{error}\n")
    assert ("Traceback" in err) is not one_line
