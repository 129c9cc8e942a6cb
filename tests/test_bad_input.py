"""Every kind of broken Lab 2 submission yields a failed item with a one-line
message a student can act on, and every other item is still graded."""

from __future__ import annotations

import dataclasses
import io
import zipfile

import nbformat
import pytest
import torch
from helpers import grading, submissions

from reference.lab2 import resnet18 as ref_resnet


@pytest.fixture(scope="module")
def task1(lab2_rubric):
    return grading.only(lab2_rubric, "task1", timeout=60)


@pytest.fixture(scope="module")
def task2_structure(lab2_rubric):
    rubric = grading.only(lab2_rubric, "task2", timeout=60)
    rubric.items = [i for i in rubric.items if i.id != "task2.accuracy"]
    return rubric


def resnet_source(transform) -> str:
    return transform(open(ref_resnet.__file__).read())


@pytest.mark.slow  # trains the reference ResNet-18 (the session's trained fixture)
def test_missing_resnet_fails_task2_only(tmp_path, trained, cifar_root, lab2_rubric):
    rubric = grading.only(lab2_rubric, "files", "task1", "task2")
    folder = submissions.write_lab2(tmp_path / "s", trained["simple"], None, resnet_source="")
    graded = grading.run(folder, rubric, cifar_root, tmp_path / "out")
    assert graded.message("files").startswith("missing: resnet18.py (resnet18.py)")
    for item in ("task2.make_layer", "task2.forward", "task2.counts"):
        assert graded.message(item).startswith("no class or function named ResNet18 found")
        assert "expected in resnet18.py" in graded.message(item)
    assert graded.message("task2.accuracy").startswith("no class or function named ResNet18")
    assert graded.test("task1.accuracy")["score"] == 20
    assert graded.json["score"] == 20


@pytest.mark.slow  # trains the reference ResNet-18 (the session's trained fixture)
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no_notebook", "no class or function named SimpleCNN found"),
        ("no_weights", "no weights file for SimpleCNN: expected one named like simple_cnn*.pth"),
        ("bad_json", "StudentID_lab2.ipynb is not valid JSON (line 1, column 35: Expecting"),
        ("no_class", "no class or function named SimpleCNN found"),
    ],
)
def test_missing_or_unreadable_task1_material(case, expected, tmp_path, trained, cifar_root, task1):
    notebook = (
        submissions.lab2_notebook(simple_cnn="print('forgot the model')") if case == "no_class" else None
    )
    folder = submissions.write_lab2(
        tmp_path / "s",
        None if case == "no_weights" else trained["simple"],
        None,
        notebook=notebook,
        resnet_source="",
    )
    if case == "no_notebook":
        (folder / "StudentID_lab2.ipynb").unlink()
    if case == "bad_json":
        (folder / "StudentID_lab2.ipynb").write_text('{"cells": [ {"cell_type": "code", ')
    graded = grading.run(folder, task1, cifar_root, tmp_path / "out")
    assert expected in graded.message("task1.accuracy")
    assert graded.json["score"] == 0
    if case != "no_weights":
        assert expected in graded.message("task1.spec")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda s: s.replace(
                "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n        x = self.stem(x)",
                "    def forward(self, x: torch.Tensor) -> torch.Tensor\n        x = self.stem(x)",
            ),
            "resnet18.py line {line} has a syntax error: expected ':'",
        ),
        (
            lambda s: s.replace("import torch\n", "import torch\nfrom torchsummary import summary\n", 1),
            "importing resnet18.py line {line} failed: ModuleNotFoundError: No module named 'torchsummary'",
        ),
        (
            lambda s: s.replace(
                "self.layer1 = self.make_layer(BasicBlock, 64, 2, stride=1)",
                "self.layer1 = self.make_layer(BasicBlock, 64, 2, stride=1)\n        1 / 0",
            ),
            "ResNet18() failed at resnet18.py line {line}: ZeroDivisionError: division by zero",
        ),
    ],
    ids=["syntax_error", "missing_import", "constructor_raises"],
)
def test_broken_resnet_code_is_located(edit, expected, tmp_path, cifar_root, task2_structure):
    original, broken = resnet_source(lambda s: s), resnet_source(edit)
    line = next(
        n
        for n, (a, b) in enumerate(zip(original.splitlines(), broken.splitlines(), strict=False), 1)
        if a != b
    )
    expected = expected.format(line=line)
    folder = submissions.write_lab2(tmp_path / "s", None, None, resnet_source=broken)
    graded = grading.run(folder, task2_structure, cifar_root, tmp_path / "out")
    assert expected in graded.message("task2.make_layer")
    assert expected in graded.message("task2.forward")


