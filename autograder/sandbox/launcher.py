"""Command lines and process set-up for each isolation tier.

Tier A (docs/security.md, "Tiers"): drop to a dedicated
uid first (never run bwrap as root), then an unprivileged bwrap with every
namespace unshared, a minimal read-only root and size-capped tmpfs. Tiers B
and C run the worker directly with rlimits (B also under a separate uid in a
fresh network namespace when root can make one). Every tier sets
no_new_privs, so no setuid binary can give the student back a privilege.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import cgroup
from .bwrap import TMPFS_BYTES, bwrap_argv
from .tiers import Tier, interpreter, python_paths
from .worker import protocol

UID_BASE = 61000
UID_SLOTS = 1000
# Root-only places for the uid slot locks; never a folder a sandbox uid could plant links in.
UID_LOCK_DIRS = (Path("/run/autograder-uids"), Path("/tmp/autograder-uids"))
FILE_BYTES = 512 << 20
OPEN_FILES = 1024
CLONE_NEWNET = 0x40000000
PR_SET_NO_NEW_PRIVS = 38
PR_SET_PDEATHSIG = 1
# World-writable places outside the job folder where a tier B/C worker can leave files behind.
SHARED_TMP = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/dev/mqueue")
# Tiers B and C share the host's /proc, where every uid may read every command line:
# their job paths travel in the environment (readable by the same uid only), not in argv.
BOOTSTRAP = (
    "import os, sys; sys.path.insert(0, os.environ.pop('AGWORKER_LIB', '') or sys.argv[1]); "
    "from agworker.main import run; run(sys.argv[2:])"
)
JOBS_PARENT = "autograder-jobs"
# Tier A's /etc/hosts: "localhost" resolves as on any laptop (code probing a local
# visdom/TensorBoard server gets "connection refused", not a DNS error); nothing of the host's.
SANDBOX_HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


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

    @property
    def home(self) -> Path:
        """HOME and TMPDIR of a tier B/C worker: private to its uid, deleted with the job."""
        return self.root / "home"


@dataclass
class Limits:
    memory_bytes: int | None  # RLIMIT_AS; None on CUDA runs (it breaks CUDA's VA reservations)
    threads: int
    device: str = "cpu"
    processes: int = 512  # RLIMIT_NPROC (threads count too), only under a dedicated uid
    cpu_seconds: int = 6 * 3600  # a backstop: the grader's wall clock is the real limit
    total_memory: int | None = None  # cgroup memory.max where one is available (CUDA runs too)
    # Without a cgroup, RLIMIT_AS caps each process alone: the worker then may start no process
    # (seccomp), so its one cap is the submission's. A notebook run needs its kernel: False there.
    single_process: bool = True

    @property
    def cgroup_memory(self) -> int | None:
        return self.total_memory or self.memory_bytes

    def one_process(self, in_cgroup: bool) -> bool:
        """Whether the worker runs alone: RLIMIT_AS is its cap and no cgroup adds processes up."""
        return self.single_process and self.memory_bytes is not None and not in_cgroup

    def describe(self, uid: bool, group: cgroup.Support) -> dict[str, object]:
        """What actually caps this worker, for the result's provenance."""
        caps = []
        if group.parent and self.cgroup_memory:
            caps.append(f"cgroup memory.max {self.cgroup_memory >> 20} MiB for all its processes")
        if self.one_process(group.parent is not None):
            caps.append(f"RLIMIT_AS {self.memory_bytes >> 20} MiB on the worker, which may start no process")
        elif self.memory_bytes:
            caps.append(f"RLIMIT_AS {self.memory_bytes >> 20} MiB per process")
        return {
            "memory": " + ".join(caps) or "none (CUDA run without a cgroup): only the wall clock",
            "processes": self.processes if uid or group.parent else None,
            "file_bytes": FILE_BYTES,
            "open_files": OPEN_FILES,
            "cpu_seconds": self.cpu_seconds,
            "tmpfs_bytes": TMPFS_BYTES,
            "cgroup": group.reason,
        }


