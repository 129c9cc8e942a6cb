"""Waiting for an event instead of sleeping a guessed time: a process exiting, a file
appearing, a count reached. Each wait has a deadline past which the test fails with
what it was waiting for, so a slow machine makes a test slower, never wrongly green."""

from __future__ import annotations

import os
import select
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

POLL_SECONDS = 0.05  # for conditions that no file descriptor signals (a file appearing, a count)


def until(done: Callable[[], bool], seconds: float, what: str, proc: subprocess.Popen | None = None) -> None:
    """Return once ``done()`` holds; fail after ``seconds``, or at once when ``proc`` (the
    process that should bring the event about) has ended first."""
    deadline = time.monotonic() + seconds
    while not done():
        if proc is not None and proc.poll() is not None:
            out = proc.communicate()[0] or ""
            out = out.decode(errors="replace") if isinstance(out, bytes) else out
            raise AssertionError(f"{what}: the process ended first (exit {proc.returncode}): {out[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds:g} s")
        time.sleep(POLL_SECONDS)


def exited(pids: list[int], seconds: float) -> list[int]:
    """Wait until every process in ``pids`` has exited (children or not: a pidfd says so,
    no polling); return those still running after ``seconds``."""
    fds = {}
    for pid in pids:
        try:
            fds[os.pidfd_open(pid)] = pid
        except ProcessLookupError:
            continue  # gone already
    deadline = time.monotonic() + seconds
    try:
        while fds and (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select(list(fds), [], [], left)
            for fd in ready:
                os.close(fd)
                del fds[fd]
        return sorted(fds.values())
    finally:
        for fd in fds:
            os.close(fd)


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` now (children, theirs, ...), read from ``/proc``."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                kids = [int(k) for k in task.read_text().split()]
            except OSError:
                continue  # the task ended meanwhile
            found += kids
            todo += kids
    return found


def running(*, uid: int | None = None, argv_holds: str | None = None) -> list[int]:
    """Live processes (zombies left out) of ``uid`` or whose command line holds ``argv_holds``."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("State", "").startswith(("Z", "X")):
            continue
        if (uid is not None and int(fields["Uid"].split()[0]) == uid) or (
            argv_holds is not None and argv_holds in argv
        ):
            alive.append(int(entry.name))
    return alive
