"""Batch throughput: ``autograder batch --workers 2`` against ``--workers 1``,
side by side in one run, on the same class and the same machine.

Each configuration grades the same Moodle-style download of N distinct
SimpleCNN submissions from scratch (fresh output folder, empty cache), as a
TA would run it; the runs alternate (1, 2, 2, 1, ...) so a drifting machine
load hits both alike. The test split is real CIFAR-10 (10,000 images, the
JPEG copies converted by ``benchmarks/cifar_jpeg.py``) when present, else
generated CIFAR-format data of the same size.

    .venv/bin/python benchmarks/batch_throughput.py [--submissions 12] [--rounds 1] [--write-docs]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

import torch  # noqa: E402
from helpers import data, moodle  # noqa: E402

from reference.lab2.simple_cnn import SimpleCNN  # noqa: E402

RUBRIC = ROOT / "tests" / "rubrics" / "batch-simplecnn.toml"
DOCS = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- batch-throughput:start -->", "<!-- batch-throughput:end -->"


def data_root(tmp: Path) -> tuple[Path, str]:
    from cifar_jpeg import convert, find_archives

    real = ROOT / "data" / "cifar10-real"
    if (real / "cifar-10-batches-py" / "test_batch").is_file():
        return real, "real CIFAR-10 test split (10,000 JPEG-decoded images)"
    archives = find_archives()
    if archives:
        return convert(archives, real), "real CIFAR-10 test split (10,000 JPEG-decoded images)"
    return data.make_cifar(
        tmp / "cifar", train=100, test=10_000
    ), "generated CIFAR-format test split (10,000)"


def download(tmp: Path, n: int) -> Path:
    """N distinct submissions (own code, own weights) in a Moodle download zip."""
    rng = random.Random(0)
    people = moodle.roster(n, seed=7)
    archive = tmp / "download.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for k, person in enumerate(people):
            torch.manual_seed(k)
            nb = moodle.notebook(moodle.student_code(rng), moodle.training_log(rng))
            folder = moodle.write_student(tmp / "src" / person.uid, SimpleCNN().state_dict(), nb)
            moodle.add_submission(zf, person, folder, "folders")
    return archive


def run(archive: Path, root: Path, out: Path, workers: int) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "batch", str(archive), "--rubric", str(RUBRIC),
         "--data-root", str(root), "--out", str(out), "--workers", str(workers), "--no-progress"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0 or " 0 grader errors" not in done.stdout:
        sys.exit(f"batch failed ({workers} workers):\n{done.stdout}\n{done.stderr[-3000:]}")
    graded = int(re.search(r"(\d+) graded now", done.stdout)[1])
    assert graded == len(list((out / "students").iterdir())), done.stdout
    return seconds


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )  # fmt: skip
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cores = len(os.sched_getaffinity(0))
    return f"{model}, {cores} cores available, {memory:.0f} GiB RAM, {platform.system()} {platform.release()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=1, help="ABBA rounds (each runs both configs twice)")
    parser.add_argument("--write-docs", action="store_true", help=f"write the table into {DOCS}")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ.setdefault("AUTOGRADER_CACHE", str(tmp / "cache"))
        root, dataset = data_root(tmp)
        archive = download(tmp, args.submissions)
        load = os.getloadavg()[0]
        times: dict[int, list[float]] = {1: [], 2: []}
        order = [1, 2, 2, 1] * args.rounds
        for n, workers in enumerate(order):
            seconds = run(archive, root, tmp / f"out{n}", workers)
            times[workers].append(seconds)
            print(f"--workers {workers}: {seconds:.1f} s for {args.submissions} submissions", flush=True)
    table = report(times, args.submissions, dataset, load)
    print(table)
    if args.write_docs:
        write_docs(table)


def report(times: dict[int, list[float]], n: int, dataset: str, load: float) -> str:
    base = statistics.median(times[1])
    rows = [
        "| `--workers` | wall time per batch (median of runs) | submissions / minute | speed-up vs 1 |",
        "|---:|---:|---:|---:|",
    ]
    for workers in (1, 2):
        median = statistics.median(times[workers])
        runs = ", ".join(f"{t:.1f}" for t in times[workers])
        rows.append(f"| {workers} | {median:.1f} s ({runs}) | {60 * n / median:.1f} | {base / median:.2f}× |")
    return "\n".join(
        [
            f"Measured {time.strftime('%Y-%m-%d')} by `benchmarks/batch_throughput.py`: {n} distinct "
            "SimpleCNN submissions in a Moodle download, graded from scratch by `autograder batch` with the "
            "SimpleCNN rubric (`tests/rubrics/batch-simplecnn.toml`: layer spec, forward pass, accuracy, "
            f"claims) on the {dataset}; every submission in its own sandbox (one worker process each). Runs "
            "alternate 1, 2, 2, 1 workers in one session.",
            "",
            f"Machine: {machine()}; load average {load:.1f} when the run started (a shared machine: other "
            "jobs were running).",
            "",
            *rows,
        ]
    )


def write_docs(table: str) -> None:
    section = f"## Batch throughput (`autograder batch --workers`)\n\n{START}\n{table}\n{END}\n"
    text = DOCS.read_text(encoding="utf-8") if DOCS.is_file() else "# Benchmarks\n\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        after = rest.split(END, 1)[1].lstrip("\n")
        text = head.rsplit("## Batch throughput", 1)[0] + section + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
