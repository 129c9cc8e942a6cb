"""Facts about a model: its layers in execution order, counts, forward
behaviour and ``make_layer``. The worker reports facts; the grader decides.

torch (and thop, with it) is imported inside functions: the worker installs its seccomp filter (which binds
only the threads started after it) before torch starts its first thread.
"""

from __future__ import annotations

import copy
import inspect
import sys
from typing import Any

from .errors import WorkerError

LAYER_ATTRS = (
    "in_channels",
    "out_channels",
    "kernel_size",
    "stride",
    "padding",
    "groups",
    "in_features",
    "out_features",
    "num_features",
    "p",
    "output_size",
    "bias",
)


def _attrs(module: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in LAYER_ATTRS:
        if not hasattr(module, name):
            continue
        value = getattr(module, name)
        if name == "padding" and isinstance(value, str):
            value = _padding(value, module.kernel_size, getattr(module, "dilation", 1))
        if name == "bias":
            out[name] = value is not None if not isinstance(value, bool) else value
        elif isinstance(value, (int, float, bool)) or value is None:
            out[name] = value
        elif isinstance(value, tuple) and all(isinstance(v, int) for v in value):
            out[name] = list(value)
        elif isinstance(value, str):
            out[name] = value
    return out


def _padding(value: Any, kernel: Any, dilation: Any) -> Any:
    """``padding='same'`` / ``'valid'`` as the numbers they stand for (``'same'`` with a 3x3
    kernel is ``1``), so a rubric's ``padding = 1`` matches either spelling."""
    if value == "valid":
        return 0
    if value != "same":
        return value
    kernels = list(kernel) if isinstance(kernel, (tuple, list)) else [kernel]
    dilations = list(dilation) if isinstance(dilation, (tuple, list)) else [dilation] * len(kernels)
    total = [d * (k - 1) for k, d in zip(kernels, dilations, strict=False)]
    return tuple(t // 2 for t in total) if all(t % 2 == 0 for t in total) else value


def _shape(value: Any) -> list[int] | None:
    import torch

    if isinstance(value, torch.Tensor):
        return list(value.shape)
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return list(value[0].shape)
    return None


def probe_input(shape: list[int], batch: int = 2, seed: int = 0) -> Any:
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.rand((batch, *shape), generator=generator)


def materialize(model: Any, input_shapes: list[list[int]], call: Any) -> list[int] | None:
    """Give lazy layers (``nn.LazyConv2d``, ``nn.LazyLinear``: the d2l book's style) their
    shapes with one dry forward pass, as the book's ``apply_init`` does, at the first of
    ``input_shapes`` the model runs at (AlexNet's ``nn.LazyLinear`` is sized by the input:
    a lab accepting 28x28 or 224x224 tries both). The shape used, None if nothing was lazy;
    if no shape runs, the first one's error."""
    import torch
    from torch.nn.modules.lazy import LazyModuleMixin

    if not any(isinstance(m, LazyModuleMixin) and m.has_uninitialized_params() for m in model.modules()):
        return None
    training = model.training
    model.eval()
    failures: list[WorkerError] = []
    try:
        for shape in input_shapes:
            try:
                with torch.no_grad():
                    call(model, probe_input(shape, batch=1))
                return shape
            except WorkerError as exc:
                failures.append(exc)
        raise failures[0]
    finally:
        model.train(training)


FUNCTIONAL = {
    "relu": "ReLU",
    "relu_": "ReLU",
    "leaky_relu": "LeakyReLU",
    "gelu": "GELU",
    "elu": "ELU",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "softmax": "Softmax",
    "log_softmax": "LogSoftmax",
    "max_pool2d": "MaxPool2d",
    "avg_pool2d": "AvgPool2d",
    "adaptive_avg_pool2d": "AdaptiveAvgPool2d",
    "adaptive_max_pool2d": "AdaptiveMaxPool2d",
    "dropout": "Dropout",
    "dropout2d": "Dropout2d",
    "flatten": "Flatten",
    "linear": "Linear",
    "conv2d": "Conv2d",
    "batch_norm": "BatchNorm2d",
}


WEIGHTED = ("Conv2d", "Linear", "BatchNorm2d")
# each functional op's parameters in positional order, after the input (torch's signatures)
SIGNATURES = {
    "MaxPool2d": ("kernel_size", "stride", "padding"),
    "AvgPool2d": ("kernel_size", "stride", "padding"),
    "Dropout": ("p", "training"),
    "Dropout2d": ("p", "training"),
    "Conv2d": ("weight", "bias", "stride", "padding", "dilation", "groups"),
    "Linear": ("weight", "bias"),
    "BatchNorm2d": ("running_mean",),
    "AdaptiveAvgPool2d": ("output_size",),
    "AdaptiveMaxPool2d": ("output_size",),
}
DEFAULTS = {"stride": None, "padding": 0, "dilation": 1, "groups": 1, "p": 0.5, "training": True}


def _functional_attrs(kind: str, args: tuple, kwargs: dict) -> dict[str, Any]:
    """A functional call's arguments as the attributes of the module it stands for:
    ``F.max_pool2d(x, 2)`` is ``MaxPool2d(kernel_size=2, stride=2)``, ``F.dropout(x, 0.5,
    self.training)`` is ``Dropout(p=0.5)``, ``F.conv2d(x, w)`` has the channels of ``w``."""
    names = SIGNATURES.get(kind, ())
    given = {**DEFAULTS, **dict(zip(names, args[1:], strict=False)), **kwargs}
    given = {k: v for k, v in given.items() if k in names}

    def plain(value: Any) -> Any:
        return list(value) if isinstance(value, (tuple, list)) else value

    attrs: dict[str, Any] = {}
    if kind in ("MaxPool2d", "AvgPool2d"):
        attrs["kernel_size"] = plain(given.get("kernel_size"))
        stride = given.get("stride")
        attrs["stride"] = plain(stride) if stride not in (None, [], ()) else attrs["kernel_size"]
        attrs["padding"] = plain(given["padding"])
    elif kind in ("Dropout", "Dropout2d"):
        attrs["p"] = given["p"]
        attrs["training"] = bool(given["training"])
    elif kind in ("AdaptiveAvgPool2d", "AdaptiveMaxPool2d"):
        attrs["output_size"] = plain(given.get("output_size"))
    elif kind == "Conv2d" and hasattr(given.get("weight"), "shape"):
        shape = list(given["weight"].shape)
        attrs.update(
            in_channels=shape[1] * given["groups"],
            out_channels=shape[0],
            kernel_size=shape[2:],
            stride=plain(given["stride"] if given["stride"] is not None else 1),
            padding=plain(_padding(given["padding"], shape[2:], given["dilation"])),
            groups=given["groups"],
            bias=given.get("bias") is not None,
        )
    elif kind == "Linear" and hasattr(given.get("weight"), "shape"):
        shape = list(given["weight"].shape)
        attrs.update(in_features=shape[-1], out_features=shape[0], bias=given.get("bias") is not None)
    elif kind == "BatchNorm2d" and hasattr(given.get("running_mean"), "shape"):
        attrs["num_features"] = given["running_mean"].shape[0]
    return attrs


def layers(model: Any, input_shape: list[int], call: Any) -> dict[str, Any]:
    """Leaf modules and functional ops in the order they ran on a probe input.

    Module hooks see ``nn.ReLU``; a torch-function mode sees ``F.relu`` and
    ``x.relu()`` called directly in ``forward``. Modules that never ran are
    listed separately: a declared layer the forward pass skips does not count.
    """
    import torch
    from torch.overrides import TorchFunctionMode

    leaves = [(n, m) for n, m in model.named_modules() if n and not list(m.children())]
    executed: list[dict[str, Any]] = []
    seen: set[str] = set()
    depth = [0]
    handles = []

    own = {id(t) for t in [*model.parameters(), *model.buffers()]}

    class Functional(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            kind = FUNCTIONAL.get(getattr(func, "__name__", ""))
            if depth[0] == 0 and kind:
                record = {
                    "name": f"F.{func.__name__}",
                    "type": kind,
                    "attrs": _functional_attrs(kind, args, kwargs),
                    "params": 0,
                    "functional": True,
                    "input_shape": _shape(args),
                    "output_shape": _shape(out),
                }
                # parameters only: a weight computed in forward (``self.w * self.scale``) is not a layer
                weights = [a for a in [*args[1:], *kwargs.values()] if isinstance(a, torch.nn.Parameter)]
                if kind in WEIGHTED and weights and not any(id(w) in own for w in weights):
                    record["created_in_forward"] = True  # a layer built in forward: new weights each call
                executed.append(record)
            return out

    def pre(module, inputs):  # noqa: ARG001
        depth[0] += 1

    def hook_for(name: str):
        def hook(module, inputs, output):
            depth[0] -= 1
            executed.append(
                {
                    "name": name,
                    "type": type(module).__name__,
                    "attrs": _attrs(module),
                    "params": sum(p.numel() for p in module.parameters(recurse=False)),
                    "input_shape": _shape(inputs),
                    "output_shape": _shape(output),
                }
            )
            seen.add(name)

        return hook

    for name, module in leaves:
        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(hook_for(name)))
    model.eval()
    try:
        with torch.no_grad(), Functional():
            output = call(model, probe_input(input_shape, batch=1))
    finally:
        for handle in handles:
            handle.remove()
    unused = [{"name": n, "type": type(m).__name__, "attrs": _attrs(m)} for n, m in leaves if n not in seen]
    return {"executed": executed, "unused": unused, "output_shape": _shape(output)}


def counts(model: Any, input_shape: list[int], call: Any) -> dict[str, Any]:
    """Parameters, thop MACs (what students print) and FlopCounterMode FLOPs."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    model.eval()
    x = probe_input(input_shape, batch=1)
    result: dict[str, Any] = {"params": params, "trainable_params": trainable}
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter, _BiasBeforeNorm(model) as before_norm:
        call(model, x)
    result["flops"] = int(counter.get_total_flops())
    result["bias_before_norm"] = before_norm.found()
    try:
        from thop import profile

        clone = copy.deepcopy(model)
        with torch.no_grad():
            macs, _ = call(lambda m, inp: profile(m, inputs=(inp,), verbose=False), clone, x)
        result["macs"] = int(macs)
    except WorkerError:
        raise
    except Exception as exc:  # noqa: BLE001 - thop fails on some exotic layers
        result["macs"] = None
        result["macs_error"] = f"{type(exc).__name__}: {exc}"[:300]
    return result


class _BiasBeforeNorm:
    """Convolutions and linear layers whose output goes straight into a BatchNorm: their bias
    is redundant (the norm subtracts the mean), so ``bias=True`` there is the same network as
    the reference's ``bias=False``. Seen in one forward pass, by tensor identity."""

    def __init__(self, model: Any) -> None:
        import torch.nn as nn

        self.layers = [
            m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))
        ]
        self.norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        self.outputs: dict[int, Any] = {}
        self.before: dict[int, Any] = {}
        self.handles: list[Any] = []

    def __enter__(self) -> _BiasBeforeNorm:
        for layer in self.layers:
            self.handles.append(layer.register_forward_hook(self._output))
        for norm in self.norms:
            self.handles.append(norm.register_forward_pre_hook(self._input))
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self.handles:
            handle.remove()
        self.outputs.clear()

    def _output(self, layer: Any, inputs: Any, output: Any) -> None:
        self.outputs[id(output)] = (output, layer)

    def _input(self, norm: Any, inputs: Any) -> None:
        if inputs and id(inputs[0]) in self.outputs:
            tensor, layer = self.outputs[id(inputs[0])]
            if tensor is inputs[0]:
                self.before[id(layer)] = layer

    def found(self) -> dict[str, int]:
        """Bias values present before a norm, and how many a bias-free layer would add."""
        layers = self.before.values()
        present = sum(layer.bias.numel() for layer in layers if layer.bias is not None)
        absent = sum(
            getattr(layer, "out_channels", getattr(layer, "out_features", 0))
            for layer in layers
            if layer.bias is None
        )
        return {"layers": len(self.before), "present": present, "absent": absent}


