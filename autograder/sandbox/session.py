"""One sandboxed worker per submission, serving every check.

The session sends a request, waits at most the check's time limit for the
answer, and kills the whole worker when it runs out or dies. The next request
starts a fresh worker and replays the set-up steps (imports, model builds,
weights) so one hung check costs only its own points.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import select
import shutil
import signal
import stat
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npy

from ..errors import RequestFailed
from . import cgroup, launcher
from .tiers import Tier, TierInfo
from .worker import protocol

LOG_HEAD = LOG_TAIL = 16 << 10
MESSAGE_CHARS = 500  # the most of a worker's error message (student text) that reaches a report
BULK = re.compile(r"[-+\d.,eE\s()\[\]]{80,}|[^\s]{100,}")  # number dumps (array reprs), long tokens
START_TIMEOUT = 120.0  # a fresh worker's start (Python, torch) and its hello; only the budget cuts it


class NoAnswer:
    """Why a request got no answer: the ``kind`` of a SandboxError."""

    TIMEOUT = "timeout"  # the request's own limit, or what its item had left, ran out
    TIME_BUDGET = "time_budget"  # the submission's time budget ran out
    CRASH = "crash"  # the worker process ended (killed, out of memory, exited)
    PROTOCOL = "protocol"  # the worker answered something the grader does not accept


class SandboxError(RequestFailed):
    """The worker could not answer: it timed out, died or broke the protocol.

    ``kind`` is a ``NoAnswer``; ``limit`` is the limit in seconds that ran out (timeouts)."""

    def __init__(self, kind: str, message: str, limit: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.limit = limit


@dataclass
class Deadline:
    """When the current item and the whole submission must be done (``time.monotonic``).

    Every request's own limit is cut to what the item and the submission have left,
    so an item's ``timeout`` bounds all of its requests together (imports, builds,
    weights, the check's own work) and the budget bounds the whole submission."""

    budget: float | None = None  # seconds for the whole submission (None: no budget)
    started: float = field(default_factory=time.monotonic)
    item: float | None = None  # the current item's limit in seconds
    item_started: float = 0.0

    def start_item(self, seconds: float | None) -> None:
        self.item, self.item_started = seconds, time.monotonic()

    def budget_left(self) -> float:
        return math.inf if self.budget is None else self.started + self.budget - time.monotonic()

    def item_left(self) -> float:
        return math.inf if self.item is None else self.item_started + self.item - time.monotonic()

    def cut(self, timeout: float, whole_item: bool = True) -> tuple[float, SandboxError | None]:
        """The time a request may take, and the error to raise if it runs out then
        (None: the request's own limit, which the caller words)."""
        budget, item = self.budget_left(), self.item_left() if whole_item else math.inf
        if budget <= min(timeout, item):
            return max(budget, 0.0), SandboxError(
                NoAnswer.TIME_BUDGET, f"the submission's time budget ({self.budget:g} s) ran out"
            )
        if item < timeout:
            expired = SandboxError(
                NoAnswer.TIMEOUT, f"no answer within the item's {self.item:g} s time limit", self.item
            )
            return max(item, 0.0), expired
        return timeout, None


@dataclass
class WorkerFailure(RequestFailed):
    """The worker answered that the request failed (student code error etc.); ``kind`` is
    one of ``protocol.Failure``, as the worker said."""

    kind: str
    message: str
    details: dict[str, Any]

    def __str__(self) -> str:
        return self.message


def failure_line(
    what: str,
    exc: WorkerFailure | SandboxError,
    *,
    where: str = "",
    text: str | None = None,
    aside: bool = False,
) -> str:
    """The student's one line for a failed request: the one place that words how a request
    ended. ``what`` is what was being done ("importing simple_cnn.py", "SimpleCNN forward pass").

    A failure answer: ``<what> failed[ at <where>]: <text>`` (``text``: what may be shown of
    the worker's message; by default all of it). No answer: the time limit that ran out, the
    budget, or the crash, with the sandbox's words after a colon, or in brackets (``aside``)
    for a line that goes on."""
    if isinstance(exc, WorkerFailure):
        return f"{what} failed{f' at {where}' if where else ''}: {exc.message if text is None else text}"
    if aside:
        ended = {NoAnswer.TIMEOUT: "took too long", NoAnswer.TIME_BUDGET: "was stopped"}
        return f"{what} {ended.get(exc.kind, 'crashed the worker')} ({exc.message})"
    if exc.kind == NoAnswer.TIMEOUT and exc.limit is not None:
        return f"{what} did not finish within the {exc.limit:g} s time limit"
    ended = "was stopped" if exc.kind == NoAnswer.TIME_BUDGET else "crashed the worker"
    return f"{what} {ended}: {exc.message}"


