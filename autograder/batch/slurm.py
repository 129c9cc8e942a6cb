"""Grading on a Slurm cluster through submitit, one array task per chunk.

Each array task runs :func:`job.grade_chunk` on a compute node and writes
every record to the shared cache as soon as it is graded; the coordinator
watches the cache, so progress is per submission even though jobs are per
chunk. ``--executor submitit-local`` runs the very same path with submitit's
LocalExecutor (jobs as local processes), which is how the tests exercise it
and how a TA can try a cluster setup on a laptop first.

submitit is imported only when the Slurm executor is chosen.
"""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cache import ResultCache
from .grades import BatchInputError
from .job import Entry, Settings, grade_chunk

POLL_SECONDS = 2.0


@dataclass
class SlurmOptions:
    partition: str | None = None
    account: str | None = None
    gpus_per_job: int = 0
    cpus_per_job: int = 4
    mem_gb: int = 16
    time_limit_min: int = 60
    array_size: int = 32  # at most this many array tasks run at once
    per_job: int | None = None  # submissions per array task (default: spread over array_size)
    extra: dict[str, str] = field(default_factory=dict)  # any other #SBATCH option, e.g. qos


class SubmititPool:
    """Runs chunks of entries as submitit jobs and yields records as they land."""

    def __init__(self, folder: Path, cluster: str, options: SlurmOptions, workers: int) -> None:
        self.folder = Path(folder)
        self.cluster = cluster  # "slurm" or "local"
        self.options = options
        self.workers = workers
        self.executor = self._executor()  # before any grading: no Slurm here is a one-line error

    def _executor(self) -> Any:
        import submitit

        try:
            executor = submitit.AutoExecutor(folder=self.folder / "%j", cluster=self.cluster)
        except RuntimeError as exc:
            raise BatchInputError(
                f"--executor {self.cluster}: {exc} (run on the cluster's login node, or try the same "
                "path locally with --executor submitit-local)"
            ) from None
        o = self.options
        params: dict[str, Any] = {
            "name": "autograder-batch",
            "timeout_min": o.time_limit_min,
            "cpus_per_task": o.cpus_per_job,
            "mem_gb": o.mem_gb,
            "tasks_per_node": 1,
        }
        if o.gpus_per_job:
            params["gpus_per_node"] = o.gpus_per_job
        if self.cluster == "slurm":
            params["slurm_array_parallelism"] = o.array_size
            if o.partition:
                params["slurm_partition"] = o.partition
            if o.account:
                params["slurm_account"] = o.account
            if o.extra:
                params["slurm_additional_parameters"] = dict(o.extra)
        executor.update_parameters(**params)
        return executor

    def chunks(self, entries: list[Entry]) -> list[list[Entry]]:
        slots = self.workers if self.cluster == "local" else self.options.array_size
        size = self.options.per_job or max(1, math.ceil(len(entries) / max(1, slots)))
        return [entries[i : i + size] for i in range(0, len(entries), size)]

    def run(self, entries: list[Entry], settings: Settings) -> Iterator[dict[str, Any]]:
        if not entries:
            return
        chunks = self.chunks(entries)
        jobs = self.executor.map_array(grade_chunk, chunks, [settings] * len(chunks))
        cache = ResultCache(settings.cache_dir)
        waiting = {t.key: t for t in entries}
        active = list(zip(jobs, chunks, strict=True))
        try:
            while waiting:
                for key in [k for k in waiting if cache.path(k).exists()]:
                    record = cache.get(key)
                    if record is not None:
                        del waiting[key]
                        yield record
                still = []
                queued = self._queued(active)
                for job, chunk in active:
                    if not job.done():
                        if queued is None or job.job_id in queued or job.done():
                            still.append((job, chunk))
                        else:  # cancelled or killed: left the queue without a result
                            yield from _missing(job, chunk, waiting)
                        continue
                    for record in _job_records(job, chunk):
                        if record["key"] in waiting:
                            del waiting[record["key"]]
                            yield record
                active = still
                if waiting and not active:
                    for key in list(waiting):  # finished jobs that neither cached nor reported
                        del waiting[key]
                        yield {"key": key, "error": "its job ended without a result; re-run to retry"}
                if waiting:
                    time.sleep(POLL_SECONDS)
        finally:
            for job, _ in active:
                if not job.done():
                    job.cancel(check=False)

    def _queued(self, active: list[tuple[Any, list[Entry]]]) -> set[str] | None:
        """Array tasks Slurm still lists (pending or running), or None where unknown.

        submitit learns that a job ended from ``sacct``; where Slurm keeps no
        accounting (a small cluster, the tests' single node) a job cancelled with
        ``scancel`` would otherwise be waited for forever.
        """
        if self.cluster != "slurm" or not active:
            return None
        ids = sorted({str(job.job_id).split("_")[0] for job, _ in active})
        try:
            done = subprocess.run(
                ["squeue", "--noheader", "--array", "--format=%i", f"--jobs={','.join(ids)}"],
                capture_output=True,
                text=True,
                timeout=60,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode != 0:
            return None if "Invalid job id" not in done.stderr else set()
        return set(done.stdout.split())


def _missing(job: Any, chunk: list[Entry], waiting: dict[str, Entry]) -> Iterator[dict[str, Any]]:
    for t in chunk:
        if t.key in waiting:
            del waiting[t.key]
            yield {
                "key": t.key,
                "error": f"job {job.job_id} left the queue without a result (cancelled?); re-run to retry",
            }


def _job_records(job: Any, chunk: list[Entry]) -> list[dict[str, Any]]:
    try:
        return list(job.result())
    except Exception as exc:  # noqa: BLE001 - a failed job (timeout, node failure) fails its chunk only
        first = str(exc).strip().splitlines()
        reason = first[-1] if first else type(exc).__name__
        return [
            {"key": t.key, "error": f"job {job.job_id} failed ({reason[:300]}); re-run to retry"}
            for t in chunk
        ]
