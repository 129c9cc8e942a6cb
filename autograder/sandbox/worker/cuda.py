"""Code written for a GPU, graded where there is none.

Students train on Colab GPUs and hand in code that hard-codes CUDA: ``.to(device)`` and
``.cuda()`` on modules and tensors, ``torch.zeros(..., device="cuda")`` in ``forward``,
``model = Net().to(device)`` at the top of a file. Where torch has no CUDA device, every
such request fails ("Torch not compiled with CUDA enabled"), so while student code runs
(``StudentCode.load`` and ``.call``) a ``TorchFunctionMode`` (the mechanism
``torch.set_default_device`` uses) turns CUDA device requests into the CPU and records the
first place in each student file that asked. With a CUDA device nothing is installed: the
code runs as written.

torch is imported inside functions (see ``main``): the seccomp filter comes first.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

MAX_FILES = 50  # places kept: one per student file


def _is_cuda(device: Any) -> bool:
    import torch

    if isinstance(device, str):
        return device.startswith("cuda")
    return isinstance(device, torch.device) and device.type == "cuda"


class CpuForCuda:
    """Context manager: CUDA device requests made while it is entered run on the CPU."""

    def __init__(self, roots: tuple[str, ...]) -> None:
        self.roots = roots
        self.places: dict[str, tuple[int, str]] = {}  # student file -> (line, what asked)
        self._mode: Any = None
        self._needed: bool | None = None

    def needed(self) -> bool:
        """True where torch has no CUDA device (asked once: the answer does not change)."""
        if self._needed is None:
            import torch

            self._needed = not torch.cuda.is_available()
        return self._needed

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        if not self.needed():
            yield
            return
        if self._mode is None:
            self._mode = _mode_class()(self)
        with self._mode:
            yield

    def record(self, what: str) -> None:
        """The innermost student frame on the stack is the place that asked."""
        frame = sys._getframe(2)
        while frame is not None and not frame.f_code.co_filename.startswith(self.roots):
            frame = frame.f_back
        if frame is None:
            return
        file = frame.f_code.co_filename
        if file not in self.places and len(self.places) < MAX_FILES:
            self.places[file] = (frame.f_lineno, what)


def _mode_class() -> type:
    import torch
    from torch.overrides import TorchFunctionMode

    to, cuda = torch.Tensor.to, torch.Tensor.cuda

    class Mode(TorchFunctionMode):
        def __init__(self, owner: CpuForCuda) -> None:
            super().__init__()
            self.owner = owner

        def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            kwargs = kwargs or {}
            if func is cuda:  # Tensor.cuda(device=None, non_blocking=False, memory_format=...)
                self.owner.record(".cuda()")
                return args[0]
            if "device" in kwargs and _is_cuda(kwargs["device"]):  # factories, .to(device=...)
                self.owner.record(f"{_name(func)}(device='cuda')")
                kwargs = {**kwargs, "device": "cpu"}
            elif func is to and len(args) > 1 and _is_cuda(args[1]):  # .to('cuda'), .to(device, dtype)
                self.owner.record(".to('cuda')")
                args = (args[0], "cpu", *args[2:])
            return func(*args, **kwargs)

    return Mode


def _name(func: Any) -> str:
    """``torch.zeros`` as the student wrote it; a Tensor method as ``.new_zeros``."""
    name = getattr(func, "__name__", "a torch call")
    if name == "_parse_to":  # Module.to(device=...) parses its arguments through torch
        return ".to"
    method = getattr(func, "__qualname__", "").startswith(("TensorBase.", "Tensor."))
    return f".{name}" if method else f"torch.{name}"
