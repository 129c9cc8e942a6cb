"""``make_layer``: the ResNet's stages really come from ``make_layer``.

Verified from behaviour, not names: block counts per stage, output shapes on
a probe input (channels, and spatial size halving where the stride is 2), a
1x1 projection shortcut exactly where the shape changes, and a second call
with another ``num_blocks`` that must build that many blocks (catches a
hard-coded layer).
"""

from __future__ import annotations

from typing import Any

from ..result import Outcome
from ..rubric import Item
from ..sandbox.worker.introspect import recall_arguments, role
from .common import ask_model, fmt_shape
from .context import Context
from .registry import allowed, check

KEYS = {"stages", "blocks", "channels", "strides", "signature", "recheck_blocks", "names"}
# Spellings of the handout's helper accepted everywhere (the most-copied CIFAR
# ResNet-18 calls it ``_make_layer``); a rubric adds its own with ``names``.
NAMES = ["make_layer", "_make_layer", "make_layers", "_make_layers"]
LIBRARIES = {"torch", "torchvision", "timm"}  # a model taken whole from one of these


def _validate(options: dict[str, Any]) -> dict[str, Any]:
    allowed("make_layer", KEYS, options)
    options.setdefault("stages", ["layer1", "layer2", "layer3", "layer4"])
    options.setdefault("blocks", [2, 2, 2, 2])
    options.setdefault("channels", [64, 128, 256, 512])
    options.setdefault("strides", [1, 2, 2, 2])
    signature = options.setdefault("signature", ["block", "channels", "num_blocks", "stride"])
    listed = isinstance(signature, list) and all(isinstance(n, str) for n in signature)
    roles = [role(n) for n in signature] if listed else [None]
    if None in roles or len(set(roles)) != len(roles):
        raise ValueError(
            "make_layer: signature must name the handout's parameters, each one of a block type "
            "(block), input channels (in_channels), output channels (channels), a block count "
            '(num_blocks) or a stride (stride), e.g. ["block", "channels", "num_blocks", "stride"]'
        )
    options.setdefault("recheck_blocks", 3)
    names = options.setdefault("names", [])
    if not isinstance(names, list) or not all(isinstance(n, str) and n.isidentifier() for n in names):
        raise ValueError('make_layer: names must be a list of method names, e.g. ["build_stage"]')
    options["names"] = list(dict.fromkeys([*NAMES, *names]))
    n = len(options["stages"])
    if any(len(options[k]) != n for k in ("blocks", "channels", "strides")):
        raise ValueError("make_layer: stages, blocks, channels and strides need the same length")
    return options