def forward_check(model: Any, input_shape: list[int], call: Any, batch: int = 8) -> dict[str, Any]:
    """Output shape, finiteness, and whether a sample's answer depends on its batch."""
    import torch

    model.eval()
    x = probe_input(input_shape, batch=batch, seed=1)
    with torch.no_grad():
        out = call(model, x)
        if not isinstance(out, torch.Tensor):
            return {"output_type": type(out).__name__, "output_shape": _shape(out)}
        again = call(model, x)
        single = call(model, x[:1])
    result: dict[str, Any] = {
        "output_type": "Tensor",
        "output_shape": list(out.shape),
        "finite": bool(torch.isfinite(out).all()),
        "dtype": str(out.dtype).replace("torch.", ""),
    }
    if isinstance(again, torch.Tensor) and again.shape == out.shape:
        diff = (again.float() - out.float()).abs().max().item()
        result["repeat_max_diff"] = diff if diff == diff else None
    if isinstance(single, torch.Tensor) and single.shape[1:] == out.shape[1:]:
        diff = (single[0].float() - out[0].float()).abs().max().item()
        result["batch_vs_single_max_diff"] = diff if diff == diff else None
    return result


# make_layer's parameters by role, told from their names (lower case, outer underscores
# stripped); ``role`` tries them in this order, so ``num_channels`` is channels, not a count.
IN_CHANNELS = {"cin", "c_in", "ch_in", "n_in", "inp", "in_c", "in_ch", "inc", "in_dim", "prev_channels"}
CHANNELS = {"cout", "c_out", "ch_out", "n_out", "oup", "out_c", "out_ch", "out_dim", "width"}
COUNTS = {"n", "num", "count", "depth", "repeat"}
BLOCKS = {"blk", "unit", "cell", "module", "cls", "layer_type"}
FLAGS = ("first", "is_", "use_", "with_", "downsample", "dilat", "norm", "drop", "expansion")