class CappedLog:
    """Keeps the head and tail of a stream; counts the rest."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self.lock = threading.Lock()

    def feed(self, chunk: bytes) -> None:
        with self.lock:
            self.total += len(chunk)
            room = LOG_HEAD - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            if chunk:
                self.tail = (self.tail + chunk)[-LOG_TAIL:]

    def text(self) -> str:
        with self.lock:
            dropped = self.total - len(self.head) - len(self.tail)
            middle = f"\n[... {dropped} bytes of output cut ...]\n" if dropped > 0 else ""
            return (
                bytes(self.head).decode(errors="replace") + middle + bytes(self.tail).decode(errors="replace")
            )


def parse_answer(line: bytes, expected_id: int) -> dict[str, Any]:
    """One answer line from the worker, judged as hostile input.

    Only a JSON object with the expected id and either a result object or an
    error object is accepted; NaN/Infinity and absurd nesting are refused so
    nothing the worker says can break the grader's own JSON output later."""
    try:
        message = json.loads(line, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise SandboxError(NoAnswer.PROTOCOL, "the worker's answer was not valid JSON") from None
    if not isinstance(message, dict) or message.get("id") != expected_id:
        raise SandboxError(NoAnswer.PROTOCOL, "the worker's answer did not match the request")
    if message.get("ok") is True and isinstance(message.get("result"), dict):
        return message["result"]
    error = message.get("error")
    if message.get("ok") is not False or not isinstance(error, dict):
        raise SandboxError(NoAnswer.PROTOCOL, "the worker's answer had neither result nor error")
    details = {k: v for k, v in error.items() if k not in ("kind", "message")}
    message = bounded(str(error.get("message", "")))
    raise WorkerFailure(str(error.get("kind", protocol.Failure.UNNAMED))[:100], message, details)


def bounded(text: str) -> str:
    """A worker's message as it may reach a student: no bulk data (a run of numbers like a
    tensor's repr, a base64 or hex blob) and at most MESSAGE_CHARS characters. Done here,
    on the grader's side: the worker's own trimming runs beside student code."""
    text = BULK.sub(_cut, text[: 8 * MESSAGE_CHARS])
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


def _cut(match: re.Match[str]) -> str:
    found = match.group()
    if sum(c.isdigit() for c in found) < 20 and not re.fullmatch(r"[^\s]+", found):
        return found  # mostly spaces and punctuation: not data
    return f"[{len(found)} characters of data cut]"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in an answer")


class _Worker:
    """A running worker process and its pipes."""

    def __init__(
        self,
        tier: Tier,
        job: launcher.Job,
        limits: launcher.Limits,
        uid: int | None,
        log: CappedLog,
        group: cgroup.WorkerCgroup | None = None,
    ) -> None:
        self.tier, self.uid, self.group = tier, uid, group
        response_r, response_w = os.pipe()
        log_r, log_w = os.pipe()
        self.proc = subprocess.Popen(  # noqa: S603
            launcher.worker_argv(tier, job, limits, reply_fd=response_w, in_cgroup=group is not None),
            stdin=subprocess.PIPE,
            stdout=log_w,
            stderr=log_w,
            pass_fds=(response_w,),
            env=launcher.worker_env(tier, limits, job),
            preexec_fn=launcher.preexec(tier, limits, uid, group.procs if group else None),
            start_new_session=True,
            cwd="/",
        )
        os.close(response_w)
        os.close(log_w)
        self.response = response_r
        self.buffer = b""
        self.log_pipe = _LogPipe(log_r, log)
        self.next_id = 0

    def ask(
        self, op: str, args: dict[str, Any], timeout: float, expired: SandboxError | None = None
    ) -> dict[str, Any]:
        """The answer within ``timeout`` s; else ``expired`` (or the request's own timeout) is raised."""
        self.next_id += 1
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(protocol.request(self.next_id, op, **args))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise SandboxError(NoAnswer.CRASH, self._death("the worker exited")) from None
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise expired or SandboxError(
                    NoAnswer.TIMEOUT, f"no answer within the {timeout:g} s time limit", timeout
                )
            ready, _, _ = select.select([self.response], [], [], min(left, 1.0))
            if not ready:
                if self.proc.poll() is not None:
                    raise SandboxError(NoAnswer.CRASH, self._death("the worker process ended"))
                continue
            chunk = os.read(self.response, 1 << 20)
            if not chunk:
                raise SandboxError(NoAnswer.CRASH, self._death("the worker process ended"))
            self.buffer += chunk
            if len(self.buffer) > protocol.MAX_RESPONSE_BYTES:
                raise SandboxError(NoAnswer.PROTOCOL, "the worker's answer exceeded the size limit")
        line, self.buffer = self.buffer.split(b"\n", 1)
        if len(line) > protocol.MAX_RESPONSE_BYTES:
            raise SandboxError(NoAnswer.PROTOCOL, "the worker's answer exceeded the size limit")
        return parse_answer(line, self.next_id)

    def _death(self, what: str) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=2)
        code = self.proc.returncode
        if code is None:
            return what
        if self.group is not None and self.group.oom_killed():
            return f"{what}: killed for using more memory than the sandbox allows"
        if code < 0:
            name = signal.Signals(-code).name
            hint = " (out of memory?)" if -code == signal.SIGKILL else ""
            return f"{what}: killed by {name}{hint}"
        return f"{what} with exit status {code}"

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        if self.uid is not None:
            launcher.kill_uid(self.uid)
        if self.group is not None:
            self.group.remove()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        for stream in (self.proc.stdin,):
            with contextlib.suppress(OSError):
                stream and stream.close()
        with contextlib.suppress(OSError):
            os.close(self.response)
        self.log_pipe.thread.join(timeout=2)


