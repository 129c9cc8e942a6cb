"""Making a Gradescope-style install private to the grader before grading.

Without a private mount namespace (tier B, likely inside Gradescope's Docker
container) the sandbox uid sees the host's files. Everything the grader keeps
next to itself (the test data with its labels, reference solutions, rubrics,
the results folder) is therefore made unreadable to other users; only what
the sandbox's interpreter needs (the virtual environment, and the folders
leading to it, traversable but not listable) stays open. Runs as root only,
and only where no mount namespace hides the files anyway.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .tiers import Tier, TierInfo, python_paths


def _strip(path: Path, keep_traverse: bool = False) -> None:
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return
    mode = stat.S_IMODE(info.st_mode) & ~0o077
    if keep_traverse and stat.S_ISDIR(info.st_mode):
        mode |= 0o011
    os.chmod(path, mode, follow_symlinks=False)


def _private_tree(root: Path) -> list[Path]:
    """``chmod -R go-rwx`` without following links."""
    changed = [root]
    _strip(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            _strip(Path(dirpath) / name)
    return changed


def lockdown(tier: TierInfo, home: Path, data_root: Path | None, results: Path) -> list[Path]:
    """Hide the grader's files from the sandbox uid; returns the paths made private."""
    if tier.tier is Tier.A or os.geteuid() != 0:
        return []
    needed = [Path(p) for p in python_paths()]
    changed: list[Path] = []
    if results.exists():
        _strip(results)
        changed.append(results)
    if data_root is not None and data_root.exists():
        changed += _private_tree(data_root)
    home = home.resolve()
    if not home.is_dir():
        return changed
    for entry in sorted(home.iterdir()):
        real = entry.resolve()
        if any(p == real or p.is_relative_to(real) for p in needed):
            continue  # the interpreter lives here: leave it readable
        _strip(entry)
        changed.append(entry)
    if any(p.is_relative_to(home) for p in needed):
        _strip(home, keep_traverse=True)  # traversable to reach .venv, but not listable
    else:
        _strip(home)
    changed.append(home)
    return changed
