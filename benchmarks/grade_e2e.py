"""``autograder grade`` end to end on a lab 2 submission (SimpleCNN and
ResNet-18, the whole rubric): wall time and peak memory of the grader and its
sandboxed worker, with the decoded-split cache cold and warm; then the
Gradescope budget: the same grading with one worker thread inside a cgroup of
768 MB and one CPU (Gradescope's default memory; its default is half a vCPU,
which doubles the wall time), for this venv's torch and, given
``--cpu-python``, an interpreter with the CPU-only torch wheel.

    .venv/bin/python benchmarks/grade_e2e.py [--images N] [--cpu-python PATH] [--only e2e|gradescope]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, Cap, data_root, lab2_submission, machine, run_capped, table, write_section

GRADESCOPE_MEMORY = 768 << 20
GRADESCOPE_LIMIT_S = 600
RUBRIC = "lab2-resnet18-cifar10"


def torch_version(python: str) -> str:
    code = "import torch; print(torch.__version__)"
    return subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.strip() or "?"


def import_rss(python: str) -> str:
    """RSS right after ``import torch`` (resident, of which anonymous), MiB."""
    code = (
        "import torch\n"
        "s = {l.split(':')[0]: int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('Rss')}\n"
        "print(f\"{(s['RssAnon'] + s['RssFile'] + s.get('RssShmem', 0)) / 1024:.0f} MiB "
        "({s['RssAnon'] / 1024:.0f} anonymous)\")"
    )
    return subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.strip() or "?"


def prewarm(root: Path, cache: Path) -> None:
    """Decode the split into ``cache`` with this interpreter (as a Gradescope setup.sh would)."""
    code = "import sys; from autograder.data import load_split; load_split(sys.argv[1], 'cifar10')"
    env = {**os.environ, "AUTOGRADER_CACHE": str(cache)}
    subprocess.run([sys.executable, "-c", code, str(root)], check=True, env=env, cwd=ROOT)


def grade_once(python: str, submission: Path, root: Path, cache: Path, cap: Cap, threads: int | None) -> list:
    with tempfile.TemporaryDirectory() as out:
        argv = [python, "-m", "autograder.cli", "grade", str(submission), "--rubric", RUBRIC]
        argv += ["--data-root", str(root), "--out", out, "--device", "cpu"]
        if threads:
            argv += ["--threads", str(threads)]
        run = run_capped(argv, cap, env={"AUTOGRADER_CACHE": str(cache), "PYTHONPATH": str(ROOT)})
        results = Path(out) / "results.json"
        data = json.loads(results.read_text()) if results.exists() else {"tests": []}
    scored = [t for t in data["tests"] if "accuracy" in t.get("extra_data", {})]
    evals = {t["extra_data"]["id"]: t["extra_data"].get("eval_seconds") for t in scored}
    killed = [t["extra_data"]["id"] for t in data["tests"] if "killed" in t.get("output", "")]
    for test in data["tests"]:
        if test["extra_data"].get("kind") == "accuracy" and "accuracy" not in test["extra_data"]:
            print(f"  {test['extra_data']['id']}: {test['output'].splitlines()[0]}", file=sys.stderr)
    grader, worker = run.memory.role_mb("grader"), run.memory.role_mb("worker")
    if run.returncode:
        print(run.stdout[-3000:], file=sys.stderr)
    return [
        f"{run.seconds:.0f}",
        " / ".join(f"{evals[k]:.0f}" if k in evals else "–" for k in ("task1.accuracy", "task2.accuracy")),
        f"{grader:.0f}",
        f"{worker:.0f}",
        f"{grader + worker:.0f}",
        f"{run.memory.anon_mb('grader') + run.memory.anon_mb('worker'):.0f}",
        f"{run.cap_peak_mb:.0f}" if run.cap_peak_mb else "–",
        f"{len(scored)}/2" + (f", killed: {', '.join(killed)}" if killed else ""),
        str(run.oom_kills) if cap.folders and cap.memory_bytes else "–",
        f"exit {run.returncode}",
    ]


HEADER = [
    "scenario",
    "torch",
    "wall s",
    "eval s (task 1 / task 2)",
    "grader peak MiB",
    "worker peak MiB",
    "sum MiB",
    "anonymous MiB (grader + worker)",
    "cgroup peak MiB (incl. page cache)",
    "accuracies scored",
    "OOM kills",
    "exit",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--cpu-python", default=None, help="a python whose torch is the CPU-only wheel")
    parser.add_argument("--only", choices=("e2e", "gradescope"), default=None)
    parser.add_argument("--cpus", type=float, default=1.0, help="CPU quota of the Gradescope runs")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    root, what = data_root(args.images)
    described = machine()
    pythons = [sys.executable] + ([args.cpu_python] if args.cpu_python else [])
    sections = []
    with tempfile.TemporaryDirectory() as tmp:
        submission = lab2_submission(Path(tmp) / "StudentID_lab2")
        if args.only in (None, "e2e"):
            cache = Path(tmp) / "cache-e2e"
            rows = []
            for label in ("cold cache (split decoded)", "warm cache"):
                with Cap(None, None) as cap:
                    cells = grade_once(sys.executable, submission, root, cache, cap, None)
                rows.append([label, torch_version(sys.executable), *cells])
                print(table(HEADER, rows[-1:]), flush=True)
            sections.append(
                f"""## End to end: `autograder grade` per submission (CPU)