class _LogPipe:
    """The worker's stdout/stderr pipe, read into the log by a thread as it comes and, on
    demand, by the grader: the worker flushes its prints before each answer, but the thread
    may not have read them yet when the grader asks for the log (a print made just before
    an answer went missing on a busy machine). A lock orders the two readers; the thread
    alone closes the pipe, at its end."""

    def __init__(self, fd: int, log: CappedLog) -> None:
        os.set_blocking(fd, False)
        self.fd: int | None = fd
        self.log = log
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._drain, args=(fd,), daemon=True)
        self.thread.start()

    def _drain(self, fd: int) -> None:
        while self.catch_up(1 << 16):
            with contextlib.suppress(OSError):
                select.select([fd], [], [])
        with self.lock:
            os.close(fd)
            self.fd = None

    def catch_up(self, most: int = 1 << 20) -> bool:
        """Read what the pipe holds now, at most ``most`` bytes (a worker that prints without
        pause cannot hold the grader here); False once the pipe has ended."""
        with self.lock:
            read = 0
            while self.fd is not None and read < most:
                try:
                    chunk = os.read(self.fd, 1 << 16)
                except BlockingIOError:
                    return True
                except OSError:
                    chunk = b""
                if not chunk:
                    return False
                self.log.feed(chunk)
                read += len(chunk)
            return self.fd is not None


