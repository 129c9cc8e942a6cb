"""The ``generalisation`` check: a model fitted to the test split is flagged for
the TA, an honest one is not.

Generated Fashion-MNIST-format data where 30% of the images in both splits are
noise with random labels: a model can only get those right by memorising them,
so a model trained on the test split knows the test images better than the
training images, as a real one fitted to a public test split does.
"""

from __future__ import annotations

import contextlib
import io
import re
import zipfile

import numpy as np
import pytest
from helpers import data, grading, labs

from autograder import cli, gradescope_zip
from autograder.batch.moodle import Student
from autograder.batch.summary import StudentRow, item_flags, reasons
from autograder.checks import KINDS
from autograder.checks.context.data import training_sample
from autograder.checks.generalisation import (
    accuracy_p_value,
    calibrated_gain,
    compare,
    labels_digest,
    load_reference,
    membership_auc,
)
from autograder.data.formats import write_idx
from autograder.result import CheckFailed
from autograder.rubric import load, resolve
from reference.lab4.fashion_cnn import NORMALIZE, FashionCNN

ITEM = "task1.generalisation"
CALIBRATED = "task1.generalisation_calibrated"  # the same comparison, with reference models


def calibrated_rubric(folder):
    """The lab 4 rubric in ``folder`` with a second generalisation item that names a reference
    file beside it (written by ``autograder calibrate``)."""
    text = resolve("lab4-cnn-fashion-mnist").read_text()
    text += f"""
[[items]]
id = "{CALIBRATED}"
kind = "generalisation"
task = "task1"
name = "Your CNN against reference models (for the TA)"
sample = 2000
reference = "references/task1.npz"
"""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lab4-calibrated.toml").write_text(text)
    return folder / "lab4-calibrated.toml"


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
    path = calibrated_rubric(tmp / "course")
    said = io.StringIO()
    with contextlib.redirect_stdout(said):
        code = cli.main(
            [
                "calibrate",
                "--rubric",
                str(path),
                "--item",
                CALIBRATED,
                "--data-root",
                str(root),
                "--out",
                str(tmp / "course" / "references" / "task1.npz"),
                "--models",
                "2",
                "--epochs",
                "4",
            ]
        )
    assert code == 0, said.getvalue()
    rubric = grading.only(load(str(path)), "task1.accuracy", ITEM)
    out = {"calibrate": said.getvalue(), "rubric": path}
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
    calibrated = g.result.item(CALIBRATED)  # the same comparison against reference models: flagged too
    assert reasons(StudentRow(student, "x/report.html", g.result, None), []) == [
        f"{item.name}: {sentence}",
        f"{calibrated.name}: {calibrated.data['flag']}",
    ]


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
        ({"reference": "../elsewhere.npz"}, "relative to the rubric's folder"),
        ({"reference": "/abs/refs.npz"}, "relative to the rubric's folder"),
        ({"reference": "refs.txt"}, "the path of the .npz `autograder calibrate` wrote"),
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


@pytest.mark.slow  # fits two models, trains two references and grades both
def test_calibrate_writes_the_reference_file_and_says_how_to_use_it(graded):
    said = graded["calibrate"]
    assert (
        "2 × FashionCNN on 1,700 training images (the split minus the item's 300-image sample, seed 0)"
        in said
    )
    assert re.search(r"references: \d+\.\d% on the training sample, \d+\.\d% on the test split; wrote ", said)
    assert f'add to item {CALIBRATED} in {graded["rubric"]}: reference = "references/task1.npz"' in said
    # build-gradescope carries the file beside the rubric it ships
    zip_path, _, _ = gradescope_zip.build(str(graded["rubric"]), graded["rubric"].parent / "autograder.zip")
    with zipfile.ZipFile(zip_path) as zf:
        assert "grader/rubrics/references/task1.npz" in zf.namelist()


