"""``autograder check`` gives the grader's verdicts, item by item, for every item
that does not need the hidden test split, and measures the checkpoint on the
student's validation split instead."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import grading, labs

from autograder import selfcheck
from autograder.checks import KINDS
from autograder.cli import main
from autograder.data import load_split
from autograder.rubric import load
from reference.lab4.fashion_cnn import NORMALIZE, FashionCNN

LAB4 = labs.TEMPLATES / "lab4-cnn-fashion-mnist"


@pytest.fixture(scope="module")
def both(tmp_path_factory, fashion_root, lab4_trained):
    """One lab 4 folder, graded by the grader (test split) and self-checked (train data)."""
    tmp = tmp_path_factory.mktemp("selfcheck")
    # a good model, but the notebook shows one plot of two: some items pass, one fails
    folder, _ = labs.lab4_submission(tmp / "lab4", lab4_trained, fashion_root, plots=1)
    (folder / ".rubric").write_text("lab4-cnn-fashion-mnist\n")
    (folder / "data").symlink_to(fashion_root / "FashionMNIST", target_is_directory=True)  # ignored
    rubric = load("lab4-cnn-fashion-mnist")
    graded = grading.run(folder, rubric, fashion_root, tmp / "out")
    checked = selfcheck.run(folder, selfcheck.find_rubric(folder, None), fashion_root)
    model = FashionCNN()
    model.load_state_dict(lab4_trained)
    return model, graded, checked


@pytest.mark.slow  # grades and self-checks lab 4 with trained weights
def test_self_check_agrees_with_the_grader_item_by_item(both):
    _, graded, checked = both
    rows = {r.id: r for r in checked.rows}
    visible = [i for i in graded.result.items if not KINDS[i.kind].hidden]
    assert {i.kind for i in visible} >= {"files", "spec", "forward", "counts", "notebook", "notebook_outputs"}
    for item in visible:
        assert rows[item.id].verdict == ("pass" if item.passed else "fail"), item.id
        assert rows[item.id].why == item.message
    assert rows["notebook.outputs"].verdict == "fail" and "found 1, need 2" in rows["notebook.outputs"].why
    assert checked.failed == [rows["notebook.outputs"]]
    hidden = [i for i in graded.result.items if KINDS[i.kind].hidden]
    assert {rows[i.id].verdict for i in hidden} == {"later"}


@pytest.mark.slow  # grades and self-checks lab 4 with trained weights
def test_self_check_measures_the_validation_split(both, fashion_root):
    model, graded, checked = both
    split = load_split(fashion_root, "fashion_mnist", train=True)
    val = slice(len(split.labels) - len(split.labels) // 10, None)  # the last 10% (200 of 2,000)
    x = (
        torch.from_numpy(split.images[val])
        .float()
        .div(255)
        .sub(NORMALIZE["mean"][0])
        .div(NORMALIZE["std"][0])
    )
    with torch.no_grad():
        expected = float(np.mean(model.eval()(x).argmax(1).numpy() == split.labels[val]))
    facts = checked.validation["task1.accuracy"]
    assert facts["accuracy"] == pytest.approx(expected, abs=1e-6) and facts["images"] == 200
    assert "200 of the last 200 training images" in facts["split"]
    assert "validation accuracy" in {r.id: r for r in checked.rows}["task1.accuracy"].why
    assert graded.test("task1.accuracy")["extra_data"]["images"] == 300  # the grader: the test split


@pytest.mark.slow  # grades and self-checks lab 4 with trained weights
def test_without_bubblewrap_the_check_runs_from_python_and_says_so(both, fashion_root):
    """Colab, a laptop: no bubblewrap. ``autograder.check(...)`` in a notebook cell runs the
    student's own code without --allow-unsandboxed, says so in one line, and gives the
    verdicts the sandboxed check gives."""
    _, _, checked = both
    assert checked.result.provenance["sandbox"]["tier"] != "C"  # the control: sandboxed here
    cell = (
        "import json, autograder\n"
        f"report = autograder.check({str(checked.folder)!r}, data_root={str(fashion_root)!r})\n"
        "print('VERDICTS', json.dumps({r.id: r.verdict for r in report.rows}))\n"
    )
    root = Path(__file__).resolve().parent.parent
    env = os.environ | {"PATH": "/nonexistent", "PYTHONPATH": str(root), "COLUMNS": "200"}  # no bwrap
    env.pop("AUTOGRADER_SANDBOX_TIER", None)
    done = subprocess.run([sys.executable, "-c", cell], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    notes = [line for line in done.stdout.splitlines() if "no sandbox here" in line]
    assert notes == [
        "note: no sandbox here (bubblewrap (bwrap) is not installed): your code ran as a plain process, "
        "which is fine for checking your own work; the grader runs it sandboxed"
    ]
    assert "allow-unsandboxed" not in done.stdout + done.stderr
    assert "Same checks as the grader;" in done.stdout
    verdicts = json.loads(done.stdout.split("VERDICTS ", 1)[1])
    assert verdicts == {r.id: r.verdict for r in checked.rows}


def test_check_command_on_the_untouched_template(capsys, fashion_root, monkeypatch):
    """A student who has written nothing yet is told what is missing, from the template's own folder."""
    monkeypatch.setenv("AUTOGRADER_DATA", str(fashion_root))
    monkeypatch.setenv("COLUMNS", "200")
    status = main(["check", str(LAB4)])
    out = capsys.readouterr().out
    assert status == 1
    assert "FashionCNN() failed at fashion_cnn.py line" in out and "NotImplementedError" in out
    assert "missing: trained weights (fashion_cnn.pth)" in out
    assert "was saved without running any cell" in out
    assert "UW Lab 4" in out and "checks pass; fix the" in out


