"""What ``run_autograder`` runs on Gradescope: always leaves a valid results.json.

Gradescope shows "The autograder failed to execute correctly" when the file is
missing or invalid, so even a failure of the grader itself (no data, a bug)
ends in a results.json that says what happened. Gradescope stops
``run_autograder`` at its time limit with SIGTERM (SIGKILL follows): the items
graded by then keep their results, the rest say they were not run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import untrusted
from .errors import UsageError
from .grade import Stopped, grade, stop_on_sigterm
from .report.write import write_all, write_atomic
from .rubric import load
from .sandbox import detect_tier
from .sandbox.lockdown import lockdown


class NotConfigured(UsageError):
    """The image lacks what grading needs (a rubric): said in one line, no traceback."""


def failure_results(message: str) -> dict[str, object]:
    message = untrusted.text_block(message)
    return {
        "score": 0,
        "output": f"The autograder could not grade this submission: {message}\n"
        "This is not a problem with your code; the course staff have been told.",
        "output_format": "text",
        "test_output_format": "text",
        "tests": [
            {
                "name": "Autograder error",
                "status": "failed",
                "output": message,
                "visibility": "visible",
                "extra_data": {"id": "autograder.error"},
            }
        ],
        "extra_data": {"grader_error": message},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run_autograder")
    parser.add_argument("--home", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args(argv)
    root = Path(os.environ.get("AUTOGRADER_ROOT", "/autograder"))
    results_dir = root / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    result = None
    try:
        rubric_id = os.environ.get("AUTOGRADER_RUBRIC")
        marker = args.home / "rubric-id"
        if not rubric_id and marker.is_file():
            rubric_id = marker.read_text().strip()
        if not rubric_id:
            raise NotConfigured(
                f"no rubric is configured: build the zip with `autograder build-gradescope --rubric ID`, "
                f"or set AUTOGRADER_RUBRIC, or write the rubric id into {marker}"
            )
        rubric = load(rubric_id)
        data_root = Path(os.environ.get("AUTOGRADER_DATA", args.home / "data"))

        try:
            with stop_on_sigterm():
                tier = detect_tier(os.environ.get("AUTOGRADER_ALLOW_UNSANDBOXED") == "1")
                # tier B: hide data and solutions from the sandbox uid
                lockdown(tier, args.home, data_root, results_dir)
                result = grade(root / "submission", rubric, data_root, device="auto", tier=tier)
                write_all(result, results_dir)
        except Stopped:  # before grade() began or while writing: SIGTERM is ignored from now on
            if result is None:
                raise RuntimeError("the grader was stopped (SIGTERM) before it could grade") from None
            write_all(result, results_dir)
        print(
            f"graded: {result.score:g} / {result.max_score:g}; tier "
            f"{(result.provenance.get('sandbox') or {}).get('tier')}"
        )
        return 0
    except UsageError as exc:  # the image's setup (rubric, data, sandbox), not a bug: one line
        message = str(exc)
    except Exception as exc:  # noqa: BLE001 - whatever happens, Gradescope gets a valid file
        print(untrusted.traceback_text(), file=sys.stderr, end="")
        message = f"{type(exc).__name__}: {exc}"
    print(f"run_autograder: {message}", file=sys.stderr)
    write_atomic(results_dir / "results.json", json.dumps(failure_results(message), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
