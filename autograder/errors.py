"""The grader's exception hierarchy: one base, three families.

- ``UsageError``: the grader cannot run as asked (a command-line argument, a rubric,
  a data root, a class download or worksheet, no sandbox on this machine). The message
  is the one line to print; ``autograder`` prints it as ``autograder: <message>`` and
  exits 2 (``cli.main``), whatever the command.
- ``SubmissionProblem``: what a student handed in cannot be graded as the rubric asks
  (an unreadable zip or notebook, a failed check). The message becomes that submission's,
  or that item's, line in its result; grading goes on.
- ``RequestFailed``: a request to the sandboxed worker got no result: the worker answered
  that it failed (``sandbox.WorkerFailure``, kinds in ``sandbox.worker.protocol.Failure``) or
  gave no answer (``sandbox.SandboxError``, kinds in ``sandbox.session.NoAnswer``).
  ``sandbox.session.failure_line`` is the one translation into the student's line.

The worker package (``autograder/sandbox/worker``) runs inside the sandbox and imports
nothing of the grader, so its own exceptions (``WorkerError``, ``training.Diverged``)
stay outside this hierarchy: they cross the protocol as a failure answer and arrive
as a ``WorkerFailure``. ``grade.Stopped`` (SIGTERM) is a control-flow signal, not an
error: a ``BaseException``, so no ``except Exception`` swallows it.

This module imports nothing, so every module can import it.
"""

from __future__ import annotations


class AutograderError(Exception):
    """Base of every error the grader raises on purpose; the message is meant for a person."""


class UsageError(AutograderError):
    """The grader cannot run as asked; the message is the one line to print."""


class SubmissionProblem(AutograderError):
    """A student's submission, or one item of it, cannot be graded as asked; the message
    is the student's line in the result."""


class RequestFailed(AutograderError):
    """A request to the sandboxed worker got no result; ``kind`` says why."""

    kind: str
    message: str
