"""Opportunistic cgroup v2 caps for one worker: total memory, process count,
and one-shot killing of everything the student started.

RLIMIT_AS caps each process separately (and cannot be used with CUDA); a
cgroup caps their sum. It needs a cgroup v2 folder this process may write
whose children get the memory controller: one the operator names in
``$AUTOGRADER_CGROUP`` (e.g. a systemd ``Delegate=yes`` unit), or, for root
on a pure v2 host, ``<cgroup2 mount>/autograder`` under the root cgroup.
Anything else (v1 or hybrid layouts, containers without delegation) falls
back to rlimits, and the reason is recorded in every result.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

ENV = "AUTOGRADER_CGROUP"
WANTED = ("memory", "pids")


@dataclass(frozen=True)
class Support:
    parent: Path | None  # where worker cgroups are made; None: rlimits only
    reason: str


def v2_mount(mountinfo: str = "/proc/self/mountinfo") -> Path | None:
    """Where the cgroup2 filesystem is mounted (``/sys/fs/cgroup`` or ``.../unified``)."""
    try:
        lines = Path(mountinfo).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        left, _, right = line.partition(" - ")
        if right.split(" ", 1)[0] == "cgroup2":
            return Path(left.split()[4])
    return None


def _controllers(folder: Path, name: str) -> set[str]:
    try:
        return set((folder / name).read_text().split())
    except OSError:
        return set()


def _prepare(parent: Path) -> str | None:
    """Make ``parent`` hand memory and pids to its children; None when it works."""
    offered = _controllers(parent, "cgroup.controllers")
    missing = [c for c in WANTED if c not in offered]
    if missing:
        listed = " ".join(sorted(offered)) or "none"
        return f"cgroup v2 folder {parent} offers no {'/'.join(missing)} controller (it has: {listed})"
    enabled = _controllers(parent, "cgroup.subtree_control")
    todo = " ".join(f"+{c}" for c in WANTED if c not in enabled)
    if todo:
        try:
            (parent / "cgroup.subtree_control").write_text(todo)
        except OSError as exc:
            return f"cannot delegate {todo} in {parent}: {exc.strerror}"
    return None


@functools.cache
def detect() -> Support:
    explicit = os.environ.get(ENV, "").strip()
    if explicit:
        parent = Path(explicit)
        if not parent.is_dir():
            return Support(None, f"${ENV}={explicit} is not a cgroup folder; memory is capped per process")
    else:
        mount = v2_mount()
        if mount is None:
            return Support(None, "no cgroup v2 hierarchy is mounted; memory is capped per process")
        if os.geteuid() != 0:
            return Support(None, f"not root and ${ENV} is unset; memory is capped per process")
        root_offers = _controllers(mount, "cgroup.subtree_control")
        if "memory" not in root_offers:
            listed = " ".join(sorted(_controllers(mount, "cgroup.controllers"))) or "none"
            return Support(
                None,
                f"cgroup v2 at {mount} delegates no memory controller (controllers: {listed}); "
                "memory is capped per process",
            )
        parent = mount / "autograder"
        try:
            parent.mkdir(mode=0o755, exist_ok=True)
        except OSError as exc:
            return Support(None, f"cannot create {parent}: {exc.strerror}; memory is capped per process")
    problem = _prepare(parent)
    if problem:
        return Support(None, problem + "; memory is capped per process")
    return Support(parent, f"cgroup v2 under {parent} (memory.max, pids.max, cgroup.kill)")


class WorkerCgroup:
    """One worker's cgroup: created before the worker starts, removed after it dies."""

    def __init__(self, parent: Path, name: str, memory: int | None, processes: int) -> None:
        self.path = parent / name
        self.path.mkdir(mode=0o755)
        limits = {"pids.max": str(processes), "memory.swap.max": "0", "memory.oom.group": "1"}
        if memory:
            limits["memory.max"] = str(memory)
        for key, value in limits.items():
            with contextlib.suppress(FileNotFoundError):
                (self.path / key).write_text(value)

    @property
    def procs(self) -> str:
        return str(self.path / "cgroup.procs")

    def oom_killed(self) -> bool:
        try:
            for line in (self.path / "memory.events").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    return True
        except (OSError, ValueError):
            pass
        return False

    def remove(self) -> None:
        """Kill every process in the cgroup, wait for them to go, delete it."""
        kill = self.path / "cgroup.kill"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                pids = [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
            except OSError:
                return
            if not pids:
                break
            if kill.exists():
                with contextlib.suppress(OSError):
                    kill.write_text("1")
            else:
                for pid in pids:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
        with contextlib.suppress(OSError):
            self.path.rmdir()


def join(procs: str) -> None:
    """Move the calling process into a cgroup (runs in the child before exec)."""
    fd = os.open(procs, os.O_WRONLY)
    try:
        os.write(fd, str(os.getpid()).encode())
    finally:
        os.close(fd)
