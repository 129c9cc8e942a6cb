"""Command lines and process set-up for each isolation tier.

Tier A follows ``shared/reference/sandboxing.md`` §3.2: drop to a dedicated
uid first (never run bwrap as root), then an unprivileged bwrap with every
namespace unshared, a minimal read-only root and size-capped tmpfs. Tiers B
and C run the worker directly with rlimits (B also under a separate uid in a
fresh network namespace when root can make one).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import resource
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .tiers import Tier, python_paths
from .worker import protocol

PROBE_UID = 65534
UID_BASE = 61000
UID_SLOTS = 1000
UID_LOCK_DIR = Path("/tmp/autograder-uids")
TMPFS_BYTES = 512 << 20
FILE_BYTES = 512 << 20
CLONE_NEWNET = 0x40000000
GPU_NODES = (
    "/dev/nvidia0",
    "/dev/nvidiactl",
    "/dev/nvidia-uvm",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidia-modeset",
)
BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "'--seccomp' in sys.argv and __import__('agworker.confine').confine.install(); "
    "from agworker.main import run; run(sys.argv[2:])"
)


@dataclass
class Job:
    """The folders one submission's worker sees (host paths)."""

    root: Path
    submission: Path
    extracted: Path
    inputs: Path
    out: Path
    lib: Path
    data_binds: list[Path] = field(default_factory=list)  # read-only extras (notebook execution)


@dataclass
class Limits:
    memory_bytes: int | None  # RLIMIT_AS; None on CUDA runs (it breaks CUDA's VA reservations)
    threads: int
    device: str = "cpu"
    processes: int = 512
    cpu_seconds: int = 6 * 3600


def bwrap_argv(
    binds: list[tuple[str, str]],
    rw_binds: list[tuple[str, str]],
    memory: int | None,
    device: str,
    threads: int,
) -> list[str]:
    argv = [
        "bwrap",
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--ro-bind",
        "/usr",
        "/usr",
        "--symlink",
        "usr/lib",
        "/lib",
        "--symlink",
        "usr/lib64",
        "/lib64",
        "--symlink",
        "usr/bin",
        "/bin",
        "--symlink",
        "usr/sbin",
        "/sbin",
        "--ro-bind-try",
        "/etc/alternatives",
        "/etc/alternatives",
        "--ro-bind-try",
        "/etc/ld.so.cache",
        "/etc/ld.so.cache",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        str(TMPFS_BYTES),
        "--tmpfs",
        "/tmp",
        "--size",
        str(TMPFS_BYTES),
        "--tmpfs",
        "/dev/shm",
    ]
    for source, target in binds:
        argv += ["--ro-bind", source, target]
    for source, target in rw_binds:
        argv += ["--bind", source, target]
    if device.startswith("cuda"):
        argv += ["--ro-bind", "/sys", "/sys"]
        for node in GPU_NODES:
            argv += ["--dev-bind-try", node, node]
        for extra in ("/usr/local/nvidia", "/usr/local/cuda"):
            argv += ["--ro-bind-try", extra, extra]
    argv += [
        "--clearenv",
        "--setenv",
        "PATH",
        "/usr/bin:/bin",
        "--setenv",
        "HOME",
        "/tmp",
        "--setenv",
        "OMP_NUM_THREADS",
        str(threads),
        "--setenv",
        "MPLBACKEND",
        "Agg",
        "--hostname",
        "sandbox",
        "--chdir",
        "/tmp",
        "--",
    ]
    return argv


def worker_argv(tier: Tier, job: Job, limits: Limits, reply_fd: int) -> list[str]:
    """The full command that starts a worker for ``job`` in ``tier``."""
    python = sys.executable
    if tier is Tier.A:
        S = protocol
        binds = [(p, p) for p in python_paths()]
        binds += [
            (str(job.submission), S.SANDBOX_SUBMISSION),
            (str(job.extracted), S.SANDBOX_EXTRACTED),
            (str(job.inputs), S.SANDBOX_INPUTS),
            (str(job.lib), "/sandbox/lib"),
        ]
        binds += [(str(p), str(p)) for p in job.data_binds]
        prefix = bwrap_argv(
            binds, [(str(job.out), S.SANDBOX_OUT)], limits.memory_bytes, limits.device, limits.threads
        )
        roots, out, lib = [S.SANDBOX_SUBMISSION, S.SANDBOX_EXTRACTED], S.SANDBOX_OUT, "/sandbox/lib"
    else:
        prefix = []
        roots, out, lib = [str(job.submission), str(job.extracted)], str(job.out), str(job.lib)
    argv = prefix + [
        python,
        "-I",
        "-B",
        "-c",
        BOOTSTRAP,
        lib,
        "--out",
        out,
        "--threads",
        str(limits.threads),
        "--reply-fd",
        str(reply_fd),
        "--seccomp",
    ]
    for root in roots:
        argv += ["--root", root]
    return argv


def worker_env(tier: Tier, limits: Limits) -> dict[str, str]:
    if tier is Tier.A:
        return {}  # bwrap --clearenv sets the sandbox's environment
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": "/tmp",
        "OMP_NUM_THREADS": str(limits.threads),
        "MPLBACKEND": "Agg",
        "LANG": "C.UTF-8",
    }


def preexec(tier: Tier, limits: Limits, uid: int | None):
    """Runs in the child between fork and exec: rlimits, then the uid drop."""

    def setup() -> None:
        caps = [
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_NOFILE, 1024),
            (resource.RLIMIT_FSIZE, FILE_BYTES),
            (resource.RLIMIT_CPU, limits.cpu_seconds),
        ]
        if limits.memory_bytes:
            caps.append((resource.RLIMIT_AS, limits.memory_bytes))
        if uid is not None:
            caps.append((resource.RLIMIT_NPROC, limits.processes))
        for which, value in caps:
            resource.setrlimit(which, (value, value))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        if uid is None:
            return
        if tier is Tier.B:  # a fresh network namespace has only a downed loopback
            ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        os.umask(0o077)

    return setup


@contextlib.contextmanager
def sandbox_uid() -> Iterator[int | None]:
    """A dedicated uid for one worker while it lives (None when not root).

    Per-worker uids keep RLIMIT_NPROC per sandbox and let cleanup kill every
    process of that uid without touching a neighbour's.
    """
    if os.geteuid() != 0:
        yield None
        return
    UID_LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
    start = os.getpid() % UID_SLOTS
    for offset in range(UID_SLOTS):
        uid = UID_BASE + (start + offset) % UID_SLOTS
        handle = open(UID_LOCK_DIR / f"{uid}.lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        try:
            yield uid
        finally:
            kill_uid(uid)
            handle.close()
        return
    raise RuntimeError("no free sandbox uid")


def kill_uid(uid: int) -> None:
    """SIGKILL every process of ``uid``, orphans and daemons included."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)
        except BaseException:  # noqa: BLE001
            pass
        os._exit(0)
    os.waitpid(pid, 0)
