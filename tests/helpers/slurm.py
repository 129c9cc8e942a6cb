"""A real single-node Slurm cluster for the tests: Debian's munge and slurm-wlm
(installed by ``setup.sh --dev``), a controller and one node on 127.0.0.1, all
state in a temporary folder, reached through ``SLURM_CONF``.

No cgroups (proctrack/linuxproc, task/none) and no accounting (no slurmdbd), so it
runs in a container; jobs run as the submitting user (root in CI).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from helpers import waits

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")

CONF = """ClusterName=agtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={folder}/munge/munge.socket
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
NodeName=agnode NodeAddr=127.0.0.1 NodeHostname={hostname} CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes=agnode Default=YES MaxTime=INFINITE State=UP
"""


class Unavailable(Exception):
    """The cluster cannot start here; the message says exactly why."""


@dataclass
class Cluster:
    folder: Path
    env: dict[str, str]  # SLURM_CONF for sbatch, squeue, scancel (and submitit)

    def run(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=60)

    def jobs(self) -> list[str]:
        return self.run("squeue", "--noheader", "--array", "--format=%i").stdout.split()

    def stop(self) -> None:
        """Cancel every job, then end the daemons this cluster started (by their pid files)
        and wait for them: they write their state files as they go."""
        self.run("scancel", "--full", "--user", "root")
        for pidfile in ("slurmd.pid", "slurmctld.pid", "munge/munged.pid"):
            path = self.folder / pidfile
            if not path.is_file():
                continue
            with contextlib.suppress(ProcessLookupError, ValueError):
                pid = int(path.read_text().split()[0])
                os.kill(pid, signal.SIGTERM)
                waits.exited([pid], 30)  # a daemon is not our child: no wait() for it, a pidfd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_tail(path: Path) -> str:
    lines = path.read_text(errors="replace").splitlines() if path.is_file() else []
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["(no log)"])[-1]


def start(folder: Path, memory_mb: int = 8000) -> Cluster:
    """munged, slurmctld and slurmd, waited for until the node is idle; raises Unavailable."""
    missing = [d for d in DAEMONS if not shutil.which(d)]
    if missing:
        raise Unavailable(f"{', '.join(missing)}: not installed (./setup.sh --dev installs slurm-wlm, munge)")
    if os.geteuid() != 0:
        raise Unavailable("the single-node Slurm cluster runs its daemons as root; the tests are not root")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    for sub in ("munge", "state", "spool"):
        (folder / sub).mkdir(exist_ok=True)
    key = folder / "munge" / "munge.key"
    subprocess.run(["mungekey", "--create", "--keyfile", str(key)], check=True, capture_output=True)
    key.chmod(0o600)
    m = folder / "munge"
    started = subprocess.run(
        ["munged", "--force", f"--socket={m}/munge.socket", f"--key-file={key}", f"--log-file={m}/munged.log",
         f"--pid-file={m}/munged.pid", f"--seed-file={m}/munged.seed"],
        capture_output=True,
        text=True,
    )  # fmt: skip
    if started.returncode != 0:
        raise Unavailable(f"munged did not start: {started.stderr.strip() or _log_tail(m / 'munged.log')}")
    conf = folder / "slurm.conf"
    ctld_port = _free_port()
    conf.write_text(
        CONF.format(
            folder=folder,
            ctld_port=ctld_port,
            slurmd_port=_free_port(),
            hostname=socket.gethostname(),
            cpus=os.cpu_count() or 1,
            memory_mb=memory_mb,
        )
    )
    cluster = Cluster(folder, os.environ | {"SLURM_CONF": str(conf)})
    for argv, log in (
        (["slurmctld", "-f", str(conf), "-i"], "slurmctld.log"),
        (["slurmd", "-f", str(conf), "-N", "agnode"], "slurmd.log"),
    ):
        done = subprocess.run(argv, env=cluster.env, capture_output=True, text=True)
        if done.returncode != 0:
            cluster.stop()
            raise Unavailable(f"{argv[0]} did not start: {done.stderr.strip() or _log_tail(folder / log)}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = cluster.run("sinfo", "--noheader", "--format=%t").stdout.strip()
        if state == "idle":
            return cluster
        time.sleep(0.5)  # polling the controller: no event to wait on
    cluster.stop()
    last = _log_tail(folder / "slurmd.log")
    raise Unavailable(f"the node never became idle (sinfo: {state!r}; slurmd: {last})")
