"""Research (not part of the grader): the ``generalisation`` comparison made against a
HELD-OUT set of images the student never had, instead of a sample of its training images.

The check's comparison set is a sample of the training split, which an honest model has
learnt a little: it always looks a little more familiar than the test split, and a light
fine-tune on the test split only narrows that gap (docs/benchmarks.md). Images the
student never had would be unseen by an honest model exactly like the test split is.
Here the students of ``generalisation_reference.py`` train on 3,000 of the MNIST sample's
4,000 training images; the other 1,000 are the held-out set, compared with the 1,000 test
images plainly and calibrated with the command's reference models (trained on the
students' 3,000, which neither compared set contains).

    PYTHONPATH=$PWD nice -n 10 .venv/bin/python benchmarks/generalisation_holdout.py
"""

from __future__ import annotations

import numpy as np
import torch
from generalisation import logits, normalise
from generalisation_reference import Bench, references, students

from autograder.checks.accuracy import per_image
from autograder.checks.generalisation import DEFAULT_ALPHA as ALPHA
from autograder.checks.generalisation import compare
from autograder.demo import TRAIN_IMAGES, mnist_sample
from reference.demo.mnist_models import NORMALIZE as MNIST_NORM
from reference.demo.mnist_models import SmallCNN

HELD_OUT = 1000


def main() -> None:
    torch.set_num_threads(1)
    images, labels = mnist_sample()
    n = TRAIN_IMAGES
    order = np.random.default_rng(5).permutation(n)
    mine, held = np.sort(order[:-HELD_OUT]), np.sort(order[-HELD_OUT:])
    grey = images[:, None]
    rates, what = references(
        "mnist", (grey[mine], labels[mine]), [(grey[held], labels[held]), (grey[n:], labels[n:])], MNIST_NORM
    )
    print(f"references: {what}", flush=True)
    x, y = normalise(images, MNIST_NORM), torch.from_numpy(labels)
    no_sample = np.arange(0)  # the held-out images take the training sample's place below
    bench = Bench("MNIST", SmallCNN, False, x[mine], y[mine], x[n:], y[n:], no_sample, tuple(rates), what)
    for kind, description, model in students(bench):
        held_losses, held_correct = per_image(logits(model, x[held]), labels[held])
        test_losses, test_correct = per_image(logits(model, bench.x_test), bench.y_test.numpy())
        plain = compare(held_losses, held_correct, test_losses, test_correct, ALPHA)
        calibrated = compare(held_losses, held_correct, test_losses, test_correct, ALPHA, bench.reference)
        print(
            f"{kind} | {description} | held out {held_correct.mean():.1%} | test {test_correct.mean():.1%} | "
            f"p {plain['accuracy_p_value']:.2g} {'FLAG' if 'flag' in plain else '-'} | "
            f"gain {100 * calibrated['calibrated_gain']:+.1f} p {calibrated['calibrated_p_value']:.2g} "
            f"{'FLAG' if 'flag' in calibrated else '-'}",
            flush=True,
        )


if __name__ == "__main__":
    main()