def role(name: str) -> str | None:
    """What a parameter of ``make_layer`` stands for, from its name, or None."""
    n = name.lower().strip("_")
    if n.startswith(FLAGS) or "class" in n:
        return None
    if "stride" in n or n == "s":
        return "stride"
    if n in IN_CHANNELS or (
        n.startswith(("in", "input")) and any(w in n for w in ("chan", "plane", "feat", "filter"))
    ):
        return "in_channels"
    if n in CHANNELS or any(w in n for w in ("chan", "plane", "filter")):
        return "channels"
    if (
        n in COUNTS
        or n.startswith(("num", "n_"))
        or any(w in n for w in ("blocks", "layers", "repeats", "resid"))
    ):
        return "num_blocks"
    if n in BLOCKS or "block" in n:
        return "block"
    return None


def parameters(fn: Any) -> list[tuple[str, str, bool]] | None:
    """``fn``'s parameters as (name, kind, has a default), ``self`` left out; None when
    Python cannot tell (a builtin)."""
    try:
        found = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    return [(p.name, p.kind.name, p.default is not p.empty) for p in found]


def call_plan(params: list[tuple[str, str, bool]], handout: list[str]) -> dict[str, Any]:
    """How to call a ``make_layer`` taking ``params`` (``parameters``) to build a stage:
    ``{"by": "position", "roles": [...]}``, the handout's call (``handout``: its parameter
    names, whose roles give the order) when the parameters are the handout's roles in its
    order, or when their names say nothing and the handout's arguments fit;
    ``{"by": "name", "roles": {name: role}}`` when the names tell every required
    parameter's role (the others keep their defaults); else ``{"by": None, "unmapped":
    [names]}``, the required parameters nothing can be passed to."""
    want = [role(n) for n in handout]
    fixed = [p for p in params if p[1] not in ("VAR_POSITIONAL", "VAR_KEYWORD")]
    roles: dict[str, str] = {}
    unmapped = []
    for name, _, default in fixed:
        r = role(name)
        if r and r not in roles.values():
            roles[name] = r
        elif not default:
            unmapped.append(name)
    positional = [p for p in fixed if p[1] in ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")]
    required = [p for p in fixed if not p[2]]
    fits = len(required) <= len(want) <= len(positional) and all(p in positional for p in required)
    head = [roles.get(p[0]) for p in positional[: len(want)]]
    agrees = all(r in (None, w) for r, w in zip(head, want, strict=False))  # no name says otherwise
    if fits and agrees and (unmapped or head == want):
        return {"by": "position", "roles": want}
    if unmapped:
        return {"by": None, "unmapped": unmapped}
    return {"by": "name", "roles": roles}


def make_layer(
    model: Any,
    input_shape: list[int],
    call: Any,
    stages: list[str],
    recheck_blocks: int,
    names: list[str],
    signature: list[str],
) -> dict[str, Any]:
    """Facts about ``make_layer`` (looked up under each of ``names``): signature, how it
    is called (``call_plan``, ``signature`` being the handout's), stages, shapes,
    shortcuts, re-call; where the helper and the stages are when they are not where
    the handout puts them."""
    import torch
    from torch import nn

    found = next((n for n in names if callable(getattr(model, n, None))), None)
    fn = getattr(model, found) if found else None
    facts: dict[str, Any] = {
        "has_make_layer": callable(fn),
        "make_layer_name": found,
        "make_layer_module": str(getattr(fn, "__module__", "") or ""),
    }
    plan = None
    if callable(fn):
        params = parameters(fn)
        facts["signature"] = [p[0] for p in params] if params is not None else None
        plan = (
            call_plan(params, signature)
            if params is not None
            else {"by": "position", "roles": [role(n) for n in signature]}
        )
        facts["call"] = plan
    else:
        module = sys.modules.get(type(model).__module__)
        helper = next((n for n in names if inspect.isfunction(getattr(module, n, None))), None)
        if helper:
            try:
                line = inspect.getsourcelines(getattr(module, helper))[1]
            except (OSError, TypeError):
                line = None
            facts["module_helper"] = {"name": helper, "line": line}
    stage_facts: list[dict[str, Any]] = []
    shapes: dict[str, list[int] | None] = {}
    handles = []
    modules = {name: getattr(model, name, None) for name in stages}
    if not all(isinstance(m, nn.Module) for m in modules.values()):
        # the stages under other names (``conv2_x`` ... ``conv5_x``, the paper's): the model's
        # own attributes built of repeated blocks, taken in order when there are as many
        own = [(n, m) for n, m in model.named_children() if _is_stage(m)]
        if len(own) == len(stages):
            facts["stage_names"] = [n for n, _ in own]
            modules = {name: m for name, (_, m) in zip(stages, own, strict=True)}
    for name in stages:
        stage = modules[name]
        if not isinstance(stage, nn.Module):
            stage_facts.append({"name": name, "present": False})
            continue
        blocks = list(stage.children())
        first = blocks[0] if blocks else None
        stage_facts.append(
            {
                "name": name,
                "present": True,
                "type": type(stage).__name__,
                "blocks": len(blocks),
                "block_type": type(first).__name__ if first is not None else None,
                "first_block_strides": _conv_strides(first),
                "first_block_projection": _projection(first),
                "other_blocks_projection": [_projection(b) for b in blocks[1:]],
            }
        )
        handles.append(
            stage.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, _shape(o)))
        )
    model.eval()
    try:
        with torch.no_grad():
            call(model, probe_input(input_shape, batch=1))
    finally:
        for h in handles:
            h.remove()
    for stage in stage_facts:
        stage["output_shape"] = shapes.get(stage["name"])
    facts["stages"] = stage_facts
    if not all(s["present"] for s in stage_facts):
        facts["unnamed_stages"] = _stage_like(model)
    if callable(fn) and plan["by"] and stage_facts and stage_facts[-1].get("present"):
        facts["recall"] = _recall(
            model, fn, plan, stage_facts[-1], modules[stages[-1]], recheck_blocks, call
        )
    return facts


