"""Turning exceptions raised by student code into one actionable line."""

from __future__ import annotations

import errno
import traceback

SINGLE_PROCESS = False  # set by main: seccomp refuses new processes with EPERM
ONE_PROCESS = "the sandbox runs your code in one process: do not start subprocesses or DataLoader workers"


class WorkerError(Exception):
    """An expected failure with a message meant for the student; ``kind`` is a
    ``protocol.Failure``. Worker side: outside the grader's ``errors`` hierarchy, since the
    worker imports nothing of the grader; it reaches the grader as a ``WorkerFailure``."""

    def __init__(self, kind: str, message: str, **details: object) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.details = details


def student_location(exc: BaseException, roots: tuple[str, ...]) -> tuple[str | None, int | None]:
    """The deepest traceback frame that lies in a student file (or None)."""
    file, line = None, None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith(roots):
            file, line = frame.filename, frame.lineno
    if isinstance(exc, SyntaxError) and exc.filename and exc.filename.startswith(roots):
        file, line = exc.filename, exc.lineno
    return file, line


def describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    if SINGLE_PROCESS and isinstance(exc, PermissionError) and exc.errno == errno.EPERM:
        text += f" ({ONE_PROCESS})"
    return text if len(text) <= 500 else text[:497] + "..."
