"""The ``retrain`` recipe: the student's architecture trained from scratch,
fast and the same for every submission.

Recipe (after Keller Jordan's ResNet-18 baselines and airbench): the whole
training split lives on the device as uint8 and each batch is normalised,
reflect-padded by 4, randomly cropped back and randomly flipped there (no
DataLoader, no PIL); channels_last; bf16 autocast on a GPU (fp32 on a CPU,
where bf16 is many times slower); Nesterov SGD (momentum 0.9, weight decay
5e-4) under a one-cycle schedule that rises linearly from lr/5 to lr over the
first 20% of steps and falls linearly to 0; cross-entropy with label
smoothing 0.2; a fixed seed. A few timed probe steps first give an up-front
estimate, and a model that would overrun the rubric's budget is refused
before any real training starts.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import dataclass
from typing import Any

from . import evaluate
from .errors import WorkerError

WARMUP = 0.2  # fraction of steps spent rising to the peak learning rate
LABEL_SMOOTHING = 0.2
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
PAD = 4
CPU_PROBE_BATCH = 64  # probe steps on a CPU use at most this many images
OVERRUN = 1.1  # stop once the projected end passes the budget by this factor


@dataclass(frozen=True)
class Recipe:
    epochs: int
    batch_size: int
    lr: float
    budget: float  # seconds of training allowed
    seed: int


def fmt_seconds(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def one_cycle(total: int):
    """Learning-rate factor per step: linear from 1/5 to 1 over the first 20% of steps, then
    linear to 0 at the end (any ``total`` >= 1; torch's OneCycleLR fails on a handful of steps)."""
    warm = max(1, round(WARMUP * total))

    def factor(step: int) -> float:
        if step < warm:
            return 0.2 + 0.8 * step / warm
        return max(0.0, (total - step) / max(1, total - warm))

    return factor


class Trainer:
    """One training run: data on the device, augmentation, the step, the estimate."""

    def __init__(
        self,
        model: Any,
        images: Any,  # numpy uint8 (N, C, H, W), memory-mapped
        labels: Any,  # numpy int64 (N,)
        num_classes: int,
        mean: list[float],
        std: list[float],
        resize: int | None,
        recipe: Recipe,
        device: str,
        call: Any,
    ) -> None:
        import numpy as np
        import torch

        self.torch = torch
        self.dev = torch.device(device)
        evaluate.configure(self.dev)
        self.recipe, self.call, self.resize = recipe, call, resize
        self.n = len(labels)
        if self.n == 0 or len(images) != self.n:
            raise WorkerError("data", f"training split has {len(images)} images and {self.n} labels")
        if labels.min() < 0 or labels.max() >= num_classes:
            raise WorkerError("data", f"training labels lie outside 0..{num_classes - 1}")
        self.batch = min(recipe.batch_size, self.n)
        self.steps_per_epoch = -(-self.n // self.batch)  # every image once; the last batch wraps round
        self.generator = torch.Generator(device=self.dev).manual_seed(recipe.seed)
        if self.dev.type == "cuda":  # resident on the GPU: ~150 MB for CIFAR-10's 50,000 images
            self.images = torch.from_numpy(np.array(images)).to(self.dev)
            self.labels = torch.from_numpy(np.array(labels)).to(self.dev)
        else:  # a CPU indexes the memory map per batch
            self.images, self.labels = images, torch.from_numpy(np.array(labels))
        self.normalize = evaluate.normalizer(mean, std, images.shape[1], self.dev)
        side = resize or images.shape[-1]
        self.layout = torch.channels_last if side >= 16 else torch.contiguous_format
        self.model = model.to(self.dev).to(memory_format=self.layout)
        self.loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING)

    # --- data ------------------------------------------------------------
    def fetch(self, index: Any) -> tuple[Any, Any]:
        """Normalised, augmented images and labels for ``index`` (a device tensor)."""
        torch = self.torch
        if self.dev.type == "cuda":
            raw, y = self.images[index], self.labels[index]
        else:
            order = index.sort().values  # sequential reads from the memory map
            raw = torch.from_numpy(self.images[order.numpy()])
            y = self.labels[order]
        return self.augment(self.normalize(raw)), y

    def augment(self, x: Any) -> Any:
        """Random crop after a reflect pad of 4 and a random horizontal flip, on the device."""
        torch = self.torch
        b, c, h, w = x.shape
        padded = torch.nn.functional.pad(x, (PAD,) * 4, mode="reflect")
        dy = torch.randint(0, 2 * PAD + 1, (b,), device=self.dev, generator=self.generator)
        dx = torch.randint(0, 2 * PAD + 1, (b,), device=self.dev, generator=self.generator)
        windows = padded.unfold(2, h, 1).unfold(3, w, 1)  # (b, c, 2*PAD+1, 2*PAD+1, h, w), a view
        x = windows[torch.arange(b, device=self.dev), :, dy, dx]
        flip = torch.rand(b, device=self.dev, generator=self.generator) < 0.5
        x = torch.where(flip.view(b, 1, 1, 1), x.flip(3), x)
        if self.resize:
            x = torch.nn.functional.interpolate(
                x, size=(self.resize,) * 2, mode="bilinear", align_corners=False
            )
        return x.contiguous(memory_format=self.layout)

    def epoch_order(self) -> Any:
        """A random permutation, topped up from a second one so every batch is full:
        one input shape (one cuDNN autotune), and no batch of 1 for BatchNorm."""
        torch = self.torch
        first = torch.randperm(self.n, device=self.dev, generator=self.generator)
        extra = self.steps_per_epoch * self.batch - self.n
        if not extra:
            return first
        return torch.cat([first, torch.randperm(self.n, device=self.dev, generator=self.generator)[:extra]])

    # --- one step --------------------------------------------------------
    def step(self, optimizer: Any, index: Any) -> tuple[Any, Any]:
        """Forward, backward, update; returns the loss and correct count as device tensors."""
        torch = self.torch
        x, y = self.fetch(index)
        with torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.dev.type == "cuda"):
            out = self.call(self.model, x)
        if isinstance(out, (tuple, list)) and out:  # auxiliary heads: train the main one
            out = out[0]
        if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != x.shape[0]:
            shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise WorkerError("output", f"in training the model returned {shape}; expected (batch, classes)")
        loss = self.loss_fn(out.float(), y)
        optimizer.zero_grad(set_to_none=True)
        self.call(loss.backward)
        optimizer.step()
        return loss.detach(), (out.detach().argmax(1) == y).sum()

    def optimizer(self, lr: float) -> Any:
        return self.torch.optim.SGD(
            self.model.parameters(), lr=lr, momentum=MOMENTUM, nesterov=True, weight_decay=WEIGHT_DECAY
        )

    def sync(self) -> None:
        if self.dev.type == "cuda":
            self.torch.cuda.synchronize()

    # --- estimate --------------------------------------------------------
    def probe(self) -> float:
        """Seconds per training image, from timed steps on a throwaway copy of the state."""
        torch = self.torch
        saved = copy.deepcopy(self.model.state_dict())
        size = self.batch if self.dev.type == "cuda" else min(self.batch, CPU_PROBE_BATCH)
        optimizer = self.optimizer(self.recipe.lr / 10)
        self.model.train()
        try:
            index = torch.randperm(self.n, device=self.dev, generator=self.generator)[:size]
            try:
                self.step(optimizer, index)  # warm-up: allocations, cuDNN autotune
            except WorkerError:
                if self.layout is torch.contiguous_format:
                    raise
                self.layout = torch.contiguous_format  # e.g. .view() on a channels_last tensor
                self.model.to(memory_format=self.layout)
                self.step(optimizer, index)
            self.sync()
            start = time.perf_counter()
            for _ in range(2):
                self.step(optimizer, index)
            self.sync()
            return (time.perf_counter() - start) / (2 * size)
        finally:
            self.model.load_state_dict(saved)

    # --- the run ---------------------------------------------------------
    def fit(self, progress: Any) -> list[dict[str, Any]]:
        """Train for the recipe's epochs; one history row per epoch."""
        torch = self.torch
        r = self.recipe
        total = self.steps_per_epoch * r.epochs
        optimizer = self.optimizer(r.lr)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, one_cycle(total))
        history: list[dict[str, Any]] = []
        start = time.perf_counter()
        self.model.train()
        for epoch in range(1, r.epochs + 1):
            order = self.epoch_order()
            loss_sum = torch.zeros((), device=self.dev)
            correct = torch.zeros((), device=self.dev, dtype=torch.long)
            for k in range(self.steps_per_epoch):
                loss, hits = self.step(optimizer, order[k * self.batch : (k + 1) * self.batch])
                schedule.step()
                loss_sum += loss
                correct += hits
                progress(epoch, k + 1, self.steps_per_epoch, time.perf_counter() - start)
            seen = self.steps_per_epoch * self.batch
            mean_loss = float(loss_sum) / self.steps_per_epoch  # one sync per epoch
            elapsed = time.perf_counter() - start
            history.append(
                {
                    "epoch": epoch,
                    "loss": round(mean_loss, 4),
                    "train_accuracy": round(int(correct) / seen, 4),
                    "seconds": round(elapsed, 2),
                }
            )
            if not math.isfinite(mean_loss):
                raise WorkerError(
                    "diverged", f"training diverged: the loss became {mean_loss} in epoch {epoch}"
                )
            projected = elapsed / epoch * r.epochs
            if epoch < r.epochs and projected > r.budget * OVERRUN:
                raise WorkerError(
                    "budget",
                    f"stopped after epoch {epoch} of {r.epochs}: {fmt_seconds(elapsed)} so far, "
                    f"about {fmt_seconds(projected)} in all, over the {fmt_seconds(r.budget)} budget",
                    history=history,
                )
        self.model.eval()
        return history


