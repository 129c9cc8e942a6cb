"""Grading on this machine: a pool of worker processes.

Each worker process grades one submission at a time (each in its own
sandbox) and writes its record to the cache. Workers die with the batch
(``PR_SET_PDEATHSIG``), so a batch killed with ``kill -9`` leaves no grading
behind to compete with the re-run. If a worker process itself dies (the OOM
killer, a crash below Python), its submissions are retried in a fresh pool
and, failing again, reported as grader errors; the rest of the batch goes on.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from .job import Entry, Settings, grade_entry

MAX_TRIES = 3
GPU_SHARE = 4
PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """Worker start-up: get SIGKILL when the batch process goes away."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the batch died before prctl took effect
        os._exit(1)


def default_workers(device: str) -> int:
    """What this machine can hold: one per CPU and ~3 GiB of memory, and at most
    GPU_SHARE on a GPU (checks use it in short bursts, so a few workers share it;
    the sandbox exposes the first GPU only)."""
    cpus = len(os.sched_getaffinity(0))
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    workers = max(1, min(cpus, memory // (3 << 30)))
    return min(workers, GPU_SHARE) if device.startswith("cuda") else workers


class LocalPool:
    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)

    def run(self, entries: list[Entry], settings: Settings) -> Iterator[dict[str, Any]]:
        pending = list(entries)
        tries: dict[str, int] = {}
        while pending:
            pool = ProcessPoolExecutor(
                max_workers=min(self.workers, len(pending)),
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_die_with_parent,
                initargs=(os.getpid(),),
            )
            futures: dict[Future, Entry] = {pool.submit(grade_entry, t, settings): t for t in pending}
            pending = []
            try:
                while futures:
                    done, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for future in done:
                        entry = futures.pop(future)
                        try:
                            yield future.result()
                        except Exception as exc:  # noqa: BLE001 - BrokenProcessPool and kin
                            tries[entry.key] = tries.get(entry.key, 0) + 1
                            if tries[entry.key] < MAX_TRIES:
                                pending.append(entry)
                            else:
                                yield {"key": entry.key, "error": f"the grading process died ({exc})"}
            finally:
                pool.shutdown(wait=not futures, cancel_futures=True)
