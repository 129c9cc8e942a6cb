"""The ``retrain`` recipe: the student's architecture trained from scratch,
fast and the same for every submission, readable in one sitting.

Every constant of the recipe is in the block below; ``describe`` turns them
into the text the report and ``docs/rubrics.md`` show, so the two cannot
drift. The choices (measured in ``docs/benchmarks.md``; the reasoning follows
public fast-CIFAR work: David Page's "How to train your ResNet", Keller
Jordan's airbench and ResNet-18 speedruns):

- data: the whole training split on the device as uint8; each batch is
  normalised, reflect-padded by 4, randomly cropped back and (unless the
  dataset's mirror images change labels, as digits' do) flipped there
  (no DataLoader, no PIL); channels_last; bf16 autocast on a GPU (fp32 on a
  CPU, where bf16 is many times slower);
- optimiser, chosen by the architecture: a network with normalisation layers
  (BatchNorm, GroupNorm, LayerNorm, ...) trains with Nesterov SGD whose peak
  rate is the rubric's ``lr`` for a batch of ``REFERENCE_BATCH``, scaled
  linearly for other batch sizes; a network without any trains with AdamW at
  ``ADAMW_SHARE`` × ``lr``. Without normalisation, SGD's steps follow the
  gradients' scale, which saturated sigmoids and deep plain stacks make tiny
  (the lecture's LeNet, AlexNet and GoogLeNet sat at or near chance after a
  short SGD run on real MNIST digits); Adam's steps have the size of the
  rate whatever that scale. Weight decay on convolution and linear weights
  only (decaying BatchNorm scales and biases only slows a short run),
  decoupled for AdamW (Adam's own L2 decay would outweigh tiny gradients);
- schedule: a linear warm-up from ``WARMUP_FROM`` × the peak over the first
  ``WARMUP`` of the steps, then linear decay to 0 — the start is where a
  network without normalisation in front of a wide linear layer (the
  handout SimpleCNN's 4,096 → 10) blows up at a full rate;
- the gradient's global norm is clipped to ``CLIP``: a bad batch moves the
  weights a bounded distance, whatever the architecture;
- cross-entropy with label smoothing ``LABEL_SMOOTHING``;
- divergence: a non-finite loss (checked about once a second), an epoch
  worse than guessing (training accuracy ≤ ``STUCK_ACCURACY`` × chance and
  loss ≥ ``BLOWN_LOSS`` × ln(classes), or × the first batch's loss when a fresh
  network starts above ln(classes)), or a last epoch still at chance
  (loss ≥ ``STUCK_LOSS`` × ln(classes)) restarts once from the same initial
  weights: an SGD run that never left chance (and never blew up) with AdamW,
  for the reason above; any other failed run at ``RETRY_FACTOR`` × its rate.
  A second failure is the grader's failure, reported as such, never the
  student's accuracy. "Still at chance" is judged at the end, not after
  epoch 1: a slow start is no reason to restart;
- time: a few timed probe steps give an estimate up front (and the text says
  how it was made); a model that would overrun the rubric's budget is refused
  before training, and a run that falls behind its estimate (a busy machine)
  stops as soon as the budget is spent, saying so.

torch and numpy are imported inside functions: the grader imports this module (the recipe's
constants and text) and never loads torch, and the worker loads them only after its seccomp
filter, which binds only the threads started after it.
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
from .protocol import Failure

# --- the recipe's constants (one place; describe() writes them out) -------
DEFAULTS = {"epochs": 10, "batch_size": 512, "lr": 0.2, "budget": 60.0, "seed": 0}  # rubric options
REFERENCE_BATCH = 512  # the rubric's lr is the peak rate for this batch size
MOMENTUM = 0.9  # Nesterov
WEIGHT_DECAY = 5e-4  # convolution and linear weights only
WARMUP = 0.2  # fraction of the steps spent rising to the peak rate
WARMUP_FROM = 0.05  # the rise starts at this fraction of the peak
CLIP = 2.0  # the gradients' global norm is clipped to this
LABEL_SMOOTHING = 0.1
PAD = 4  # reflect padding before the random crop
RETRY_FACTOR = 0.25  # a run that blew up restarts once at this fraction of the rate
ADAMW_SHARE = 0.05  # AdamW's peak rate is this × the rubric's lr (0.01 by default), at any batch size
STUCK_ACCURACY = 1.5  # an epoch at training accuracy <= this × chance has failed if ...
BLOWN_LOSS = 1.1  # ... its loss is >= this × ln(classes) (worse than guessing), or if ...
STUCK_LOSS = 0.95  # ... it is the last epoch and its loss is still >= this × ln(classes)
# --- how the run is timed ---------------------------------------------------
PROBE_STEPS = 2  # timed steps (after one untimed warm-up step)
CPU_PROBE_SECONDS = 20.0  # on a CPU, probe at the full batch only if 3 steps fit in this
CPU_PROBE_BATCH = 64  # else probe at this batch and extrapolate
OVERRUN = 1.1  # stop once training has spent this × the budget


@dataclass(frozen=True)
class Recipe:
    epochs: int
    batch_size: int
    lr: float  # peak rate for a batch of REFERENCE_BATCH
    budget: float  # seconds of training allowed
    seed: int
    flip: bool = True  # random left-right flips (the grader's: False where mirror images change labels)


def describe(recipe: Recipe | dict[str, Any], batch: int | None = None) -> str:
    """The recipe in one line, from the constants above and the rubric's options."""
    r = recipe if isinstance(recipe, dict) else recipe.__dict__
    batch = batch or r["batch_size"]
    peak = r["lr"] * batch / REFERENCE_BATCH
    flip = " + flip" if r.get("flip", True) else ""
    return (
        f"{r['epochs']} epochs, batch {batch}; with normalisation layers Nesterov SGD (momentum "
        f"{MOMENTUM:g}) at a peak rate of {peak:.4g} (lr {r['lr']:g} per {REFERENCE_BATCH} images), "
        f"without them AdamW at {ADAMW_SHARE * r['lr']:.4g}; warm-up from {WARMUP_FROM:g}× over the "
        f"first {WARMUP:.0%} of the steps then linear decay to 0, weight decay {WEIGHT_DECAY:g} on "
        f"weights (not BatchNorm or biases), gradient norm clipped to {CLIP:g}, label smoothing "
        f"{LABEL_SMOOTHING:g}, random crop (pad {PAD}){flip}, seed {r['seed']}; an SGD run still at "
        f"chance at its end restarts once with AdamW, any other failed run once at {RETRY_FACTOR:g}× "
        "its rate"
    )


