"""bubblewrap's command line for tier A: a fresh root with read-only system folders,
private namespaces, size-capped tmpfs, no capabilities, a clean environment.

Its own module because two places need it: the launcher (every tier A worker) and
the tier probe (does bubblewrap work on this machine at all?)."""

from __future__ import annotations

import shutil

PROBE_UID = 65534  # nobody: the probe runs as the least privileged uid there is
TMPFS_BYTES = 512 << 20
GPU_NODES = (
    "/dev/nvidia0",
    "/dev/nvidiactl",
    "/dev/nvidia-uvm",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidia-modeset",
)


def bwrap_argv(
    binds: list[tuple[str, str]],
    rw_binds: list[tuple[str, str]],
    memory: int | None,
    device: str,
    threads: int,
) -> list[str]:
    argv = [
        # By absolute path: the worker starts with a minimal PATH, and bwrap may live
        # elsewhere (/usr/local/bin on a machine where it was unpacked by hand).
        shutil.which("bwrap") or "bwrap",
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--ro-bind",
        "/usr",
        "/usr",
        "--symlink",
        "usr/lib",
        "/lib",
        "--symlink",
        "usr/lib64",
        "/lib64",
        "--symlink",
        "usr/bin",
        "/bin",
        "--symlink",
        "usr/sbin",
        "/sbin",
        "--ro-bind-try",
        "/etc/alternatives",
        "/etc/alternatives",
        "--ro-bind-try",
        "/etc/ld.so.cache",
        "/etc/ld.so.cache",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        str(TMPFS_BYTES),
        "--tmpfs",
        "/tmp",
        "--size",
        str(TMPFS_BYTES),
        "--tmpfs",
        "/dev/shm",
    ]
    for source, target in binds:
        argv += ["--ro-bind", source, target]
    for source, target in rw_binds:
        argv += ["--bind", source, target]
    if device.startswith("cuda"):
        argv += ["--ro-bind", "/sys", "/sys"]
        for node in GPU_NODES:
            argv += ["--dev-bind-try", node, node]
        for extra in ("/usr/local/nvidia", "/usr/local/cuda"):
            argv += ["--ro-bind-try", extra, extra]
    # Last, once every mount point exists: bwrap's own root and /dev are tmpfs without a size
    # cap, so leaving them writable would let a student fill the machine's memory.
    argv += ["--remount-ro", "/dev", "--remount-ro", "/"]
    argv += [
        "--clearenv",
        "--setenv",
        "PATH",
        "/usr/bin:/bin",
        "--setenv",
        "HOME",
        "/tmp",
        "--setenv",
        "OMP_NUM_THREADS",
        str(threads),
        "--setenv",
        "MPLBACKEND",
        "Agg",
        "--hostname",
        "sandbox",
        "--chdir",
        "/tmp",
        "--",
    ]
    return argv
