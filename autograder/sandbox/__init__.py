"""Running student code away from the grader: isolation tiers, the worker
process and the request/response session the checks use."""

from .session import Deadline, Sandbox, SandboxError, WorkerFailure
from .tiers import Tier, TierInfo, detect_tier

__all__ = ["Deadline", "Sandbox", "SandboxError", "Tier", "TierInfo", "WorkerFailure", "detect_tier"]
