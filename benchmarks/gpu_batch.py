"""Several submissions graded at once on one GPU: ``autograder batch --device cuda``.

A class of N lab 2 submissions (SimpleCNN and ResNet-18, each with its own
weights) is graded by the real batch command with ``--workers K`` on
``--device cuda``, while ``nvidia-smi`` samples the GPU's memory every 200 ms.
Reports the wall time, the gradebook (every submission graded, none lost to an
out-of-memory failure) and the peak GPU memory, overall and per worker process.

    python benchmarks/gpu_batch.py [--submissions 8] [--workers 4] [--device cuda] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, data_root, lab2_submission, machine, table  # noqa: E402
from helpers import moodle  # noqa: E402


def gpu_memory_sampler(stop: threading.Event, samples: list[tuple[float, dict[int, int], int]]) -> None:
    """(time, {pid: MiB}, total MiB used) every 200 ms until ``stop``; nothing without nvidia-smi."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return
    start = time.perf_counter()
    while not stop.is_set():
        apps = subprocess.run(
            [smi, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
            capture_output=True, text=True,
        ).stdout  # fmt: skip
        total = subprocess.run(
            [smi, "--query-gpu=memory.used", "--format=csv,noheader,nounits"], capture_output=True, text=True
        ).stdout
        per_pid = {}
        for line in apps.splitlines():
            pid, _, mib = line.partition(",")
            if pid.strip().isdigit() and mib.strip().isdigit():
                per_pid[int(pid)] = int(mib)
        used = int(total.split()[0]) if total.split() and total.split()[0].isdigit() else 0
        samples.append((time.perf_counter() - start, per_pid, used))
        stop.wait(0.2)


def make_class(tmp: Path, n: int) -> Path:
    archive = tmp / "download.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for person in moodle.roster(n, seed=11):
            folder = lab2_submission(tmp / "src" / person.uid)
            moodle.add_submission(zf, person, folder, "folders")
    return archive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--rubric", default="lab2-resnet18-cifar10")
    parser.add_argument("--out", default=None, help="keep the batch output here (default: a temp folder)")
    args = parser.parse_args()
    root, what = data_root(args.images)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        archive = make_class(tmp, args.submissions)
        out = Path(args.out) if args.out else tmp / "grades"
        stop, samples = threading.Event(), []
        sampler = threading.Thread(target=gpu_memory_sampler, args=(stop, samples), daemon=True)
        sampler.start()
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "autograder.cli", "batch", str(archive), "--rubric", args.rubric,
             "--data-root", str(root), "--out", str(out), "--workers", str(args.workers),
             "--device", args.device, "--no-progress"],
            capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
        wall = time.perf_counter() - started
        stop.set()
        sampler.join()
        print(done.stdout[-4000:], done.stderr[-4000:], sep="\n")
        results = sorted(out.rglob("results.json"))
        messages = []
        for result in results:
            data = json.loads(result.read_text())
            print(result.parent.name, data.get("score"), [t.get("score") for t in data.get("tests", [])])
            for test in data.get("tests", []):
                if "out of memory" in test.get("output", "").lower():
                    messages.append(f"{result.parent.name}: {test['name']}: {test['output'][:200]}")
        peak_total = max((s[2] for s in samples), default=0)
        peak_per_pid = max((m for s in samples for m in s[1].values()), default=0)
        peak_sum = max((sum(s[1].values()) for s in samples), default=0)
        concurrent = max((len(s[1]) for s in samples), default=0)
        summary = [
            [args.submissions, args.workers, args.device, f"{wall:.1f}", f"{len(results)}/{args.submissions}",
             len(messages), concurrent, peak_per_pid, peak_sum, peak_total, done.returncode]
        ]  # fmt: skip
        header = ["submissions", "workers", "device", "wall s", "graded", "OOM messages",
                  "GPU processes at once (max)", "peak MiB one process", "peak MiB all processes",
                  "peak MiB GPU used", "exit"]  # fmt: skip
        print(f"{what}; {machine()}")
        print(table(header, summary))
        for line in messages:
            print("OOM:", line)


if __name__ == "__main__":
    main()
