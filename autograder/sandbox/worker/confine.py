"""Seccomp filter the worker installs on itself before any student code runs.

It denies new network sockets (netlink/packet always; IPv4/IPv6 unless the
worker runs in a private network namespace, see below), tracing other
processes, new namespaces (tier B has none of bubblewrap's protection against
a user namespace giving the student capabilities), mounts, and a few kernel
interfaces student code has no business with. ``clone3`` answers ENOSYS so
that the C library falls back to ``clone``, whose flags the filter can see.
Unix sockets stay allowed: an in-sandbox Jupyter kernel talks over them.

IP sockets in a private network namespace (tier A: bubblewrap's
``--unshare-all``): the namespace holds only a loopback device, so nothing
can leave it; refusing ``socket()`` there only broke harmless code, such as a
module-level ``try: urlopen(...) except Exception: pass`` (a dataset download,
a logger probe), which then failed to import with PermissionError. There the
socket is created and the connection fails as it does offline (ENETUNREACH,
ECONNREFUSED, a DNS error). Without a private namespace (tier B, where
``unshare`` may fail unnoticed, and tier C) IP sockets stay refused.

With ``single_process`` (no cgroup sums the memory of the worker's processes)
it also refuses new processes (``fork``, ``vfork``, ``clone`` without
``CLONE_THREAD``): threads share one address space, so the worker's
RLIMIT_AS then bounds everything the submission allocates, where three
children of 3 GB each once reached 9.7 GB under an 8 GiB per-process cap.

pyseccomp is imported inside ``install``: without it (no libseccomp) the worker still
starts, and ``main`` decides whether that is allowed.
"""

from __future__ import annotations

import ctypes
import errno
import socket

IP_FAMILIES = (socket.AF_INET, socket.AF_INET6)
DENIED_FAMILIES = (socket.AF_NETLINK, socket.AF_PACKET)
DENIED_CALLS = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "keyctl",
    "add_key",
    "request_key",
    "io_uring_setup",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
)
CLONE_NEWUSER = 0x10000000
CLONE_THREAD = 0x00010000
PR_SET_NO_NEW_PRIVS = 38


def install(private_network: bool = False, single_process: bool = False) -> None:
    """Load the filter (also sets no_new_privs, so setuid binaries lose their power).

    ``private_network``: the launcher put the worker in a network namespace of its own
    (only then are IPv4/IPv6 sockets allowed). ``single_process``: new processes are
    refused (no cgroup sums the memory of several)."""
    import pyseccomp as seccomp

    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    for family in DENIED_FAMILIES + (() if private_network else IP_FAMILIES):
        rules.add_rule(seccomp.ERRNO(errno.EACCES), "socket", seccomp.Arg(0, seccomp.EQ, family))
    for call in DENIED_CALLS:
        rules.add_rule(seccomp.ERRNO(errno.EPERM), call)
    rules.add_rule(
        seccomp.ERRNO(errno.EPERM),
        "clone",
        seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER),
    )
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    if single_process:
        no_thread = seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_THREAD, 0)
        rules.add_rule(seccomp.ERRNO(errno.EPERM), "clone", no_thread)
        for call in ("fork", "vfork"):
            rules.add_rule(seccomp.ERRNO(errno.EPERM), call)
    rules.load()


def no_new_privs() -> None:
    """Without seccomp (tier C) still stop setuid binaries from gaining privileges."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
