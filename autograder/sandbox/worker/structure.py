"""Facts about how tensors flow through a model: skip connections (a tensor
added back to what a few weighted layers made of it) and building blocks
(a function or class from the student's code, called with probe arguments).

Skip connections are found in the data flow of a real forward pass, not in
attribute names: every torch call is recorded with the tensors it consumed,
so ``out += identity``, ``F.relu(y + x)`` and ``torch.add(y, self.proj(x))``
look the same. The worker reports facts; the grader decides.

torch is imported inside functions: the worker installs its seccomp filter (which binds
only the threads started after it) before torch starts its first thread.
"""

from __future__ import annotations

import inspect
from collections import Counter
from typing import Any

from .errors import WorkerError
from .introspect import materialize, probe_input

ADDS = {"add", "__add__", "__radd__", "__iadd__", "add_"}
CONCATS = {"cat", "concat", "concatenate"}
# The steps whose order a residual block is judged on; everything else (dropout, views) is skipped.
STEPS = {
    "conv1d": "conv",
    "conv2d": "conv",
    "conv3d": "conv",
    "convolution": "conv",
    "batch_norm": "BN",
    "instance_norm": "norm",
    "layer_norm": "norm",
    "group_norm": "norm",
    **{a: "ReLU" for a in ("relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "elu", "gelu", "silu")},
}


class _Graph:
    """Nodes in execution order: (op name, input node ids, weight shape or None, output shape)."""

    def __init__(self) -> None:
        self.nodes: list[tuple[str, list[int], list[int] | None, list[int] | None]] = []
        self.producer: dict[int, int] = {}
        self.keep: list[Any] = []  # holds every tensor so that id() values stay unique

    def step(self, node: int) -> str | None:
        """'conv3x3', 'BN', 'ReLU' or None for a node that is not a step of the block order."""
        name, _, weight, _ = self.nodes[node]
        kind = STEPS.get(name)
        if kind == "conv" and weight and len(weight) >= 3:
            return "conv" + "x".join(str(k) for k in weight[2:])
        return kind

    def add(self, name: str, inputs: list[int], weight: list[int] | None, out: Any) -> None:
        self.nodes.append((name, inputs, weight, list(out.shape)))
        self.producer[id(out)] = len(self.nodes) - 1
        self.keep.append(out)

    def ancestors(self, node: int) -> set[int]:
        seen, stack = {node}, [node]
        while stack:
            for parent in self.nodes[stack.pop()][1]:
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return seen

    def weighted_steps(self, start: int, end: int) -> dict[int, int]:
        """Fewest weighted ops (convolutions, linear layers) from ``start`` to each later node."""
        steps = {start: 0}
        for k in range(start + 1, end):
            name, inputs, weight, _ = self.nodes[k]
            reached = [steps[i] for i in inputs if i in steps]
            if reached:
                steps[k] = min(reached) + (1 if weight else 0)
        return steps


def trace(model: Any, x: Any, call: Any) -> tuple[_Graph, Any]:
    """Run ``model(x)`` recording every torch call that consumes a traced tensor."""
    import torch
    from torch import nn
    from torch.overrides import TorchFunctionMode

    graph = _Graph()

    class Recorder(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            inputs: list[int] = []
            weight = None
            for arg in [*args, *kwargs.values()]:
                for t in arg if isinstance(arg, (list, tuple)) else (arg,):
                    if isinstance(t, nn.Parameter):
                        if t.dim() >= 2:
                            weight = list(t.shape)
                    elif isinstance(t, torch.Tensor) and id(t) in graph.producer:
                        inputs.append(graph.producer[id(t)])
            if isinstance(out, torch.Tensor) and inputs:
                graph.add(getattr(func, "__name__", str(func)), inputs, weight, out)
            return out

    graph.add("input", [], None, x)
    with torch.no_grad(), Recorder():
        out = call(model, x)
    return graph, out


def _main_path(graph: _Graph, start: int, end: int, steps: dict[int, int], origin: int | None) -> list[str]:
    """The block-order steps from ``start`` to ``end`` along the path with the most weighted ops,
    plus, with ``origin`` (a block's input), the steps that led from it to ``start``: a
    pre-activation block whose projection takes the activated input shares its BN-ReLU."""
    found, node = [], end
    while node != start:
        step = graph.step(node)
        if step:
            found.append(step)
        parents = [i for i in graph.nodes[node][1] if i in steps]
        if not parents:
            break
        node = max(parents, key=lambda i: (steps[i], i))
    while origin is not None and node > origin and graph.nodes[node][1]:
        step = graph.step(node)
        if step:
            found.append(step)
        node = graph.nodes[node][1][0]
    return found[::-1]


def _after(graph: _Graph, node: int) -> list[str]:
    """The steps applied to an addition's result before the next block begins: until a tensor
    feeds two ops (the next block's branches), a weighted op or another addition."""
    found = []
    while True:
        users = [k for k in range(node + 1, len(graph.nodes)) if node in graph.nodes[k][1]]
        if len(users) != 1 or graph.nodes[users[0]][2] or graph.nodes[users[0]][0] in ADDS:
            return found
        node = users[0]
        step = graph.step(node)
        if step:
            found.append(step)


def skips(graph: _Graph, origin: int | None = None) -> list[dict[str, Any]]:
    """Additions whose operands descend from one tensor by paths of different depth.

    The long path holds at least one weighted op; the short one (the shortcut)
    at most one: none is an identity shortcut, one is a projection."""
    found = []
    for k, (name, inputs, _, shape) in enumerate(graph.nodes):
        if name not in ADDS or len(inputs) != 2:
            continue
        a, b = inputs
        common = graph.ancestors(a) & graph.ancestors(b)
        if not common:
            continue
        start = max(common)  # the nearest common ancestor: latest in execution order
        steps = graph.weighted_steps(start, k)
        long, short = sorted((steps.get(a, 0), steps.get(b, 0)), reverse=True)
        if long >= 1 and short <= 1 and long > short:
            main = a if steps.get(a, 0) >= steps.get(b, 0) else b
            found.append(
                {
                    "shape": shape,
                    "main_path": long,
                    "shortcut": "identity" if short == 0 else "projection",
                    "order": _main_path(graph, start, main, steps, origin),
                    "after": _after(graph, k),
                }
            )
    return found


def residual(model: Any, input_shape: list[int], call: Any) -> dict[str, Any]:
    """The skip connections of a model's forward pass on a probe input."""
    model.eval()
    graph, out = trace(model, probe_input(input_shape, batch=1), call)
    adds = sum(1 for name, inputs, _, _ in graph.nodes if name in ADDS and len(inputs) == 2)
    return {
        "skips": skips(graph),
        "additions": adds,
        "weighted_ops": sum(1 for node in graph.nodes if node[2]),
        "output_shape": list(out.shape) if hasattr(out, "shape") else None,
    }


def _signature(factory: Any) -> tuple[list[str] | None, int | None]:
    """Parameter names (without self, *args, **kwargs) and how many have no default."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None, None
    named = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"]
    return [p.name for p in named], sum(1 for p in named if p.default is p.empty)


def block(factory: Any, name: str, probes: list[dict[str, Any]], call: Any) -> dict[str, Any]:
    """Call a building block with each probe's arguments and run what it builds."""
    import torch
    from torch import nn

    signature, required = _signature(factory)
    facts: dict[str, Any] = {
        "kind": "class" if inspect.isclass(factory) else "function",
        "signature": signature,
        "required": required,
        "probes": [],
    }
    for k, probe in enumerate(probes):
        args, kwargs = list(probe.get("args", [])), dict(probe.get("kwargs", {}))
        shown = ", ".join([repr(a) for a in args] + [f"{key}={v!r}" for key, v in kwargs.items()])
        entry: dict[str, Any] = {"call": f"{name}({shown})"}
        facts["probes"].append(entry)
        try:
            built = call(factory, *[tuple(a) if isinstance(a, list) else a for a in args], **kwargs)
        except WorkerError as exc:
            entry["error"] = exc.message
            entry["line"] = exc.details.get("line")
            continue
        if not isinstance(built, nn.Module):
            entry["error"] = f"returned a {type(built).__name__}, not an nn.Module"
            continue
        built.eval()
        x = probe_input(probe["input"], batch=2, seed=k)
        try:
            materialize(built, [probe["input"]], call)  # lazy layers: before the trace, which they break
            graph, out = trace(built, x, call)
        except WorkerError as exc:
            entry["error"] = f"running it on an input of shape {tuple(x.shape)} failed: {exc.message}"
            entry["line"] = exc.details.get("line")
            continue
        # counted after the probe ran: lazy layers (the d2l book's blocks) take their shapes from it
        entry["params"] = sum(p.numel() for p in built.parameters())
        entry["layers"] = dict(Counter(type(m).__name__ for m in built.modules() if not list(m.children())))
        if not isinstance(out, torch.Tensor):
            entry["error"] = f"its forward returned a {type(out).__name__}, not a tensor"
            continue
        entry["output_shape"] = list(out.shape)[1:]
        found = skips(graph, origin=0)  # node 0: the block's input
        entry["skips"] = [s["shortcut"] for s in found]
        entry["orders"] = [{"main": s["order"], "after": s["after"]} for s in found]
        last = graph.nodes[graph.producer.get(id(out), 0)]
        entry["concat_inputs"] = len(last[1]) if last[0] in CONCATS else 0
    return facts
