"""Importing student code and loading student checkpoints.

Student modules are loaded by explicit path under a private name, and the
submission folder is appended to the *end* of ``sys.path`` so that a student
file called ``torch.py`` or ``json.py`` cannot shadow a real package.

torch is imported inside functions: the worker installs its seccomp filter (which binds
only the threads started after it) before torch starts its first thread.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import sys
import types
import warnings
from typing import Any

from .cuda import CpuForCuda
from .errors import WorkerError, describe, student_location
from .protocol import Failure

WRAPPER_KEYS = ("state_dict", "model_state_dict", "model_state", "model", "net", "weights", "params")
PREFIXES = ("module.", "_orig_mod.", "model.", "net.")
# buffers an older thop's profile() leaves on every module it counted, saved with the weights
THOP_COUNTERS = ("total_ops", "total_params")
NORMALIZE_KEYS = ("normalize", "normalization", "preprocess")


class StudentCode:
    """Modules imported from the submission, by grader-chosen names. Without a CUDA device,
    student code runs with its CUDA requests on the CPU (``devices.places`` says where)."""

    def __init__(self, roots: tuple[str, ...]) -> None:
        self.roots = roots
        self.modules: dict[str, types.ModuleType] = {}
        self.devices = CpuForCuda(roots)
        for root in roots:
            if root not in sys.path:
                sys.path.append(root)

    def load(self, name: str, path: str) -> dict[str, Any]:
        # as ``python file.py``: a train.py's argparse gets its defaults, not the worker's options
        sys.argv = [path]
        try:
            with self.devices.active():
                module = self._import(name, path)
        except WorkerError:
            raise
        except SystemExit as exc:
            raise WorkerError(
                Failure.IMPORT, f"it called exit({exc.code!r}) while being imported; exiting decides nothing"
            ) from None
        except BaseException as exc:  # noqa: BLE001 - student code may raise anything
            file, line = student_location(exc, self.roots)
            raise WorkerError(Failure.IMPORT, describe(exc), file=file, line=line) from None
        self.modules[name] = module
        classes = [n for n, v in vars(module).items() if inspect.isclass(v)]
        functions = [n for n, v in vars(module).items() if inspect.isfunction(v)]
        return {"classes": classes, "functions": functions}

    def _import(self, name: str, path: str) -> types.ModuleType:
        """``path`` as a module of its own, or, in a folder of the submission, as a module of
        that folder's package (under a private name), so that its relative imports work
        (``from .blocks import BasicBlock`` in ``models/resnet.py``)."""
        package = self._package(os.path.dirname(path))
        stem = os.path.splitext(os.path.basename(path))[0]
        if package and stem == "__init__":
            return sys.modules[package]
        qualified = f"{package}.{_identifier(stem)}" if package else f"student_{name}"
        if package and qualified in sys.modules:  # imported by its package's __init__.py
            return sys.modules[qualified]
        spec = importlib.util.spec_from_file_location(qualified, path)
        if spec is None or spec.loader is None:
            raise WorkerError(Failure.IMPORT, f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module

    def _package(self, folder: str) -> str | None:
        """The private name of the package a folder of the submission is (its ``__init__.py``
        run first, else an empty namespace), its parents imported before it; None for a root."""
        folder = os.path.normpath(folder)
        if folder in map(os.path.normpath, self.roots) or not folder.startswith(self.roots):
            return None
        parent = self._package(os.path.dirname(folder))
        base = _identifier(os.path.basename(folder))
        qualified = f"{parent}.{base}" if parent else f"student_pkg_{base}"
        if qualified in sys.modules:
            return qualified
        init = os.path.join(folder, "__init__.py")
        if os.path.isfile(init):
            spec = importlib.util.spec_from_file_location(
                qualified, init, submodule_search_locations=[folder]
            )
            if spec is None or spec.loader is None:
                raise WorkerError(Failure.IMPORT, f"cannot import {init}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[qualified] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[qualified]
                raise
        else:
            module = types.ModuleType(qualified)
            module.__path__ = [folder]
            sys.modules[qualified] = module
        return qualified

    def attribute(self, module: str, name: str) -> Any:
        if module not in self.modules:
            raise WorkerError(Failure.MISSING, f"module {module} was not loaded")
        if not hasattr(self.modules[module], name):
            raise WorkerError(Failure.MISSING, f"{name} is not defined")
        return getattr(self.modules[module], name)

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call into student code, turning its exceptions into located messages."""
        try:
            with self.devices.active():
                return fn(*args, **kwargs)
        except WorkerError:
            raise
        except SystemExit as exc:
            raise WorkerError(Failure.CRASH, f"student code called exit({exc.code})") from None
        except BaseException as exc:  # noqa: BLE001
            file, line = student_location(exc, self.roots)
            raise WorkerError(Failure.CRASH, describe(exc), file=file, line=line) from None


