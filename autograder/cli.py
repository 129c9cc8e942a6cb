"""The ``autograder`` command.

Exit status of ``grade``: 0 whenever grading finished, whatever the score;
2 when the grader itself cannot grade (unknown rubric, missing data root, no
sandbox), with one line on stderr. Every command says so the same way: what it
cannot do as asked is an ``errors.UsageError``, which ``main`` prints as
``autograder: <message>`` and turns into exit status 2.

report/ (Jinja2 and the templates, +0.3 s) is imported only by ``grade``, so
``--help`` stays quick.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from . import __version__, calibrate, demo, gradescope_zip, selfcheck, untrusted
from . import grade as grading
from . import rubric as rubrics
from .batch import command as batch_command
from .data import dataset_spec, fetch
from .errors import UsageError

DATA_ENV = "AUTOGRADER_DATA"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rubric", required=True, help="rubric id (e.g. lab2-resnet18-cifar10) or path to a .toml file"
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help=f"folder with torchvision's dataset layouts (default ${DATA_ENV} or ./data)",
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where student models run: auto = the GPU if there is one (default auto)",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for the worker")
    parser.add_argument(
        "--memory-mb",
        type=int,
        default=8192,
        help="address-space cap for the worker on CPU runs, in MiB (default 8192)",
    )
    parser.add_argument(
        "--allow-unsandboxed",
        action="store_true",
        help="grade with a plain subprocess if no sandbox is available (tier C)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autograder",
        description="Sandboxed autograder for PyTorch CNN labs: grade a submission or a class, "
        "check your own lab folder, build a Gradescope zip.",
    )
    parser.add_argument("--version", action="version", version=f"autograder {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    grade = sub.add_parser("grade", help="grade one submission (folder or zip)")
    grade.add_argument("path", type=Path, help="the submission: a folder or a .zip")
    grade.add_argument(
        "--out",
        type=Path,
        default=Path("autograder-out"),
        help="where results.json and report.html go (default autograder-out)",
    )
    grade.add_argument(
        "--time-budget",
        type=float,
        default=None,
        help="seconds for the whole submission (default $AUTOGRADER_TIME_BUDGET, else the rubric's "
        "time_budget, 480 s unless it says otherwise)",
    )
    _common(grade)
    batch = sub.add_parser("batch", help="grade a class: Moodle download -> gradebook.csv, summary.html")
    batch_command.add_arguments(batch)
    _common(batch)
    demo.add_arguments(
        sub.add_parser("demo", help="grade bundled examples on real MNIST, offline (about a minute)")
    )
    selfcheck.add_arguments(sub.add_parser("check", help="students: the grader's checks on your lab folder"))
    fetch.add_arguments(
        sub.add_parser("data", help="download a dataset, or convert an image folder, into a data root")
    )
    gradescope_zip.add_arguments(
        sub.add_parser("build-gradescope", help="write the autograder.zip to upload to Gradescope")
    )
    calibrate.add_arguments(
        sub.add_parser(
            "calibrate", help="staff: reference models for a generalisation item's calibrated test"
        )
    )
    return parser


def data_root(arg: Path | None, dataset: str) -> Path:
    root = arg or Path(os.environ.get(DATA_ENV, "data"))
    folder = root / dataset_spec(dataset).folder
    if not folder.is_dir():
        raise UsageError(
            f"data root {root} has no {folder.relative_to(root)} for {dataset} "
            f"(pass --data-root, or fetch it with `autograder data {dataset}`)"
        )
    return root


def cmd_grade(args: argparse.Namespace) -> int:
    from .report import write_all  # Jinja2 and the templates: +0.3 s, only when grading

    rubric = rubrics.load(args.rubric)
    root = data_root(args.data_root, rubric.dataset)
    if not args.path.exists():
        raise UsageError(f"{args.path} does not exist")
    with grading.stop_on_sigterm():  # SIGTERM: the items graded so far, the rest "not run"
        result = grading.grade(
            args.path,
            rubric,
            root,
            device=args.device,
            allow_unsandboxed=args.allow_unsandboxed,
            threads=args.threads,
            memory_bytes=args.memory_mb << 20,
            time_budget=args.time_budget,
        )
    paths = write_all(result, args.out)
    print(
        f"{result.rubric_title}: {result.score:g} / {result.max_score:g} autograded points"
        + (f" (+{result.manual_points:g} graded by a TA)" if result.manual_points else "")
    )
    for item in result.items:
        mark = "TA " if item.manual else ("ok " if item.passed else "FAIL")
        print(f"  {mark:<4} {item.number:<5} {item.name}: {untrusted.terminal(item.message)}")
    print(f"results: {untrusted.terminal(paths['results'])}  report: {untrusted.terminal(paths['html'])}")
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    rubric = rubrics.load(args.rubric)
    return batch_command.run(args, rubric, data_root(args.data_root, rubric.dataset))


def cmd_demo(args: argparse.Namespace) -> int:
    return demo.command(args)


def cmd_check(args: argparse.Namespace) -> int:
    return selfcheck.command(args)


def cmd_data(args: argparse.Namespace) -> int:
    return fetch.command(args)


def cmd_build_gradescope(args: argparse.Namespace) -> int:
    return gradescope_zip.command(args)


def cmd_calibrate(args: argparse.Namespace) -> int:
    rubric = rubrics.load(args.rubric)
    args.data_root = data_root(args.data_root, rubric.dataset)
    return calibrate.command(args, rubric)


def _staff_notes(command: str) -> None:
    """A rubric's SelfReportedWarning is for the staff who run the grader: one plain
    ``note:`` line on stderr, not Python's warning format; students (check, demo) do not
    need it."""
    if command in ("check", "demo"):
        warnings.simplefilter("ignore", rubrics.SelfReportedWarning)
        return
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, rubrics.SelfReportedWarning):
            print(f"note: {untrusted.terminal(message)}", file=sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _staff_notes(args.command)
    handlers = {
        "grade": cmd_grade,
        "batch": cmd_batch,
        "demo": cmd_demo,
        "check": cmd_check,
        "data": cmd_data,
        "build-gradescope": cmd_build_gradescope,
        "calibrate": cmd_calibrate,
    }
    try:
        return handlers[args.command](args)
    except UsageError as exc:  # a rubric, a data root, no sandbox, a class download, ...: one line
        print(f"autograder: {untrusted.terminal(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
