"""What the grader itself spends on hostile student bytes, at and past its caps.

Each case grades one generated submission in a fresh child process with the
notebook items (``notebook``, ``notebook_outputs``: the grader's own parsers,
no sandbox worker) and reports the child's wall time, peak RSS
(``ru_maxrss``) and the message the student sees. The cases are the done-when
of issue 11 (a 100,000-cell notebook, a 1 GB notebook, 200,000-character
outputs), the largest inputs the caps accept, and a checkpoint of a million
tensors fingerprinted by ``autograder batch``. Baselines are measured side by
side in the same run: the quadratic FLOPs regex the finders replaced, the
previous extraction (from git, when the history is there) and listing every
member of the checkpoint.

    .venv/bin/python benchmarks/grader_limits.py [--skip-gigabyte] [--write-docs]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, machine, write_section  # noqa: E402
from helpers import rubrics  # noqa: E402  (tests/helpers: common puts tests/ on the path)

SECTION = "grader-limits"
OUTPUTS = """require = [
  { find = "summary" }, { find = "flops" }, { find = "params" }, { find = "test_accuracy" },
  { find = "per_class" }, { find = "best_worst" }, { find = "curves" },
]"""  # tests/rubrics/notebook-only.toml's notebook items, these outputs required
N = 200_000


def repeat(piece: str, n: int = N) -> str:
    return (piece * (n // len(piece) + 1))[:n]


HOSTILE = [
    "1" * (N - 6) + " FLOPs",
    repeat("flops "),
    repeat("params "),
    "epoch" + " " * N,
    "loss" + " " * N,
    repeat("cat 1% dog 2% "),
    repeat("1."),
    repeat("train loss 1 "),
    "{'train_loss': [" + repeat("1, "),
    "\x1b[" + "0" * N,
]


# --- generated notebooks (written as JSON directly: nbformat's own writer validates) ---


def code_cell(k: int, source: str, outputs: list[dict]) -> dict:
    return {
        "cell_type": "code",
        "id": f"c{k}",
        "metadata": {},
        "execution_count": k + 1,
        "outputs": outputs,
        "source": source,
    }


def stream(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": text}


def write_notebook(path: Path, cells: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}))
    return path


def write_image_notebook(path: Path, size: int) -> Path:
    """A notebook of ``size`` bytes, nearly all one base64 image output, written in chunks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    head = json.dumps(
        {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {},
            "cells": [
                code_cell(0, "plt.show()", [{"output_type": "display_data", "metadata": {}, "data": {}}])
            ],
        }
    )
    cut = head.index('"data": {}') + len('"data": {')
    start, end = head[:cut] + '"image/png": "', '"' + head[cut:]
    left = size - len(start) - len(end)
    with path.open("w") as handle:
        handle.write(start)
        chunk = "A" * (1 << 20)
        while left > 0:
            handle.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
        handle.write(end)
    return path


def cases(folder: Path, gigabyte: bool) -> dict[str, Path]:
    made: dict[str, Path] = {}

    def sub(name: str) -> Path:
        return folder / name / "StudentID_lab2.ipynb"

    made["100,000 trivial cells"] = write_notebook(
        sub("cells"), [code_cell(k, "x = 1", []) for k in range(100_000)]
    )
    made["2,000 cells (the cell cap)"] = write_notebook(
        sub("cells-cap"), [code_cell(k, f"x{k} = {k}", [stream(f"{k}\n")]) for k in range(2_000)]
    )
    made["one 200,000-character output (digits, then FLOPs)"] = write_notebook(
        sub("output"), [code_cell(0, "print(flops)", [stream(HOSTILE[0])])]
    )
    made["ten hostile 200,000-character outputs (the 2,000,000-character text cap)"] = write_notebook(
        sub("outputs"), [code_cell(k, "print(log)", [stream(t)]) for k, t in enumerate(HOSTILE)]
    )
    made["64 MiB: 320 text outputs of 200,000 characters"] = write_notebook(
        sub("text64"),
        [code_cell(k, "print(log)", [stream(repeat("loss 0.5 acc 81.2% "))]) for k in range(320)],
    )
    made["64 MiB: one image output (the size cap)"] = write_image_notebook(sub("image64"), (64 << 20) - 1024)
    made["60,000 tiny outputs (the 250,000-item cap)"] = write_notebook(
        sub("items"), [code_cell(k, "print(k)", [stream("x")] * 60) for k in range(1_000)]
    )
    if gigabyte:
        made["1 GB notebook (one image output)"] = write_image_notebook(sub("gigabyte"), 10**9)
    return made


# --- the child: one grade, its own peak memory ----------------------------------------------


