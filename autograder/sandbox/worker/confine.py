"""Seccomp filter the worker installs on itself before any student code runs.

It denies new network sockets (IPv4/IPv6/netlink/packet), tracing other
processes and a few kernel interfaces student code has no business with.
Unix sockets stay allowed: an in-sandbox Jupyter kernel talks over them.
"""

from __future__ import annotations

import errno
import socket

DENIED_FAMILIES = (socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK, socket.AF_PACKET)
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
)


def install() -> None:
    import pyseccomp as seccomp

    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    for family in DENIED_FAMILIES:
        rules.add_rule(seccomp.ERRNO(errno.EACCES), "socket", seccomp.Arg(0, seccomp.EQ, family))
    for call in DENIED_CALLS:
        rules.add_rule(seccomp.ERRNO(errno.EPERM), call)
    rules.load()