class Progress:
    """Writes ``progress_<task>.json`` in the output folder about once a second."""

    def __init__(self, path: str, epochs: int) -> None:
        self.path, self.epochs, self.last = path, epochs, 0.0

    def __call__(self, epoch: int, step: int, steps: int, seconds: float, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < 1.0 and step != steps:
            return
        self.last = now
        tmp = self.path + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(
                {"epoch": epoch, "epochs": self.epochs, "step": step, "steps": steps, "seconds": seconds},
                handle,
            )
        os.replace(tmp, self.path)


def train(
    model: Any,
    train_images: str,
    train_labels: str,
    test_images: str,
    out_dir: str,
    out_name: str,
    num_classes: int,
    mean: list[float],
    std: list[float],
    resize: int | None,
    recipe: Recipe,
    device: str,
    call: Any,
    progress_name: str,
) -> dict[str, Any]:
    """Estimate, refuse or train, then write test-split logits; the grader scores them."""
    import numpy as np
    import torch

    images = np.load(train_images, mmap_mode="r", allow_pickle=False)
    labels = np.load(train_labels, allow_pickle=False)
    if images.dtype != np.uint8 or images.ndim != 4 or labels.dtype != np.int64 or labels.ndim != 1:
        raise WorkerError("data", "training split must be uint8 (N, C, H, W) images and int64 labels")
    trainer = Trainer(model, images, labels, num_classes, mean, std, resize, recipe, device, call)
    per_image = trainer.probe()
    estimate = per_image * trainer.steps_per_epoch * trainer.batch * recipe.epochs
    where = f"{device} ({torch.get_num_threads()} threads)" if device == "cpu" else device
    plan = {
        "estimate_seconds": round(estimate, 2),
        "probe_images_per_second": round(1.0 / per_image, 1),
        "device": where,
        "images": trainer.n,
        "batch_size": trainer.batch,
        "layout": str(trainer.layout).split(".")[-1],
    }
    if estimate > recipe.budget:
        raise WorkerError(
            "budget",
            f"retraining would take about {fmt_seconds(estimate)} on {where} "
            f"({1.0 / per_image:,.0f} images/s × {recipe.epochs} epochs of "
            f"{trainer.n:,} images), more than the "
            f"{fmt_seconds(recipe.budget)} budget",
            **plan,
        )
    progress = Progress(os.path.join(out_dir, progress_name), recipe.epochs)
    start = time.perf_counter()
    history = trainer.fit(progress)
    trainer.sync()
    seconds = time.perf_counter() - start
    path = os.path.join(out_dir, out_name)
    evaluated = evaluate.logits(trainer.model, test_images, path, mean, std, resize, 1000, device, call)
    return {
        **plan,
        "train_seconds": round(seconds, 2),
        "eval_seconds": round(evaluated["seconds"], 3),
        "history": history,
        "array": out_name,
    }