`benchmarks/grade_e2e.py --images {args.images} --only e2e`: the whole lab 2 rubric (files,
specs, forward passes, counts, make_layer, both accuracies on {args.images:,} images of
{what}) on one submission with freshly initialised weights, the grader's default threads,
tier A sandbox. "Cold cache": the test split is decoded on this run (the grader imports
torchvision for that); "warm": it comes from the cache and the grader imports no torch.
Peaks are each process's VmHWM, sampled every 20 ms (the sum bounds their joint peak);
"anonymous" counts only memory that cannot be dropped and reread from disk, unlike the
pages of torch's shared libraries (a memory cgroup charges those too, but reclaims them).
Machine: {described}.

{table(HEADER, rows)}
"""
            )
        if args.only in (None, "gradescope"):
            rows = []
            for python in pythons:
                cache = Path(tmp) / f"cache-gs-{len(rows)}"
                labels = ["cold cache", "warm cache"]
                if python != sys.executable:  # no CPU-only torchvision here to decode with
                    prewarm(root, cache)
                    labels = ["warm cache"]
                for label in labels:
                    with Cap(GRADESCOPE_MEMORY, args.cpus) as cap:
                        cells = grade_once(python, submission, root, cache, cap, 1)
                    complete = cells[-1] == "exit 0" and cells[7] == "2/2" and cells[8] == "0"
                    fits = "fits" if complete and float(cells[0]) < GRADESCOPE_LIMIT_S else "does not fit"
                    scenario = f"{label}, 768 MB, {args.cpus:g} CPU, 1 thread ({fits})"
                    rows.append([scenario, torch_version(python), *cells])
                    print(table(HEADER, rows[-1:]), flush=True)
            imports = "; ".join(f"{torch_version(p)}: {import_rss(p)}" for p in pythons)
            command = f"--images {args.images} --only gradescope"
            command += " --cpu-python PY" if args.cpu_python else ""
            where = "cgroup" if cap.folders else f"process tree ({cap.note})"
            sections.append(
                f"""## Gradescope budget: ResNet-18 grading at one thread in 768 MB (CPU)

`benchmarks/grade_e2e.py {command}`:
the same submission and rubric, `--threads 1`, grader and worker together in a
{where} with memory limited to 768 MB
(no swap) and a CPU quota of {args.cpus:g} CPU; Gradescope's defaults are 768 MB, 10 minutes and
half a vCPU (at half a vCPU the wall time doubles). RSS after `import torch` alone: {imports}.
The CPU-only wheel (the only one available offline here is torch 2.13.0+cpu) is measured
with a warm cache only: no CPU-only torchvision was at hand to decode the split with, so the
cache was filled beforehand, as a Gradescope `setup.sh` can do when it builds the image.
Machine: {described}.

{table(HEADER, rows)}
"""
            )
    body = "\n".join(sections)
    print(body)
    if not args.no_write:
        if args.only in (None, "e2e"):
            write_section("grade-e2e", sections[0])
        if args.only in (None, "gradescope"):
            print(write_section("gradescope", sections[-1]))


if __name__ == "__main__":
    main()
