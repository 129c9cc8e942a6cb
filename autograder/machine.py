"""How many CPUs this process may really use.

``os.cpu_count()`` reports the host's cores. In a container that is the wrong
number: Gradescope gives half a vCPU of a large host through a cgroup CPU
quota, and 8 worker threads sharing half a core run slower than one. The
worker's thread count comes from here.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def cgroup_cpu_quota(root: Path = CGROUP, membership: Path = Path("/proc/self/cgroup")) -> float | None:
    """CPUs allowed by this process's cgroup quota (v2 ``cpu.max`` or v1 CFS), or None."""
    for line in _read(membership).splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and not controllers:  # v2: "max 100000" or "50000 100000"
            quota, _, period = _read(root / path.lstrip("/") / "cpu.max").partition(" ")
            if quota.strip() and quota != "max":
                return _ratio(quota, period)
        elif "cpu" in controllers.split(","):
            # In a container the mount shows its own group at the top, not at ``path``.
            relative = path.lstrip("/")
            for base in (root / "cpu" / relative, root / controllers / relative, root / "cpu"):
                quota = _read(base / "cpu.cfs_quota_us")
                if quota:
                    return None if quota.strip() == "-1" else _ratio(quota, _read(base / "cpu.cfs_period_us"))
    return None


def usable_cpus() -> int:
    """Cores this process may run on, limited by a cgroup quota (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        cores = min(cores, max(1, math.floor(quota)))
    return max(1, cores)


def _ratio(quota: str, period: str) -> float | None:
    try:
        q, p = float(quota), float(period or 100000)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