def fmt_seconds(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.2g} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def one_cycle(total: int):
    """Learning-rate factor per step: linear from WARMUP_FROM to 1 over the first WARMUP of the
    steps, then linear to 0 at the end (any ``total`` >= 1; torch's OneCycleLR fails on a handful)."""
    warm = max(1, round(WARMUP * total))

    def factor(step: int) -> float:
        if step < warm:
            return WARMUP_FROM + (1 - WARMUP_FROM) * step / warm
        return max(0.0, (total - step) / max(1, total - warm))

    return factor


class Diverged(Exception):
    """One attempt failed to train; the caller may retry. ``stalled``: it never blew up
    (finite, never worse than guessing) but ended still at chance. Worker side and never
    sent: ``train`` answers a last failed attempt as ``Failure.DIVERGED``."""

    def __init__(self, reason: str, history: list[dict[str, Any]], stalled: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.history, self.stalled = reason, history, stalled


@dataclass(frozen=True)
class Attempt:
    """How one run trains: the optimiser and its peak rate."""

    lr: float
    adam: bool = False

    def __str__(self) -> str:
        return f"with AdamW at peak rate {self.lr:.4g}" if self.adam else f"at peak rate {self.lr:.4g}"


class Trainer:
    """One model's training: data on the device, augmentation, the step, the probe, the runs."""

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
        self.recipe, self.call, self.resize, self.classes = recipe, call, resize, num_classes
        self.mean, self.std = mean, std
        self.n = len(labels)
        if self.n == 0 or len(images) != self.n:
            raise WorkerError(Failure.DATA, f"training split has {len(images)} images and {self.n} labels")
        if labels.min() < 0 or labels.max() >= num_classes:
            raise WorkerError(Failure.DATA, f"training labels lie outside 0..{num_classes - 1}")
        self.batch = min(recipe.batch_size, self.n)
        self.peak = recipe.lr * self.batch / REFERENCE_BATCH
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
        self.initial = copy.deepcopy(self.model.state_dict())  # a restart begins here again
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        nn = torch.nn
        rms = getattr(nn, "RMSNorm", nn.LayerNorm)  # torch >= 2.4
        norms = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, rms)  # Batch-, InstanceNorm
        self.normalised = any(isinstance(m, norms) for m in self.model.modules())
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
        """Random crop after a reflect pad of PAD and, if the recipe flips, a random horizontal
        flip, on the device."""
        torch = self.torch
        b, c, h, w = x.shape
        padded = torch.nn.functional.pad(x, (PAD,) * 4, mode="reflect")
        dy = torch.randint(0, 2 * PAD + 1, (b,), device=self.dev, generator=self.generator)
        dx = torch.randint(0, 2 * PAD + 1, (b,), device=self.dev, generator=self.generator)
        windows = padded.unfold(2, h, 1).unfold(3, w, 1)  # (b, c, 2*PAD+1, 2*PAD+1, h, w), a view
        x = windows[torch.arange(b, device=self.dev), :, dy, dx]
        if self.recipe.flip:
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
        """Forward, backward, clip, update; returns the loss and correct count as device tensors."""
        torch = self.torch
        x, y = self.fetch(index)
        with torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.dev.type == "cuda"):
            out = self.call(self.model, x)
        if isinstance(out, (tuple, list)) and out:  # auxiliary heads: train the main one
            out = out[0]
        if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != x.shape[0]:
            shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise WorkerError(
                Failure.OUTPUT, f"in training the model returned {shape}; expected (batch, classes)"
            )
        loss = self.loss_fn(out.float(), y)
        optimizer.zero_grad(set_to_none=True)
        self.call(loss.backward)
        torch.nn.utils.clip_grad_norm_(self.params, CLIP, foreach=self.dev.type == "cuda" or None)
        optimizer.step()
        return loss.detach(), (out.detach().argmax(1) == y).sum()

    def optimizer(self, attempt: Attempt) -> Any:
        """Nesterov SGD or AdamW, as ``attempt`` says; weight decay on matrices and
        kernels, none on BatchNorm and biases. AdamW's decay is decoupled: Adam's own (L2 in the
        gradient) would outweigh a saturated network's tiny gradients and pull it to zero."""
        decay = [p for p in self.params if p.ndim > 1]
        rest = [p for p in self.params if p.ndim <= 1]
        groups = [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": rest, "weight_decay": 0.0}]
        groups = [g for g in groups if g["params"]]
        if attempt.adam:
            return self.torch.optim.AdamW(groups, lr=attempt.lr)
        return self.torch.optim.SGD(groups, lr=attempt.lr, momentum=MOMENTUM, nesterov=True)

    def first_attempt(self) -> Attempt:
        """SGD for a network with normalisation layers, AdamW for one without."""
        if self.normalised:
            return Attempt(self.peak)
        return Attempt(ADAMW_SHARE * self.recipe.lr, adam=True)

    def sync(self) -> None:
        if self.dev.type == "cuda":
            self.torch.cuda.synchronize()

    # --- estimate --------------------------------------------------------
    def probe(self) -> dict[str, Any]:
        """Time a few steps on a throwaway copy of the state; says how it was measured.

        On a GPU the probe runs at the training batch. On a CPU it first runs at
        CPU_PROBE_BATCH and moves to the training batch only when three such steps
        would fit in CPU_PROBE_SECONDS (ResNet-18 on two cores would not)."""
        saved = copy.deepcopy(self.model.state_dict())
        optimizer = self.optimizer(Attempt(self.peak / 10))
        self.model.train()
        try:
            size = self.batch if self.dev.type == "cuda" else min(self.batch, CPU_PROBE_BATCH)
            per_image = self._timed(optimizer, size, first=True)
            if size < self.batch and per_image * self.batch * (PROBE_STEPS + 1) <= CPU_PROBE_SECONDS:
                size = self.batch
                per_image = self._timed(optimizer, size)
        finally:
            self.model.load_state_dict(saved)
        return {"per_image": per_image, "probe_batch": size, "probe_steps": PROBE_STEPS}

    def _timed(self, optimizer: Any, size: int, first: bool = False) -> float:
        """Seconds per image over PROBE_STEPS steps of ``size`` images, after one untimed step."""
        torch = self.torch
        index = torch.randperm(self.n, device=self.dev, generator=self.generator)[:size]
        try:
            self.step(optimizer, index)  # warm-up: allocations, cuDNN autotune
        except WorkerError:
            if not first or self.layout is torch.contiguous_format:
                raise
            self.layout = torch.contiguous_format  # e.g. .view() on a channels_last tensor
            self.model.to(memory_format=self.layout)
            self.step(optimizer, index)
        self.sync()
        start = time.perf_counter()
        for _ in range(PROBE_STEPS):
            self.step(optimizer, index)
        self.sync()
        return (time.perf_counter() - start) / (PROBE_STEPS * size)

    # --- the runs --------------------------------------------------------
    def fit(
        self, attempt: Attempt, progress: Any, spent: float = 0.0, estimate: float = 0.0
    ) -> list[dict[str, Any]]:
        """Train for the recipe's epochs from the initial weights, as ``attempt`` says.

        Raises Diverged for a run that fails to train, and WorkerError(Failure.BUDGET)
        once training (``spent`` seconds of earlier attempts included) has used
        OVERRUN × the budget, or is projected to at the end of an epoch."""
        torch = self.torch
        r = self.recipe
        self.model.load_state_dict(self.initial)
        total = self.steps_per_epoch * r.epochs
        optimizer = self.optimizer(attempt)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, one_cycle(total))
        history: list[dict[str, Any]] = []
        first_loss = None  # the untrained network's loss: an epoch 1 on a few steps stays near it
        start = last = time.perf_counter()
        self.model.train()
        for epoch in range(1, r.epochs + 1):
            order = self.epoch_order()
            loss_sum = torch.zeros((), device=self.dev)
            correct = torch.zeros((), device=self.dev, dtype=torch.long)
            for k in range(self.steps_per_epoch):
                loss, hits = self.step(optimizer, order[k * self.batch : (k + 1) * self.batch])
                if first_loss is None:
                    first_loss = float(loss)  # one sync, once
                schedule.step()
                loss_sum += loss
                correct += hits
                now = time.perf_counter()
                if now - last >= 1.0 or k + 1 == self.steps_per_epoch:  # about once a second
                    last = now
                    progress(epoch, k + 1, self.steps_per_epoch, spent + now - start)
                    if not bool(torch.isfinite(loss_sum)):
                        raise Diverged(f"the loss became {float(loss_sum):g} in epoch {epoch}", history)
                    if spent + now - start > r.budget * OVERRUN:
                        raise self._overrun(epoch, k + 1, spent, now - start, estimate, history)
            seen = self.steps_per_epoch * self.batch
            mean_loss = float(loss_sum) / self.steps_per_epoch  # one sync per epoch
            accuracy = int(correct) / seen
            elapsed = time.perf_counter() - start
            history.append(
                {
                    "epoch": epoch,
                    "loss": round(mean_loss, 4),
                    "train_accuracy": round(accuracy, 4),
                    "seconds": round(spent + elapsed, 2),
                }
            )
            chance = math.log(self.classes)
            blown = BLOWN_LOSS * max(chance, first_loss if math.isfinite(first_loss or 0.0) else 0.0)
            guessing = accuracy <= STUCK_ACCURACY / self.classes
            if guessing and (mean_loss >= blown or (epoch == r.epochs and mean_loss >= STUCK_LOSS * chance)):
                state = "worse than guessing" if mean_loss >= blown else "still at chance"
                raise Diverged(
                    f"epoch {epoch} of {r.epochs} ended {state} (loss {mean_loss:.4f}, ln {self.classes} = "
                    f"{chance:.4f}; training accuracy {accuracy:.1%})",
                    history,
                    stalled=mean_loss < blown,
                )
            projected = spent + elapsed / epoch * r.epochs
            if epoch < r.epochs and projected > r.budget * OVERRUN:
                raise self._overrun(epoch, self.steps_per_epoch, spent, elapsed, estimate, history, projected)
        self.model.eval()
        return history

    def run(self, progress: Any, estimate: float = 0.0) -> tuple[list[dict[str, Any]], Attempt, list]:
        """Fit (first_attempt), restarting once if that fails: with AdamW after an SGD run that
        stayed at chance, else at RETRY_FACTOR × the rate. Returns the history, the
        attempt that trained and the failed attempts; a second failure raises
        WorkerError(Failure.DIVERGED), and running out of budget WorkerError(Failure.BUDGET),
        both with ``attempts`` in their details."""
        attempts: list[dict[str, Any]] = []
        failures: list[str] = []
        attempt, start = self.first_attempt(), time.perf_counter()
        while True:
            try:
                return self.fit(attempt, progress, time.perf_counter() - start, estimate), attempt, attempts
            except Diverged as failed:
                attempts.append(
                    {"lr": attempt.lr, "optimizer": "AdamW" if attempt.adam else "SGD",
                     "failed": failed.reason, "history": failed.history}
                )  # fmt: skip
                failures.append(f"{attempt}: {failed.reason}")
                if len(attempts) > 1:
                    raise WorkerError(Failure.DIVERGED, "; ".join(failures), attempts=attempts) from None
                if failed.stalled and not attempt.adam:
                    attempt = Attempt(ADAMW_SHARE * self.recipe.lr, adam=True)
                else:
                    attempt = Attempt(attempt.lr * RETRY_FACTOR, attempt.adam)
            except WorkerError as exc:
                exc.details.update(attempts=attempts)
                raise

    def _overrun(
        self,
        epoch: int,
        step: int,
        spent: float,
        run: float,
        estimate: float,
        history: list[dict[str, Any]],
        projected: float | None = None,
    ) -> WorkerError:
        """The honest stop: where training was, why it stopped, and how far off the estimate was."""
        r = self.recipe
        done = ((epoch - 1) * self.steps_per_epoch + step) / (r.epochs * self.steps_per_epoch)
        pace = run / max(estimate * done, 1e-9)
        where = (
            f"after epoch {epoch} of {r.epochs}"
            if step == self.steps_per_epoch
            else f"in epoch {epoch} of {r.epochs} (step {step} of {self.steps_per_epoch})"
        )
        why = f"about {fmt_seconds(projected)} in all at this pace" if projected else "the budget ran out"
        return WorkerError(
            Failure.BUDGET,
            f"training stopped {where} after {fmt_seconds(spent + run)} ({why}, over the "
            f"{fmt_seconds(r.budget)} budget): it ran {pace:.1f}× slower than the {fmt_seconds(estimate)} "
            "estimated before training (a busy machine?)",
            history=history,
            stopped=True,
        )


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