def peak_mb() -> float:
    """This process's peak RSS (VmHWM; ``ru_maxrss`` would carry the forking parent's over exec)."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024


def child(submission: Path, rubric_path: Path) -> None:
    from autograder.grade import grade
    from autograder.report import write_all
    from autograder.rubric import load

    started = time.monotonic()
    result = grade(submission, load(str(rubric_path)), None)
    with tempfile.TemporaryDirectory() as out:
        write_all(result, Path(out))
    wall = time.monotonic() - started
    messages = {item.id: item.message for item in result.items}
    print(json.dumps({"wall": wall, "peak_mb": peak_mb(), "messages": messages}))


def child_digest(path: Path, entries: int | None) -> None:
    from autograder.batch import integrity

    if entries is not None:
        integrity.MAX_CHECKPOINT_ENTRIES = entries
    started = time.monotonic()
    digest = integrity.weights_digest(path)
    wall = time.monotonic() - started
    print(json.dumps({"wall": wall, "peak_mb": peak_mb(), "messages": {"digest": digest[:5]}}))


def run_child(*args: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- side-by-side baselines (in this process) ----------------------------------------------

OLD_FLOPS = re.compile(
    r"\b(?:[gmk]?flops?|[gmk]?macs?|multiply-adds)\b.*?\d|\d.*?\b(?:[gmk]?flops?|[gmk]?macs?)\b", re.I
)


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def regex_rows() -> list[str]:
    from autograder.checks.notebook import FLOPS

    rows = []
    for n in (10_000, 20_000, 200_000):
        line = "1" * n + "x"
        old = f"{timed(lambda line=line: OLD_FLOPS.search(line)):.2f} s" if n <= 20_000 else "not run"
        new = timed(lambda line=line: FLOPS.search(line))
        rows.append(f"| FLOPs finder, {n:,} digits (no match) | {old} | {new * 1000:.1f} ms |")
    return rows


def old_extract():
    """The extraction before this change, from git (None when the history is not there)."""
    done = subprocess.run(
        ["git", "-C", str(ROOT), "show", "9ab9a14:autograder/notebook/extract.py"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return None
    namespace: dict = {"__name__": "old_extract"}
    sys.modules["old_extract"] = type(sys)("old_extract")
    sys.modules["old_extract"].__dict__.update(namespace)
    exec(compile(done.stdout, "old_extract.py", "exec"), sys.modules["old_extract"].__dict__)  # noqa: S102
    return sys.modules["old_extract"].extract


def extraction_rows() -> list[str]:
    import nbformat

    from autograder.notebook.extract import extract

    old = old_extract()
    rows = []
    for n in (5_000, 10_000, 100_000):
        nb = nbformat.from_dict(
            {
                "nbformat": 4,
                "nbformat_minor": 5,
                "metadata": {},
                "cells": [code_cell(k, f"def f{k}():\n    return {k}", []) for k in range(n)],
            }
        )
        before = f"{timed(lambda nb=nb: old(nb)):.2f} s" if old and n <= 10_000 else "not run"
        now = timed(lambda nb=nb: extract(nb))
        rows.append(row(f"extraction, {n:,} cells of one definition", before, f"{now:.2f} s"))
    return rows


def checkpoint(folder: Path, members: int) -> Path:
    path = folder / "model.pth"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        for k in range(members):
            zf.writestr(f"archive/data/{k}", b"\0\0\0\0")
    return path


def row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def mib(size: int) -> str:
    return f"{size / (1 << 20):,.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs="+")
    parser.add_argument("--skip-gigabyte", action="store_true")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "grade":
            child(Path(rest[0]), Path(rest[1]))
        else:
            child_digest(Path(rest[0]), int(rest[1]) if len(rest) > 1 else None)
        return
    lines = [f"Machine: {machine()}.", ""]
    with tempfile.TemporaryDirectory(prefix="grader-limits-") as tmp:
        folder = Path(tmp)
        rubric = rubrics.notebook_only(folder, OUTPUTS)
        lines += [
            "| submission | file | grader wall | grader peak RSS | what the student reads |",
            "|---|---|---|---|---|",
        ]
        for name, path in cases(folder, not args.skip_gigabyte).items():
            size = path.stat().st_size
            got = run_child("grade", str(path.parent), str(rubric))
            message = got["messages"]["notebook.run"]
            lines.append(
                row(name, mib(size), f"{got['wall']:.1f} s", f"{got['peak_mb']:.0f} MB", message[:150])
            )
            print(lines[-1], flush=True)
            path.unlink()
        lines += [
            "",
            "| checkpoint (fingerprint in `autograder batch`) | file | wall | peak RSS | digest |",
            "|---|---|---|---|---|",
        ]
        path = checkpoint(folder, 1_000_000)
        size = path.stat().st_size
        for label, entries in (("listing every member (before)", str(10**9)), ("members capped (now)", None)):
            got = run_child("digest", str(path), *([entries] if entries else []))
            wall, peak, digest = f"{got['wall']:.1f} s", f"{got['peak_mb']:.0f} MB", got["messages"]["digest"]
            lines.append(row(f"1,000,000 tensors, {label}", mib(size), wall, peak, digest))
            print(lines[-1], flush=True)
    lines += ["", "| parser | before | now |", "|---|---|---|", *regex_rows(), *extraction_rows()]
    print("\n".join(lines[-8:]))
    if args.write_docs:
        write_section(SECTION, "## Grader-side limits (`benchmarks/grader_limits.py`)\n\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