@pytest.mark.slow  # two ResNet-18 grades (the broken-ResNet cases keep make_layer quick)
def test_missing_and_hardcoded_make_layer(tmp_path, cifar_root, task2_structure):
    def graded_with(name: str, edit) -> grading.Graded:
        """The reference resnet18.py after ``edit``, graded in ``tmp_path / name``."""
        folder = submissions.write_lab2(tmp_path / name, None, None, resnet_source=resnet_source(edit))
        return grading.run(folder, task2_structure, cifar_root, tmp_path / f"out-{name}")

    graded = graded_with("a", lambda s: s.replace("make_layer", "build_stage"))
    assert graded.message("task2.make_layer").startswith("ResNet18 has no make_layer method")
    assert graded.test("task2.forward")["status"] == "passed"

    graded = graded_with("b", lambda s: s.replace("[stride] + [1] * (num_blocks - 1)", "[stride, 1]"))
    assert "make_layer(block, 512, 3, 1) built 2 blocks instead of 3: num_blocks seems to be ignored" in (
        graded.message("task2.make_layer")
    )


@pytest.mark.slow  # grades the ResNet-18 structure items
def test_make_layer_probes_at_the_input_size_the_model_runs_at(tmp_path, cifar_root, task2_structure):
    """A task whose accepted input size is not the dataset's (``input_sizes``): make_layer
    probes the stages at the size the model is graded at, as forward does, not at 32x32."""
    task = dataclasses.replace(task2_structure.tasks["task2"], input_sizes=[64])
    rubric = dataclasses.replace(task2_structure, tasks={**task2_structure.tasks, "task2": task})
    folder = submissions.write_lab2(tmp_path / "s", None, None)
    graded = grading.run(folder, rubric, cifar_root, tmp_path / "out")
    assert graded.test("task2.forward")["output"].startswith("input (8, 3, 64, 64) -> output (8, 10)")
    assert graded.test("task2.make_layer")["status"] == "passed"
    details = graded.test("task2.make_layer")["output"]
    assert "layer1: 2 x BasicBlock, output (1, 64, 64, 64)" in details
    assert "layer4: 2 x BasicBlock, output (1, 512, 8, 8)" in details


@pytest.mark.slow  # trains the reference ResNet-18 (the session's trained fixture)
def test_wrong_output_shape_and_misfitting_weights(tmp_path, trained, cifar_root, task1):
    source = submissions.simple_cnn_source().replace(
        "self.fc = nn.Linear(64 * 8 * 8, num_classes)", "self.fc = nn.Linear(64 * 8 * 8, 100)"
    )
    folder = submissions.write_lab2(
        tmp_path / "s",
        trained["simple"],
        None,
        resnet_source="",
        notebook=submissions.lab2_notebook(simple_cnn=source),
    )
    graded = grading.run(folder, task1, cifar_root, tmp_path / "out")
    assert graded.message("task1.forward") == (
        "SimpleCNN maps input (8, 3, 32, 32) to (8, 100); expected (8, 10)"
    )
    assert graded.message("task1.spec").startswith(
        "SimpleCNN (StudentID_lab2.ipynb): the last layer should be Linear(out_features=10)"
    )
    assert graded.message("task1.accuracy") == (
        "simple_cnn.pth does not fit SimpleCNN: fc.weight has shape (10, 4096), the model expects "
        "(100, 4096); fc.bias has shape (10,), the model expects (100,)"
    )


@pytest.mark.slow  # trains the reference ResNet-18 (the session's trained fixture)
@pytest.mark.parametrize(
    ("wrap", "expected"),
    [
        (
            lambda sd: {f"module.{k}": v for k, v in sd.items()},
            "note: stripped the 'module.' prefix from every key",
        ),
        (
            lambda sd: {"epoch": 7, "model_state_dict": sd, "best_acc": 0.91},
            "note: used the 'model_state_dict' entry of the checkpoint dict",
        ),
    ],
    ids=["dataparallel_prefix", "wrapped_dict"],
)
def test_common_checkpoint_shapes_are_accepted_and_said(wrap, expected, tmp_path, trained, cifar_root, task1):
    folder = submissions.write_lab2(tmp_path / "s", wrap(trained["simple"]), None, resnet_source="")
    graded = grading.run(folder, task1, cifar_root, tmp_path / "out")
    item = graded.test("task1.accuracy")
    assert item["score"] == 20
    assert expected in item["output"]


