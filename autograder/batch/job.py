"""What one batch worker does for one submission, wherever it runs.

The same functions run in a local worker process and in a Slurm array task
(through submitit), so the two paths cannot drift apart. A worker writes its
record to the cache itself: whatever happens to the coordinator afterwards,
a finished grade is never lost.
"""

from __future__ import annotations

import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..grade import grade
from ..rubric import Rubric
from ..untrusted import traceback_text
from .cache import ResultCache, result_to_dict
from .integrity import fingerprints


@dataclass(frozen=True)
class Settings:
    """How to grade; the same for every submission of a batch."""

    rubric: Rubric
    data_root: Path
    cache_dir: Path
    device: str = "auto"
    allow_unsandboxed: bool = False
    threads: int | None = None
    memory_bytes: int | None = None


@dataclass(frozen=True)
class Entry:
    """One distinct submission to grade (identical copies share an entry)."""

    key: str  # the cache key
    source: Path  # folder or zip to grade
    label: str  # who, for messages


def grade_entry(entry: Entry, settings: Settings) -> dict[str, Any]:
    """Grade one submission and store its record; never raises.

    A record with ``error`` (a grader fault, not the student's) is returned
    but not cached, so the next run tries again.
    """
    cache = ResultCache(settings.cache_dir)
    cached = cache.get(entry.key)
    if cached is not None:
        return cached
    started = time.monotonic()
    try:
        result = grade(
            entry.source,
            settings.rubric,
            settings.data_root,
            device=settings.device,
            allow_unsandboxed=settings.allow_unsandboxed,
            threads=settings.threads,
            memory_bytes=settings.memory_bytes,
        )
        prints = fingerprints(entry.source)
    except Exception as exc:  # noqa: BLE001 - one submission must never stop the batch
        print(traceback_text(), file=sys.stderr, end="")
        return {"key": entry.key, "error": f"{type(exc).__name__}: {exc}", "host": socket.gethostname()}
    record = {
        "result": result_to_dict(result),
        "fingerprints": prints.as_dict(),
        "seconds": round(time.monotonic() - started, 2),
        "host": socket.gethostname(),
    }
    cache.put(entry.key, record)
    return cache.get(entry.key) or {**record, "key": entry.key}


def grade_chunk(entries: list[Entry], settings: Settings) -> list[dict[str, Any]]:
    """A Slurm array task's share: its submissions one after another."""
    return [grade_entry(entry, settings) for entry in entries]
