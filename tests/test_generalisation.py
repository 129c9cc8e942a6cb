"""The ``generalisation`` check: a model fitted to the test split is flagged for
the TA, an honest one is not.

Generated Fashion-MNIST-format data where 30% of the images in both splits are
noise with random labels: a model can only get those right by memorising them,
so a model trained on the test split knows the test images better than the
training images, as a real one fitted to a public test split does.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import data, grading, labs

from autograder.batch.moodle import Student
from autograder.batch.summary import StudentRow, item_flags, reasons
from autograder.checks import KINDS
from autograder.checks.generalisation import accuracy_p_value, compare, membership_auc
from autograder.data.formats import write_idx
from autograder.rubric import load
from reference.lab4.fashion_cnn import NORMALIZE, FashionCNN

ITEM = "task1.generalisation"


def noisy_root(root, train_split_from_test: bool = False):
    """2,000 training and 300 test images, 30% of each pure noise with random labels.
    ``train_split_from_test``: the training files hold the test images (to fit a model on them)."""
    rng = np.random.default_rng(3)
    splits = {}
    for name, n in (("train", 2000), ("test", 300)):
        y = data.labels(n, rng)
        x, noise = data.images(y, 28, 1, rng, impossible=0.3)
        splits[name] = (x[:, 0], np.where(noise, rng.integers(0, 10, n), y))
    train = splits["test"] if train_split_from_test else splits["train"]
    write_idx(root, "fashion_mnist", *train, train=True)
    write_idx(root, "fashion_mnist", *splits["test"], train=False)
    return root


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """An honest model (trained on the training split) and one fitted to the test split,
    both graded on the same data root."""
    tmp = tmp_path_factory.mktemp("generalisation")
    root = noisy_root(tmp / "data")
    cheat_root = noisy_root(tmp / "cheat-data", train_split_from_test=True)
    honest = labs.fit(FashionCNN(), root, "fashion_mnist", NORMALIZE, steps=60, batch=32, lr=3e-3)
    fitted = labs.fit(FashionCNN(), cheat_root, "fashion_mnist", NORMALIZE, steps=300, batch=32, lr=3e-3)
    rubric = grading.only(load("lab4-cnn-fashion-mnist"), "task1.accuracy", ITEM)
    out = {}
    for name, model in (("honest", honest), ("fitted", fitted)):
        folder, _ = labs.lab4_submission(tmp / name, model.state_dict(), root)
        out[name] = grading.run(folder, rubric, root, tmp / f"out-{name}")
    return out


@pytest.mark.slow  # fits two models and grades both
def test_an_honest_model_is_not_flagged(graded):
    g = graded["honest"]
    item = g.result.item(ITEM)
    assert item.passed, item.message
    assert "flag" not in item.data and not item_flags(item)
    assert re.fullmatch(
        r"training sample \d+\.\d% vs test \d+\.\d%, membership AUC 0\.\d\d: the test split looks no more "
        r"familiar than the training split",
        item.message,
    )
    extra = g.test(ITEM)["extra_data"]
    assert extra["train_images"] == 300  # never more than the test split has
    # an honest model may score a little higher on the test images by chance: what matters
    # is that neither difference is beyond chance (flagged below alpha / 2 = 0.005)
    assert extra["accuracy_p_value"] >= 0.005 and extra["auc_p_value"] >= 0.005
    assert 'id="flags"' not in (g.out / "report.html").read_text()


@pytest.mark.slow  # fits two models and grades both
def test_a_model_fitted_to_the_test_split_is_flagged_with_one_sentence(graded):
    g = graded["fitted"]
    item = g.result.item(ITEM)
    extra = g.test(ITEM)["extra_data"]
    sentence = (
        f"FashionCNN: the model is more accurate on the 300 test images ({extra['test_accuracy']:.1%}) than "
        f"on 300 of its training images ({extra['train_accuracy']:.1%}), p < 0.001: was the test split "
        "used for training?"
    )
    assert extra["flag"] == sentence
    assert item.message == f"flagged for the TA: {sentence}"
    assert extra["test_accuracy"] > extra["train_accuracy"] + 0.15
    assert extra["accuracy_p_value"] < 0.001 and extra["membership_auc"] < 0.5
    # evidence, never a penalty: the item is worth nothing and the score does not move
    assert g.test(ITEM)["score"] == 0 and g.test(ITEM)["max_score"] == 0
    assert g.test(ITEM)["visibility"] == "hidden"
    assert g.json["score"] == g.test("task1.accuracy")["score"]
    # the batch summary's needs-a-human list takes the same sentence
    student = Student("1001", "Ada Example", "participant", "Ada Example_1001", g.out)
    assert reasons(StudentRow(student, "x/report.html", g.result, None), []) == [f"{item.name}: {sentence}"]


@pytest.mark.slow  # fits two models and grades both
def test_the_report_shows_both_sets_and_the_loss_histograms(graded):
    html = (graded["fitted"].out / "report.html").read_text()
    flags = html[html.index('id="flags"') :]
    assert "was the test split used for training?" in flags[: flags.index("</div>")]
    section = html[html.index('id="generalisation-task1"') :]
    assert "Training sample" in section and "Test split" in section and "Membership AUC" in section
    image = r'<img id="losses-task1" class="loss-histograms" [^>]*src="data:image/png;base64,'
    assert re.search(image, section)
    markdown = graded["fitted"].markdown
    assert "### Training sample vs test split" in markdown
    assert "| Images | 300 | 300 |" in markdown


def test_membership_auc_matches_counting_pairs():
    rng = np.random.default_rng(0)
    train, test = rng.integers(0, 6, 40).astype(float), rng.integers(0, 6, 70).astype(float)
    pairs = (train[:, None] < test[None, :]).sum() + 0.5 * (train[:, None] == test[None, :]).sum()
    auc, p = membership_auc(train, test)
    assert auc == pytest.approx(pairs / (40 * 70))
    assert membership_auc(test, train)[0] == pytest.approx(1 - auc)
    same = rng.normal(size=500)
    assert membership_auc(same, same.copy()) == (0.5, pytest.approx(0.5, abs=0.01))
    lower_test = membership_auc(rng.normal(1, 1, 2000), rng.normal(0, 1, 2000))
    assert lower_test[0] < 0.3 and lower_test[1] < 1e-9


def test_accuracy_p_value_is_one_sided():
    assert accuracy_p_value(912, 1000, 840, 1000) < 1e-5  # test above training: evidence
    assert accuracy_p_value(840, 1000, 912, 1000) > 0.99  # training above test: honest
    assert accuracy_p_value(500, 1000, 500, 1000) == pytest.approx(0.5)


def test_compare_flags_lower_test_losses_even_at_equal_accuracy():
    rng = np.random.default_rng(1)
    correct = np.ones(2000, dtype=bool)
    found = compare(rng.exponential(1.0, 2000), correct, rng.exponential(0.5, 2000), correct, 0.01)
    assert found["flag"].startswith("the model's losses are lower on the 2,000 test images than on 2,000")
    assert found["flag"].endswith("was the test split used for training?")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sample": 10}, "sample must be a whole number of training images, at least 100"),
        ({"alpha": 0.7}, "alpha must be a probability between 0 and 0.5"),
        ({"seed": "x"}, "seed must be a whole number"),
        ({"sampel": 2000}, "kind generalisation has no option sampel"),
    ],
)
def test_bad_options_are_explained(options, message):
    with pytest.raises(ValueError, match=message):
        KINDS["generalisation"].validate(dict(options))


@pytest.mark.slow  # fits two models and grades both
def test_without_an_accuracy_item_it_says_what_is_missing(graded, tmp_path):
    rubric = grading.only(load("lab4-cnn-fashion-mnist"), ITEM)
    assert [i.id for i in rubric.items] == [ITEM]
    tmp = graded["honest"].out.parent
    g = grading.run(tmp / "honest", rubric, tmp / "data", tmp_path / "out")
    assert g.message(ITEM) == (
        "nothing to compare with: task1.accuracy measured no test accuracy (no such item ran before this one)"
    )
