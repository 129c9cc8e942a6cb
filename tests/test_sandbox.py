"""The sandbox's own defences, piece by piece: answers parsed as hostile
input, arrays read without trusting the file, the grader's refusals, the
lockdown of a Gradescope install, cleanup of what a uid leaves behind, and
the cgroup detection (what this machine offers is recorded in every result)."""

from __future__ import annotations

import ast
import json
import os
import select
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import waits

from autograder.sandbox import cgroup, guard, launcher
from autograder.sandbox.lockdown import lockdown
from autograder.sandbox.session import Deadline, NoAnswer, Sandbox, SandboxError, WorkerFailure, parse_answer
from autograder.sandbox.tiers import Tier, TierInfo, python_paths

ROOT = Path(__file__).resolve().parent.parent
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a second uid)")


# --- answers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'{"id": 1, "ok": true, "result": {"accuracy": NaN}}', "was not valid JSON"),
        (b'{"id": 1, "ok": true, "result": {"params": Infinity}}', "was not valid JSON"),
        (b"[" * 200_000 + b"]" * 200_000, "was not valid JSON"),
        (b'{"id": 1, "ok": true, "result": {"x": 1' + b"0" * 5000 + b"}}", "was not valid JSON"),
        (b"\xff\xfe not even text", "was not valid JSON"),
        (b'{"id": 2, "ok": true, "result": {}}', "did not match the request"),
        (b'[{"id": 1, "ok": true, "result": {}}]', "did not match the request"),
        (b'{"id": 1, "ok": true, "result": "all tests passed"}', "neither result nor error"),
        (b'{"id": 1, "ok": "yes", "error": {"kind": "x"}}', "neither result nor error"),
        (b'{"id": 1}', "neither result nor error"),
    ],
    ids=["nan", "infinity", "nesting", "huge_int", "binary", "wrong_id", "array", "string", "ok_str", "bare"],
)
def test_hostile_answers_are_protocol_errors(line, expected):
    with pytest.raises(SandboxError) as caught:
        parse_answer(line, 1)
    assert caught.value.kind == "protocol" and expected in caught.value.message


def test_a_workers_message_carries_no_bulk_data_and_is_bounded():
    """Student text reaches students only cut: array reprs and blobs go, 500 characters at most."""
    thumbs = repr([[[round(0.37 * k + j, 2) for k in range(8)] for j in range(8)] for _ in range(3)])
    line = json.dumps({"id": 1, "ok": False, "error": {"kind": "crash", "message": f"ValueError: {thumbs}"}})
    with pytest.raises(WorkerFailure) as failed:
        parse_answer(line.encode(), 1)
    message = failed.value.message
    assert message.startswith("ValueError:") and message.endswith(" characters of data cut]")
    assert len(message) < 60
    blob = "QUJD" * 60
    with pytest.raises(WorkerFailure) as failed:
        parse_answer(json.dumps({"id": 1, "ok": False, "error": {"message": f"x {blob} y"}}).encode(), 1)
    assert failed.value.message == "x [240 characters of data cut] y"
    words = "the model said no " * 100
    with pytest.raises(WorkerFailure) as failed:
        parse_answer(json.dumps({"id": 1, "ok": False, "error": {"message": words}}).encode(), 1)
    assert len(failed.value.message) == 500 and failed.value.message.endswith("…")
    plain = "RuntimeError: mat1 and mat2 shapes cannot be multiplied (8x4096 and 1024x10)"
    with pytest.raises(WorkerFailure) as failed:
        parse_answer(json.dumps({"id": 1, "ok": False, "error": {"message": plain}}).encode(), 1)
    assert failed.value.message == plain


def test_deadline_cuts_a_request_to_what_the_item_and_the_budget_have_left():
    now = time.monotonic()
    spent = Deadline(budget=100, started=now - 100)
    limit, expired = spent.cut(30)
    assert limit == 0 and expired.kind == NoAnswer.TIME_BUDGET
    assert expired.message == "the submission's time budget (100 s) ran out"
    item = Deadline(budget=1000, started=now)
    item.start_item(8)
    item.item_started = now - 8
    limit, expired = item.cut(300)
    assert limit == 0 and expired.message == "no answer within the item's 8 s time limit"
    assert expired.kind == NoAnswer.TIMEOUT and expired.limit == 8
    assert item.cut(300, whole_item=False)[1] is None  # a worker's start is the budget's alone
    assert Deadline().cut(60) == (60, None)


def test_a_valid_answer_and_a_valid_failure():
    assert parse_answer(b'{"id": 7, "ok": true, "result": {"params": 60554}}', 7) == {"params": 60554}
    with pytest.raises(WorkerFailure) as caught:
        parse_answer(b'{"id": 7, "ok": false, "error": {"kind": "crash", "message": "boom", "line": 3}}', 7)
    assert (caught.value.kind, caught.value.message, caught.value.details) == ("crash", "boom", {"line": 3})


