"""NCKU Lab 2 graded end to end: a correct submission gets every autograded
point, results.json follows Gradescope's schema and carries the measured
values and provenance, and the tiers follow the measured accuracy."""

from __future__ import annotations

import jsonschema
import pytest
import torch
from helpers import data, grading, submissions

from autograder.rubric import load

pytestmark = pytest.mark.slow  # lab 2 graded with the trained ResNet-18 (its training alone ~35 s)


@pytest.fixture(scope="module")
def correct(lab2_graded):
    """The complete lab 2 hand-in, zipped (conftest.py; test_report.py reads its reports)."""
    return lab2_graded[0]


def test_correct_submission_gets_all_autograded_points(correct, results_schema, lab2_rubric):
    jsonschema.validate(correct.json, results_schema)
    assert correct.json["score"] == correct.json["extra_data"]["max_score"] == lab2_rubric.autograded_points
    # Only notebook evidence may fail here: the notebook's ResNet-18 claim is 15 points off the
    # measured accuracy (tests/test_report.py asserts the flag); a claim costs no points.
    evidence = ("notebook_outputs", "claims")
    failed = [
        t["name"]
        for t in correct.json["tests"]
        if t.get("status") == "failed" and t["extra_data"]["kind"] not in evidence
    ]
    assert failed == []
    assert correct.test("task1.accuracy")["score"] == 20
    assert correct.test("task2.accuracy")["score"] == 20


def test_measured_values_reach_extra_data(correct, lab2_rubric):
    for task in ("task1", "task2"):  # the references' counts, the first the rubric accepts (test_labs.py)
        measured = correct.test(f"{task}.counts")["extra_data"]
        pinned = lab2_rubric.item(f"{task}.counts").options
        assert (measured["params"], measured["macs"]) == (pinned["params"][0], pinned["macs"][0])
    counts2 = correct.test("task2.counts")["extra_data"]
    assert counts2["flops"] == 2 * 555_422_720  # FlopCounterMode: 2 x conv+linear MACs
    acc = correct.test("task1.accuracy")["extra_data"]
    assert acc["accuracy"] > 0.8 and acc["tier"] == ">80%"
    assert set(acc["per_class"]) == {
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    }
    assert acc["normalization"]["source"].startswith("transforms.Normalize in StudentID_lab2.ipynb cell 2")
    assert acc["weights"] == "simple_cnn.pth"


def test_report_is_manual_with_its_points(correct):
    report = correct.test("report")
    assert "score" not in report and "max_score" not in report
    assert report["extra_data"]["manual"] is True and report["extra_data"]["max_points"] == 60
    assert "StudentID_lab2.pdf" in report["output"]


def test_provenance_records_tier_versions_and_hashes(correct):
    extra = correct.json["extra_data"]
    assert extra["sandbox_tier"] == "A"
    prov = extra["provenance"]
    assert prov["versions"]["torch"].startswith("2.14.1")
    assert prov["versions"]["ultralytics-thop"] == "2.0.18"
    assert len(prov["submission_files"]["simple_cnn.pth"]) == 64
    assert prov["dataset"]["official"] is False and "test_batch" in prov["dataset"]["files"]
    assert prov["worker"]["uid"] != 0


def test_markdown_report_shows_scores_and_per_class(correct):
    md = correct.markdown
    assert "Autograded score: 40 / 40" in md
    assert "| Class | Accuracy |" in md and "| truck |" in md
    assert (correct.out / "report.html").read_text().count("<tr>") >= 10


@pytest.fixture(scope="module")
def capped_root(tmp_path_factory):
    """A test split where 25% of images are pure noise: ~77% is the best reachable."""
    return data.make_cifar(tmp_path_factory.mktemp("capped"), train=10, test=400, impossible=0.25, seed=3)


def test_tiers_follow_measured_accuracy(tmp_path, trained, capped_root, lab2_rubric):
    from reference.lab2.simple_cnn import SimpleCNN

    rubric = grading.only(lab2_rubric, "task1")
    good = submissions.write_lab2(tmp_path / "good", trained["simple"], None, resnet_source="")
    graded = grading.run(good, rubric, capped_root, tmp_path / "out-good")
    item = graded.test("task1.accuracy")
    assert 0.70 < item["extra_data"]["accuracy"] < 0.80
    assert item["score"] == 16 and item["extra_data"]["tier"] == ">70%"

    torch.manual_seed(0)
    untrained = submissions.write_lab2(
        tmp_path / "untrained", SimpleCNN().state_dict(), None, resnet_source=""
    )
    graded = grading.run(untrained, rubric, capped_root, tmp_path / "out-untrained")
    item = graded.test("task1.accuracy")
    assert item["score"] == 0 and item["extra_data"]["accuracy"] < 0.3
    assert "below the lowest tier (>60%)" in item["output"]


def test_rubric_points_are_the_handouts():
    """40 autograded points, as the handout says (test_labs.py ties the counts to the reference)."""
    assert load("lab2-resnet18-cifar10").autograded_points == 40