class Sandbox:
    """The grader's handle on one submission's sandboxed worker."""

    def __init__(
        self, tier: TierInfo, job: launcher.Job, limits: launcher.Limits, deadline: Deadline | None = None
    ) -> None:
        self.tier = tier
        self.job = job
        self.limits = limits
        self.deadline = deadline or Deadline()
        self.log = CappedLog()
        self.setup_steps: list[tuple[str, dict[str, Any], float]] = []
        self.starts = 0
        self.hello: dict[str, Any] | None = None
        # student file (worker path) -> (line, what): CUDA the worker ran on the CPU (worker/cuda.py)
        self.cuda: dict[str, tuple[int, str]] = {}
        self._worker: _Worker | None = None
        self._uid_ctx: contextlib.AbstractContextManager | None = None
        self._prepare_job()

    # --- lifecycle -------------------------------------------------------
    def _prepare_job(self) -> None:
        source = Path(__file__).parent / "worker"
        if self.job.lib.exists():
            shutil.rmtree(self.job.lib)
        shutil.copytree(source, self.job.lib / "agworker", ignore=shutil.ignore_patterns("__pycache__"))
        (self.job.lib / "hosts").write_text(launcher.SANDBOX_HOSTS)  # tier A's /etc/hosts
        self.job.root.mkdir(parents=True, exist_ok=True)
        self.job.root.chmod(0o711)  # traversable to the folders below, never listable
        for folder in (self.job.lib, self.job.inputs, self.job.extracted, self.job.submission):
            _world_readable(folder)
        self.job.out.mkdir(parents=True, exist_ok=True)

    def _start(self) -> _Worker:
        self.close()
        self._uid_ctx = launcher.sandbox_uid()
        uid = self._uid_ctx.__enter__()
        for folder in (self.job.out, self.job.home):
            folder.mkdir(exist_ok=True)
            if uid is not None:
                os.chown(folder, uid, uid)
            folder.chmod(0o700)
        support = cgroup.detect()
        group = None
        if support.parent is not None:
            try:
                group = cgroup.WorkerCgroup(
                    support.parent,
                    f"{self.job.root.name}-{self.starts}",
                    self.limits.cgroup_memory,
                    self.limits.processes,
                )
            except OSError:
                group = None  # opportunistic: rlimits still hold
        worker = _Worker(self.tier.tier, self.job, self.limits, uid, self.log, group)
        self._worker = worker
        self.starts += 1
        # Starting and replaying the set-up (after an earlier item's hang) is the budget's
        # time, not the item's: each step within its own limit, then the item's clock resumes.
        starting = time.monotonic()
        self.hello = worker.ask("hello", {}, *self.deadline.cut(START_TIMEOUT, whole_item=False))
        for op, args, timeout in self.setup_steps:
            worker.ask(op, args, *self.deadline.cut(timeout, whole_item=False))
        self.deadline.item_started += time.monotonic() - starting
        return worker

    def pristine(self, op: str, timeout: float, **args: Any) -> dict[str, Any]:
        """Ask a fresh worker that has run no student code, so nothing the student's
        import-time code patched can answer; the usual worker restarts on the next request."""
        self.forget()
        steps, self.setup_steps = self.setup_steps, []
        try:
            return self.request(op, timeout, **args)
        finally:
            self.forget()
            self.setup_steps = steps

    def forget(self) -> None:
        """Stop the worker and empty the folders it could write: nothing it saw (the hidden
        test images) reaches a later worker, in memory or in a file. The next request starts
        a fresh worker and replays the set-up steps."""
        self.close()
        for folder in (self.job.out, self.job.home):
            launcher.remove_tree(folder)

    def close(self) -> None:
        if self._worker is not None:
            self._worker.kill()
            self._worker = None
        if self._uid_ctx is not None:
            self._uid_ctx.__exit__(None, None, None)
            self._uid_ctx = None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- requests --------------------------------------------------------
    def request(self, op: str, timeout: float, **args: Any) -> dict[str, Any]:
        """Ask the worker within ``timeout`` s and what the item and the budget have left;
        a timeout or crash kills it (the next request restarts it)."""
        self._cut(timeout)  # nothing left: fail before (re)starting a worker
        try:
            worker = self._worker or self._start()
            result = worker.ask(op, args, *self._cut(timeout))
        except SandboxError:
            self.close()
            raise
        self._record_cuda(result.get("cuda"))
        return result

    def _record_cuda(self, places: Any) -> None:
        """Keep the first place per file that the worker says asked for CUDA (its text is untrusted)."""
        if not isinstance(places, dict):
            return
        for file, place in list(places.items())[:50]:
            if isinstance(file, str) and file not in self.cuda and isinstance(place, list) and (
                len(place) == 2 and isinstance(place[0], int) and isinstance(place[1], str)
            ):
                self.cuda[file] = (place[0], place[1][:60])

    def _cut(self, timeout: float) -> tuple[float, SandboxError | None]:
        limit, expired = self.deadline.cut(timeout)
        if limit <= 0 and expired is not None:
            raise expired
        return limit, expired

    def setup(self, op: str, timeout: float, **args: Any) -> dict[str, Any]:
        """A request whose effect later requests rely on; replayed after a restart."""
        result = self.request(op, timeout, **args)
        self.setup_steps.append((op, args, timeout))
        return result

    def read_array(self, name: str, dtype: str, shape: tuple[int | None, ...]) -> np.ndarray:
        """Read an array the worker wrote, checking it is exactly what was asked for."""
        if os.path.basename(name) != name or not name.endswith(".npy"):
            raise SandboxError(NoAnswer.PROTOCOL, f"the worker named an invalid array file {name!r}")
        path = self.job.out / name
        try:  # O_NONBLOCK: a FIFO planted under the expected name must not hang the grader
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            raise SandboxError(
                NoAnswer.PROTOCOL, f"the worker's array {name} is missing: {exc.strerror}"
            ) from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > protocol.MAX_ARRAY_BYTES:
            os.close(fd)
            raise SandboxError(NoAnswer.PROTOCOL, f"the worker's array {name} is not a small regular file")
        with os.fdopen(fd, "rb") as handle:
            return _load_exact(handle, name, np.dtype(dtype), shape, info.st_size)

    def output(self) -> str:
        """What the worker printed so far, up to its last answer at least."""
        if self._worker is not None:
            self._worker.log_pipe.catch_up()
        return self.log.text()

    def provenance(self) -> dict[str, Any]:
        """The tier and what actually confined the worker, for every result."""
        uid = (self.hello or {}).get("uid")
        return {
            **self.tier.as_dict(),
            "uid": uid,
            "separate_uid": isinstance(uid, int) and uid != os.getuid(),
            "seccomp": (self.hello or {}).get("seccomp"),
            "ip_sockets": (self.hello or {}).get("ip_sockets"),
            "limits": self.limits.describe(os.geteuid() == 0, cgroup.detect()),
        }