# --- arrays -------------------------------------------------------------------------


@pytest.fixture
def sandbox(tmp_path):
    job = launcher.Job(tmp_path, *(tmp_path / n for n in ("submission", "extracted", "inputs", "out", "lib")))
    box = Sandbox(TierInfo(Tier.C, "test"), job, launcher.Limits(None, 1))
    job.out.mkdir(exist_ok=True)
    return box


def _read(box: Sandbox, name: str = "logits.npy"):
    """read_array on a thread, so a hang fails the test instead of freezing it."""
    outcome: list = []

    def target():
        try:
            outcome.append(box.read_array(name, "float32", (4, 10)))
        except SandboxError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(10)
    assert outcome, "read_array hung"
    return outcome[0]


def test_read_array_accepts_exactly_what_was_asked(sandbox):
    np.save(sandbox.job.out / "logits.npy", np.ones((4, 10), np.float32))
    assert _read(sandbox).shape == (4, 10)


def _npy(path: Path, header: str, data_bytes: int = 0) -> None:
    """A .npy file with a hand-written header (numpy would never write a hostile one)."""
    text = header.encode().ljust(118 - 1) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + bytes(data_bytes))


@pytest.mark.parametrize(
    ("plant", "expected"),
    [
        (lambda p: p.symlink_to("/etc/passwd"), "is missing"),
        (lambda p: os.mkfifo(p), "is not a small regular file"),
        (lambda p: p.mkdir(), "is not a small regular file"),
        (lambda p: np.save(p, np.array([{"x": 1}], dtype=object)), "is not float32"),
        (lambda p: np.save(p, np.ones((4, 10), np.float64)), "is not float32"),
        (lambda p: np.save(p, np.ones((5, 10), np.float32)), "has shape (5, 10), expected (4, 10)"),
        (lambda p: p.write_bytes(b"\x93NUMPY garbage"), "is unreadable"),
        (lambda p: _npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 10)}", 8), "size does not"),
        (
            lambda p: _npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 10)}"),
            "has shape",
        ),
        (lambda p: _npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': " + "(" * 60), "unreadable"),
        (lambda p: _npy(p, "{'descr': '<f4', 'fortran_order': True, 'shape': (4, 10)}", 160), "not float32"),
    ],
    ids=[
        "symlink",
        "fifo",
        "folder",
        "pickled_objects",
        "float64",
        "shape",
        "garbage",
        "short_data",
        "terabyte_header",
        "broken_header",
        "fortran_order",
    ],
)
def test_read_array_refuses_what_a_student_can_plant(sandbox, plant, expected):
    plant(sandbox.job.out / "logits.npy")
    result = _read(sandbox)
    assert isinstance(result, SandboxError) and expected in result.message


def test_read_array_refuses_names_outside_out(sandbox):
    for name in ("../inputs/test_images.npy", "/etc/passwd", "logits.pkl"):
        assert "invalid array file" in _read(sandbox, name).message


# --- output -------------------------------------------------------------------------


def test_a_print_made_just_before_an_answer_is_in_the_output(monkeypatch):
    """The worker flushes its prints before it answers; the grader's log holds them once the
    answer is in, even when the thread that reads the pipe has not run yet (here: never)."""
    calls, stalled = [], threading.Event()

    def stall_the_reader(*args, **kwargs):
        if threading.current_thread() is threading.main_thread():
            return real_select(*args, **kwargs)
        calls.append(args)
        stalled.wait()
        return real_select(*args, **kwargs)

    real_select = select.select
    monkeypatch.setattr(select, "select", stall_the_reader)
    root = Path(tempfile.mkdtemp())
    root.chmod(0o711)
    job = launcher.Job(root, *(root / n for n in ("submission", "extracted", "inputs", "out", "lib")))
    box = Sandbox(TierInfo(Tier.C, "test"), job, launcher.Limits(None, 1))
    module = job.submission / "noisy.py"
    module.write_text("print('Test Accuracy: 100.00%')\n")
    module.chmod(0o644)
    try:
        box.request("load_source", 120, name="noisy", path=str(module))
        assert calls, "the reading thread never waited on the pipe"
        assert "Test Accuracy: 100.00%" in box.output()
    finally:
        stalled.set()
        box.close()
        shutil.rmtree(root, ignore_errors=True)


