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


def encode(message: dict[str, Any]) -> bytes:
    return (json.dumps(message, allow_nan=False, separators=(",", ":")) + "\n").encode()


def request(request_id: int, op: str, **args: Any) -> bytes:
    return encode({"id": request_id, "op": op, "args": args})


def ok(request_id: int, result: dict[str, Any]) -> bytes:
    return encode({"id": request_id, "ok": True, "result": result})


def failure(request_id: int, kind: str, message: str, **details: Any) -> bytes:
    error = {"kind": kind, "message": message, **details}
    return encode({"id": request_id, "ok": False, "error": error})
