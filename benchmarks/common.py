"""What every benchmark shares: the machine's description, the data root,
lab 2 submissions, process-tree memory sampling, cgroup caps, and writing
one section of ``docs/benchmarks.md`` without touching the others."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(Path(__file__).parent)]

from autograder.data.formats import write_cifar10  # noqa: E402
from autograder.machine import usable_cpus  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
DATA = ROOT / "data"  # ignored by git; carried to a GPU machine by name
DOC_HEAD = """# Benchmarks

Speed and memory claims of the autograder, each measured side by side with
its baseline in one run by a script in `benchmarks/` (never by timed unit
tests). Each section below is written by its own script, which replaces only
its section; the machine is described in each. Numbers from a shared or busy
machine vary from run to run: compare within a table, not across tables.

"""


# --- the machine ---------------------------------------------------------------


def machine() -> str:
    """One line: CPU, usable cores, memory, load, Python/torch, GPU."""
    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()[0]
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {usable_cpus()} usable cores (of {os.cpu_count()}), {memory:.0f} GiB RAM, "
        f"load average {load:.1f} at the start; Python {platform.python_version()}, "
        f"torch {torch.__version__}; {gpu}"
    )


# --- data ----------------------------------------------------------------------


def data_root(test_images: int, train: bool = False) -> tuple[Path, str]:
    """A CIFAR-10 data root with ``test_images`` test images, and what it holds.

    Real CIFAR-10 (converted from the JPEG copies) when the archives are
    present, else generated learnable data of the same shape."""
    from cifar_jpeg import convert, find_archives

    archives = find_archives()
    if archives is not None:
        full = convert(archives, DATA / "cifar10-real")
        what = "real CIFAR-10 test images (JPEG copies, converted)"
    else:
        from helpers.data import make_cifar

        full = DATA / "cifar10-generated"
        if not (full / "cifar-10-batches-py" / "test_batch").is_file():
            make_cifar(full, train=50_000 if train else 2_000, test=10_000)
        what = "generated CIFAR-format test images (the real JPEG copies were not found)"
    if test_images >= 10_000:
        return full, what
    return subset_root(full, test_images), what


def subset_root(full: Path, n: int) -> Path:
    """The first ``n`` test images of ``full`` as a data root of their own."""
    from autograder.data import load_split

    root = DATA / f"{full.name}-{n}"
    if not (root / "cifar-10-batches-py" / "test_batch").is_file():
        split = load_split(full, "cifar10", train=False)
        write_cifar10(root, split.images[:n], split.labels[:n], train=False)
        for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"):
            target = root / "cifar-10-batches-py" / name
            if not target.exists() and (full / "cifar-10-batches-py" / name).exists():
                target.symlink_to(full / "cifar-10-batches-py" / name)
    return root


def lab2_submission(folder: Path) -> Path:
    """A lab 2 submission (notebook, simple_cnn.py, resnet18.py, PDF), freshly initialised weights.

    SimpleCNN also lives in ``simple_cnn.py`` (the rubric looks there first), so grading
    needs no torchvision in the worker: the CPU-only torch wheel can be measured without it."""
    import inspect

    import torch
    from helpers import submissions

    from reference.lab2 import simple_cnn
    from reference.lab2.resnet18 import ResNet18
    from reference.lab2.simple_cnn import SimpleCNN

    if not (folder / "resnet18.pth").exists():
        torch.manual_seed(0)
        submissions.write_lab2(folder, SimpleCNN().state_dict(), ResNet18().state_dict())
        (folder / "simple_cnn.py").write_text(inspect.getsource(simple_cnn))
    return folder


# --- timing --------------------------------------------------------------------


def best_of(repeat: int, fn) -> tuple[float, object]:
    """The fastest of ``repeat`` runs (interference only ever adds time) and its result."""
    best, result = float("inf"), None
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        value = fn()
        elapsed = time.perf_counter() - start
        if elapsed < best:
            best, result = elapsed, value
    return best, result


# --- memory of a process tree ----------------------------------------------------


def _status(pid: int) -> dict[str, int]:
    found: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "PPid"):
                found[key] = int(value.split()[0])
    return found


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return ""


@dataclass
class TreeMemory:
    """Peak memory of a process and its descendants, sampled every 20 ms."""

    root: int
    peak_hwm: dict[int, int] = field(default_factory=dict)  # pid -> VmHWM kB
    peak_anon: dict[int, int] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    peak_total_rss: int = 0

    def sample(self) -> None:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                ppid = _status(int(entry)).get("PPid")
                if ppid is not None:
                    children.setdefault(ppid, []).append(int(entry))
        todo, tree = [self.root], []
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo += children.get(pid, [])
        total = 0
        for pid in tree:
            info = _status(pid)
            if not info:
                continue
            self.peak_hwm[pid] = max(self.peak_hwm.get(pid, 0), info.get("VmHWM", 0))
            self.peak_anon[pid] = max(self.peak_anon.get(pid, 0), info.get("RssAnon", 0))
            self.names.setdefault(pid, _cmdline(pid))
            total += info.get("VmRSS", 0)
        self.peak_total_rss = max(self.peak_total_rss, total)

    def _pids(self, role: str) -> list[int]:
        if role == "grader":
            return [self.root]
        return [p for p, n in self.names.items() if "agworker" in n and p != self.root]

    def role_mb(self, role: str) -> float:
        """Peak RSS (MiB) of the grader (the root) or the worker(s) (agworker)."""
        return max((self.peak_hwm.get(p, 0) for p in self._pids(role)), default=0) / 1024

    def anon_mb(self, role: str) -> float:
        """Peak anonymous RSS (MiB): memory that cannot be dropped and reread like library pages."""
        return max((self.peak_anon.get(p, 0) for p in self._pids(role)), default=0) / 1024


@contextlib.contextmanager
def watch(pid: int) -> Iterator[TreeMemory]:
    memory = TreeMemory(pid)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            memory.sample()
            stop.wait(0.02)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield memory
    finally:
        stop.set()
        thread.join()


# --- cgroup caps (v1 as on this machine, or v2) --------------------------------------


@dataclass
class Cap:
    """A memory cgroup (and CPU quota) for one command, or a note why there is none."""

    memory_bytes: int | None
    cpus: float | None
    folders: list[Path] = field(default_factory=list)
    note: str = ""

    def __enter__(self) -> Cap:
        name = f"agbench-{os.getpid()}-{int(time.time() * 1000)}"
        v1 = Path("/sys/fs/cgroup/memory")
        v2 = Path("/sys/fs/cgroup")
        try:
            if (v1 / "memory.limit_in_bytes").exists():
                self._v1(name)
            elif (v2 / "cgroup.controllers").exists():
                self._v2(name)
            else:
                self.note = "no cgroup hierarchy: not capped"
        except OSError as exc:
            self.note = f"cgroup not writable ({exc.strerror}): not capped"
            self.folders = []
        return self

    def _v1(self, name: str) -> None:
        memory = Path("/sys/fs/cgroup/memory") / name
        memory.mkdir()
        self.folders.append(memory)
        if self.memory_bytes:
            (memory / "memory.limit_in_bytes").write_text(str(self.memory_bytes))
            with contextlib.suppress(OSError):
                (memory / "memory.memsw.limit_in_bytes").write_text(str(self.memory_bytes))
        if self.cpus:
            cpu = Path("/sys/fs/cgroup/cpu") / name
            cpu.mkdir()
            self.folders.append(cpu)
            (cpu / "cpu.cfs_period_us").write_text("100000")
            (cpu / "cpu.cfs_quota_us").write_text(str(int(self.cpus * 100000)))
        self.note = "cgroup v1"

    def _v2(self, name: str) -> None:
        folder = Path("/sys/fs/cgroup") / name
        folder.mkdir()
        self.folders.append(folder)
        if self.memory_bytes:
            (folder / "memory.max").write_text(str(self.memory_bytes))
            with contextlib.suppress(OSError):
                (folder / "memory.swap.max").write_text("0")
        if self.cpus:
            (folder / "cpu.max").write_text(f"{int(self.cpus * 100000)} 100000")
        self.note = "cgroup v2"

    def enter(self) -> None:
        """Runs in the child before exec: join every folder."""
        for folder in self.folders:
            (folder / "cgroup.procs").write_text(str(os.getpid()))

    def peak_mb(self) -> float | None:
        for folder in self.folders:
            for name in ("memory.max_usage_in_bytes", "memory.peak"):
                with contextlib.suppress(OSError, ValueError):
                    return int((folder / name).read_text()) / 2**20
        return None

    def oom_kills(self) -> int:
        for folder in self.folders:
            for name in ("memory.oom_control", "memory.events"):
                with contextlib.suppress(OSError):
                    match = re.search(r"oom_kill (\d+)", (folder / name).read_text())
                    if match:
                        return int(match.group(1))
        return 0

    def __exit__(self, *exc: object) -> None:
        for folder in self.folders:
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


@dataclass
class Run:
    returncode: int
    seconds: float
    memory: TreeMemory
    cap_peak_mb: float | None
    oom_kills: int
    stdout: str


def run_capped(argv: list[str], cap: Cap, env: dict[str, str] | None = None) -> Run:
    """Run ``argv`` inside ``cap``, watching the memory of its process tree."""
    start = time.perf_counter()
    proc = subprocess.Popen(  # noqa: S603
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
        preexec_fn=cap.enter if cap.folders else None,
        cwd=ROOT,
    )
    with watch(proc.pid) as memory:
        out, _ = proc.communicate()
    return Run(proc.returncode, time.perf_counter() - start, memory, cap.peak_mb(), cap.oom_kills(), out)


# --- docs/benchmarks.md ----------------------------------------------------------


def write_section(key: str, markdown: str) -> Path:
    """Replace this benchmark's section (between its markers), keeping every other."""
    begin, end = f"<!-- BEGIN {key} -->", f"<!-- END {key} -->"
    text = DOC.read_text() if DOC.exists() else DOC_HEAD
    block = f"{begin}\n{markdown.strip()}\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text)
    return DOC


def table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def load_images(root: Path) -> tuple[np.ndarray, np.ndarray]:
    from autograder.data import load_split

    split = load_split(root, "cifar10", train=False)
    return split.images, split.labels


# The CIFAR-10 normalisation the handouts use.
CIFAR_MEAN, CIFAR_STD = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]


def handout_loader(root: Path, batch_size: int, limit: int | None = None):
    """The handouts' test loader, as written in them (torchvision's CIFAR10, ToTensor,
    Normalize, two loader workers), reading the benchmark's CIFAR-10 copies."""
    import torch
    import torchvision.transforms as transforms
    from torch.utils.data import DataLoader
    from torchvision.datasets import CIFAR10

    class AnyCIFAR10(CIFAR10):  # the same reading, without the md5 gate on non-official files
        def _check_integrity(self) -> bool:
            return True

        def _load_meta(self) -> None:
            self.classes = [str(i) for i in range(10)]

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(CIFAR_MEAN, CIFAR_STD)])
    testset = AnyCIFAR10(str(root), train=False, download=False, transform=transform)
    if limit is not None:
        testset = torch.utils.data.Subset(testset, range(min(limit, len(testset))))
    return DataLoader(testset, batch_size=batch_size, shuffle=False, num_workers=2)
