"""``forward``: the model maps a batch to (N, classes) finite logits, and a
sample's answer does not depend on the rest of its batch in eval mode."""

from __future__ import annotations

from typing import Any

from ..result import Outcome
from ..rubric import Item
from .common import ask_model, fmt_shape
from .context import Context
from .registry import allowed, check


def _validate(options: dict[str, Any]) -> dict[str, Any]:
    allowed("forward", {"tolerance"}, options)
    options.setdefault("tolerance", 1e-3)
    return options


@check("forward", timeout=60, validate=_validate, self_reported=True, measured=("output_shape",))
def run(item: Item, ctx: Context) -> Outcome:
    task, source, got = ask_model(item, ctx, "forward", "{model} forward pass")
    batch = 8
    want = [batch, task.num_classes]
    data = {k: got.get(k) for k in ("output_shape", "finite", "repeat_max_diff", "batch_vs_single_max_diff")}
    shape_in = fmt_shape([batch, *task.input_shape])
    if got.get("output_type") != "Tensor":
        return Outcome(
            False,
            f"{task.model} returned a {got.get('output_type')} for input "
            f"{shape_in}; it must return one tensor of logits",
            data=data,
        )
    if got.get("output_shape") != want:
        return Outcome(
            False,
            f"{task.model} maps input {shape_in} to {fmt_shape(got.get('output_shape'))}"
            f"; expected {fmt_shape(want)}",
            data=data,
        )
    if not got.get("finite"):
        return Outcome(False, f"{task.model} produced NaN or infinite outputs on a random input", data=data)
    repeat = got.get("repeat_max_diff")
    if repeat is not None and repeat > item.options["tolerance"]:
        return Outcome(
            False,
            f"{task.model} gives a different answer for the same input on a second call (max "
            f"difference {repeat:.3g}): in eval mode it must be deterministic (F.dropout needs "
            "training=self.training; random noise belongs in training only)",
            data=data,
        )
    diff = got.get("batch_vs_single_max_diff")
    if diff is None or diff > item.options["tolerance"]:
        return Outcome(
            False,
            f"{task.model} gives a different answer for an image alone than in a "
            f"batch (max difference {diff}); in eval mode it must not mix samples "
            "(check BatchNorm/normalisation over the batch dimension)",
            data=data,
        )
    return Outcome(
        True, f"input {shape_in} -> output {fmt_shape(want)}, finite, batch-independent", data=data
    )