def staged_split(train_images: str, train_labels: str) -> tuple[Any, Any]:
    """The training split the grader staged: uint8 (N, C, H, W) images, memory-mapped, and int64 labels."""
    import numpy as np

    images = np.load(train_images, mmap_mode="r", allow_pickle=False)
    labels = np.load(train_labels, allow_pickle=False)
    if images.dtype != np.uint8 or images.ndim != 4 or labels.dtype != np.int64 or labels.ndim != 1:
        raise WorkerError(Failure.DATA, "training split must be uint8 (N, C, H, W) images and int64 labels")
    return images, labels


def train(
    trainer: Trainer, test_images: str, out_dir: str, out_name: str, progress_name: str
) -> dict[str, Any]:
    """Estimate, refuse or train (restarting once if it diverges), then write test-split
    logits; the grader scores them."""
    import torch

    recipe, device = trainer.recipe, str(trainer.dev)
    probe = trainer.probe()
    per_image = probe["per_image"]
    estimate = per_image * trainer.steps_per_epoch * trainer.batch * recipe.epochs
    where = f"{device} ({torch.get_num_threads()} threads)" if device == "cpu" else device
    plan = {
        "estimate_seconds": round(estimate, 2),
        "probe_images_per_second": round(1.0 / per_image, 1),
        "probe": (
            f"{probe['probe_steps']} timed training steps of {probe['probe_batch']} images "
            f"(after one untimed step) on {where}: {1.0 / per_image:,.0f} images/s × "
            f"{recipe.epochs} epochs of {trainer.steps_per_epoch * trainer.batch:,} images"
        ),
        "device": where,
        "images": trainer.n,
        "batch_size": trainer.batch,
        "layout": str(trainer.layout).split(".")[-1],
    }
    if estimate > recipe.budget:
        raise WorkerError(
            Failure.BUDGET,
            f"retraining would take about {fmt_seconds(estimate)} on {where} "
            f"({1.0 / per_image:,.0f} images/s × {recipe.epochs} epochs of "
            f"{trainer.n:,} images), more than the "
            f"{fmt_seconds(recipe.budget)} budget",
            **plan,
        )
    progress = Progress(os.path.join(out_dir, progress_name), recipe.epochs)
    start = time.perf_counter()
    try:
        history, attempt, attempts = trainer.run(progress, estimate)
    except WorkerError as exc:
        exc.details.update(plan)
        raise
    trainer.sync()
    seconds = time.perf_counter() - start
    path = os.path.join(out_dir, out_name)
    evaluated = evaluate.logits(
        trainer.model,
        test_images,
        path,
        trainer.mean,
        trainer.std,
        trainer.resize,
        1000,
        device,
        trainer.call,
    )
    return {
        **plan,
        "train_seconds": round(seconds, 2),
        "eval_seconds": round(evaluated["seconds"], 3),
        "lr": attempt.lr,
        "optimizer": "AdamW" if attempt.adam else "SGD",
        "attempts": attempts,
        "history": history,
        "array": out_name,
    }