def _load_exact(
    handle: Any, name: str, dtype: np.dtype, shape: tuple[int | None, ...], size: int
) -> np.ndarray:
    """Judge the .npy header before reading any data: a header may claim terabytes or be
    crafted to break numpy's parser, and the data must fill the file exactly."""
    try:
        version = npy.read_magic(handle)
        header = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}[version]
        got_shape, fortran, got_dtype = header(handle, max_header_size=4096)
    except Exception as exc:  # noqa: BLE001 - any parser failure on hostile bytes is the worker's fault
        raise SandboxError(
            NoAnswer.PROTOCOL, f"the worker's array {name} is unreadable: {exc!s:.200}"
        ) from None
    if got_dtype != dtype or fortran:
        raise SandboxError(NoAnswer.PROTOCOL, f"the worker's array {name} is not {dtype}")
    if len(got_shape) != len(shape) or any(
        w is not None and w != g for w, g in zip(shape, got_shape, strict=True)
    ):
        raise SandboxError(
            NoAnswer.PROTOCOL, f"the worker's array {name} has shape {got_shape}, expected {shape}"
        )
    count = int(np.prod(got_shape, dtype=np.int64))
    if handle.tell() + count * dtype.itemsize != size:
        raise SandboxError(
            NoAnswer.PROTOCOL, f"the worker's array {name} is unreadable: its size does not match"
        )
    data = handle.read(count * dtype.itemsize)
    return np.frombuffer(data, dtype=dtype, count=count).reshape(got_shape).copy()


def _world_readable(folder: Path) -> None:
    """The sandbox uid must read the job's inputs (never the grader's data)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in [folder, *folder.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        path.chmod(mode | (0o755 if path.is_dir() else 0o644))