def _stage_like(model: Any) -> list[dict[str, Any]]:
    """nn.Sequential children made of repeated blocks (the stages of a model that
    keeps them unnamed, e.g. ``self.features = nn.Sequential(stem, make_layer(...), ...)``)."""

    found = []
    for name, m in model.named_modules():
        if name and _is_stage(m):
            blocks = list(m.children())
            found.append({"name": name, "blocks": len(blocks), "block_type": type(blocks[0]).__name__})
    return found[:8]


def _is_stage(module: Any) -> bool:
    """An ``nn.Sequential`` of blocks of one type, each holding a convolution."""
    from torch import nn

    blocks = list(module.children()) if isinstance(module, nn.Sequential) else []
    return (
        bool(blocks)
        and all(type(b) is type(blocks[0]) for b in blocks)
        and not isinstance(blocks[0], nn.Sequential)
        and any(isinstance(x, nn.Conv2d) for x in blocks[0].modules())
        and bool(list(blocks[0].children()))
    )


def _conv_strides(block: Any) -> list[int]:
    from torch import nn

    if block is None:
        return []
    return [m.stride[0] for m in block.modules() if isinstance(m, nn.Conv2d)]


def _projection(block: Any) -> dict[str, Any] | None:
    """A 1x1 convolution inside the block (the projection shortcut), if any."""
    from torch import nn

    if block is None:
        return None
    for name, m in block.named_modules():
        if isinstance(m, nn.Conv2d) and tuple(m.kernel_size) == (1, 1):
            return {"name": name, "stride": m.stride[0], "in": m.in_channels, "out": m.out_channels}
    return None


