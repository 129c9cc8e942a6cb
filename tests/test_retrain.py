"""The ``retrain`` kind: the student's architecture trained from scratch in
the sandbox with the grader's recipe, scored like a checkpoint; refused up
front when it would overrun the budget; a model that cannot train fails alone.

One grade run covers the three outcomes (it trains SimpleCNN for real on the
generated data: a few seconds on two cores)."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import data, grading, rubrics, submissions

from autograder.batch.summary import item_flags
from autograder.checks.retrain import read_progress
from autograder.rubric import RubricError, load
from autograder.sandbox.worker import training
from autograder.sandbox.worker.errors import WorkerError
from autograder.sandbox.worker.protocol import Failure
from autograder.sandbox.worker.training import Progress, one_cycle
from reference.lab2.simple_cnn import SimpleCNN

BROKEN = textwrap.dedent(
    '''
    class BrokenCNN(nn.Module):
        """Evaluates fine, refuses to train; shows what the sandbox's inputs folder holds."""

        def __init__(self, num_classes=10):
            super().__init__()
            self.fc = nn.Linear(3 * 32 * 32, num_classes)

        def forward(self, x):
            if self.training:
                import os, pathlib
                inputs = pathlib.Path(__file__).resolve().parent.parent / "inputs"
                print("SANDBOX INPUTS:", sorted(os.listdir(inputs)), flush=True)
                raise RuntimeError("BrokenCNN refuses to train")
            return self.fc(x.flatten(1))


    class NaNCNN(nn.Module):
        """Evaluates fine; in training its loss is NaN, at any learning rate."""

        def __init__(self, num_classes=10):
            super().__init__()
            self.fc = nn.Linear(3 * 32 * 32, num_classes)

        def forward(self, x):
            out = self.fc(torch.flatten(x, 1))
            return out * float("nan") if self.training else out


    class WideCNN(nn.Module):
        """Runs on 48x48 input only: the rubric accepts that size (input_sizes), not 32x32."""

        def __init__(self, num_classes=10):
            super().__init__()
            self.fc = nn.Linear(3 * 48 * 48, num_classes)

        def forward(self, x):
            return self.fc(torch.flatten(x, 1))
    '''
)

TASKS = """
id = "retrain-test"
title = "Retrain test"
dataset = "cifar10"

[tasks.task1]
model = "SimpleCNN"
sources = ["*.ipynb"]
weights = ["simple_cnn*.pth"]

[tasks.broken]
model = "BrokenCNN"
sources = ["*.ipynb"]

[tasks.nan]
model = "NaNCNN"
sources = ["*.ipynb"]

[tasks.wide]
model = "WideCNN"
sources = ["*.ipynb"]
input_sizes = [48]
"""


def retrain(task: str, name: str, points: int, tiers: list, item: str = "retrain", **recipe: object) -> str:
    """The ``retrain`` item ``task.item`` worth ``points``, paid by ``tiers`` ((above, points)
    pairs); ``recipe``: its epochs, batch_size, lr and budget."""
    tiers = rubrics.above(*tiers)
    return rubrics.item(
        id=f"{task}.{item}", kind="retrain", task=task, name=name, points=points, **recipe, tiers=tiers
    )


# fmt: off
RUBRIC = TASKS + "".join([
    rubrics.item(id="task1.accuracy", kind="accuracy", task="task1", name="SimpleCNN checkpoint accuracy",
                 points=10, tiers=rubrics.above((0.6, 10))),
    retrain("task1", "SimpleCNN retrained by the grader", 10, [(0.8, 10), (0.6, 6), (0.3, 3)],
            epochs=3, batch_size=64, lr=0.4, budget=900),  # lr per 512 images: 0.05 at batch 64
    retrain("task1", "SimpleCNN retrained for 500 epochs in one second", 10, [(0.6, 10)], "retrain_long",
            epochs=500, budget=1),
    retrain("broken", "BrokenCNN retrained", 5, [(0.5, 5)], epochs=1, budget=600),
    retrain("nan", "NaNCNN retrained", 5, [(0.5, 5)], epochs=1, batch_size=64, budget=600),
    retrain("wide", "WideCNN retrained at the input size it accepts", 1, [(0.0, 1)],
            epochs=1, batch_size=64, budget=600),
])
# fmt: on


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("retrain")
    # 30% of the test images are noise with random labels: a model that learns
    # the rest lands between 70% and 80%, in the middle tier.
    root = data.make_cifar(tmp / "data", train=2000, test=500, impossible=0.3, seed=3)
    (tmp / "rubric.toml").write_text(RUBRIC)
    torch.manual_seed(0)
    untrained = SimpleCNN().state_dict()  # the checkpoint scores ~10%: retraining must not start from it
    notebook = submissions.lab2_notebook(extra_cells=[BROKEN])
    folder = submissions.write_lab2(tmp / "sub", untrained, None, notebook=notebook)
    return grading.run(folder, load(str(tmp / "rubric.toml")), root, tmp / "out", device="cpu")


@pytest.mark.slow  # retrains models for real
def test_retrained_accuracy_is_scored_with_the_tiers(graded):
    entry = graded.test("task1.retrain")
    extra = entry["extra_data"]
    assert 0.6 < extra["accuracy"] < 0.8
    assert entry["score"] == 6 and extra["tier"] == ">60%"
    assert extra["images"] == 500
    message = graded.message("task1.retrain")
    assert message.startswith("SimpleCNN retrained in ") and "(3 epochs on cpu" in message
    assert "6/10 points" in message
    output = entry["output"]
    assert "epoch   3: loss" in output and "estimate before training:" in output
    history = graded.result.item("task1.retrain").data["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["train_accuracy"] > 0.9  # the learnable training split is really learnt


@pytest.mark.slow  # retrains models for real
def test_retraining_starts_from_scratch_not_from_the_checkpoint(graded):
    assert graded.test("task1.accuracy")["extra_data"]["accuracy"] < 0.3
    assert graded.test("task1.accuracy")["score"] == 0
    assert graded.test("task1.retrain")["extra_data"]["accuracy"] > 0.6


@pytest.mark.slow  # retrains models for real
def test_model_over_the_budget_is_refused_up_front(graded):
    entry = graded.test("task1.retrain_long")
    assert entry["score"] == 0
    message = graded.message("task1.retrain_long")
    assert message.startswith("SimpleCNN was not retrained: retraining would take about ")
    assert "× 500 epochs of 2,000 images), more than the 1 s budget" in message
    assert message.endswith("grade this item with --device cuda")
    data = graded.result.item("task1.retrain_long").data
    assert data["refused"] is True and data["estimate_seconds"] > 1
    assert "history" not in data  # no training step was taken


@pytest.mark.slow  # retrains models for real
def test_model_that_cannot_train_fails_alone_with_its_line(graded):
    message = graded.message("broken.retrain")
    assert message.startswith("retraining BrokenCNN failed at StudentID_lab2.ipynb cell 6")
    # the worker held the hidden test images: the exception's text could carry them
    assert message.endswith(
        ": RuntimeError (its message is not shown: your code raised it while holding the hidden test images)"
    )
    assert graded.test("broken.retrain")["score"] == 0
    assert graded.test("task1.retrain")["score"] == 6  # the others keep their points


@pytest.mark.slow  # retrains models for real
def test_training_that_never_converges_is_flagged_as_the_graders_failure(graded):
    message = graded.message("nan.retrain")
    assert message.startswith(  # a linear layer alone: no normalisation, so AdamW at 0.05 × lr
        "NaNCNN: the grader's training did not converge (with AdamW at peak rate 0.01: no finite loss; "
    )
    assert "; with AdamW at peak rate 0.0025: no finite loss)" in message  # the grader's words, from numbers
    assert message.endswith("this says nothing about the student's model, and the item is flagged for a TA")
    entry = graded.test("nan.retrain")
    assert entry["score"] == 0
    assert entry["extra_data"]["flag"] == "the grader's training did not converge: grade this item by hand"
    assert "attempt with AdamW at peak rate 0.01 failed: the loss became nan in epoch 1" in entry["output"]
    item = graded.result.item("nan.retrain")
    assert item_flags(item) == [
        f"NaNCNN retrained: {entry['extra_data']['flag']}"
    ]  # the batch summary's list


@pytest.mark.slow  # retrains models for real
def test_a_task_with_its_own_input_size_is_retrained_at_that_size(graded):
    """input_sizes = [48] on 32x32 data: the images are up-sampled to 48x48 for training
    and testing, as for the accuracy item."""
    message = graded.message("wide.retrain")
    assert message.startswith("WideCNN retrained in ") and "(1 epochs on cpu" in message
    assert graded.test("wide.retrain")["extra_data"]["images"] == 500


@pytest.mark.slow  # retrains models for real
def test_sandbox_gets_training_labels_but_never_test_labels(graded):
    listing = "SANDBOX INPUTS: ['test_images.npy', 'train_images.npy', 'train_labels.npy']"
    assert listing in graded.result.worker_output


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("epochs = 0", "epochs = 0 is outside 1..500"),
        ("epochs = 2.5", "epochs must be an integer, got 2.5"),
        ('epochs = "fast"', "epochs must be an integer, got 'fast'"),
        ("epochs = 3\nschedule = 'cosine'", "kind retrain has no option schedule"),
    ],
)
def test_bad_recipe_options_name_the_rubric_line(tmp_path, line, error):
    path = tmp_path / "bad.toml"
    path.write_text(RUBRIC.replace("epochs = 3\n", f"{line}\n"))
    with pytest.raises(RubricError) as caught:
        load(str(path))
    assert str(caught.value).startswith(f"{path}:") and error in str(caught.value)


def test_an_items_time_limit_covers_its_training_budget(tmp_path):
    """A CPU rubric's 1,500 s of training must not be cut at the kind's 900 s default: the
    item's limit is at least budget × 1.1 + the slack for start-up, probe and evaluation
    (a real 10-epoch SimpleCNN run was stopped at 900 s before this)."""
    path = tmp_path / "cpu.toml"
    path.write_text(RUBRIC.replace("budget = 900\n", "budget = 1500\n", 1))
    items = {i.id: i for i in load(str(path)).items}
    assert items["task1.retrain"].timeout == pytest.approx(1500 * 1.1 + 300)
    assert items["task1.retrain_long"].timeout == 900  # budget 1 s: the kind's default stands
    assert items["task1.accuracy"].timeout == 900


def test_progress_file_round_trip_and_untrusted_files_ignored(tmp_path):
    path = tmp_path / "progress_task1.json"
    Progress(str(path), epochs=4)(2, 7, 31, 12.5, force=True)
    assert read_progress(path) == {"epoch": 2, "epochs": 4, "step": 7, "steps": 31, "seconds": 12.5}
    (tmp_path / "big.json").write_text("[" + "0," * 5000 + "0]")
    (tmp_path / "bad.json").write_text('{"epoch": "one"}')
    (tmp_path / "link.json").symlink_to(path)
    for name in ("big.json", "bad.json", "link.json", "missing.json"):
        assert read_progress(tmp_path / name) is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_retrain_on_gpu(tmp_path):
    root = data.make_cifar(tmp_path / "data", train=2000, test=500, impossible=0.3, seed=3)
    (tmp_path / "rubric.toml").write_text(RUBRIC)
    folder = submissions.write_lab2(tmp_path / "sub", SimpleCNN().state_dict(), None)
    rubric = grading.only(load(str(tmp_path / "rubric.toml")), "task1.retrain")
    graded = grading.run(Path(folder), rubric, root, tmp_path / "out", device="cuda")
    assert graded.test("task1.retrain")["score"] == 6
    assert "on cuda" in graded.message("task1.retrain")


@pytest.mark.parametrize("total", [1, 2, 5, 10, 977])
def test_one_cycle_schedule_rises_then_falls_for_any_length(total):
    factors = [one_cycle(total)(step) for step in range(total)]
    assert factors[0] == pytest.approx(training.WARMUP_FROM)
    peak = factors.index(max(factors))
    assert max(factors) <= 1.0 and peak <= max(1, round(training.WARMUP * total))
    rising, falling = factors[: peak + 1], factors[peak:]
    assert rising == sorted(rising) and falling == sorted(falling, reverse=True)
    assert one_cycle(total)(total) == 0.0  # after the last step


# --- the recipe itself, run in this process (no sandbox): fast and deterministic ---


class NaNNet(torch.nn.Module):
    """A model whose training loss is NaN in every attempt, or only in the first one. An
    attempt begins by loading the initial weights (after the probe has restored its own):
    the second load of the state is the first attempt's."""

    def __init__(self, first_attempt_only: bool = False) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3 * 32 * 32, 10)
        self.loads, self.first_attempt_only = 0, first_attempt_only
        self.register_load_state_dict_post_hook(lambda module, keys: setattr(self, "loads", self.loads + 1))

    def forward(self, x):
        out = self.fc(x.flatten(1))
        poisoned = self.training and (self.loads == 2 or not self.first_attempt_only)
        return out * float("nan") if poisoned else out


class ConstantNet(torch.nn.Module):
    """Trains without error and never learns: every logit is 0 (loss ln 10, 10% accuracy)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3 * 32 * 32, 10)

    def forward(self, x):
        return 0 * self.fc(x.flatten(1))


def generated(n: int):
    """Generated CIFAR-shaped training images and labels, and 500 test images and labels."""
    rng = np.random.default_rng(0)
    y = data.labels(n, rng)
    x = data.images(y, 32, 3, rng)[0]
    y_test = data.labels(500, rng)
    return x, y, data.images(y_test, 32, 3, rng)[0], y_test


def trainer_for(model, n=1024, **options):
    """A Trainer on the images ``train_directly`` uses, for one attempt run by hand."""
    x, y, _, _ = generated(n)
    recipe = training.Recipe(**{**training.DEFAULTS, "budget": 900.0, **options})
    torch.manual_seed(recipe.seed)
    return training.Trainer(model, x, y, 10, [0.5] * 3, [0.25] * 3, None, recipe, "cpu", lambda f, *a: f(*a))


def train_directly(tmp_path, model, n=1024, **options):
    """``training.train`` as the worker runs it, on generated CIFAR-shaped data;
    the rubric's documented defaults unless ``options`` says otherwise."""
    x, y, x_test, y_test = generated(n)
    for name, array in (("x", x), ("y", y), ("t", x_test)):
        np.save(tmp_path / f"{name}.npy", array, allow_pickle=False)
    recipe = training.Recipe(**{**training.DEFAULTS, "budget": 900.0, **options})
    torch.manual_seed(recipe.seed)
    images, labels = training.staged_split(str(tmp_path / "x.npy"), str(tmp_path / "y.npy"))
    trainer = training.Trainer(
        model, images, labels, 10, [0.5] * 3, [0.25] * 3, None, recipe, "cpu", lambda f, *a: f(*a)
    )
    answer = training.train(trainer, str(tmp_path / "t.npy"), str(tmp_path), "logits.npy", "progress.json")
    logits = np.load(tmp_path / "logits.npy")
    return answer, float((logits.argmax(1) == y_test).mean())


@pytest.mark.slow  # retrains models for real
def test_default_recipe_learns_the_handout_simplecnn(tmp_path):
    """The documented defaults (batch 512, lr 0.2, 10 epochs) on the handout SimpleCNN: 20
    steps on 1,024 generated images. The recipe before warm-up, clipping and the BatchNorm
    exemption sat at chance on real CIFAR-10 (10%); this must land far above it."""
    answer, accuracy = train_directly(tmp_path, SimpleCNN())
    assert answer["attempts"] == []  # trained at the first try, at the documented rate
    assert answer["lr"] == pytest.approx(training.DEFAULTS["lr"])
    assert [h["epoch"] for h in answer["history"]] == list(range(1, 11))
    assert accuracy > 0.6, answer["history"]


class FaintNet(torch.nn.Module):
    """BatchNorm, then a linear layer whose logits are scaled by 1e-4: SGD's steps shrink with
    its gradients and it stays at chance, as the lecture's sigmoid LeNet does on real MNIST
    digits; AdamW's do not."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = torch.nn.BatchNorm2d(3)
        self.fc = torch.nn.Linear(3 * 32 * 32, 10)

    def forward(self, x):
        return 1e-4 * self.fc(self.norm(x).flatten(1))


class NormedNaNNet(NaNNet):
    """NaNNet with a BatchNorm in front: trained with SGD."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = torch.nn.BatchNorm2d(3)

    def forward(self, x):
        return super().forward(self.norm(x))


@pytest.mark.parametrize(
    ("model", "why", "tried"),
    [
        (NormedNaNNet(), "the loss became nan in epoch 1", ["at peak rate 0.025", "at peak rate 0.00625"]),
        (
            NaNNet(),
            "the loss became nan in epoch 1",
            ["with AdamW at peak rate 0.01", "with AdamW at peak rate 0.0025"],
        ),
        pytest.param(  # trains the whole epoch twice (the quick subset keeps the nan cases)
            ConstantNet(),
            "epoch 1 of 1 ended still at chance (loss 2.3026, ln 10 = 2.3026",
            ["with AdamW at peak rate 0.01", "with AdamW at peak rate 0.0025"],
            marks=pytest.mark.slow,
        ),
    ],
)
def test_training_that_fails_twice_is_the_graders_failure(tmp_path, model, why, tried):
    """A network with normalisation layers trains with SGD, one without with AdamW; a failed
    run restarts once at a quarter of its rate; a second failure is the grader's, with both
    attempts in its words."""
    with pytest.raises(WorkerError) as caught:
        train_directly(tmp_path, model, epochs=1, batch_size=64)
    failure = caught.value
    assert failure.kind == "diverged"
    attempts = failure.details["attempts"]
    assert all(why in a["failed"] for a in attempts)
    words = [f"{how}: {a['failed']}" for how, a in zip(tried, attempts, strict=True)]
    assert failure.message == "; ".join(words)


@pytest.mark.slow  # trains two epochs, then again at a lower rate
def test_training_that_diverges_once_restarts_at_a_lower_rate(tmp_path):
    model = NaNNet(first_attempt_only=True)
    answer, accuracy = train_directly(tmp_path, model, epochs=2, batch_size=64)
    assert [a["failed"] for a in answer["attempts"]] == ["the loss became nan in epoch 1"]
    assert answer["lr"] == pytest.approx(0.01 * training.RETRY_FACTOR) and answer["optimizer"] == "AdamW"
    assert [h["epoch"] for h in answer["history"]] == [1, 2]
    assert accuracy > 0.3


@pytest.mark.slow  # trains two epochs, then again with AdamW
def test_sgd_run_still_at_chance_restarts_with_adamw_and_learns(tmp_path):
    answer, accuracy = train_directly(tmp_path, FaintNet(), epochs=2, batch_size=64)
    [stalled] = answer["attempts"]
    assert stalled["optimizer"] == "SGD" and "epoch 2 of 2 ended still at chance" in stalled["failed"]
    assert answer["optimizer"] == "AdamW" and answer["lr"] == pytest.approx(0.01)
    assert accuracy > 0.3  # chance is 0.1
    # Control: the same model without the restart (its SGD attempt alone) stays at chance.
    with pytest.raises(training.Diverged):
        trainer_for(FaintNet(), epochs=2, batch_size=64).fit(training.Attempt(0.025), lambda *a, **k: None)


def test_networks_without_normalisation_train_with_adamw():
    """The optimiser follows the architecture: SimpleCNN (BatchNorm) with SGD at the
    rubric's rate, the lecture's LeNet (none) with AdamW at 0.05 × that rate."""
    from reference.lecture15.lenet import LeNet

    sgd = trainer_for(SimpleCNN(), n=64).first_attempt()
    assert not sgd.adam and sgd.lr == pytest.approx(0.2 * 64 / 512)
    lenet = training.Trainer(
        LeNet(), *generated(64)[:2], 10, [0.5] * 3, [0.25] * 3, 28,
        training.Recipe(**{**training.DEFAULTS, "lr": 0.4}), "cpu", lambda f, *a: f(*a),
    )  # fmt: skip
    adamw = lenet.first_attempt()
    assert adamw.adam and adamw.lr == pytest.approx(0.02)
    assert "without them AdamW at 0.02" in training.describe(lenet.recipe)


def test_training_stops_when_the_budget_runs_out_and_says_the_estimate_was_wrong(tmp_path, monkeypatch):
    """A machine that turns busy after the probe: every reading of the clock during
    training advances it by 10 s, so the 30 s budget runs out in the first epoch."""
    clock = iter(itertools.count(0.0, 10.0))
    monkeypatch.setattr(
        training.Trainer, "probe", lambda self: {"per_image": 1e-3, "probe_batch": 64, "probe_steps": 2}
    )
    monkeypatch.setattr(training.time, "perf_counter", lambda: next(clock))
    with pytest.raises(WorkerError) as caught:
        train_directly(tmp_path, SimpleCNN(), epochs=2, batch_size=64, budget=30.0)
    message = caught.value.message
    assert caught.value.kind == Failure.BUDGET and caught.value.details["stopped"] is True
    assert message.startswith("training stopped in epoch 1 of 2 (step ")
    assert "the budget ran out, over the 30 s budget): it ran " in message
    assert message.endswith("slower than the 2 s estimated before training (a busy machine?)")


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist", "cifar10"])
def test_mirror_images_are_used_only_where_they_keep_their_labels(monkeypatch, dataset):
    """A mirrored digit is another digit (or none): the recipe flips CIFAR-10 and
    Fashion-MNIST images, never MNIST's. Crops are turned off to see flips alone."""
    from autograder.data import dataset_spec

    monkeypatch.setattr(training, "PAD", 0)
    flip = dataset_spec(dataset).mirror
    trainer = trainer_for(torch.nn.Flatten(), n=256, flip=flip)
    x = torch.rand(256, 3, 32, 32)
    out = trainer.augment(x)
    mirrored = (out == x.flip(3)).flatten(1).all(1)
    assert (out == x).flatten(1).all(1).sum() + mirrored.sum() == 256
    assert int(mirrored.sum()) > 64 if flip else int(mirrored.sum()) == 0
    assert flip == (dataset != "mnist")
