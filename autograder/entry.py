"""The ``autograder`` command's entry point: one line, not a traceback, where it cannot run.

The sandbox confines student code with Linux's own controls (``prctl``, namespaces,
rlimits, ``fcntl`` locks, bubblewrap), imported with the grader's modules; on macOS or
Windows the first of them would fail as an ImportError deep in a traceback.
"""

from __future__ import annotations

import sys


def unsupported() -> str | None:
    """Why this machine cannot run the grader or the self-check, or None on Linux."""
    if sys.platform.startswith("linux"):
        return None
    return (
        f"the autograder needs Linux (this is {sys.platform}): it runs code with Linux's process "
        "controls; run it on a Linux machine, Colab or Kaggle"
    )


def main(argv: list[str] | None = None) -> int:
    why = unsupported()
    if why:
        print(f"autograder: {why}", file=sys.stderr)
        return 2
    from .cli import main as cli_main

    return cli_main(argv)
