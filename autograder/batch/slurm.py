"""Grading on a Slurm cluster through submitit, one array task per chunk.

Each array task runs :func:`job.grade_chunk` on a compute node and writes
every record to the shared cache as soon as it is graded; the coordinator
watches the cache, so progress is per submission even though jobs are per
chunk. ``--executor submitit-local`` runs the very same path with submitit's
LocalExecutor (jobs as local processes), which is how the tests exercise it
and how a TA can try a cluster setup on a laptop first.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cache import ResultCache
from .job import Settings, Task, grade_chunk

POLL_SECONDS = 2.0


@dataclass
class SlurmOptions:
    partition: str | None = None
    gpus_per_job: int = 0
    cpus_per_job: int = 4
    mem_gb: int = 16
    time_limit_min: int = 60
    array_size: int = 32  # at most this many array tasks run at once
    per_job: int | None = None  # submissions per array task (default: spread over array_size)


class SubmititPool:
    """Runs chunks of tasks as submitit jobs and yields records as they land."""

    def __init__(self, folder: Path, cluster: str, options: SlurmOptions, workers: int) -> None:
        self.folder = Path(folder)
        self.cluster = cluster  # "slurm" or "local"
        self.options = options
        self.workers = workers
        self.executor = self._executor()  # before any grading: no Slurm here is a one-line error

    def _executor(self) -> Any:
        import submitit

        from .grades import BatchInputError

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
        executor.update_parameters(**params)
        return executor

    def chunks(self, tasks: list[Task]) -> list[list[Task]]:
        slots = self.workers if self.cluster == "local" else self.options.array_size
        size = self.options.per_job or max(1, math.ceil(len(tasks) / max(1, slots)))
        return [tasks[i : i + size] for i in range(0, len(tasks), size)]

    def run(self, tasks: list[Task], settings: Settings) -> Iterator[dict[str, Any]]:
        if not tasks:
            return
        chunks = self.chunks(tasks)
        jobs = self.executor.map_array(grade_chunk, chunks, [settings] * len(chunks))
        cache = ResultCache(settings.cache_dir)
        waiting = {t.key: t for t in tasks}
        active = list(zip(jobs, chunks, strict=True))
        try:
            while waiting:
                for key in [k for k in waiting if cache.path(k).exists()]:
                    record = cache.get(key)
                    if record is not None:
                        del waiting[key]
                        yield record
                still = []
                for job, chunk in active:
                    if not job.done():
                        still.append((job, chunk))
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


def _job_records(job: Any, chunk: list[Task]) -> list[dict[str, Any]]:
    try:
        return list(job.result())
    except Exception as exc:  # noqa: BLE001 - a failed job (timeout, node failure) fails its chunk only
        first = str(exc).strip().splitlines()
        reason = first[-1] if first else type(exc).__name__
        return [
            {"key": t.key, "error": f"job {job.job_id} failed ({reason[:300]}); re-run to retry"}
            for t in chunk
        ]