# --- refusals -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1", "true"])
def test_unsafe_torch_load_environment_is_refused(value):
    with pytest.raises(guard.UnsafeSetup, match="TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"):
        guard.check_environment({"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": value})
    guard.check_environment({"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "0", "TORCH_FORCE_WEIGHTS_ONLY_LOAD": "1"})


def test_student_checkpoints_are_loaded_only_in_the_worker_with_weights_only():
    """No grader module calls torch.load; the worker always passes weights_only=True."""
    calls = []
    for path in (ROOT / "autograder").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load":
                keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
                calls.append((path.relative_to(ROOT).as_posix(), keywords))
    assert calls, "the worker must load checkpoints somewhere"
    for where, keywords in calls:
        assert where.startswith("autograder/sandbox/worker/"), where
        assert keywords.get("weights_only") == "True", (where, keywords)


@pytest.fixture
def open_tmp(tmp_path):
    """A folder under /tmp that other users can traverse (pytest's own tmp folder is 0700)."""
    folder = Path(tempfile.mkdtemp(dir="/tmp", prefix="ag-sandbox-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@as_root
def test_probe_as_sandbox_uid_sees_exactly_what_dac_allows(open_tmp):
    (open_tmp / "public").write_text("x")
    (open_tmp / "private").write_text("labels")
    (open_tmp / "private").chmod(0o600)
    hidden = open_tmp / "hidden"
    hidden.mkdir(mode=0o700)
    (hidden / "readable_but_unreachable").write_text("labels")
    (hidden / "readable_but_unreachable").chmod(0o644)
    paths = [
        open_tmp / "public",
        open_tmp / "private",
        hidden / "readable_but_unreachable",
        open_tmp / "gone",
    ]
    assert guard.readable_by(launcher.UID_BASE, paths) == [open_tmp / "public"]


# --- lockdown ---------------------------------------------------------------------------


@as_root
def test_lockdown_hides_the_install_but_keeps_the_interpreter_reachable(open_tmp):
    tmp_path = open_tmp
    home = tmp_path / "source"
    for rel in ("data/cifar-10-batches-py/test_batch", "reference/solution.py", "rubric-id"):
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_text("secret")
    results = tmp_path / "results"
    results.mkdir()
    for path in [results, *home.rglob("*"), home]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    assert guard.readable_by(launcher.UID_BASE, [home / "data/cifar-10-batches-py/test_batch"])
    changed = lockdown(TierInfo(Tier.B, "test"), home, home / "data", results)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(results) == 0o700 and mode(home / "reference") == 0o700
    assert mode(home / "data/cifar-10-batches-py") == 0o700
    assert mode(home / "data/cifar-10-batches-py/test_batch") == 0o600
    assert mode(home / "rubric-id") == 0o600
    assert mode(home) == 0o700  # the interpreter (python_paths) lives elsewhere here
    assert home / "reference" in changed
    assert guard.readable_by(launcher.UID_BASE, [home / "data/cifar-10-batches-py/test_batch"]) == []
    # the interpreter the sandbox runs was never touched
    for path in python_paths():
        assert mode(Path(path)) & 0o005 == 0o005


def test_lockdown_does_nothing_in_tier_a(tmp_path):
    (tmp_path / "data").mkdir(mode=0o755)
    assert lockdown(TierInfo(Tier.A, "test"), tmp_path, tmp_path / "data", tmp_path) == []
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o755


# --- what a uid leaves behind ------------------------------------------------------------------


@as_root
def test_files_a_sandbox_uid_left_in_shared_folders_are_removed(tmp_path):
    uid = launcher.UID_BASE + 999
    shared = tmp_path / "tmp"
    shared.mkdir(mode=0o1777)
    mine = [shared / "big.bin", shared / "dir", shared / "link", shared / "x11" / "sock"]
    (shared / "x11").mkdir()
    (shared / "x11").chmod(0o1777)  # like /tmp/.X11-unix: anyone may create files in it
    (shared / "big.bin").write_bytes(b"0" * 100)
    (shared / "dir").mkdir()
    (shared / "dir" / "inner").write_text("x")
    precious = tmp_path / "precious"
    precious.write_text("grader's")
    (shared / "link").symlink_to(precious)
    (shared / "x11" / "sock").write_text("x")
    (shared / "theirs").write_text("another user's")
    for path in mine + [shared / "dir" / "inner"]:
        os.lchown(path, uid, uid)
    removed = launcher.remove_files_of(uid, (str(shared),))
    assert sorted(removed) == sorted(map(str, mine))
    assert not any(os.path.lexists(p) for p in mine)
    assert precious.read_text() == "grader's" and (shared / "theirs").exists()


@as_root
def test_uid_locks_live_in_a_root_only_folder():
    folder = launcher._lock_dir()
    info = folder.lstat()
    assert stat.S_ISDIR(info.st_mode) and info.st_uid == 0 and not info.st_mode & 0o022


# --- cgroups ---------------------------------------------------------------------------


def test_cgroup_v2_mount_is_found_in_mountinfo(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(
        "30 24 0:26 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory\n"
        "35 24 0:31 / /sys/fs/cgroup/unified rw,relatime shared:14 - cgroup2 cgroup2 rw\n"
    )
    assert cgroup.v2_mount(str(info)) == Path("/sys/fs/cgroup/unified")
    info.write_text("30 24 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n")
    assert cgroup.v2_mount(str(info)) is None


def test_cgroup_support_is_recorded_with_its_reason():
    support = cgroup.detect()
    assert support.reason
    if support.parent is None:
        assert support.reason.endswith("memory is capped per process")
    else:
        assert {"memory", "pids"} <= set((support.parent / "cgroup.subtree_control").read_text().split())


@pytest.mark.skipif(cgroup.detect().parent is None, reason=cgroup.detect().reason)
def test_cgroup_caps_the_memory_of_all_processes_together():
    """Where a delegated cgroup v2 exists: 4 processes of 150 MB each break a 256 MB cap."""
    group = cgroup.WorkerCgroup(cgroup.detect().parent, f"test-{os.getpid()}", 256 << 20, 64)
    hog = "import os, time\nos.fork(); os.fork()\nx = bytearray(150 << 20)\ntime.sleep(5)"
    try:
        subprocess.run([sys.executable, "-c", hog], preexec_fn=lambda: cgroup.join(group.procs), timeout=60)
        assert group.oom_killed()
    finally:
        group.remove()
    assert not group.path.exists()


def test_answers_as_written_by_the_worker_round_trip():
    """The worker's own encoder never emits what the grader's parser refuses."""
    from autograder.sandbox.worker import protocol

    line = protocol.ok(3, {"params": 60554, "shape": [8, 10], "note": "ü"})
    assert parse_answer(line.rstrip(b"\n"), 3) == json.loads(line)["result"]
    with pytest.raises(ValueError):
        protocol.ok(3, {"accuracy": float("nan")})


GRADER = """
import json, sys, tempfile, threading, time
from pathlib import Path
from autograder.sandbox import Sandbox
from autograder.sandbox.launcher import Job, Limits
from autograder.sandbox.tiers import Tier, TierInfo

uids, boxes = [], []
for tier in sys.argv[1:]:
    root = Path(tempfile.mkdtemp())
    root.chmod(0o711)
    job = Job(root, *(root / n for n in ("submission", "extracted", "inputs", "out", "lib")))
    box = Sandbox(TierInfo(Tier(tier), "test"), job, Limits(4 << 30, 1))
    uids.append(box.request("hello", 120)["uid"])
    (job.submission / "spin.py").write_text("print('spinning', flush=True)\\nwhile True:\\n    pass\\n")
    (job.submission / "spin.py").chmod(0o644)
    path = "/sandbox/submission/spin.py" if tier == "A" else str(job.submission / "spin.py")
    spin = {"name": "s", "path": path}
    threading.Thread(target=box.request, args=("load_source", 600), kwargs=spin).start()
    boxes.append(box)
deadline = time.monotonic() + 120
while not all("spinning" in box.output() for box in boxes):  # the event: student code runs
    if time.monotonic() > deadline:
        sys.exit("the student code never started")
    time.sleep(0.05)
print(json.dumps(uids), flush=True)
threading.Event().wait()
"""


@as_root
def test_workers_die_with_a_killed_grader():
    """kill -9 of the grader, while student code spins, leaves no worker behind
    (tier A: bwrap --die-with-parent; tier B: the parent-death signal)."""
    grader = subprocess.Popen(
        [sys.executable, "-c", GRADER, "A", "B"], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        line = grader.stdout.readline()  # the event: both workers run student code
        assert line, f"the grader ended first (exit {grader.wait()})"
        uids = json.loads(line)
        workers = [pid for uid in uids for pid in waits.running(uid=uid)]
        assert all(waits.running(uid=uid) for uid in uids)
    finally:
        grader.kill()
        grader.wait()
    assert waits.exited(workers, 10) == []
    assert [uid for uid in uids if waits.running(uid=uid)] == []


def test_a_killed_graders_job_folder_is_removed_by_the_next_grade():
    """SIGKILL leaves a job folder (a copy of the submission, the test images) behind; the next
    grader on the machine removes it, and never a live grader's folder."""
    script = (
        "import os, signal, sys; from autograder.sandbox.launcher import JobFolder; "
        "f = JobFolder(); (f.path / 'submission').mkdir(); print(f.path, flush=True); "
        "os.kill(os.getpid(), signal.SIGKILL)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == -9
    stale = Path(done.stdout.strip())
    live = launcher.JobFolder()
    try:
        old = time.time() - 2 * launcher.STALE_AFTER_SECONDS
        for folder in (stale, live.path):
            os.utime(folder, (old, old))
        assert (stale / "submission").is_dir()  # what SIGKILL left
        fresh = launcher.JobFolder()
        fresh.remove()
        assert not stale.exists()
        assert (live.path / launcher.ALIVE).exists()  # the running grader's folder stays
    finally:
        live.remove()
    assert not live.path.exists()
