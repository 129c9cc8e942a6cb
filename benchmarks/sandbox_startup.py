"""Sandbox start-up: the time from nothing to a ready worker (its ``hello``
answered) in each isolation tier, beside a plain ``python -c "import torch"``,
interleaved round by round in one run so machine load hits every column alike.

A ready worker has done everything a plain ``import torch`` does plus what the
sandbox adds: the job's worker code copied, a uid slot locked, rlimits and
no_new_privs set, (tier A) bubblewrap's namespaces and mounts, (tier B) the
network namespace and the uid drop, the seccomp filter, the worker's own
modules, torch, and one JSON round trip. The overhead is the difference of
medians; the target is under 0.5 s.

    .venv/bin/python benchmarks/sandbox_startup.py [--rounds 9] [--no-write]

Run as root to measure tier B (and tier A's uid drop, as on Gradescope).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, table, write_section

from autograder.sandbox import Sandbox
from autograder.sandbox.launcher import Job, Limits
from autograder.sandbox.tiers import Tier, TierInfo, detect_tier

PLAIN = 'python -c "import torch"'
ISOLATED = 'python -I -B -c "import torch" (worker env)'
WORKER_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "OMP_NUM_THREADS": "1", "LANG": "C.UTF-8"}


def plain(isolated: bool = False) -> float:
    """The baseline: the same interpreter importing torch, without (or with) the worker's flags.

    Timed until it says so on stdout, like a worker's hello: interpreter shutdown (over a
    second once torch is loaded) belongs to neither."""
    code = "import torch; print('ready', flush=True)"
    argv = [sys.executable, "-I", "-B", "-c", code] if isolated else [sys.executable, "-c", code]
    start = time.perf_counter()
    proc = subprocess.Popen(  # noqa: S603
        argv, stdout=subprocess.PIPE, text=True, env=WORKER_ENV if isolated else None, cwd="/"
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    elapsed = time.perf_counter() - start
    proc.wait()
    return elapsed


def ready(tier: Tier) -> float:
    """Seconds until a fresh worker in ``tier`` has answered hello (closing is not timed)."""
    root = Path(tempfile.mkdtemp(prefix="agbench-"))
    root.chmod(0o711)
    job = Job(root, *(root / n for n in ("submission", "extracted", "inputs", "out", "lib")))
    try:
        start = time.perf_counter()
        box = Sandbox(TierInfo(tier, "benchmark"), job, Limits(8 << 30, 1))
        try:
            box.request("hello", 120)
            return time.perf_counter() - start
        finally:
            box.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def tiers() -> list[Tier]:
    found = [Tier.A] if detect_tier(allow_unsandboxed=True).tier is Tier.A else []
    if os.geteuid() == 0:
        found.append(Tier.B)
    return [*found, Tier.C]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()
    columns = [PLAIN, ISOLATED, *(f"tier {t.value}" for t in tiers())]
    runs = {c: [] for c in columns}
    ready(Tier.C)  # warm the page cache for torch's libraries before anything is timed
    for r in range(args.rounds):
        order = columns[r % len(columns) :] + columns[: r % len(columns)]  # rotate who goes first
        for column in order:
            if column in (PLAIN, ISOLATED):
                runs[column].append(plain(isolated=column == ISOLATED))
            else:
                runs[column].append(ready(Tier(column[-1])))
        print(f"round {r + 1}: " + ", ".join(f"{c} {runs[c][-1]:.2f} s" for c in columns), flush=True)
    base, same = statistics.median(runs[PLAIN]), statistics.median(runs[ISOLATED])
    rows = []
    for column in columns:
        median = statistics.median(runs[column])
        over = (
            ["—", "—"]
            if column in (PLAIN, ISOLATED)
            else [f"{median - base:+.2f} s", f"{median - same:+.2f} s"]
        )
        rows.append(
            [
                f"`{column}`" if column in (PLAIN, ISOLATED) else column,
                f"{median:.2f} s",
                f"{min(runs[column]):.2f} s",
                *over,
            ]
        )
    who = "root (tier A drops to a dedicated uid first)" if os.geteuid() == 0 else "an ordinary user"
    text = "\n".join(
        [
            "## Sandbox start-up (`benchmarks/sandbox_startup.py`)",
            "",
            "Time from nothing to a worker that has answered `hello` (torch imported, seccomp "
            "filter loaded, sandbox set up), per isolation tier, beside a plain "
            f"`{PLAIN}` and the same import with the worker's flags and environment (both timed "
            "until they print after the import: interpreter shutdown belongs to neither); "
            f"{args.rounds} interleaved rounds, the order rotated each round. Overhead = median "
            "minus the baseline's median; the target is under 0.5 s over the plain import.",
            "",
            f"Machine: {machine()}. Run as {who}.",
            "",
            table(["what", "median", "best", "overhead vs plain", "overhead vs same flags"], rows),
        ]
    )
    print(text)
    if not args.no_write:
        print(f"wrote {write_section('sandbox-startup', text)}")


if __name__ == "__main__":
    main()
