"""Running a notebook inside the sandbox with nbclient and an ipykernel from
the worker's own interpreter.

The kernel is a child of the worker, so it inherits the worker's uid,
namespaces, seccomp filter and rlimits. It talks to nbclient over Unix
sockets (ZeroMQ ``ipc`` transport): the sandbox has no network, and the
seccomp filter refuses IP sockets anyway. Cells run one at a time so that
each gets ``min(cell_timeout, time left)`` and the first error, hang or
kernel death stops the run; the notebook is saved with whatever outputs it
produced, for the TA to read.

nbclient and nbformat are imported inside functions: only a worker that runs a notebook
pays for loading them.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Any

from .errors import WorkerError
from .protocol import Failure

MAX_STREAM_CHARS = 100_000  # per output, head and tail kept
MAX_IMAGE_BYTES = 2 << 20
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
KERNEL_NAME = "autograder-python"
KERNEL_START_TIMEOUT = 120  # seconds for the kernel to start and answer (within the item's timeout)
# ipykernel binds its subprocess-output pipe to tcp://127.0.0.1, and libzmq aborts
# when the seccomp filter refuses the IP socket. Without the pipe, ipykernel runs as
# it does when that bind fails: output printed by forked children is not captured.
# (Tier A now allows IP sockets in its own namespace; the pipe stays off in every tier alike.)
#
# With a dataset at ./data, torchvision's CIFAR module is made to accept it: it
# compares every file's md5 with the official release, and the staged copy never matches
# (its test split is a stand-in; instructors' own data and converted copies differ too).
# A handout's ``CIFAR10('./data', download=True)`` then finds the files, as on the
# student's machine, instead of failing to download.
KERNEL_BOOT = (
    "import os\n"
    "if os.environ.get('AUTOGRADER_DATA'):\n"
    "    try:\n"
    "        from torchvision.datasets import cifar\n"
    "        cifar.check_integrity = lambda fpath, md5=None: os.path.isfile(fpath)\n"
    "    except ImportError:\n"
    "        pass\n"
    "from ipykernel import iostream\n"
    "def _no_tcp_pipe(self):\n"
    "    self._pipe_flag = False\n"
    "iostream.IOPubThread._setup_pipe_in = _no_tcp_pipe\n"
    "from ipykernel import kernelapp\n"
    "kernelapp.launch_new_instance()\n"
)


def _kernel_spec(private: str) -> None:
    """A kernel spec for this interpreter with the patch above, found through JUPYTER_PATH."""
    folder = os.path.join(private, "kernels", KERNEL_NAME)
    os.makedirs(folder)
    spec = {
        "argv": [sys.executable, "-c", KERNEL_BOOT, "-f", "{connection_file}"],
        "display_name": "Python 3 (autograder sandbox)",
        "language": "python",
        "metadata": {"debugger": False},
    }
    with open(os.path.join(folder, "kernel.json"), "w", encoding="utf-8") as handle:
        json.dump(spec, handle)
    os.environ["JUPYTER_PATH"] = private


def _copy_submission(source: str, target: str) -> None:
    """The notebook runs in a writable copy of the submission (it may save weights, plots)."""
    shutil.copytree(source, target, symlinks=False, dirs_exist_ok=True)


def _trim(nb: Any) -> int:
    """Cap what a chatty or plot-happy notebook writes back; returns how many outputs were cut."""
    cut = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text = output.get("text")
            if isinstance(text, str) and len(text) > MAX_STREAM_CHARS:
                half = MAX_STREAM_CHARS // 2
                output["text"] = (
                    f"{text[:half]}\n[... {len(text) - 2 * half} characters cut ...]\n{text[-half:]}"
                )
                cut += 1
            data = output.get("data") or {}
            for key in [k for k, v in data.items() if isinstance(v, str) and len(v) > MAX_IMAGE_BYTES]:
                data[key] = "" if key.startswith("image/") else data[key][:MAX_STREAM_CHARS]
                cut += 1
    return cut


async def _run(nb: Any, run_dir: str, private: str, cell_timeout: float, total: float) -> dict[str, Any]:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    from traitlets.config import Config

    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = os.path.join(private, "kernel")
    client = NotebookClient(
        nb,
        config=config,
        kernel_name=KERNEL_NAME,
        timeout=int(cell_timeout),
        startup_timeout=KERNEL_START_TIMEOUT,
        allow_errors=False,
        interrupt_on_timeout=False,
        shutdown_kernel="immediate",
        record_timing=True,
        resources={"metadata": {"path": run_dir}},
    )
    env = dict(os.environ)
    env.update(
        MPLBACKEND=INLINE_BACKEND,
        JUPYTER_RUNTIME_DIR=private,
        IPYTHONDIR=os.path.join(private, "ipython"),
        JUPYTER_CONFIG_DIR=os.path.join(private, "jupyter"),
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    started = time.monotonic()
    result: dict[str, Any] = {"status": "ok", "cells_run": 0, "failed_cell": None, "message": ""}
    # statuses: ok, error, timeout (one cell), total_timeout, dead_kernel, no_kernel
    try:
        async with client.async_setup_kernel(env=env):
            result["kernel_seconds"] = round(time.monotonic() - started, 2)
            for index, cell in enumerate(nb.cells):
                if cell.get("cell_type") != "code" or not str(cell.get("source", "")).strip():
                    continue
                left = total - (time.monotonic() - started)
                if left <= 1:
                    result.update(status="total_timeout", failed_cell=index + 1, limit=total)
                    break
                client.timeout = int(max(1, min(cell_timeout, left)))
                try:
                    await client.async_execute_cell(
                        cell, index, execution_count=client.code_cells_executed + 1
                    )
                    result["cells_run"] += 1
                except CellTimeoutError:
                    whole = client.timeout < cell_timeout
                    result.update(status="total_timeout" if whole else "timeout", failed_cell=index + 1)
                    result["limit"] = total if whole else client.timeout
                    break
                except CellExecutionError as exc:
                    result.update(status="error", failed_cell=index + 1, ename=exc.ename)
                    result["cells_run"] += 1
                    result["evalue"] = str(exc.evalue)[:500]
                    break
                except DeadKernelError:
                    result.update(status="dead_kernel", failed_cell=index + 1)
                    break
    except DeadKernelError as exc:
        result.update(status="dead_kernel", message=f"the kernel died: {str(exc)[:300]}")
    except RuntimeError as exc:  # kernel start-up failures surface as RuntimeError/TimeoutError
        result.update(status="no_kernel", message=f"the Jupyter kernel did not start: {str(exc)[:300]}")
    except TimeoutError:
        result.update(status="no_kernel", message="the Jupyter kernel did not start within 120 s")
    except Exception as exc:  # noqa: BLE001 - nbclient's clean-up can fail after a kernel death
        if result["status"] == "ok":
            result.update(
                status="no_kernel", message=f"the Jupyter kernel failed: {type(exc).__name__}: {exc}"[:300]
            )
    result["seconds"] = round(time.monotonic() - started, 2)
    return result


def execute(
    notebook: str,
    submission: str,
    out: str,
    out_name: str,
    cell_timeout: float,
    total: float,
    data: str | None,
) -> dict[str, Any]:
    """Run ``notebook`` (a prepared copy) in a copy of ``submission``; write the executed one to ``out``."""
    import nbformat

    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds
        raise WorkerError(Failure.NOTEBOOK, f"the notebook could not be read: {exc}") from None
    run_dir = os.path.join(out, "run")
    _copy_submission(submission, run_dir)
    if data and not os.path.lexists(os.path.join(run_dir, "data")):
        os.symlink(data, os.path.join(run_dir, "data"))
    if data:
        os.environ["AUTOGRADER_DATA"] = data
        os.environ["DATA_ROOT"] = data
    private = tempfile.mkdtemp(prefix="nbrun-")
    _kernel_spec(private)
    try:
        result = asyncio.run(_run(nb, run_dir, private, cell_timeout, total))
    finally:
        shutil.rmtree(private, ignore_errors=True)
    result["outputs_cut"] = _trim(nb)
    target = os.path.join(out, os.path.basename(out_name))
    nbformat.write(nb, target)
    result["notebook"] = os.path.basename(target)
    return result
