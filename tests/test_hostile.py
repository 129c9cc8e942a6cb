"""The hostile corpus, graded in tier A (bubblewrap) and tier B (separate uid,
rlimits, seccomp, no namespaces): no attack changes a score, reads a label,
outlives its worker or takes the grader down, and every results.json is
valid, names the tier and explains what failed.

The honest SimpleCNN scores ~70% on a test split capped by pure-noise images
(10 of 20 points); a stolen label answers everything (20 points), so "score
unchanged" really catches a thief. ``test_thief_wins_where_labels_are_readable``
proves the thief's code works when nothing stops it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jsonschema
import nbformat
import pytest
import torch
from helpers import data, grading, waits
from hostile import corpus

from autograder import cli, gradescope_entry, submission
from autograder.checks import accuracy
from autograder.data import load_split
from autograder.grade import STOPPED, grade
from autograder.rubric import load
from autograder.sandbox import Sandbox, cgroup, guard, launcher, session
from autograder.sandbox.tiers import FORCE_ENV, Tier, TierInfo, python_paths

TIERS = ["A", "B"]
RUBRIC = Path(__file__).parent / "rubrics" / "hostile-simplecnn.toml"
NOTEBOOK_RUBRIC = Path(__file__).parent / "rubrics" / "hostile-notebook.toml"
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="tiers A (as root) and B need root")


# --- fixtures ---------------------------------------------------------------


@pytest.fixture(scope="module")
def world():
    """A folder other users may traverse, like /autograder: only the grader's own
    permissions (not pytest's private tmp folder) stand between a student and its files."""
    root = Path(tempfile.mkdtemp(prefix="ag-hostile-", dir="/tmp"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def cache(world):
    """The decoded-split cache lives in the world-traversable folder too (it makes itself 0700)."""
    old = os.environ.get("AUTOGRADER_CACHE")
    os.environ["AUTOGRADER_CACHE"] = str(world / "cache")
    yield world / "cache"
    if old is None:
        os.environ.pop("AUTOGRADER_CACHE", None)
    else:
        os.environ["AUTOGRADER_CACHE"] = old


@pytest.fixture(scope="module")
def open_root(world):
    """A data root as a fresh install leaves it: world-readable (umask 022)."""
    return data.make_cifar(world / "data-open", train=10, test=300, impossible=0.3, seed=5)


@pytest.fixture(scope="module")
def private_root(world, open_root):
    """The same data, private to the grader (what ``lockdown`` makes of it)."""
    root = world / "data-private"
    shutil.copytree(open_root, root)
    os.chmod(root / "cifar-10-batches-py", 0o700)
    return root


@pytest.fixture(scope="module")
def rubric():
    return load(str(RUBRIC))


@pytest.fixture(scope="module")
def honest(tmp_path_factory, trained_simple, private_root, rubric):
    """The baseline every attack is compared with (graded once: the tier cannot change it)."""
    tmp = tmp_path_factory.mktemp("honest")
    os.environ[FORCE_ENV] = "A"
    try:
        graded = grading.run(corpus.honest(tmp / "s", trained_simple), rubric, private_root, tmp / "out")
    finally:
        os.environ.pop(FORCE_ENV, None)
    assert "accuracy" in graded.test("task1.accuracy")["extra_data"], graded.message("task1.accuracy")
    accuracy = graded.test("task1.accuracy")["extra_data"]["accuracy"]
    assert 0.6 < accuracy < 0.9 and graded.json["score"] == 10, graded.json
    return graded


@pytest.fixture
def tier(request, monkeypatch) -> str:
    monkeypatch.setenv(FORCE_ENV, request.param)
    return request.param


def by_tier(fn):
    return pytest.mark.parametrize("tier", TIERS, indirect=True)(fn)


# --- what every graded attack must satisfy ------------------------------------


def contained(doc: dict, tier: str, schema: dict) -> dict:
    """results.json is valid, names the tier, and the sandbox uid has nothing left running."""
    jsonschema.validate(doc, schema)
    sandbox = doc["extra_data"]["provenance"]["sandbox"]
    assert doc["extra_data"]["sandbox_tier"] == tier == sandbox["tier"]
    assert sandbox["separate_uid"] is True and sandbox["seccomp"] is True
    assert waits.running(uid=sandbox["uid"]) == []
    return sandbox


def attack(build, tmp_path: Path, rubric, root: Path, *args) -> tuple[grading.Graded, float]:
    """The corpus submission ``build(tmp_path / "s", *args)`` graded into ``tmp_path / "o"``,
    and the seconds that took."""
    started = time.monotonic()
    graded = grading.run(build(tmp_path / "s", *args), rubric, root, tmp_path / "o")
    return graded, time.monotonic() - started


def entry(doc: dict, item_id: str) -> dict:
    return next(t for t in doc["tests"] if t["extra_data"]["id"] == item_id)


def hostile_report(output: str) -> dict:
    lines = [line for line in output.splitlines() if line.startswith(corpus.TAG + " ")]
    assert lines, f"no {corpus.TAG} line in the worker output:\n{output[-3000:]}"
    return json.loads(lines[-1][len(corpus.TAG) + 1 :])


# --- the corpus -----------------------------------------------------------------


@pytest.mark.slow  # a graded attack on the trained SimpleCNN, in the sandbox
@by_tier
def test_every_attack_that_keeps_the_model_working_changes_nothing(
    tier, world, open_root, cache, rubric, honest, trained_simple, results_schema
):
    """One submission, many attacks, graded the Gradescope way (run_autograder's
    entry point, as root, AUTOGRADER_ROOT standing in for /autograder), each
    attack's outcome asserted on its own line."""
    token = f"{tier}-{os.getpid()}"
    base = world / f"gradescope-{tier}"
    home = base / "source"  # /autograder/source: data, solutions, rubric
    shutil.copytree(open_root, home / "data")
    (home / "reference").mkdir()
    (home / "reference" / "solution.py").write_text("SECRET = 'reference solution'\n")
    results = base / "results"
    results.mkdir(parents=True)
    test_batch = home / "data" / "cifar-10-batches-py" / "test_batch"
    assert list(cache.glob("*.npz")), "the honest run should have cached the decoded split"
    listener = socket.create_server(("127.0.0.1", 0))
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind(f"\0ag-hostile-{token}")
    abstract.listen()
    listener.setblocking(False)
    abstract.setblocking(False)
    leftovers = [f"/tmp/ag-left-{token}", f"/dev/shm/ag-left-{token}", f"/var/tmp/ag-left-{token}"]
    slips = [f"../../../../../../tmp/ag-slip-{token}.py", f"/tmp/ag-abs-{token}.py"]
    paths = {
        "test_batch": str(test_batch),
        "cache": str(cache),
        "results": str(results / "results.json"),
        "port": listener.getsockname()[1],
        "abstract": f"ag-hostile-{token}",
        "leftovers": leftovers,
        "symlinks": {"labels.bin": str(test_batch), "cache": str(cache), "shadow.txt": "/etc/shadow"},
        "zip_slip": slips,
        "jobs_parent": str(launcher.jobs_parent()),
    }
    corpus.sink(base / "submission", trained_simple, paths)
    env = {
        "AUTOGRADER_ROOT": str(base),
        "AUTOGRADER_RUBRIC": str(RUBRIC),
        "AUTOGRADER_DATA": str(home / "data"),
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert gradescope_entry.main(["--home", str(home)]) == 0
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    text = (results / "results.json").read_text()
    doc = json.loads(text)
    sandbox = contained(doc, tier, results_schema)
    # the daemon (its command line names results.json) died with the worker's uid, before grading ended
    assert waits.running(argv_holds=str(results / "results.json")) == []
    assert (results / "results.json").read_text() == text and "HACKED" not in text

    # the score and every item's verdict are exactly the honest ones
    assert doc["score"] == honest.json["score"] == 10, [t["output"][:400] for t in doc["tests"]]
    for item in ("task1.spec", "task1.forward", "task1.accuracy"):
        assert entry(doc, item)["status"] == honest.test(item)["status"] == "passed"
    accuracy = entry(doc, "task1.accuracy")["extra_data"]["accuracy"]
    assert accuracy == honest.test("task1.accuracy")["extra_data"]["accuracy"]

    # each attack, from the submission's own report
    output = doc["extra_data"]["worker_output"]
    found = hostile_report(output)
    assert "attack_errors" not in found, found
    print(f"tier {tier}: the attacks took {found['attack_seconds']} s inside the import")
    missing = "FileNotFoundError" if tier == "A" else "PermissionError"
    assert found["labels_data_root"] == missing and found["labels_cache"] == missing
    assert found["eval_detected"] is True and found["inputs_folder"] == ["test_images.npy"]
    assert "cheated_images" not in found
    if tier == "A":  # a read-only root; the real path lies under /tmp, the sandbox's private tmpfs
        assert found["results_gradescope"] == "OSError" and found["results_relative"] == "WRITTEN"
    else:
        assert found["results_gradescope"] == found["results_real"] == "PermissionError"
    if tier == "A":  # sockets exist in the sandbox's own network namespace; nothing answers there
        assert found["net_loopback"] == "ConnectionRefusedError" and found["net_public"] == "OSError"
        assert found["net_ipv6"] in ("ConnectionRefusedError", "OSError")  # OSError: IPv6 off
    else:  # no private namespace for sure: IP sockets refused
        for key in ("net_loopback", "net_public", "net_ipv6"):
            assert found[key] == "PermissionError", (key, found[key])
    assert found["net_abstract_unix"] == "ConnectionRefusedError"
    assert found["net_dns"] != "RESOLVED"
    assert with_accept_none(listener) and with_accept_none(abstract)
    assert found["memory_64g"] == "MemoryError" and found["memory_shared_32g"] == "OSError"
    assert found["file_4g"] == "OSError errno 27"  # EFBIG: RLIMIT_FSIZE
    if cgroup.detect().parent is None:  # RLIMIT_AS caps the worker alone: it may start no process
        assert found["forks"] == 0 and found["fork_error"] == "PermissionError errno 1"
        assert found["daemon_started"] == "PermissionError"
    else:
        assert 0 < found["forks"] < 512 and found["fork_error"] == "BlockingIOError errno 11"
        assert found["daemon_started"] is True
    assert found["kill_parent"] == ("NOT ATTEMPTED (pid namespace)" if tier == "A" else "PermissionError")
    assert found["monkeypatched"] is True and found["flooded_mb"] == 50
    assert f"{corpus.TAG}-SHADOW" not in output

    # what the sandbox looked like from inside
    assert found["uid"] == sandbox["uid"] != 0
    assert found["cap_eff"] == "0000000000000000" and found["no_new_privs"] == "1"
    assert found["seccomp_mode"] == "2"
    assert found["rlimits"]["NPROC"] == 512 and found["rlimits"]["CORE"] == 0
    assert found["rlimits"]["FSIZE"] == 512 << 20 and found["rlimits"]["AS"] == 8 << 30
    allowed = {"PATH", "HOME", "TMPDIR", "OMP_NUM_THREADS", "MPLBACKEND", "LANG", "LC_CTYPE", "PWD"}
    assert set(found["env"]) <= allowed  # nothing of the grader's environment
    # no way to find another submission's job folder: not by listing, not by command lines
    assert found["other_jobs"] == ("FileNotFoundError" if tier == "A" else "PermissionError")
    assert not [a for a in found["own_cmdline_paths"] if "autograder-job" in a]
    if tier == "A":
        assert found["hostname"] == "sandbox" and found["pids_visible"] <= 4
        # the system folders, plus the top folder of wherever the grader's Python environment lives
        # (/work here, /check or /home on another machine)
        system = {"bin", "dev", "etc", "lib", "lib64", "proc", "sandbox", "sbin", "tmp", "usr"}
        environment = {Path(p).parts[1] for p in python_paths()}
        assert set(found["root"]) <= system | environment, set(found["root"]) - system
    else:  # tier B sees the host, which is why the grader's files had to be locked down
        assert stat.S_IMODE((home / "data").stat().st_mode) == 0o700
        assert stat.S_IMODE((home / "reference").stat().st_mode) == 0o700
        assert stat.S_IMODE(results.stat().st_mode) == 0o700

    # 50 MB of prints became a few KB of evidence
    assert "AAAA" in output and "characters cut" in output
    assert len(output) < 4200 and len(text) < 60_000

    # intake: links and escaping zip entries skipped and said so
    notes = doc["output"]
    for name in ("labels.bin", "cache", "shadow.txt"):
        assert f"skipped the symbolic link {name}" in notes
    assert "skipped the symbolic link extras/labels_link in extras.zip" in notes
    assert notes.count("its path leaves the submission folder") == 2
    for path in [*leftovers, f"/tmp/ag-slip-{token}.py", f"/tmp/ag-abs-{token}.py"]:
        assert not os.path.lexists(path), f"{path} outlived the sandbox"


def with_accept_none(server: socket.socket) -> bool:
    """Nobody connected to a listener the sandbox tried to reach."""
    try:
        server.accept()
    except BlockingIOError:
        return True
    finally:
        server.close()
    return False


@pytest.mark.slow  # a graded attack on the trained SimpleCNN, in the sandbox
@by_tier
def test_networked_code_at_import_runs_offline_in_tier_a_and_nothing_leaves(
    tier, tmp_path, private_root, rubric, honest, trained_simple, results_schema
):
    """A module that goes online when imported (a download in try/except, a probe of a
    local visdom server that expects "connection refused") imports in tier A as it
    does on an offline laptop: sockets exist in the sandbox's own network namespace,
    connections fail. Its POST to the grader machine's listener reaches nothing. Tier B
    has no private namespace of its own for sure, so IP sockets stay refused there."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    port = listener.getsockname()[1]
    folder = corpus.online_at_import(tmp_path / "s", trained_simple, port)
    graded = grading.run(folder, rubric, private_root, tmp_path / "out")
    sandbox = contained(graded.json, tier, results_schema)
    assert with_accept_none(listener)
    if tier == "A":
        assert sandbox["ip_sockets"] is True
        assert f"{corpus.TAG}-NET False ConnectionRefusedError" in graded.result.worker_output
        assert graded.json["score"] == honest.json["score"] == 10
        for item in ("task1.spec", "task1.forward", "task1.accuracy"):
            assert graded.test(item)["status"] == "passed"
    else:
        assert sandbox["ip_sockets"] is False
        assert graded.message("task1.spec") == (  # line 9: the visdom probe expects ConnectionRefusedError
            "importing simple_cnn.py line 9 failed: PermissionError: [Errno 13] Permission denied"
        )
        assert graded.json["score"] == 0


def test_the_import_time_leak_reaches_a_listener_without_the_sandbox(tmp_path):
    """Control for the test above: the same POST, run by a plain interpreter, arrives."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    code = corpus.LEAK_AT_IMPORT.replace("__PORT__", str(port)) + "print(LEAK)\n"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    connection, _ = listener.accept()
    with connection, listener:
        connection.settimeout(10)
        received = b""
        while b"stolen labels" not in received:
            chunk = connection.recv(4096)
            if not chunk:
                break
            received += chunk
        connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert child.communicate(timeout=30)[0].strip() == "SENT"
    assert received.startswith(b"POST /leak") and received.endswith(b"stolen labels")


@pytest.mark.slow  # a graded attack on the trained SimpleCNN, in the sandbox
@by_tier
@pytest.mark.parametrize("how", ["os._exit", "sys.exit"])
def test_exit_at_import_fails_the_model_items_with_why(
    tier, how, tmp_path, private_root, rubric, honest, trained_simple, results_schema
):
    folder = corpus.import_exit(tmp_path / "s", trained_simple, how)
    graded = grading.run(folder, rubric, private_root, tmp_path / "out")
    contained(graded.json, tier, results_schema)
    assert graded.json["score"] == 0
    expected = (
        "importing simple_cnn.py crashed the worker (the worker process ended with exit status 0)"
        if how == "os._exit"
        else "importing simple_cnn.py failed: it called exit(0) while being imported; exiting decides nothing"
    )
    for item in ("task1.spec", "task1.forward", "task1.accuracy"):
        assert graded.test(item)["status"] == "failed"
        assert graded.message(item).startswith(expected)
    # the fake score it printed is just text in the log
    assert "Test Accuracy: 100.00%" in graded.result.worker_output


@pytest.mark.slow  # a graded attack on the trained SimpleCNN, in the sandbox
@by_tier
def test_folders_nested_1500_deep_by_student_code_cost_nothing(
    tier, tmp_path, private_root, rubric, honest, trained_simple, results_schema
):
    graded, _ = attack(corpus.deep_folders, tmp_path, rubric, private_root, trained_simple)
    contained(graded.json, tier, results_schema)
    # the trees were made where the worker writes (Python's rmtree raises on them:
    # tests/test_untrusted.py shows it), and the grader removed them and graded on
    made = hostile_report(graded.result.worker_output)["deep"]
    assert max(made.values()) == 1500, made
    assert graded.json["score"] == honest.json["score"]
    for item in ("task1.spec", "task1.forward", "task1.accuracy"):
        assert graded.test(item)["status"] == honest.test(item)["status"]


@pytest.mark.slow  # a graded attack on the trained SimpleCNN, in the sandbox
@by_tier
def test_infinite_loop_at_import_costs_only_the_time_limit(
    tier, tmp_path, private_root, rubric, trained_simple, results_schema
):
    graded, seconds = attack(corpus.import_loop, tmp_path, rubric, private_root, trained_simple)
    assert seconds < rubric.import_timeout + 60
    contained(graded.json, tier, results_schema)
    for item in ("task1.spec", "task1.forward", "task1.accuracy"):
        assert graded.message(item).startswith(
            "importing simple_cnn.py took too long "
            f"(no answer within the {rubric.import_timeout:g} s time limit)"
        )
    assert graded.json["score"] == 0


@pytest.mark.slow  # a graded attack on the trained SimpleCNN, in the sandbox
@by_tier
def test_infinite_loop_in_forward_fails_that_check_alone(
    tier, tmp_path, private_root, rubric, honest, trained_simple, results_schema
):
    graded, _ = attack(corpus.forward_loop, tmp_path, rubric, private_root, trained_simple)
    sandbox = contained(graded.json, tier, results_schema)
    assert graded.test("task1.spec")["status"] == "passed"
    assert "within the 6 s time limit" in graded.message("task1.forward")
    accuracy = graded.test("task1.accuracy")
    assert accuracy["extra_data"]["accuracy"] == honest.test("task1.accuracy")["extra_data"]["accuracy"]
    assert accuracy["score"] == 0 and "no points: task1.forward failed" in accuracy["output"]
    # the submission's worker, killed, then restarted; the accuracy item's fresh worker that
    # read the checkpoint's shapes (the layer-stack item passed) before it
    assert graded.json["extra_data"]["provenance"]["worker_starts"] == 3
    assert sandbox["uid"]


@pytest.mark.slow  # a graded attack on the trained SimpleCNN, in the sandbox
def test_a_submission_that_sleeps_forever_gets_its_results_within_its_time_budget(
    tmp_path, private_root, rubric, trained_simple, results_schema, monkeypatch
):
    """Item limits adding up to 15 minutes; the submission's budget ends it all the same."""
    monkeypatch.setenv(FORCE_ENV, "A")
    budget = 25
    slow = dataclasses.replace(grading.only(rubric, "task1", timeout=300), time_budget=budget)
    graded, seconds = attack(corpus.forward_sleep, tmp_path, slow, private_root, trained_simple)
    assert seconds < budget + 60  # a safety bound, not a benchmark
    contained(graded.json, "A", results_schema)
    assert graded.test("task1.spec")["status"] == "passed"
    assert graded.message("task1.forward") == (
        f"SimpleCNN forward pass was stopped: the submission's time budget ({budget} s) ran out"
    )
    assert graded.message("task1.accuracy").startswith(
        f"not run: the submission's time budget ({budget} s) was spent in task1.forward ("
    )
    assert graded.json["score"] == 0


@pytest.mark.slow  # a graded attack on the trained SimpleCNN, in the sandbox
def test_an_items_timeout_covers_its_import_too(tmp_path, private_root, rubric, trained_simple, monkeypatch):
    """The rubric allows 300 s per import; the item that imports has 8 s for everything."""
    monkeypatch.setenv(FORCE_ENV, "A")
    short = dataclasses.replace(grading.only(rubric, "task1.spec", timeout=8), import_timeout=300)
    graded, _ = attack(corpus.import_loop, tmp_path, short, private_root, trained_simple)
    assert graded.message("task1.spec") == (
        "importing simple_cnn.py took too long (no answer within the item's 8 s time limit) "
        '(move training code under `if __name__ == "__main__":`)'
    )


@pytest.mark.slow  # a graded attack on the trained SimpleCNN, in the sandbox
def test_sigterm_writes_the_results_graded_so_far(world, tmp_path, open_root, trained_simple, results_schema):
    """Gradescope stops run_autograder at its limit with SIGTERM (SIGKILL follows): the
    items graded by then keep their verdicts, the rest say they were not run. Tier B, so
    the student's forward can tell the test (a file in a host folder) that it is running."""
    base = world / f"sigterm-{os.getpid()}"
    home = base / "source"
    shutil.copytree(open_root, home / "data")
    (base / "results").mkdir()
    flags = base / "flags"
    flags.mkdir()
    flags.chmod(0o777)
    marker = flags / "forward-started"
    corpus.forward_sleep(base / "submission", trained_simple, str(marker))
    patient = tmp_path / "patient.toml"  # the forward item would wait 5 minutes for its answer
    patient.write_text(RUBRIC.read_text().replace("timeout = 6", "timeout = 300"))
    env = {
        **os.environ,
        FORCE_ENV: "B",
        "AUTOGRADER_ROOT": str(base),
        "AUTOGRADER_RUBRIC": str(patient),
        "AUTOGRADER_DATA": str(home / "data"),
        "PYTHONPATH": str(Path(__file__).parents[1]),
    }
    grader = subprocess.Popen(
        [sys.executable, "-m", "autograder.gradescope_entry", "--home", str(home)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        waits.until(marker.exists, 300, "the student's forward starting", grader)
        grader.send_signal(signal.SIGTERM)
        output = grader.communicate(timeout=120)[0].decode()
    finally:
        grader.kill()
    assert grader.returncode == 0, output[-3000:]
    doc = json.loads((base / "results" / "results.json").read_text())
    contained(doc, "B", results_schema)
    assert entry(doc, "task1.spec")["status"] == "passed"
    for item in ("task1.forward", "task1.accuracy"):
        assert entry(doc, item)["status"] == "failed"
        assert entry(doc, item)["output"].startswith(STOPPED)
    assert doc["score"] == 0


def fork_bomb_grade(tmp_path: Path, private_root: Path, rubric, state: dict):
    """Grade the fork bomb; return the sandbox uid's live processes the moment grade() returned.

    Processes are allowed as where a cgroup sums their memory (without one the worker may
    start none, and the bomb cannot go off): the leftovers are what this is about."""
    patient = dataclasses.replace(grading.only(rubric, "task1.spec", timeout=120), import_timeout=120)
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(launcher.Limits, "one_process", lambda self, in_cgroup: False)
        result = grade(corpus.fork_bomb(tmp_path / "s", state), patient, private_root)
    uid = result.provenance["sandbox"]["uid"]
    return waits.running(uid=uid), uid, result


@pytest.mark.slow  # a graded attack on the trained SimpleCNN, in the sandbox
@by_tier
def test_no_process_of_a_fork_bomb_outlives_grade(tier, tmp_path, private_root, rubric, trained_simple):
    left, uid, result = fork_bomb_grade(tmp_path, private_root, rubric, trained_simple)
    assert left == []  # at once, no waiting: grade() returned only after they were gone
    assert uid and hostile_report(result.worker_output)["forked"] == 150
    assert result.items[0].passed


@pytest.mark.slow  # a graded attack on the trained SimpleCNN, in the sandbox
def test_fork_bomb_leftovers_without_waiting_for_them(
    tmp_path, private_root, rubric, trained_simple, monkeypatch
):
    """Control: with neither the uid sweep nor the process-group kill, the bomb's children
    outlive grade() (tier B: no pid namespace takes them down with the worker)."""
    monkeypatch.setenv(FORCE_ENV, "B")
    kill_uid = launcher.kill_uid
    with monkeypatch.context() as patched:
        patched.setattr(launcher, "kill_uid", lambda uid: None)  # the defence off: no uid sweep,
        patched.setattr(os, "killpg", lambda pgid, sig: None)  # no process-group kill either
        left, uid, _ = fork_bomb_grade(tmp_path, private_root, rubric, trained_simple)
    kill_uid(uid)
    assert len(left) >= 150, left


def accuracy_then_forward(rubric):
    """The accuracy item first: the visible forward check runs after the worker held the test images."""
    items = {i.id: dataclasses.replace(i, requires=[]) for i in rubric.items}
    return dataclasses.replace(rubric, items=[items["task1.accuracy"], items["task1.forward"]])


@pytest.mark.slow  # a graded attack on the trained SimpleCNN, in the sandbox
@by_tier
def test_a_later_item_cannot_show_the_hidden_test_images(
    tier, tmp_path, private_root, rubric, honest, trained_simple, results_schema
):
    folder = corpus.thumbnails(tmp_path / "s", trained_simple)
    graded = grading.run(folder, accuracy_then_forward(rubric), private_root, tmp_path / "o")
    contained(graded.json, tier, results_schema)
    accuracy = graded.test("task1.accuracy")["extra_data"]["accuracy"]
    assert accuracy == honest.test("task1.accuracy")["extra_data"]["accuracy"]
    # a fresh worker: no thumbnails in memory, and the images file is gone
    assert graded.message("task1.forward").startswith(
        "SimpleCNN forward pass failed at simple_cnn.py line "
    )
    assert graded.message("task1.forward").endswith(": ValueError: LEAK nothing: FileNotFoundError")


@pytest.mark.slow  # a graded attack on the trained SimpleCNN, in the sandbox
def test_an_exception_raised_while_evaluating_does_not_show_its_text(
    tmp_path, private_root, rubric, trained_simple, monkeypatch
):
    monkeypatch.setenv(FORCE_ENV, "A")
    folder = corpus.thumbnails(tmp_path / "s", trained_simple, at_once=True)
    graded = grading.run(folder, accuracy_then_forward(rubric), private_root, tmp_path / "o")
    message = graded.message("task1.accuracy")
    assert message.startswith("evaluating SimpleCNN on the test split failed at simple_cnn.py line ")
    assert message.endswith(
        ": ValueError (its message is not shown: your code raised it while holding the hidden test images)"
    )
    assert "thumbnails" not in graded.json["output"] + json.dumps(graded.json["tests"])


@pytest.mark.slow  # a graded attack on the trained SimpleCNN, in the sandbox
def test_thumbnails_reach_a_visible_message_without_the_defence(
    tmp_path, private_root, rubric, trained_simple, monkeypatch
):
    """Control: the same worker for every item and messages passed on whole."""
    monkeypatch.setenv(FORCE_ENV, "A")
    monkeypatch.setattr(Sandbox, "forget", lambda self: None)
    monkeypatch.setattr(session, "bounded", lambda text: text)
    folder = corpus.thumbnails(tmp_path / "s", trained_simple)
    graded = grading.run(folder, accuracy_then_forward(rubric), private_root, tmp_path / "o")
    message = graded.test("task1.forward")["output"]
    assert graded.test("task1.forward")["visibility"] == "visible"
    assert ": ValueError: LEAK [[[[" in message and message.count(",") > 40  # pixel values


def forged_grade(tmp_path: Path, private_root: Path, rubric):
    both = grading.only(rubric, "task1.spec", "task1.accuracy", timeout=120)
    return grading.run(corpus.forged_structure(tmp_path / "s"), both, private_root, tmp_path / "o")


def test_a_forged_layer_stack_earns_no_accuracy_points(tmp_path, private_root, rubric, monkeypatch):
    """A ResNet-18 handed in as SimpleCNN whose import makes the introspection measure a decoy.
    The layer-stack item believes the worker; the accuracy item compares what it checked with
    the checkpoint it scores, read by a worker that never ran student code."""
    monkeypatch.setenv(FORCE_ENV, "A")
    graded = forged_grade(tmp_path, private_root, rubric)
    assert graded.message("task1.spec") == (
        "SimpleCNN (simple_cnn.py) has the required 6-layer stack in order "
        "and ends in Linear(out_features=10)"
    )
    message = graded.message("task1.accuracy")
    assert message.startswith("SimpleCNN test accuracy ") and graded.test("task1.accuracy")["score"] == 0
    assert message.endswith(
        "but no points: simple_cnn.pth is not the network task1.spec checked: it holds 0 parameters "
        "for the layer features.0, not 896"
    )


@pytest.mark.slow  # a second forged grade (the quick subset keeps the first)
def test_a_forged_layer_stack_opens_the_gate_without_the_comparison(
    tmp_path, private_root, rubric, monkeypatch
):
    """Control: without the comparison nothing stops a ResNet-18 from earning SimpleCNN's points."""
    monkeypatch.setenv(FORCE_ENV, "A")
    monkeypatch.setattr(accuracy, "_checked_elsewhere", lambda *args: None)
    graded = forged_grade(tmp_path, private_root, rubric)
    assert graded.message("task1.spec") == (
        "SimpleCNN (simple_cnn.py) has the required 6-layer stack in order "
        "and ends in Linear(out_features=10)"
    )
    assert "no points" not in graded.message("task1.accuracy")
    assert "not_the_checked_network" not in graded.result.item("task1.accuracy").data


@pytest.mark.slow  # a graded attack on the trained SimpleCNN, in the sandbox
@by_tier
def test_protocol_attacks_fail_their_checks_and_never_hang_the_grader(
    tier, tmp_path, private_root, rubric, trained_simple, results_schema
):
    """A 6 MiB answer without a newline on the reply pipe; a FIFO where the logits belong."""
    graded, seconds = attack(corpus.protocol, tmp_path, rubric, private_root, trained_simple)
    assert seconds < 60
    contained(graded.json, tier, results_schema)
    assert graded.test("task1.spec")["status"] == "passed"
    assert "the worker's answer exceeded the size limit" in graded.message("task1.forward")
    assert (
        graded.message("task1.accuracy") == "the worker's array logits_task1.npy is not a small regular file"
    )
    assert graded.json["score"] == 0


@by_tier
def test_checkpoint_whose_unpickling_runs_code_is_refused(
    tier, tmp_path, private_root, rubric, results_schema
):
    marker = Path(f"/tmp/ag-payload-{tier}-{os.getpid()}")
    graded, _ = attack(corpus.payload_checkpoint, tmp_path, rubric, private_root, marker)
    contained(graded.json, tier, results_schema)
    message = graded.message("task1.accuracy")
    assert message.startswith("simple_cnn.pth is a whole pickled object (it contains a pickled exec)")
    assert message.endswith("save the weights with torch.save(model.state_dict(), PATH)")
    assert not marker.exists()
    assert f"{corpus.TAG}-PAYLOAD-RAN" not in graded.result.worker_output


def test_the_payload_really_runs_code_when_unpickled(tmp_path):
    """Control for the test above: a plain torch.load(weights_only=False) runs it."""
    marker = tmp_path / "marker"
    folder = corpus.payload_checkpoint(tmp_path / "s", marker)
    torch.load(folder / "simple_cnn.pth", weights_only=False)
    assert marker.read_text() == "pwned"


@pytest.mark.slow  # a graded attack on the trained SimpleCNN, in the sandbox
@by_tier
def test_whole_model_pickle_is_refused_with_how_to_save(
    tier, tmp_path, private_root, rubric, trained_simple, results_schema
):
    """Handed in as a zip that also carries ``../`` and absolute paths (zip-slip)."""
    slips = [
        f"../../../../../../tmp/ag-zipslip-{tier}-{os.getpid()}.py",
        f"/tmp/ag-zipabs-{tier}-{os.getpid()}.py",
    ]
    archive = corpus.zipped(corpus.whole_model(tmp_path / "s", trained_simple), tmp_path / "s.zip", slips)
    graded = grading.run(archive, rubric, private_root, tmp_path / "o")
    contained(graded.json, tier, results_schema)
    assert graded.json["output"].count("its path leaves the submission folder") == 2
    assert not any(os.path.lexists(p) for p in ("/tmp" + s.rsplit("/tmp", 1)[1] for s in slips))
    assert graded.message("task1.accuracy") == (
        "simple_cnn.pth is a whole pickled object (it contains a pickled "
        "reference.lab2.simple_cnn.SimpleCNN), which the grader will not unpickle: "
        "save the weights with torch.save(model.state_dict(), PATH)"
    )
    assert graded.test("task1.forward")["status"] == "passed"


@pytest.mark.slow  # a graded attack on the trained SimpleCNN, in the sandbox
@by_tier
def test_zip_bomb_is_refused_before_any_code_runs(
    tier, tmp_path, private_root, rubric, trained_simple, results_schema, monkeypatch
):
    """Intake caps what it writes while inflating, not by trusting the headers. The caps
    are lowered here (1 GiB per file in production) so the test writes 64 MB, not 1 GB."""
    monkeypatch.setattr(submission, "MAX_FILE_BYTES", 64 << 20)
    monkeypatch.setattr(submission, "MAX_TOTAL_BYTES", 128 << 20)
    bomb = corpus.zip_bomb(tmp_path / "StudentID_lab2.zip", trained_simple, inflated=96 << 20)
    assert bomb.stat().st_size < 1 << 20
    graded = grading.run(bomb, rubric, private_root, tmp_path / "o")
    jsonschema.validate(graded.json, results_schema)
    assert graded.json["extra_data"]["sandbox_tier"] == tier
    assert graded.json["extra_data"]["provenance"]["worker_starts"] == 0
    assert graded.json["score"] == 0
    assert graded.message("task1.accuracy") == (
        "data.bin unpacks to more than 64 MB (a zip bomb or a far too large file); remove it and resubmit"
    )


@pytest.mark.slow  # a graded attack on the trained SimpleCNN, in the sandbox
@by_tier
def test_a_notebook_cannot_smuggle_labels_to_the_graded_worker(
    tier, world, tmp_path, private_root, honest, trained_simple, results_schema
):
    """The notebook runs first, in its own sandbox with a copy of the dataset at ./data;
    it stashes what it read wherever a sandbox uid can write and leaves a daemon
    rewriting the stash. The graded worker that starts next finds nothing."""
    token = f"{tier}-{os.getpid()}"
    results = world / f"results-nb-{tier}"
    results.mkdir()
    stashes = [f"{folder}/ag-stash-{token}" for folder in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")]
    paths = {
        "grader_test_batch": str(private_root / "cifar-10-batches-py" / "test_batch"),
        "stashes": stashes,
        "results": str(results / "results.json"),
    }
    folder = corpus.notebook_smuggler(tmp_path / "s", trained_simple, paths)
    graded = grading.run(folder, load(str(NOTEBOOK_RUBRIC)), private_root, tmp_path / "o")
    contained(graded.json, tier, results_schema)
    assert "the kernel died while running cell 4" in graded.message("notebook.execute")

    executed = nbformat.read(str(graded.out / "StudentID_lab2.executed.ipynb"), as_version=4)
    texts = ["".join(o.get("text", "")) for c in executed.cells for o in c.get("outputs", [])]
    line = next(t for t in texts if t.startswith(f"{corpus.TAG}-NB "))
    notebook = json.loads(line.split(" ", 1)[1])
    assert notebook["grader_data_root"] == ("FileNotFoundError" if tier == "A" else "PermissionError")
    assert notebook["stashed"]
    assert notebook["network"] == ("OSError" if tier == "A" else "PermissionError")  # A: no route
    assert "/autograder/results/results.json" not in notebook.get("results_written", [])
    assert not (results / "results.json").exists()

    found = hostile_report(graded.result.worker_output)
    assert found["stash_found"] == [] and "cheated_images" not in found
    for item in ("task1.spec", "task1.forward", "task1.accuracy"):
        assert graded.test(item)["status"] == honest.test(item)["status"] == "passed"
    assert (
        graded.test("task1.accuracy")["extra_data"]["accuracy"]
        == (honest.test("task1.accuracy")["extra_data"]["accuracy"])
    )
    assert graded.json["score"] == honest.json["score"]
    # the notebook's stash keeper (its command line names the stashes) died with its sandbox
    assert waits.running(argv_holds=stashes[0]) == []
    assert [p for p in stashes if os.path.lexists(p)] == []


def test_run_autograder_ignores_student_files_in_its_working_directory(tmp_path, results_schema):
    """Gradescope starts run_autograder as root; a package or module named like the
    grader's own imports in its working directory must never be imported."""
    cwd = tmp_path / "cwd"
    marker = tmp_path / "marker"
    evil = f"open({str(marker)!r}, 'a').write(__name__ + ' ')\n"
    (cwd / "autograder").mkdir(parents=True)
    (cwd / "autograder" / "__init__.py").write_text(evil)
    for name in ("json.py", "numpy.py", "sitecustomize.py"):
        (cwd / name).write_text(evil)
    root = tmp_path / "autograder-root"
    (root / "submission").mkdir(parents=True)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_RUBRIC": str(RUBRIC), FORCE_ENV: "A"}
    env["PYTHONPATH"] = str(cwd)  # -I ignores it too
    done = subprocess.run(
        [str(Path(__file__).parents[1] / "run_autograder")],
        cwd=cwd,
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert not marker.exists(), marker.read_text()
    doc = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(doc, results_schema)
    assert doc["tests"][0]["output"] == "submission contains no files"


# --- the guard and the controls ---------------------------------------------------


@pytest.mark.slow  # a graded attack on the trained SimpleCNN, in the sandbox
def test_thief_wins_where_labels_are_readable(open_root, trained_simple, honest):
    """The thief's code, run where nothing stops it, answers every test image."""
    split = load_split(open_root, "cifar10")
    paths = {"test_batch": str(open_root / "cifar-10-batches-py" / "test_batch"), "cache": "/nonexistent"}
    stolen = corpus.thief_accuracy(paths, trained_simple, split.images, split.labels)
    assert stolen == 1.0 > honest.test("task1.accuracy")["extra_data"]["accuracy"]


def test_tier_b_refuses_a_data_root_the_sandbox_uid_can_read(tmp_path, open_root, rubric, monkeypatch):
    monkeypatch.setenv(FORCE_ENV, "B")
    folder = corpus.honest(tmp_path / "s", {})
    with pytest.raises(guard.UnsafeSetup) as refused:
        grading.run(folder, rubric, open_root, tmp_path / "o")
    folder_path = open_root / "cifar-10-batches-py"
    assert str(refused.value).startswith("tier B: student code would run as a uid that can read")
    assert str(refused.value).endswith(f"chmod -R go-rwx {folder_path}")
    assert not (tmp_path / "o").exists()
    # tier A never mounts the data root, so the same folder is fine there
    guard.check_secrets(TierInfo(Tier.A, "test"), open_root, "cifar10")


@pytest.mark.slow  # a graded attack on the trained SimpleCNN, in the sandbox
def test_tier_b_without_the_guard_the_thief_wins(
    tmp_path, open_root, rubric, trained_simple, cache, monkeypatch, results_schema
):
    """Why the guard exists: with a world-readable data root and no refusal, tier B leaks."""
    monkeypatch.setenv(FORCE_ENV, "B")
    monkeypatch.setattr(guard, "check_secrets", lambda *a: None)
    paths = {"test_batch": str(open_root / "cifar-10-batches-py" / "test_batch"), "cache": str(cache)}
    graded = grading.run(
        corpus.thief(tmp_path / "s", trained_simple, paths), rubric, open_root, tmp_path / "o"
    )
    contained(graded.json, "B", results_schema)
    assert graded.test("task1.accuracy")["extra_data"]["accuracy"] == 1.0
    assert graded.json["score"] == 20


def test_grader_refuses_to_start_with_unsafe_torch_load(tmp_path, open_root, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    folder = corpus.honest(tmp_path / "s", {})
    status = cli.main(
        [
            "grade",
            str(folder),
            "--rubric",
            str(RUBRIC),
            "--data-root",
            str(open_root),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the rubric's staff note
    assert err.startswith("autograder: TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 is set in the grader's environment")
    assert err.endswith("Unset it (unset TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD) and run the grader again")
    assert not (tmp_path / "o").exists()