def recall_arguments(block: Any, channels: Any, blocks: int) -> dict[str, Any]:
    """What the re-call of ``make_layer`` passes for each role (``role``): the last stage's
    block type, its channels in and out, another block count, stride 1."""
    return {"block": block, "in_channels": channels, "channels": channels, "num_blocks": blocks, "stride": 1}


def _recall(
    model: Any, fn: Any, plan: dict[str, Any], last: dict[str, Any], stage: Any, blocks: int, call: Any
) -> dict[str, Any]:
    """Call make_layer again with another block count, from the last stage's state, as
    ``plan`` says: stride 1, the last stage's channels in and out."""
    import torch

    shape = last.get("output_shape")
    block_type = type(next(iter(stage.children()), None))
    if not shape or block_type is type(None):
        return {"error": "last stage has no blocks to imitate"}
    channels = shape[1]
    for attr in ("in_channels", "in_planes", "inplanes", "in_channel", "inchannel"):
        if isinstance(getattr(model, attr, None), int):
            setattr(model, attr, channels)
    value = recall_arguments(block_type, channels, blocks)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    if plan["by"] == "position":
        args = [value[r] for r in plan["roles"]]
    else:
        for name, r in plan["roles"].items():
            kwargs[name] = value[r]
        positional_only = [n for n, k, _ in parameters(fn) or [] if k == "POSITIONAL_ONLY"]
        args = [kwargs.pop(n) for n in positional_only if n in kwargs]
    try:
        built = call(fn, *args, **kwargs)
        n = len(list(built.children()))
        built.eval()
        with torch.no_grad():
            out = call(lambda m, x: m(x), built, torch.rand(1, *shape[1:]))
        return {"channels": channels, "num_blocks": blocks, "built_blocks": n, "output_shape": _shape(out)}
    except WorkerError as exc:
        return {
            "channels": channels,
            "num_blocks": blocks,
            "error": exc.message,
            "line": exc.details.get("line"),
        }