def _checkpoint_bytes(kind: str, trained) -> bytes:
    from reference.lab2.simple_cnn import SimpleCNN

    buffer = io.BytesIO()
    if kind == "whole_model":
        model = SimpleCNN()
        model.load_state_dict(trained["simple"])
        torch.save(model, buffer)
        return buffer.getvalue()
    torch.save(trained["simple"], buffer)
    return b"" if kind == "empty" else buffer.getvalue()[: len(buffer.getvalue()) // 2]


@pytest.mark.slow  # trains the reference ResNet-18 (the session's trained fixture)
@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("whole_model", "simple_cnn.pth is a whole pickled object (it contains a pickled "),
        ("empty", "simple_cnn.pth is empty (0 bytes)"),
        ("truncated", "simple_cnn.pth is not a readable PyTorch checkpoint"),
    ],
)
def test_unusable_checkpoints(kind, expected, tmp_path, trained, cifar_root, task1):
    folder = submissions.write_lab2(tmp_path / "s", None, None, resnet_source="")
    (folder / "simple_cnn.pth").write_bytes(_checkpoint_bytes(kind, trained))
    graded = grading.run(folder, task1, cifar_root, tmp_path / "out")
    message = graded.message("task1.accuracy")
    assert message.startswith(expected)
    if kind == "whole_model":
        assert message.endswith("save the weights with torch.save(model.state_dict(), PATH)")
    assert graded.test("task1.spec")["status"] == "passed"


@pytest.mark.slow  # trains the reference ResNet-18 (the session's trained fixture)
def test_zip_inside_zip_and_ambiguous_weights_name(tmp_path, trained, cifar_root, task1):
    folder = submissions.write_lab2(
        tmp_path / "s", trained["simple"], None, resnet_source="", simple_name="best_model.pth"
    )
    inner = submissions.zip_folder(folder, tmp_path / "StudentID_lab2.zip")
    outer = tmp_path / "submission.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.write(inner, "StudentID_lab2.zip")
    graded = grading.run(outer, task1, cifar_root, tmp_path / "out")
    item = graded.test("task1.accuracy")
    assert item["score"] == 20
    assert (
        item["extra_data"]["weights_chosen"] == "best_model.pth matched to SimpleCNN by its keys and shapes"
    )
    assert "Note: unpacked the zip inside the submission: StudentID_lab2.zip" in graded.json["output"]


@pytest.mark.slow  # trains the reference ResNet-18 (the session's trained fixture)
def test_hang_and_crash_fail_alone(tmp_path, trained, cifar_root, lab2_rubric):
    rubric = grading.only(lab2_rubric, "task1", "task2", timeout=8)
    rubric.items = [i for i in rubric.items if i.id not in ("task2.accuracy", "task2.counts")]
    source = submissions.simple_cnn_source().replace(
        "        x = self.features(x)\n",
        "        if x.shape[0] == 8:\n            import os\n            os._exit(3)\n"
        "        while x.shape[0] == 1:\n            pass\n        x = self.features(x)\n",
    )
    folder = submissions.write_lab2(
        tmp_path / "s", trained["simple"], None, notebook=submissions.lab2_notebook(simple_cnn=source)
    )
    graded = grading.run(folder, rubric, cifar_root, tmp_path / "out")
    assert graded.message("task1.spec") == (
        "running SimpleCNN on a probe input did not finish within the 8 s time limit"
    )
    assert graded.message("task1.forward").startswith(
        "SimpleCNN forward pass crashed the worker: the worker process ended with exit status 3"
    )
    assert graded.test("task2.make_layer")["status"] == "passed"
    assert graded.test("task2.forward")["status"] == "passed"
    assert graded.result.provenance["worker_starts"] >= 3


@pytest.mark.slow  # trains the reference ResNet-18 (the session's trained fixture)
def test_notebook_cells_that_train_are_not_run(tmp_path, trained, cifar_root, task1):
    """Extraction keeps definitions only: the 100-epoch training cell never runs."""
    nb = submissions.lab2_notebook(extra_cells=["import time\ntime.sleep(3600)"])
    folder = submissions.write_lab2(tmp_path / "s", trained["simple"], None, notebook=nb, resnet_source="")
    nbformat.validate(nb)
    graded = grading.run(folder, task1, cifar_root, tmp_path / "out")
    assert graded.json["score"] == 20
    assert graded.result.seconds < 60


def test_a_file_that_is_not_a_zip_uploaded_as_zip_is_called_that(tmp_path):
    """A RAR (or a cut-short upload) renamed .zip: not "contains no files"."""
    from autograder.submission import SubmissionError, intake

    rar = b"Rar!\x1a\x07\x00" + bytes(200)
    upload = tmp_path / "StudentID_lab2.zip"
    upload.write_bytes(rar)
    with pytest.raises(SubmissionError) as caught:
        intake(upload, tmp_path / "staged")
    assert str(caught.value) == (
        "StudentID_lab2.zip is not a valid zip file (another kind of archive, or cut short?): "
        "zip your lab folder again and upload that"
    )
    folder = tmp_path / "lab"  # the same file inside a submission folder is left out with a note
    folder.mkdir()
    (folder / "simple_cnn.py").write_text("x = 1\n")
    (folder / "data.zip").write_bytes(rar)
    staged = intake(folder, tmp_path / "staged2")
    assert "left out data.zip: not a valid zip file" in staged.notes
    assert [p.as_posix() for p in staged.files] == ["simple_cnn.py"]
