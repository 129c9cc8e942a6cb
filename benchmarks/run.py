"""Run the speed benchmarks and write their sections of docs/benchmarks.md.

    .venv/bin/python benchmarks/run.py            # full: 10,000 test images (~30 min on 2 cores)
    .venv/bin/python benchmarks/run.py --quick    # 1,000 images (a few minutes)
    .venv/bin/python benchmarks/run.py --gpu      # also the GPU section (needs CUDA)

Each benchmark is a script of its own (eval_speed.py, grade_e2e.py, gpu_speed.py; the
sandbox start-up and batch-throughput scripts beside them are run on their own).
Real CIFAR-10 is used when the JPEG copies are found (see cifar_jpeg.py).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CPU_WHEEL_PYTHON = Path("/tmp/cpu-torch/bin/python")  # optional: a venv with the CPU-only torch wheel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 test images instead of 10,000")
    parser.add_argument("--gpu", action="store_true", help="also run gpu_speed.py")
    parser.add_argument("--threads", type=int, default=None, help="eval_speed threads (default: grader's)")
    parser.add_argument("--cpu-python", default=None, help="a python with the CPU-only torch wheel")
    args = parser.parse_args()
    images = "1000" if args.quick else "10000"
    python = sys.executable
    cpu_python = args.cpu_python or (str(CPU_WHEEL_PYTHON) if CPU_WHEEL_PYTHON.exists() else None)
    evaluation = [python, HERE / "eval_speed.py", "--images", images]
    evaluation += ["--threads", str(args.threads)] if args.threads else []
    grading = [python, HERE / "grade_e2e.py", "--images", images]
    grading += ["--cpu-python", cpu_python] if cpu_python else []
    steps = [evaluation, grading]
    if args.gpu:
        steps.append([python, HERE / "gpu_speed.py"] + (["--epochs", "8"] if args.quick else []))
    for step in steps:
        print("$", " ".join(map(str, step)), flush=True)
        subprocess.run([str(s) for s in step], check=True)
    if shutil.which("git"):
        subprocess.run(["git", "diff", "--stat", "--", str(HERE.parent / "docs" / "benchmarks.md")])


if __name__ == "__main__":
    main()
