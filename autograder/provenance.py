"""Where a grade came from: versions, hashes, device and isolation tier."""

from __future__ import annotations

import hashlib
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from . import __version__

PACKAGES = ("torch", "torchvision", "numpy", "ultralytics-thop", "nbformat", "nbclient")


def versions() -> dict[str, str]:
    found = {"autograder": __version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def collect(
    rubric_path: Path,
    files: dict[str, str],
    tier: dict[str, Any] | None,
    device: str,
    worker: dict[str, Any] | None,
    dataset: dict[str, Any] | None,
    worker_starts: int,
) -> dict[str, Any]:
    return {
        "graded_at": now(),
        "versions": versions(),
        "rubric": {"path": rubric_path.name, "sha256": file_sha256(rubric_path)},
        "submission_files": files,
        "sandbox": tier,
        "device": device,
        "worker": worker,
        "worker_starts": worker_starts,
        "dataset": dataset,
        "test_order": "secret random permutation per submission (not recorded)",
        "platform": platform.platform(),
    }
