"""Which isolation this machine offers, decided once at start.

A: bubblewrap namespaces (after dropping to a dedicated uid when root).
B: no namespaces but root: a separate uid, rlimits, seccomp, no network.
C: a plain subprocess with rlimits: only with ``--allow-unsandboxed``.
"""

from __future__ import annotations

import enum
import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

from ..errors import UsageError
from .bwrap import PROBE_UID, bwrap_argv

FORCE_ENV = "AUTOGRADER_SANDBOX_TIER"


class Tier(str, enum.Enum):  # not enum.StrEnum: that is Python 3.11+
    A = "A"
    B = "B"
    C = "C"

    def __str__(self) -> str:
        return self.value


DESCRIPTIONS = {
    Tier.A: "bubblewrap: own uid, no network, private /tmp, read-only minimal root",
    Tier.B: "separate uid + rlimits + seccomp and a network namespace (no network); host files visible",
    Tier.C: "UNSANDBOXED: plain subprocess with rlimits and timeouts; not a security boundary",
}


class SandboxUnavailable(UsageError):
    """No tier that the caller allowed can run here."""


@dataclass(frozen=True)
class TierInfo:
    tier: Tier
    reason: str

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.tier]

    def as_dict(self) -> dict[str, str]:
        return {"tier": self.tier.value, "description": self.description, "reason": self.reason}


def interpreter() -> str:
    """This environment's Python by its real folder, the path bubblewrap binds.

    ``sys.executable`` keeps the path Python was started by: through a linked
    folder (Gradescope's ``/autograder/.venv`` -> ``source/grader/.venv``) that
    path does not exist inside the sandbox. The file itself is not resolved: in a
    venv it links to the base interpreter, which would leave the venv behind.
    """
    folder, name = os.path.split(sys.executable)
    return os.path.join(os.path.realpath(folder), name)


def python_paths() -> list[str]:
    """Folders the sandboxed interpreter needs: the environment and its base."""
    paths = {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}
    return sorted(p for p in paths if not p.startswith("/usr"))


@functools.cache
def _bwrap_works() -> tuple[bool, str]:
    bwrap = shutil.which("bwrap")
    if not bwrap:
        return False, "bubblewrap (bwrap) is not installed"
    argv = bwrap_argv(
        binds=[(p, p) for p in python_paths()], rw_binds=[], memory=None, device="cpu", threads=1
    )
    argv += [interpreter(), "-I", "-c", "pass"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=30, preexec_fn=_drop_for_probe())
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bubblewrap failed to start: {exc}"
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip().splitlines()
        return False, f"bubblewrap failed: {err[-1] if err else done.returncode}"
    return True, "bubblewrap works"


def _drop_for_probe():
    if os.geteuid() != 0:
        return None
    def drop() -> None:
        os.setgroups([])
        os.setgid(PROBE_UID)
        os.setuid(PROBE_UID)

    return drop


def detect_tier(allow_unsandboxed: bool = False, own_code: bool = False) -> TierInfo:
    """The strongest tier available (or the one forced for tests).

    ``own_code``: the code is the caller's own (``autograder check`` on a student's
    folder): without bubblewrap it runs as a plain process, not as tier B's separate
    uid, which needs root and a readable interpreter (Colab, a laptop, a lab machine).
    """
    forced = os.environ.get(FORCE_ENV, "").strip().upper()
    if forced:
        tier = Tier(forced)
        if tier is Tier.B and os.geteuid() != 0:
            raise SandboxUnavailable("tier B needs the grader to run as root")
        return TierInfo(tier, f"forced by {FORCE_ENV}={forced}")
    works, why = _bwrap_works()
    if works:
        return TierInfo(Tier.A, why)
    if own_code:
        return TierInfo(Tier.C, f"{why}; your own code, so it runs as a plain process")
    if os.geteuid() == 0:
        return TierInfo(Tier.B, f"{why}; running as root, so a separate uid is used")
    if allow_unsandboxed:
        return TierInfo(Tier.C, f"{why}; not root; --allow-unsandboxed given")
    raise SandboxUnavailable(
        f"no sandbox is available ({why}, and the grader is not root). Install bubblewrap "
        "(apt-get install bubblewrap), or pass --allow-unsandboxed on a machine you trust "
        "to run student code without isolation."
    )