def worker_argv(tier: Tier, job: Job, limits: Limits, reply_fd: int, in_cgroup: bool = False) -> list[str]:
    """The full command that starts a worker for ``job`` in ``tier``."""
    python = interpreter()
    if tier is Tier.A:
        S = protocol
        binds = [(p, p) for p in python_paths()]
        binds += [
            (str(job.submission), S.SANDBOX_SUBMISSION),
            (str(job.extracted), S.SANDBOX_EXTRACTED),
            (str(job.inputs), S.SANDBOX_INPUTS),
            (str(job.lib), "/sandbox/lib"),
            (str(job.lib / "hosts"), "/etc/hosts"),
        ]
        binds += [(str(p), str(p)) for p in job.data_binds]
        prefix = bwrap_argv(
            binds, [(str(job.out), S.SANDBOX_OUT)], limits.memory_bytes, limits.device, limits.threads
        )
        roots, out, lib = [S.SANDBOX_SUBMISSION, S.SANDBOX_EXTRACTED], S.SANDBOX_OUT, "/sandbox/lib"
    else:
        prefix, roots, out, lib = [], [], "", "-"  # in worker_env
    argv = prefix + [python, "-I", "-B", "-c", BOOTSTRAP, lib]
    argv += ["--threads", str(limits.threads), "--reply-fd", str(reply_fd)]
    argv += ["--seccomp", "try" if tier is Tier.C else "required"]
    argv += ["--private-network"] if tier is Tier.A else []  # bwrap --unshare-all: only a loopback
    argv += ["--single-process"] if limits.one_process(in_cgroup) else []
    argv += ["--out", out] if out else []
    for root in roots:
        argv += ["--root", root]
    return argv


def worker_env(tier: Tier, limits: Limits, job: Job) -> dict[str, str]:
    """A scrubbed environment: nothing of the grader's (tokens, paths) reaches student code."""
    if tier is Tier.A:
        return {}  # bwrap --clearenv sets the sandbox's environment
    return {
        "AGWORKER_LIB": str(job.lib),
        "AGWORKER_OUT": str(job.out),
        "AGWORKER_ROOTS": os.pathsep.join([str(job.submission), str(job.extracted)]),
        "PATH": "/usr/bin:/bin",
        "HOME": str(job.home),
        "TMPDIR": str(job.home),
        "OMP_NUM_THREADS": str(limits.threads),
        "MPLBACKEND": "Agg",
        "LANG": "C.UTF-8",
    }


def preexec(tier: Tier, limits: Limits, uid: int | None, procs: str | None = None):
    """Runs in the child between fork and exec: cgroup, rlimits, no_new_privs, then the uid drop.

    Only async-signal-safe work happens here (no imports, no locks)."""
    libc = ctypes.CDLL(None, use_errno=True)
    caps = [
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NOFILE, OPEN_FILES),
        (resource.RLIMIT_FSIZE, FILE_BYTES),
        (resource.RLIMIT_CPU, limits.cpu_seconds),
    ]
    if limits.memory_bytes:
        caps.append((resource.RLIMIT_AS, limits.memory_bytes))
    if uid is not None:  # per-uid: with the grader's own uid it would count the grader's processes
        caps.append((resource.RLIMIT_NPROC, limits.processes))

    parent = os.getpid()

    def setup() -> None:
        if procs is not None:
            cgroup.join(procs)
        for which, value in caps:
            resource.setrlimit(which, (value, value))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        if tier is Tier.B and uid is not None:  # a fresh network namespace: only a downed loopback
            libc.unshare(CLONE_NEWNET)
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if tier is not Tier.A:  # bwrap --die-with-parent does this in tier A; set after setuid clears it
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:
                os._exit(1)  # the grader died before the line above took effect
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
    locks = _lock_dir()
    start = os.getpid() % UID_SLOTS
    for offset in range(UID_SLOTS):
        uid = UID_BASE + (start + offset) % UID_SLOTS
        fd = os.open(locks / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            kill_uid(uid)  # a previous grader killed mid-run may have left this uid's processes
            yield uid
        finally:
            kill_uid(uid)
            remove_files_of(uid)
            os.close(fd)
        return
    raise RuntimeError("no free sandbox uid")


def jobs_parent() -> Path | None:
    """Where a root grader makes job folders: a root-owned folder others may traverse but not
    list, so no sandbox uid can find another submission's job folder (tier B shares /tmp)."""
    if os.geteuid() != 0:
        return None
    folder = Path(tempfile.gettempdir()) / JOBS_PARENT
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o711)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
        raise RuntimeError(f"{folder} is not a root-owned folder only root can write; remove it")
    folder.chmod(0o711)
    return folder


JOB_PREFIX = "autograder-job-"
ALIVE = ".alive"  # flock-ed by the grader for as long as the job runs
STALE_AFTER_SECONDS = 60


