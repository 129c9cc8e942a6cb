"""Batched inference on the (label-free, secretly ordered) test images."""

from __future__ import annotations

import time
from typing import Any

from .errors import WorkerError


def logits(
    model: Any,
    images_path: str,
    out_path: str,
    mean: list[float],
    std: list[float],
    resize: int | None,
    batch_size: int,
    device: str,
    call: Any,
) -> dict[str, Any]:
    """Write float32 logits for every image to ``out_path`` (.npy)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    images = np.load(images_path, mmap_mode="r", allow_pickle=False)
    n = images.shape[0]
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    model.eval().to(dev)
    channels = images.shape[1]
    mean_t = torch.tensor(_per_channel(mean, channels), device=dev).view(1, -1, 1, 1)
    std_t = torch.tensor(_per_channel(std, channels), device=dev).view(1, -1, 1, 1)
    # On a GPU the whole split fits: one copy, no per-batch transfers.
    source = torch.from_numpy(np.ascontiguousarray(images)).to(dev) if dev.type == "cuda" else None
    layout = torch.channels_last if images.shape[-1] >= 16 else torch.contiguous_format
    outputs: list[Any] = []
    start = time.perf_counter()
    with torch.inference_mode():
        for lo in range(0, n, batch_size):
            chunk = (
                source[lo : lo + batch_size]
                if source is not None
                else torch.from_numpy(np.asarray(images[lo : lo + batch_size]))
            )
            x = chunk.to(dev).float().div_(255.0).sub_(mean_t).div_(std_t)
            if resize:
                x = F.interpolate(x, size=(resize, resize), mode="bilinear", align_corners=False)
            if layout is torch.channels_last:
                try:
                    y = call(model.to(memory_format=layout), x.contiguous(memory_format=layout))
                except WorkerError:
                    layout = torch.contiguous_format  # e.g. .view() on a non-contiguous tensor
                    y = call(model.to(memory_format=layout), x)
            else:
                y = call(model, x)
            if isinstance(y, (tuple, list)):  # e.g. GoogLeNet returning auxiliary outputs
                y = y[0]
            if not isinstance(y, torch.Tensor) or y.dim() != 2 or y.shape[0] != x.shape[0]:
                shape = list(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
                raise WorkerError(
                    "output",
                    f"the model returned {shape} for a batch of "
                    f"{x.shape[0]} images; expected (batch, classes)",
                )
            outputs.append(y.float().cpu())
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    result = torch.cat(outputs).numpy().astype(np.float32, copy=False)
    np.save(out_path, result, allow_pickle=False)
    return {"shape": list(result.shape), "seconds": seconds, "layout": str(layout).split(".")[-1]}


def _per_channel(values: list[float], channels: int) -> list[float]:
    if len(values) == channels:
        return [float(v) for v in values]
    if len(values) == 1:
        return [float(values[0])] * channels
    if channels == 1 and len(values) == 3:  # RGB constants on a grey image: use their mean
        return [sum(values) / 3]
    raise WorkerError("preprocess", f"normalisation has {len(values)} values for {channels}-channel images")
