"""Batched inference on the (label-free, secretly ordered) test images.

Speed comes from doing once what a handout's loop does per image: the split
arrives as one uint8 array (memory-mapped, no PIL, no DataLoader), is
normalised a batch at a time with two tensor ops, and runs under
``inference_mode`` in channels_last (1.2-1.7x on CPU; what cuDNN wants on a
GPU). On a GPU the whole split is copied once and stays resident, TF32 is on,
and logits come back in one transfer at the end. Evaluation stays fp32/TF32
rather than bf16: it is already far below a second on one GPU, and bf16
logits can flip near-tied predictions, so a grade would depend on the device.
On a CPU a batch holds 32 CIFAR-sized images per thread (fewer for larger
inputs): bigger batches are no faster there and only raise peak memory
(ResNet-18 at one thread: 660 MB at 32, 810 MB at 128; Gradescope allows 768).

torch and numpy are imported inside functions: the grader imports this module (through
``training``) and never loads torch, and the worker loads them only after its seccomp
filter, which binds only the threads started after it.
"""

from __future__ import annotations

import time
from typing import Any

from .errors import WorkerError
from .protocol import Failure

CPU_PIXELS_PER_THREAD = 32 * 32 * 32  # 32 CIFAR images per thread in a CPU batch


def configure(device: Any) -> None:
    """Backend switches for fast fp32 inference and training on ``device``."""
    import torch

    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def batch_size_for(requested: int, device: Any, height: int, width: int, threads: int) -> int:
    """The rubric's batch size, capped on CPU so activations stay small."""
    if device.type == "cuda":
        return max(1, requested)
    return max(1, min(requested, threads * CPU_PIXELS_PER_THREAD // max(1, height * width)))


def normalizer(mean: list[float], std: list[float], channels: int, device: Any):
    """uint8 (B, C, H, W) -> float32 ``(x / 255 - mean) / std`` as one multiply-add."""
    import torch

    m = torch.tensor(_per_channel(mean, channels), dtype=torch.float32, device=device).view(1, -1, 1, 1)
    s = torch.tensor(_per_channel(std, channels), dtype=torch.float32, device=device).view(1, -1, 1, 1)
    scale, shift = 1.0 / (255.0 * s), -m / s

    def normalize(chunk: Any) -> Any:
        return torch.addcmul(shift, chunk.float(), scale)

    return normalize


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
    if images.dtype != np.uint8 or images.ndim != 4:
        raise WorkerError(
            Failure.INPUT, f"images must be uint8 (N, C, H, W), got {images.dtype} {images.shape}"
        )
    n, channels = images.shape[0], images.shape[1]
    dev = torch.device(device)
    configure(dev)
    model.eval().to(dev)
    normalize = normalizer(mean, std, channels, dev)
    side = resize or images.shape[-1]
    batch = batch_size_for(batch_size, dev, side, side, torch.get_num_threads())
    # On a GPU the whole split fits: one copy, no per-batch transfers.
    source = torch.from_numpy(np.array(images)).to(dev) if dev.type == "cuda" else None
    layout = torch.channels_last if side >= 16 else torch.contiguous_format
    if layout is torch.channels_last:
        model.to(memory_format=layout)
    outputs: list[Any] = []
    start = time.perf_counter()
    with torch.inference_mode():
        for lo in range(0, n, batch):
            chunk = (
                source[lo : lo + batch]
                if source is not None
                else torch.from_numpy(np.array(images[lo : lo + batch]))  # a writable copy
            )
            x = normalize(chunk)
            if resize:
                x = F.interpolate(x, size=(resize, resize), mode="bilinear", align_corners=False)
            try:
                y = call(model, x.contiguous(memory_format=layout))
            except WorkerError:
                if layout is torch.contiguous_format or lo:
                    raise
                layout = torch.contiguous_format  # e.g. .view() on a non-contiguous tensor
                model.to(memory_format=layout)
                y = call(model, x.contiguous())
            outputs.append(_check_output(y, x.shape[0]).float())
    result_t = torch.cat(outputs).cpu()  # one device-to-host transfer (it synchronises)
    seconds = time.perf_counter() - start
    result = result_t.numpy().astype(np.float32, copy=False)
    np.save(out_path, result, allow_pickle=False)
    return {
        "shape": list(result.shape),
        "seconds": seconds,
        "layout": str(layout).split(".")[-1],
        "batch_size": batch,
        "threads": torch.get_num_threads(),
    }


def _check_output(y: Any, batch: int) -> Any:
    import torch

    if isinstance(y, (tuple, list)) and y:  # e.g. GoogLeNet returning auxiliary outputs
        y = y[0]
    if not isinstance(y, torch.Tensor) or y.dim() != 2 or y.shape[0] != batch:
        shape = list(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise WorkerError(
            Failure.OUTPUT,
            f"the model returned {shape} for a batch of {batch} images; expected (batch, classes)",
        )
    return y


def _per_channel(values: list[float], channels: int) -> list[float]:
    if len(values) == channels:
        return [float(v) for v in values]
    if len(values) == 1:
        return [float(values[0])] * channels
    if channels == 1 and len(values) == 3:  # RGB constants on a grey image: use their mean
        return [sum(values) / 3]
    raise WorkerError(
        Failure.PREPROCESS, f"normalisation has {len(values)} values for {channels}-channel images"
    )
