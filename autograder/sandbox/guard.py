"""Refusing to grade when the set-up itself would let student code win.

Checked before any student code runs, so a misconfigured machine fails loudly
with one actionable line instead of quietly grading insecurely:

- ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` in the grader's environment turns every
  ``torch.load`` that does not pass ``weights_only`` into a full unpickle;
- without a private mount namespace (tiers B and C as root) the sandbox uid
  sees the host's files, so the test split (its labels) and the decoded-data
  cache must be unreadable to that uid, and the interpreter must be usable.
  The check runs a tiny probe *as* the sandbox uid, so ACLs, groups and every
  parent folder's permissions count exactly as they will for student code.

The data registry is imported inside the function that needs it: data/ imports the
sandbox package.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .launcher import UID_BASE
from .tiers import SandboxUnavailable, Tier, TierInfo

UNSAFE_ENV = ("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD",)
MAX_PROBED = 2000
PROBE = (
    "import os, sys\n"
    "for p in sys.stdin.read().splitlines():\n"
    "    try:\n"
    "        os.close(os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY))\n"
    "        print(p)\n"
    "    except OSError:\n"
    "        pass\n"
)


class UnsafeSetup(SandboxUnavailable):
    """The grader's own set-up would expose secrets to student code."""


def check_environment(env: dict[str, str] | os._Environ = os.environ) -> None:
    for name in UNSAFE_ENV:
        if env.get(name, "").strip() not in ("", "0"):
            raise UnsafeSetup(
                f"{name}={env[name]} is set in the grader's environment; it makes torch.load unpickle "
                f"arbitrary code. Unset it (unset {name}) and run the grader again"
            )


def secret_files(data_root: Path | None, dataset: str | None) -> list[Path]:
    """The grader's data a student must never read: the dataset's files and the decoded cache."""
    from ..data import dataset_spec
    from ..data.splits import cache_dir

    found: list[Path] = []
    roots = [cache_dir()]
    if data_root is not None and dataset:
        roots.insert(0, Path(data_root) / dataset_spec(dataset).folder)
    for root in roots:
        if root.is_file():
            found.append(root)
            continue
        for dirpath, _, files in os.walk(root):
            found += [Path(dirpath) / f for f in sorted(files)]
            if len(found) >= MAX_PROBED:
                return found[:MAX_PROBED]
    return found


def readable_by(uid: int, paths: list[Path]) -> list[Path]:
    """Which of ``paths`` a process running as ``uid`` (no groups) can open for reading."""
    try:
        done = subprocess.run(  # noqa: S603
            [sys.executable, "-I", "-S", "-c", PROBE],
            input="\n".join(map(str, paths)),
            capture_output=True,
            text=True,
            user=uid,
            group=uid,
            extra_groups=[],
            env={"PATH": "/usr/bin:/bin"},
            cwd="/",
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UnsafeSetup(f"cannot run {sys.executable} as the sandbox uid {uid}: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise UnsafeSetup(
            f"the sandbox uid {uid} cannot run {sys.executable} ({last}); every folder from / to the "
            "virtual environment must be readable and traversable by other users (chmod o+rx)"
        )
    return [Path(p) for p in done.stdout.splitlines() if p]


def check_secrets(tier: TierInfo, data_root: Path | None, dataset: str | None) -> None:
    """Refuse tier B/C grading when the sandbox uid could read the grader's data.

    Tier A never mounts the data root or the cache, and a non-root grader has no
    second uid to hide things from (tier C then is no boundary at all)."""
    if tier.tier is Tier.A or os.geteuid() != 0:
        return
    exposed = readable_by(UID_BASE, secret_files(data_root, dataset))
    if exposed:
        first = exposed[0]
        more = f" (and {len(exposed) - 1} more)" if len(exposed) > 1 else ""
        private = first.parent if first.parent != Path("/") else first
        raise UnsafeSetup(
            f"tier {tier.tier.value}: student code would run as a uid that can read the grader's secret "
            f"data {first}{more}; make it private to the grader first: chmod -R go-rwx {private}"
        )
