"""Work done once per submission, and where the worker finds the job's files."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

from ...result import CheckFailed
from ...sandbox import Sandbox, Tier
from ...sandbox.worker import protocol

T = TypeVar("T")


class Memo:
    """Computes each key once; a CheckFailed is remembered and raised again, so every item
    that needs a broken model (or missing data) says the same thing without redoing the work."""

    def __init__(self) -> None:
        self._done: dict[Hashable, tuple[bool, Any]] = {}

    def __call__(self, key: Hashable, compute: Callable[[], T]) -> T:
        if key not in self._done:
            try:
                self._done[key] = (True, compute())
            except CheckFailed as exc:
                self._done[key] = (False, exc)
        ok, value = self._done[key]
        if not ok:
            raise value
        return value

    def found(self, key: Hashable) -> Any | None:
        """The value computed for ``key``, or None when it was not computed or failed."""
        ok, value = self._done.get(key, (False, None))
        return value if ok else None


def in_sandbox(sandbox: Sandbox, area: str, relative: Path | str) -> str:
    """The path the worker sees for a file of the job folder's ``area`` (``submission``,
    ``extracted``, ``inputs``): tier A mounts them at fixed places, tiers B and C use the
    host's folders."""
    relative = Path(relative).as_posix()
    if sandbox.tier.tier is Tier.A:
        base = {
            "submission": protocol.SANDBOX_SUBMISSION,
            "extracted": protocol.SANDBOX_EXTRACTED,
            "inputs": protocol.SANDBOX_INPUTS,
        }[area]
    else:
        base = str(getattr(sandbox.job, area))
    return f"{base}/{relative}"
