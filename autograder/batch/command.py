"""``autograder batch``: its options, and the lines it prints.

The runner (with report/ and Jinja2) is imported when a batch runs, not when
``autograder --help`` builds the parser.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..untrusted import terminal

EXECUTORS = ("local", "slurm", "submitit-local")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        type=Path,
        help="Moodle 'Download all submissions' zip or folder, or a folder of StudentID_lab2.zip files",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("autograder-batch"),
        help="output folder; re-running with the same folder resumes (default ./autograder-batch)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="submissions graded at once on this machine (default: CPUs, ~3 GiB each, at most 4 on a GPU)",
    )
    parser.add_argument(
        "--teams", action="store_true", help="Moodle team submissions: folder numbers are group ids"
    )
    parser.add_argument(
        "--worksheet",
        type=Path,
        default=None,
        help="Moodle offline grading worksheet (CSV) to fill in place: Grade and Feedback comments",
    )
    parser.add_argument(
        "--manual",
        type=Path,
        default=None,
        help="CSV of the TA's manual scores (e.g. the report), merged into the final grade",
    )
    parser.add_argument(
        "--max-grade",
        type=float,
        default=None,
        help="gradebook.csv grades out of this (default: the rubric's total points)",
    )
    parser.add_argument(
        "--grade-item", default=None, help="gradebook.csv grade column header (default: the rubric title)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or per-submission lines")
    slurm = parser.add_argument_group("cluster (Slurm, through submitit)")
    slurm.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="local: worker processes here (default); slurm: array jobs; "
        "submitit-local: the Slurm code path run as local processes (a dry run)",
    )
    slurm.add_argument("--partition", default=None, help="Slurm partition (default: the cluster's)")
    slurm.add_argument("--account", default=None, help="Slurm account to charge (default: yours)")
    slurm.add_argument(
        "--sbatch-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other #SBATCH option, repeatable: --sbatch-option qos=ckpt",
    )
    slurm.add_argument("--gpus-per-job", type=int, default=0, help="GPUs per array task (default 0)")
    slurm.add_argument("--cpus-per-job", type=int, default=4, help="CPUs per array task (default 4)")
    slurm.add_argument("--mem-gb", type=int, default=16, help="memory per array task in GB (default 16)")
    slurm.add_argument("--time-limit", type=int, default=60, help="minutes per array task (default 60)")
    slurm.add_argument("--array-size", type=int, default=32, help="array tasks running at once (default 32)")
    slurm.add_argument(
        "--per-job",
        type=int,
        default=None,
        help="submissions per array task (default: spread over --array-size)",
    )


def _sbatch_options(pairs: list[str]) -> dict[str, str]:
    from .grades import BatchInputError

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BatchInputError(f"--sbatch-option {pair}: write it as KEY=VALUE, e.g. qos=ckpt")
        options[key.strip().removeprefix("--")] = value.strip()
    return options


def run(args: argparse.Namespace, rubric, data_root: Path) -> int:  # noqa: ANN001 - a Rubric
    """Grade the batch; raises BatchInputError / DownloadError for a one-line message."""
    from .runner import BatchConfig, run_batch
    from .slurm import SlurmOptions

    config = BatchConfig(
        path=args.path,
        out=args.out,
        rubric=rubric,
        data_root=data_root,
        device=args.device,
        workers=args.workers,
        threads=args.threads,
        memory_bytes=args.memory_mb << 20,
        allow_unsandboxed=args.allow_unsandboxed,
        executor=args.executor,
        slurm=SlurmOptions(
            partition=args.partition,
            account=args.account,
            extra=_sbatch_options(args.sbatch_option),
            gpus_per_job=args.gpus_per_job,
            cpus_per_job=args.cpus_per_job,
            mem_gb=args.mem_gb,
            time_limit_min=args.time_limit,
            array_size=args.array_size,
            per_job=args.per_job,
        ),
        teams=args.teams,
        worksheet=args.worksheet,
        manual=args.manual,
        max_grade=args.max_grade,
        grade_item=args.grade_item,
        progress=not args.no_progress,
    )
    outcome = run_batch(config)
    print(
        f"{len(outcome.students)} submissions: {outcome.graded_now} graded now, "
        f"{outcome.from_cache} from the cache, {len(outcome.errors)} grader errors "
        f"({outcome.seconds:.0f} s)"
    )
    for note in outcome.notes:
        print(f"note: {terminal(note)}")
    for warning in outcome.warnings:
        print(f"warning: {terminal(warning)}")
    for row in outcome.errors:
        who = f"{terminal(row.student.name)} ({terminal(row.student.key)})"
        print(f"grader error: {who}: {terminal(row.error)}")
    for name, path in outcome.paths.items():
        print(f"{name}: {terminal(path)}")
    return 0