def test_check_without_a_rubric_says_how(tmp_path, capsys):
    (tmp_path / "model.py").write_text("x = 1\n")
    assert main(["check", str(tmp_path)]) == 2
    assert "pass --rubric ID" in capsys.readouterr().err


def test_errors_in_a_notebook_cell_point_at_that_cell():
    """The lab 2 template's SimpleCNN cell raises on line 8 of cell 3: the message must say so,
    though imports before it are wrapped in several lines each when extracted."""
    from autograder.notebook.extract import extract, read_notebook

    template = labs.TEMPLATES / "lab2-resnet18-cifar10" / "StudentID_lab2.ipynb"
    code = extract(read_notebook(template))
    line = next(n for n, text in enumerate(code.text.splitlines(), 1) if "SimpleCNN is not written" in text)
    assert code.locate(line) == "cell 3, line 8"


def test_staging_on_colab_leaves_out_the_drive_sample_data_and_hidden_folders(tmp_path, monkeypatch):
    """``autograder.check()`` in Colab's /content: the mounted Google Drive (the whole drive),
    Colab's sample_data and its .config folder are not the student's submission."""
    content = tmp_path / "content"
    for rel, text in {
        "StudentID_lab2.ipynb": "{}",
        "simple_cnn.py": "import torch\n",
        "sample_data/anscombe.json": "[]",
        "sample_data/mnist_test.csv": "7,0,0\n",
        ".config/gcloud/configurations/config_default": "[core]\n",
        "drive/MyDrive/Colab Notebooks/other_course.ipynb": "{}",
        "data/cifar-10-batches-py/test_batch": "x",
    }.items():
        (content / rel).parent.mkdir(parents=True, exist_ok=True)
        (content / rel).write_text(text)
    drive = content / "drive"
    real_ismount = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: Path(p) == drive or real_ismount(p))
    target = tmp_path / "staged"
    target.mkdir()
    skipped = selfcheck.stage(content, target, [content / "data"])
    assert skipped == [
        "data/ (the dataset)",
        "drive/ (a mounted drive)",
        "sample_data/ (Colab's sample data)",
    ]
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == [
        "StudentID_lab2.ipynb",
        "simple_cnn.py",
    ]


def test_on_colab_a_folder_without_the_notebook_says_where_it_is(tmp_path, monkeypatch):
    from helpers import rubrics

    rubric = rubrics.load_notebook_only(tmp_path)
    folder = tmp_path / "lab2"
    folder.mkdir()
    (folder / "simple_cnn.py").write_text("import torch\n")
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    elsewhere = selfcheck.run(folder, rubric, None)  # the control: a laptop's folder
    assert not [n for n in elsewhere.notes if "Google Drive" in n]
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20261001-060115_RC00")
    report = selfcheck.run(folder, rubric, None)
    rows = {r.id: r for r in report.rows}
    assert rows["notebook.run"].why.startswith("no .ipynb notebook in the submission (found: simple_cnn.py)")
    assert (
        "no notebook in this folder: Colab keeps it in your Google Drive; put a copy here (File → Download "
        "→ Download .ipynb, then upload it, or !cp '/content/drive/MyDrive/Colab Notebooks/NAME.ipynb' "
        "FOLDER/ with the drive mounted) and check again"
    ) in report.notes


def test_on_kaggle_a_folder_without_the_notebook_says_how_to_bring_it(tmp_path, monkeypatch):
    from helpers import rubrics

    rubric = rubrics.load_notebook_only(tmp_path)
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "simple_cnn.py").write_text("import torch\n")
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    assert selfcheck.notebook_hint(staged, rubric) is None  # control: a laptop's folder
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    assert selfcheck.notebook_hint(staged, rubric) == (
        "no notebook in this folder: on Kaggle, download it (File → Download notebook), "
        "upload it beside your files and check again"
    )
    (staged / "StudentID_lab2.ipynb").write_text("{}")
    assert selfcheck.notebook_hint(staged, rubric) is None  # the notebook is there


def test_an_archive_the_grader_does_not_open_is_named_by_the_grader_and_the_self_check(tmp_path, cifar_root):
    """A RAR or 7-Zip hand-in is named with what to do, in results.json and in the self-check
    (which showed none of intake's notes before)."""
    from helpers import grading, rubrics

    rubric = rubrics.load_notebook_only(tmp_path)
    folder = tmp_path / "lab2"
    folder.mkdir()
    (folder / "simple_cnn.py").write_text("import torch\n")
    (folder / "F74001_lab2.rar").write_bytes(b"Rar!\x1a\x07\x01\x00" + bytes(64))
    (folder / "weights.7z").write_bytes(b"7z\xbc\xaf\x27\x1c" + bytes(64))
    todo = "which the grader does not open: hand in a .zip (or the files themselves)"
    said = [f"F74001_lab2.rar is a RAR archive, {todo}", f"weights.7z is a 7-Zip archive, {todo}"]
    graded = grading.run(folder, rubric, cifar_root, tmp_path / "out")
    assert all(f"Note: {note}" in graded.json["output"] for note in said)
    report = selfcheck.run(folder, rubric, None)
    assert all(note in report.notes for note in said)
    for archive in ("F74001_lab2.rar", "weights.7z"):  # the control: a plain hand-in has no such note
        (folder / archive).unlink()
    assert not [n for n in selfcheck.run(folder, rubric, None).notes if "archive" in n]
