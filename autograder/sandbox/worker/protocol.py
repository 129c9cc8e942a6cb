"""Wire format between the grader and the sandbox worker.

Requests are JSON lines on the worker's stdin. Responses are JSON lines on a
dedicated pipe (its descriptor is passed as ``--reply-fd``) so that student prints never
mix with answers. Large arrays travel as ``.npy`` files in the job's ``out``
folder, referenced by name. Both sides import this module; it needs only the
standard library.
"""

from __future__ import annotations

import json
from typing import Any

RESPONSE_FD = 3
MAX_RESPONSE_BYTES = 4 << 20  # a response line longer than this is a protocol violation
MAX_ARRAY_BYTES = 256 << 20

# Where things appear inside a tier A sandbox. Other tiers use real host paths.
SANDBOX_SUBMISSION = "/sandbox/submission"
SANDBOX_EXTRACTED = "/sandbox/extracted"
SANDBOX_INPUTS = "/sandbox/inputs"
SANDBOX_OUT = "/sandbox/out"


class Failure:
    """Why a request failed: the ``kind`` of a failure answer, declared once for both sides.

    The worker raises ``WorkerError(Failure.X, message, **details)``; the grader receives it
    as ``sandbox.WorkerFailure`` with the same kind. Student code runs in the worker's
    process, so a kind, like the message, is what that process said."""

    IMPORT = "import"  # importing a student file raised or exited (details: file, line)
    MISSING = "missing"  # a module, name or built model the request needs is not there
    BUILD = "build"  # the model's class or function returned no nn.Module
    CRASH = "crash"  # student code raised or called exit() (details: file, line)
    WEIGHTS = "weights"  # a checkpoint cannot be read as a state_dict
    FIT = "fit"  # its tensors do not fit the model (details: missing, unexpected, mismatched, notes)
    INPUT = "input"  # the grader's images are not uint8 (N, C, H, W)
    PREPROCESS = "preprocess"  # a normalisation that does not match the images' channels
    OUTPUT = "output"  # the model's output is not (batch, classes)
    DATA = "data"  # the grader's training split is malformed
    NOTEBOOK = "notebook"  # the notebook to execute cannot be read
    BUDGET = "budget"  # retraining refused, or stopped, over its budget (details: stopped, estimate_seconds)
    DIVERGED = "diverged"  # retraining did not converge, even at a lower rate (details: attempts)
    PROTOCOL = "protocol"  # the request itself was malformed (an unknown op, not JSON)
    INTERNAL = "internal"  # the worker's own code failed
    UNNAMED = "error"  # grader side: an answer that named no kind


def encode(message: dict[str, Any]) -> bytes:
    return (json.dumps(message, allow_nan=False, separators=(",", ":")) + "\n").encode()


def request(request_id: int, op: str, **args: Any) -> bytes:
    return encode({"id": request_id, "op": op, "args": args})


def ok(request_id: int, result: dict[str, Any]) -> bytes:
    return encode({"id": request_id, "ok": True, "result": result})


def failure(request_id: int, kind: str, message: str, **details: Any) -> bytes:
    error = {"kind": kind, "message": message, **details}
    return encode({"id": request_id, "ok": False, "error": error})
