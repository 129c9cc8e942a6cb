"""Running student code away from the grader: isolation tiers, the worker
process and the request/response session the checks use."""

from .session import Deadline, NoAnswer, Sandbox, SandboxError, WorkerFailure, failure_line
from .tiers import SandboxUnavailable, Tier, TierInfo, detect_tier
from .worker.protocol import Failure

__all__ = [
    "Deadline",
    "Failure",
    "NoAnswer",
    "Sandbox",
    "SandboxError",
    "SandboxUnavailable",
    "Tier",
    "TierInfo",
    "WorkerFailure",
    "detect_tier",
    "failure_line",
]