class JobFolder:
    """One submission's job folder, locked while its grader lives.

    A grader killed with SIGKILL cannot delete its job folder; the kernel does
    drop its lock, so the next grader on the machine finds the folder unlocked
    and removes it (copies of submissions and test images would pile up in /tmp
    otherwise)."""

    def __init__(self) -> None:
        parent = jobs_parent()
        sweep_stale_jobs(Path(parent or tempfile.gettempdir()))
        self.path = Path(tempfile.mkdtemp(prefix=JOB_PREFIX, dir=parent))
        self.path.chmod(0o711)
        self._fd = os.open(self.path / ALIVE, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def remove(self) -> None:
        remove_tree(self.path)
        os.close(self._fd)


def remove_tree(path: str | Path) -> None:
    """``shutil.rmtree(path, ignore_errors=True)`` for folders student code wrote: it may
    nest folders thousands deep, where Python's rmtree (recursive) raises RecursionError
    and leaves them; ``rm -rf`` (coreutils walks iteratively) then removes the rest."""
    try:
        shutil.rmtree(path, ignore_errors=True)
    except RecursionError:
        subprocess.run(
            ["rm", "-rf", "--", os.fspath(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )


def sweep_stale_jobs(parent: Path) -> None:
    """Remove this user's job folders whose grader is gone (their lock is free)."""
    for folder in parent.glob(f"{JOB_PREFIX}*"):
        try:
            info = folder.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
                continue
            if time.time() - info.st_mtime < STALE_AFTER_SECONDS:
                continue  # just made: its grader may not hold the lock yet
            fd = os.open(folder / ALIVE, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue  # no lock file: not one of ours
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a live grader's
        else:
            remove_tree(folder)
        finally:
            os.close(fd)


def _lock_dir() -> Path:
    """A root-owned folder nobody else can write (a planted symlink would redirect root's writes)."""
    for folder in UID_LOCK_DIRS:
        with contextlib.suppress(OSError):
            folder.mkdir(mode=0o700, exist_ok=True)
        try:
            info = folder.lstat()
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == 0 and not info.st_mode & 0o022:
            return folder
    raise RuntimeError(f"no safe folder for sandbox uid locks ({', '.join(map(str, UID_LOCK_DIRS))})")


def remove_files_of(uid: int, roots: tuple[str, ...] = SHARED_TMP) -> list[str]:
    """Delete what ``uid`` left in world-writable folders (tier B/C share the host's /tmp).

    Runs after every process of the uid is dead, so nothing races the removal;
    links are removed, never followed."""
    removed: list[str] = []
    pending = [(root, 0) for root in roots]
    while pending:
        folder, depth = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if info.st_uid == uid:
                with contextlib.suppress(OSError):
                    if stat.S_ISDIR(info.st_mode):
                        remove_tree(entry.path)
                    else:
                        os.unlink(entry.path)
                    removed.append(entry.path)
            elif stat.S_ISDIR(info.st_mode) and info.st_mode & 0o002 and depth < 2:
                pending.append((entry.path, depth + 1))  # e.g. /tmp/.X11-unix: anyone may write there
    return removed


UID_EXIT_SECONDS = 60.0  # how long kill_uid waits for a killed uid's processes to be gone


def kill_uid(uid: int) -> None:
    """SIGKILL every process of ``uid``, orphans and daemons included, and return only
    once none is left.

    A killed process keeps running until it has torn down its memory: right after a
    fork bomb's worker (hundreds of copies of a process with torch loaded) was killed,
    over a hundred of them were still alive, and some a second later. So the uid is
    signalled again and ``/proc`` read until it has no process left (zombies excepted:
    they hold no memory and run nothing); only then may the uid slot be reused."""
    deadline = time.monotonic() + UID_EXIT_SECONDS
    while True:
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
        left = processes_of(uid)
        if not left:
            return
        if time.monotonic() > deadline:  # unkillable (stuck in the kernel): say so, grade on
            sys.stderr.write(f"autograder: {len(left)} processes of sandbox uid {uid} outlived SIGKILL\n")
            return
        time.sleep(0.02)


def processes_of(uid: int) -> list[int]:
    """Processes whose real uid is ``uid``, zombies left out (read from ``/proc``)."""
    alive = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", "rb") as handle:
                status = handle.read()
        except OSError:
            continue  # gone meanwhile
        fields = dict(line.split(b":", 1) for line in status.splitlines() if b":" in line)
        uids = fields.get(b"Uid", b"").split()
        if uids and int(uids[0]) == uid and not fields.get(b"State", b"").strip().startswith((b"Z", b"X")):
            alive.append(int(entry.name))
    return alive