@check("make_layer", timeout=120, validate=_validate, self_reported=True)
def run(item: Item, ctx: Context) -> Outcome:
    o = item.options
    task, source, facts = ask_model(
        item,
        ctx,
        "make_layer",
        "inspecting {model}.make_layer",
        stages=o["stages"],
        recheck_blocks=o["recheck_blocks"],
        names=o["names"],
        signature=o["signature"],
    )
    problems: list[str] = []
    lines: list[str] = []
    helper = str(facts.get("make_layer_name") or "make_layer")
    plan = facts.get("call") if isinstance(facts.get("call"), dict) else {}
    if not facts.get("has_make_layer"):
        elsewhere = facts.get("module_helper")
        if isinstance(elsewhere, dict):
            problems.append(
                f"{task.model} has no make_layer method: {elsewhere.get('name')} is a function at "
                f"{source.where(elsewhere.get('line'))}, outside the class (the handout makes it a method)"
            )
        else:
            problems.append(f"{task.model} has no make_layer method (looked for {', '.join(o['names'])})")
    elif str(facts.get("make_layer_module")).split(".")[0] in LIBRARIES:
        problems.append(
            f"{task.model}.{helper} is the library's own ({facts['make_layer_module']}), "
            "not written in the submission: the handout asks you to write make_layer"
        )
    else:
        if helper != "make_layer":
            lines.append(f"note: found make_layer as {task.model}.{helper}")
        params = [str(p) for p in (facts.get("signature") or []) if p != "self"]
        want = o["signature"]
        unmapped = plan.get("unmapped") or []
        if not plan.get("by"):
            problems.append(
                f"{helper} takes ({', '.join(params)}): the grader cannot tell what to pass for "
                f"{', '.join(map(str, unmapped))}: name them like the handout's "
                f"({', '.join(want)}); in_channels and out_channels are understood too"
            )
        elif len(params) != len(want) or plan.get("by") == "name":
            lines.append(
                f"note: {helper} takes ({', '.join(params)}), not the handout's ({', '.join(want)}): "
                "called with its parameters by name"
            )
        elif params != want:
            lines.append(
                f"note: {helper}'s parameters are named ({', '.join(params)}); the "
                f"handout uses ({', '.join(want)})"
            )
    stages = facts.get("stages") or []
    names = _stage_names(facts.get("stage_names"), o["stages"])
    if names != o["stages"]:
        lines.append(
            f"note: the stages are {task.model}.{', '.join(names)} (the handout names them "
            f"{', '.join(o['stages'])}): graded in that order"
        )
    missing = [o["stages"][k] for k, stage in enumerate(stages) if not stage.get("present")]
    if missing:
        unnamed = facts.get("unnamed_stages") or []
        where = (
            "; its stages seem to be "
            + ", ".join(f"{u['name']} ({u['blocks']} x {u['block_type']})" for u in unnamed)
            if unnamed
            else ""
        )
        problems.append(
            f"{task.model} has no {', '.join(missing)} attribute{'s' if len(missing) > 1 else ''}{where}"
        )
    prev_hw = None
    for k, stage in enumerate(stages):
        name = names[k]
        if not stage.get("present"):
            continue
        shape = stage.get("output_shape") or []
        blocks, channels, stride = o["blocks"][k], o["channels"][k], o["strides"][k]
        lines.append(
            f"{name}: {stage['blocks']} x {stage.get('block_type')}, output "
            f"{fmt_shape(shape)}, projection {'yes' if stage.get('first_block_projection') else 'no'}"
        )
        if stage["blocks"] != blocks:
            problems.append(f"{name} has {stage['blocks']} blocks; expected {blocks}")
        if len(shape) != 4 or shape[1] != channels:
            problems.append(f"{name} outputs {fmt_shape(shape)}; expected {channels} channels")
        elif prev_hw is not None and shape[2] * stride != prev_hw:
            problems.append(
                f"{name} turns {prev_hw}x{prev_hw} into {shape[2]}x{shape[3]}; with "
                f"stride {stride} it should give {prev_hw // stride}x{prev_hw // stride}"
            )
        if len(shape) == 4:
            prev_hw = shape[2]
        projection = stage.get("first_block_projection")
        needs = stride != 1 or (k > 0 and o["channels"][k - 1] != channels)
        if needs and not projection:
            problems.append(
                f"the first block of {name} has no 1x1 projection shortcut (needed: its shape changes)"
            )
        elif needs and projection and projection.get("stride") != stride:
            problems.append(
                f"the shortcut of {name} has stride {projection.get('stride')}; expected {stride}"
            )
        if any(stage.get("other_blocks_projection") or []):
            problems.append(f"{name}: only the first block should have a projection shortcut")
    recall = facts.get("recall")
    if isinstance(recall, dict):
        block = stages[-1].get("block_type") if stages else None
        called = _called(helper, plan, o["signature"], block, recall.get("channels"), o["recheck_blocks"])
        if "error" in recall:
            problems.append(f"calling {called} failed: {recall['error']}")
        else:
            lines.append(f"{called} built {recall['built_blocks']} blocks")
            if recall["built_blocks"] != o["recheck_blocks"]:
                roles = plan.get("roles")
                counted = not isinstance(roles, dict) or "num_blocks" in roles.values()
                why = "num_blocks seems to be ignored" if counted else f"{helper} takes no number of blocks"
                problems.append(
                    f"{called} built {recall['built_blocks']} blocks instead of {o['recheck_blocks']}: {why}"
                )
    data = {
        "stages": stages,
        "recall": recall,
        "signature": facts.get("signature"),
        "call": plan,
        "make_layer_name": helper,
    }
    details = "\n".join(lines + [f"✗ {p}" for p in problems])
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return Outcome(False, f"{problems[0]}{more}", details, data)
    return Outcome(
        True,
        f"{helper if helper == 'make_layer' else f'make_layer (as {helper})'} builds "
        f"{', '.join(names)} with "
        f"{'/'.join(map(str, o['blocks']))} blocks, the right strides and shortcuts"
        + (f" (the handout's {', '.join(o['stages'])})" if names != o["stages"] else ""),
        details,
        data,
    )


def _stage_names(found: Any, wanted: list[str]) -> list[str]:
    """The model's names for the rubric's stages where the worker found them under other
    names (one per stage, in order), else the rubric's."""
    if isinstance(found, list) and len(found) == len(wanted) and all(isinstance(n, str) for n in found):
        return [n[:60] for n in found]
    return wanted


def _called(
    helper: str, plan: dict[str, Any], handout: list[str], block: Any, channels: Any, blocks: int
) -> str:
    """The re-call as the student reads it: ``make_layer(block, 512, 3, 1)`` in the handout's
    order, ``make_layer(block=BasicBlock, in_channels=512, ...)`` by name."""
    roles = plan.get("roles")
    if plan.get("by") == "name" and isinstance(roles, dict):
        shown = recall_arguments(block, channels, blocks)
        return f"{helper}({', '.join(f'{n}={shown[r]}' for n, r in roles.items())})"
    shown = recall_arguments("block", channels, blocks)
    return f"{helper}({', '.join(str(shown[role(n)]) for n in handout)})"