@pytest.mark.slow  # fits two models, trains two references and grades both
def test_with_reference_models_the_honest_model_stays_unflagged_and_the_fitted_one_is_flagged(graded):
    honest, fitted = (
        graded["honest"].test(CALIBRATED)["extra_data"],
        graded["fitted"].test(CALIBRATED)["extra_data"],
    )
    for extra in (honest, fitted):
        assert 0 < extra["reference_train_accuracy"] < 1 and 0 < extra["reference_test_accuracy"] < 1
        # the same models, the same images: the plain numbers are the plain item's
    assert honest["test_accuracy"] == graded["honest"].test(ITEM)["extra_data"]["test_accuracy"]
    assert "flag" not in honest and honest["calibrated_p_value"] >= 0.005
    assert (
        graded["honest"]
        .message(CALIBRATED)
        .endswith(
            " points against the references: the test split looks no more familiar than the training split"
        )
    )
    sentence = fitted["flag"]
    assert sentence.startswith("FashionCNN: against reference models that never saw either set (")
    assert (
        f"the model gains {100 * fitted['calibrated_gain']:.1f} points more on the 300 test images"
        in sentence
    )
    assert sentence.endswith("p < 0.001: was the test split used for training?")
    assert fitted["calibrated_gain"] > 0.15
    section = (graded["fitted"].out / "report.html").read_text()
    section = section[section.index('id="generalisation-task1"') :]
    assert "Reference models&#39; accuracy" in section or "Reference models' accuracy" in section
    assert "Against reference models that never saw either set, the model gains" in section


def test_calibration_removes_which_images_happened_to_be_drawn():
    """The training sample happened to be easier (the references score 80% on it, 70% on the test
    images): a model 6 points better on the test images than the references and only 2 points
    better on the training sample was fitted to the test split, though its plain accuracies look
    honest. The same model with references that score both sets alike is not flagged (control)."""
    rng = np.random.default_rng(4)

    def right(share, n):
        return rng.permutation(np.arange(n) < round(share * n))

    train_correct, test_correct = right(0.82, 2000), right(0.76, 10_000)
    losses = (np.ones(2000), np.ones(10_000))
    plain = compare(losses[0], train_correct, losses[1], test_correct, 0.01)
    assert "flag" not in plain and plain["accuracy_p_value"] > 0.99
    easier_sample = (np.where(right(0.8, 2000), 1.0, 0.0), np.where(right(0.7, 10_000), 1.0, 0.0))
    found = compare(losses[0], train_correct, losses[1], test_correct, 0.01, easier_sample)
    assert found["calibrated_gain"] == pytest.approx(0.04, abs=1e-9)
    assert found["calibrated_p_value"] < 0.005  # alpha / 2: flagged
    assert found["flag"].startswith("against reference models that never saw either set (80.0% on these ")
    alike = (np.full(2000, 0.75), np.full(10_000, 0.75))
    assert "flag" not in compare(losses[0], train_correct, losses[1], test_correct, 0.01, alike)
    assert calibrated_gain(train_correct, alike[0], test_correct, alike[1])[1] > 0.99


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sample": training_sample(5000, 300, 1)}, "was made for another training sample"),
        ({"test_labels_sha256": np.array("0" * 64)}, "was made for another test split"),
        ({"train_rate": np.full(300, 1.5)}, "holds no accuracies in 0..1"),
        ({"models": None}, "lacks models"),
        ({"test_rate": np.array(["x"] * 400)}, "cannot be read"),
        (None, "cannot be read"),
    ],
)
def test_a_reference_file_for_other_data_is_refused_with_a_staff_message(tmp_path, change, message):
    labels = np.arange(400) % 10
    sample = training_sample(5000, 300, 0)
    arrays = {
        "sample": sample, "train_rate": np.full(300, 0.5), "test_rate": np.full(400, 0.5),
        "test_labels_sha256": np.array(labels_digest(labels)), "models": np.array(2), "recipe": np.array("x"),
    }  # fmt: skip
    path = tmp_path / "references.npz"
    if change is None:
        path.write_bytes(b"not a zip")
    else:
        arrays.update(change)
        np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    with pytest.raises(CheckFailed, match=message) as failed:
        load_reference(path, sample, labels)
    assert str(failed.value).endswith("this is not your fault: tell the course staff")


def test_calibrate_names_the_generalisation_items_when_asked_for_another(tmp_path, capsys):
    root = noisy_root(tmp_path / "data")
    args = [
        "calibrate",
        "--rubric",
        "lab4-cnn-fashion-mnist",
        "--data-root",
        str(root),
        "--out",
        str(tmp_path / "r.npz"),
    ]
    assert cli.main([*args, "--item", "task1.accuracy"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "autograder: lab4-cnn-fashion-mnist: no generalisation item task1.accuracy "
        "(generalisation items: task1.generalisation)"
    )
    assert cli.main([*args, "--model", "reference.lab4.fashion_cnn:Nope"]) == 2
    assert "--model reference.lab4.fashion_cnn:Nope: " in capsys.readouterr().err
    assert not (tmp_path / "r.npz").exists()