def _identifier(name: str) -> str:
    """A file or folder name as part of a module name (``my-lab 2`` -> ``my_lab_2``)."""
    return re.sub(r"\W", "_", name)


SAFE_TORCH = (2, 6)  # weights_only=True could still run code before 2.6 (CVE-2025-32434)


def read_checkpoint(path: str) -> Any:
    """``torch.load`` with ``weights_only=True``; whole pickled models are refused."""
    import torch

    release = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2] if p.isdigit())
    if release < SAFE_TORCH:
        raise WorkerError(
            Failure.WEIGHTS,
            f"the grader's torch {torch.__version__} cannot load checkpoints safely (CVE-2025-32434); "
            "the course staff must install torch >= 2.6",
        )
    size = os.path.getsize(path)
    if size == 0:
        raise WorkerError(Failure.WEIGHTS, f"{os.path.basename(path)} is empty (0 bytes)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        text = str(exc)
        name = os.path.basename(path)
        if "TorchScript archive" in text:  # torch.jit.save: TorchScript, no Python pickle
            return _torchscript(path, name)
        if "Unsupported global" in text or "weights_only" in text.split("\n")[0]:
            cls = _unsupported_global(text)
            what = f" (it contains a pickled {cls})" if cls else ""
            raise WorkerError(
                Failure.WEIGHTS,
                f"{name} is a whole pickled object{what}, which the grader will not unpickle: "
                "save the weights with torch.save(model.state_dict(), PATH)",
            ) from None
        if any(
            s in text for s in ("zip archive", "central directory", "EOF", "truncated", "invalid load key")
        ):
            raise WorkerError(
                Failure.WEIGHTS,
                f"{name} is not a readable PyTorch checkpoint ({size} bytes; truncated or not "
                "written by torch.save): save it again and re-upload",
            ) from None
        raise WorkerError(Failure.WEIGHTS, f"{name} could not be loaded: {describe(exc)}") from None


def _torchscript(path: str, name: str) -> Any:
    """A model saved with ``torch.jit.save``: a TorchScript module, whose state dict
    ``readings`` takes (what loading runs is TorchScript, no Python, in the sandbox)."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, still loads
        try:
            return torch.jit.load(path, map_location="cpu")
        except Exception as exc:  # noqa: BLE001
            raise WorkerError(
                Failure.WEIGHTS, f"{name} is a TorchScript archive that could not be read: {describe(exc)}"
            ) from None


def _unsupported_global(text: str) -> str | None:
    marker = "Unsupported global: GLOBAL "
    if marker not in text:
        return None
    rest = text.split(marker, 1)[1]
    return rest.split()[0].rstrip(".,") if rest.split() else None


def readings(obj: Any) -> tuple[list[tuple[dict[str, Any], list[str]]], dict[str, Any] | None]:
    """Every way to read a state dict out of a checkpoint, the keys as saved first.

    A model that keeps its layers in ``self.model`` saves keys ``model.…``: they fit
    as saved, and stripping the prefix would break them. So the keys as saved come
    first; entries of a checkpoint dict (``{"model_state_dict": …}``) and prefixes
    added by wrappers (``module.`` from DataParallel, ``_orig_mod.`` from
    torch.compile, ``model.``/``net.`` from a wrapper class), in any combination,
    are tried after, and so are the weights without the ``total_ops``/``total_params``
    buffers an older thop leaves on every module it profiled. Each reading says which
    transform made it."""
    import torch

    normalize = None
    bases: list[tuple[dict[str, Any], list[str]]] = []
    if isinstance(obj, torch.jit.ScriptModule):
        bases.append((dict(obj.state_dict()), ["read the weights of a TorchScript archive (torch.jit.save)"]))
    if isinstance(obj, dict):
        for key in NORMALIZE_KEYS:
            value = obj.get(key)
            if isinstance(value, dict) and "mean" in value and "std" in value:
                normalize = {"mean": _floats(value["mean"]), "std": _floats(value["std"])}
        if _is_tensor_dict(obj):
            bases.append((obj, []))
        for key in WRAPPER_KEYS:
            if isinstance(obj.get(key), dict) and _is_tensor_dict(obj[key]):
                bases.append((obj[key], [f"used the '{key}' entry of the checkpoint dict"]))
    if not bases:
        found = type(obj).__name__
        keys = ", ".join(list(map(str, obj))[:6]) if isinstance(obj, dict) else ""
        raise WorkerError(
            Failure.WEIGHTS,
            f"the checkpoint holds a {found}{' with keys ' + keys if keys else ''}, not a state_dict: "
            "save it with torch.save(model.state_dict(), PATH)",
        )
    options: list[tuple[dict[str, Any], list[str]]] = []
    queue = [({k: v for k, v in b.items() if isinstance(v, torch.Tensor)}, notes) for b, notes in bases]
    for state, notes in list(queue):
        counters = [k for k in state if k.rsplit(".", 1)[-1] in THOP_COUNTERS]
        if counters:
            why = f"left out the {len(counters)} total_ops/total_params buffers thop.profile() added"
            queue.append(({k: v for k, v in state.items() if k not in counters}, [*notes, why]))
    while queue and len(options) < 32:  # each strip shortens every key: this ends anyway
        state, notes = queue.pop(0)
        options.append((state, notes))
        for prefix in _prefixes(state):
            stripped = {k[len(prefix) :]: v for k, v in state.items()}
            queue.append((stripped, [*notes, f"stripped the '{prefix}' prefix from every key"]))
    return options, normalize


def _prefixes(state: dict[str, Any]) -> list[str]:
    """The wrappers' prefixes every key of ``state`` starts with: the usual ones, and any
    first name all keys share (``backbone.``, or ``1.`` from ``nn.Sequential(normalize,
    model)``); a reading is used only where its keys and shapes fit the model."""
    if not state or not all("." in k for k in state):
        return []
    found = [p for p in PREFIXES if all(k.startswith(p) for k in state)]
    first = {k.split(".", 1)[0] for k in state}
    if len(first) == 1 and f"{next(iter(first))}." not in found:
        found.append(f"{next(iter(first))}.")
    return found


def best_reading(
    model: Any, obj: Any
) -> tuple[dict[str, Any], list[str], dict[str, Any], dict[str, Any] | None]:
    """The first reading whose keys and shapes fit the model, else the closest one."""
    options, normalize = readings(obj)
    best = None
    for state, notes in options:
        report = fit_report(model, state)
        if report["fits"]:
            return state, notes, report, normalize
        if best is None or report["matched"] > best[2]["matched"]:
            best = (state, notes, report)
    state, notes, report = best
    return state, notes, report, normalize


def _is_tensor_dict(obj: dict[str, Any]) -> bool:
    import torch

    values = list(obj.values())
    return (
        bool(values)
        and all(isinstance(k, str) for k in obj)
        and (sum(isinstance(v, torch.Tensor) for v in values) >= max(1, len(values) // 2))
    )


def _floats(value: Any) -> list[float]:
    import torch

    if isinstance(value, torch.Tensor):
        value = value.flatten().tolist()
    return [float(v) for v in value]


def fit_report(model: Any, state: dict[str, Any]) -> dict[str, Any]:
    """Which keys are missing, unexpected or mis-shaped for this model."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [
        {"key": k, "expected": list(own[k].shape), "got": list(state[k].shape)}
        for k in own
        if k in state and tuple(own[k].shape) != tuple(state[k].shape)
    ]
    matched = len(own) - len(missing) - len(mismatched)
    return {
        "missing": missing,
        "unexpected": unexpected,
        "mismatched": mismatched,
        "matched": matched,
        "total": len(own),
        "fits": not missing and not unexpected and not mismatched,
    }


def constructor_kwargs(cls: type, num_classes: int) -> dict[str, Any]:
    """Pass ``num_classes`` only where the constructor asks for it without a default."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return {}
    kwargs: dict[str, Any] = {}
    for name in ("num_classes", "n_classes", "classes"):
        if name in params and params[name].default is inspect.Parameter.empty:
            kwargs[name] = num_classes
    return kwargs


def required_arguments(factory: Any, given: dict[str, Any]) -> list[str]:
    """The parameters ``factory`` needs that have no default and are not ``given``
    (``def __init__(self, config)``): the grader builds a model with no other arguments."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return []
    kind = inspect.Parameter
    named = (kind.POSITIONAL_ONLY, kind.POSITIONAL_OR_KEYWORD, kind.KEYWORD_ONLY)
    return [
        name
        for name, p in params.items()
        if p.kind in named and p.default is inspect.Parameter.empty and name not in given
    ]
