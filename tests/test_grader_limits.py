"""What the grader itself spends on student bytes: linear parsers, size and
count caps with one-line messages, and one memory bound per submission.

The grader's own work is bounded by caps it applies before parsing; the tests
assert those caps (how much text reached the parsers, which file was refused
and with what message), each with a control showing the same input is read
when the cap is lifted. The time and memory the grader needs at the caps are
measured by ``benchmarks/grader_limits.py`` (docs/security.md, "Measured limits").
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import tempfile
import zipfile
from pathlib import Path

import nbformat
import pytest
import torch
from helpers import grading, notebooks, rubrics
from nbformat import v4

from autograder.batch import integrity
from autograder.checks import notebook as nbcheck
from autograder.checks.context import Context
from autograder.data.registry import CIFAR10_CLASSES
from autograder.notebook import claims, extract, history, outputs
from autograder.result import CheckFailed
from autograder.sandbox import Sandbox, WorkerFailure, cgroup
from autograder.sandbox.launcher import Job, Limits
from autograder.sandbox.tiers import Tier, TierInfo, detect_tier
from autograder.submission import intake, zip_directory

N = 200_000


@pytest.fixture(scope="module")
def rubric(tmp_path_factory):
    outputs = 'require = [{ find = "flops" }, { find = "test_accuracy" }]'
    return rubrics.load_notebook_only(tmp_path_factory.mktemp("rubric"), outputs)


@contextlib.contextmanager
def safety_limit(seconds: int):
    """A backstop so a regression fails the test instead of hanging the suite (not a timing)."""

    def stalled(*_):
        raise TimeoutError(f"the grader's parsers did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, stalled)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def notebook(*texts: str) -> nbformat.NotebookNode:
    nb = v4.new_notebook()
    for k, text in enumerate(texts, start=1):
        cell = v4.new_code_cell("print(results)", execution_count=k)
        cell.outputs = [notebooks.stream(text)]
        nb.cells.append(cell)
    return nb


def repeat(piece: str, n: int = N) -> str:
    return (piece * (n // len(piece) + 1))[:n]


# Each shape once made a parser rescan the rest of the line from every position:
# 120,000 digits took the FLOPs regex 101 s.
HOSTILE = {
    "digits, then FLOPs": "1" * (N - 6) + " FLOPs",
    "FLOPs words": repeat("flops "),
    "params words": repeat("params "),
    "epoch and spaces": "epoch" + " " * N,
    "loss and spaces": "loss" + " " * N,
    "class and spaces": "class" + " " * N,
    "two classes, many values": repeat("cat 1% dog 2% "),
    "dotted numbers": repeat("1."),
    "split words": repeat("train loss 1 "),
    "history dict without its end": "{'train_loss': [" + repeat("1, "),
    "escape sequence": "\x1b[" + "0" * N,
}


def test_hostile_outputs_reach_the_parsers_capped_and_are_read_in_one_pass():
    nb = notebook("FLOPs: 0.56 G\nTest Accuracy: 84.31%", *HOSTILE.values())
    cells = outputs.cells(nb)
    with safety_limit(60):
        found = claims.read(cells, CIFAR10_CLASSES)
        facts = nbcheck.Facts("lab2.ipynb", cells, found, {}, [])
        counts = {what: nbcheck._count({"find": what}, facts)[0] for what in nbcheck.FINDERS}
        for digits in (tuple(str(d) for d in range(10)),):  # the numeric class finder too
            claims.read(cells, digits)
    # the work the parsers were given: no line over LINE_CAP, no more text than the caps
    lines = [line for cell in cells for line in cell.text_lines]
    assert max(len(line) for line in lines) == outputs.LINE_CAP
    assert sum(len(line) for line in lines) <= outputs.NOTEBOOK_TEXT_CAP
    # what the hostile lines hide stays found
    assert [c.value for c in found.test_accuracy] == [pytest.approx(0.8431)]
    assert counts["flops"] >= 1 and counts["test_accuracy"] == 1


@pytest.mark.slow  # the control: the whole 200,000-character shapes through the parsers
def test_each_hostile_shape_is_read_whole_when_the_line_cap_is_lifted(monkeypatch):
    """The parsers themselves are linear: with no line cap the 200,000-character lines
    are parsed as they are (the backstop fails the test if any shape is quadratic)."""
    monkeypatch.setattr(outputs, "LINE_CAP", 10 * N)
    monkeypatch.setattr(outputs, "TEXT_CAP", 10 * N)
    for name, text in HOSTILE.items():
        cells = outputs.cells(notebook(text))
        assert max(len(line) for line in cells[0].text_lines) >= len(text) - 6, name
        with safety_limit(60):
            found = claims.read(cells, CIFAR10_CLASSES)
            facts = nbcheck.Facts("lab2.ipynb", cells, found, {}, [])
            for what in nbcheck.FINDERS:
                nbcheck._count({"find": what}, facts)
        assert found.test_accuracy == [], name
    assert nbcheck.FLOPS.search(HOSTILE["digits, then FLOPs"])


OLD_FLOPS = re.compile(
    r"\b(?:[gmk]?flops?|[gmk]?macs?|multiply-adds|mult-adds)\b.*?\d|\d.*?\b(?:[gmk]?flops?|[gmk]?macs?)\b",
    re.I,
)
OLD_PARAMS = re.compile(r"\bparam(?:eter)?s?\b.*\d", re.I)


@pytest.mark.parametrize(
    "line",
    [
        "FLOPs: 556.65 M, params: 11.17 M",
        "MACs = 0.56 G",
        "Total multiply-adds (M): 0.65",
        "Total mult-adds (M): 557.88",  # torchinfo's summary
        "0.56 GFLOPs",
        "flops",
        "1 multiply-adds",
        "FLOPs1",
        "Total params: 62,006",
        "Trainable params: 0.1M",
        "parameters",
        "12 params",
        "paramsfoo 3",
    ],
)
def test_the_linear_finders_see_exactly_what_the_old_regexes_saw(line):
    assert nbcheck.FLOPS.search(line) == bool(OLD_FLOPS.search(line))
    assert nbcheck.PARAMS.search(line) == bool(OLD_PARAMS.search(line))


def test_torchinfo_and_ptflops_prints_count_as_flops():
    for line in ("Total mult-adds (M): 557.88", "Computational complexity:       0.56 GMac"):
        assert nbcheck.FLOPS.search(line), line


def test_a_table_cell_too_large_for_a_float_is_not_an_epoch():
    (cell,) = outputs.cells(notebook("epoch  loss\n" + "1" * 400 + "  0.5\n"))
    assert history.cell_runs(cell) == []


def test_outputs_past_the_notebook_text_cap_are_named_in_the_message(
    tmp_path, rubric, cifar_root, monkeypatch
):
    cap = 50_000
    texts = ["Epoch 1/1 - loss: 0.5\n" * 500] * 5 + ["Test Accuracy: 84.31%"]  # 5 x 11,000 characters
    folder = tmp_path / "sub"
    notebooks.write(folder, notebook(*texts), "StudentID_lab2.ipynb")
    cells = outputs.cells(notebook(*texts))  # control: under the real cap, the accuracy print is read
    assert outputs.first_unread(cells) is None
    assert [c.value for c in claims.read(cells, CIFAR10_CLASSES).test_accuracy] == [pytest.approx(0.8431)]
    monkeypatch.setattr(outputs, "NOTEBOOK_TEXT_CAP", cap)
    g = grading.run(folder, rubric, cifar_root, tmp_path / "out")
    assert g.message("notebook.outputs") == (
        "StudentID_lab2.ipynb is missing a FLOPs/MACs print (thop); a test-accuracy print "
        "(0/2 required outputs shown); outputs from cell 5 on were not read: "
        "the notebook prints over 50,000 characters"
    )


# --- notebook size, items, cells and code -------------------------------------------


def big_image_notebook(mib: int) -> nbformat.NotebookNode:
    nb = notebook("Test Accuracy: 84.31%")
    nb.cells[0].outputs.append(v4.new_output("display_data", data={"image/png": "A" * (mib << 20)}))
    return nb


CAPS = {
    "size": (
        "MAX_NOTEBOOK_BYTES",
        1 << 20,
        lambda: big_image_notebook(2),
        "StudentID_lab2.ipynb is 2 MiB; the grader reads notebooks up to 1 MiB: do not print "
        "whole tensors or datasets, keep a few plots, and save it again",
    ),
    "items": (
        "MAX_JSON_ITEMS",
        1000,
        lambda: notebook(*["ok"] * 400),
        "StudentID_lab2.ipynb holds over 1,000 cells, outputs and list entries; the grader reads "
        "notebooks of reasonable size: remove the extra cells and outputs and save it again",
    ),
    "cells": (
        "MAX_CELLS",
        100,
        lambda: notebook(*["ok"] * 150),
        "StudentID_lab2.ipynb has 150 cells; the grader reads notebooks of up to 100 cells",
    ),
    "code": (
        "MAX_CODE_BYTES",
        1 << 20,
        lambda: v4.new_notebook(cells=[v4.new_code_cell("DATA = '" + "0.1 " * 375_000 + "'")]),
        "StudentID_lab2.ipynb holds 1.4 MiB of code; the grader reads up to 1 MiB: "
        "load data from files instead of pasting it into cells",
    ),
}


@pytest.mark.parametrize("cap", CAPS)
def test_a_notebook_over_a_cap_fails_its_items_with_the_cap_named(
    cap, tmp_path, rubric, cifar_root, monkeypatch
):
    name, value, build, message = CAPS[cap]
    folder = tmp_path / "sub"
    notebooks.write(folder, build(), "StudentID_lab2.ipynb")
    assert extract.read_notebook(folder / "StudentID_lab2.ipynb").cells  # control: read under the real cap
    monkeypatch.setattr(extract, name, value)
    g = grading.run(folder, rubric, cifar_root, tmp_path / "out")
    for item in ("notebook.run", "notebook.outputs"):
        assert g.message(item) == message


def test_a_gigabyte_notebook_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = tmp_path / "lab2.ipynb"
    with path.open("wb") as handle:
        handle.truncate(1 << 30)  # sparse: a 1 GiB file without the disk space
    monkeypatch.setattr(Path, "open", lambda *a, **k: pytest.fail("the file was opened"))
    with pytest.raises(extract.NotebookError, match=r"^lab2.ipynb is 1,024 MiB; the grader reads"):
        extract.read_notebook(path)


def test_a_notebook_of_too_many_cells_is_refused_and_extraction_stays_linear(tmp_path):
    cells = [
        {"cell_type": "code", "id": f"c{k}", "metadata": {}, "execution_count": None, "outputs": []}
        | {"source": f"def f{k}():\n    return {k}"}
        for k in range(10_000)
    ]
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}
    path = tmp_path / "lab2.ipynb"
    path.write_text(json.dumps(nb))
    with pytest.raises(extract.NotebookError) as refused:
        extract.read_notebook(path)
    assert (
        str(refused.value) == "lab2.ipynb has 10,000 cells; the grader reads notebooks of up to 2,000 cells"
    )
    # extraction itself, on every one of those cells, is one pass: the line map stays exact
    with safety_limit(120):
        code = extract.extract(nbformat.from_dict(nb))
    assert code.cells == 10_000
    lines = code.text.splitlines()
    for k in (0, 1, 5_000, 9_999):
        line = lines.index(f"def f{k}():") + 1
        assert code.locate(line) == f"cell {k + 1}, line 1"
        assert code.locate(line + 1) == f"cell {k + 1}, line 2"


def test_a_notebook_is_parsed_once_per_submission_not_once_per_task(tmp_path, lab2_rubric, monkeypatch):
    """Lab 2 has two tasks; both look for their model in the same notebook (each gets its
    own module, assembled from the one parse: they differ in the imports they keep)."""
    folder = tmp_path / "sub"
    notebooks.write(folder, notebooks.runnable(), "StudentID_lab2.ipynb")
    root = tmp_path / "job"
    job = Job(root, *(root / n for n in ("submission", "extracted", "inputs", "out", "lib")))
    sub = intake(folder, job.submission)
    ctx = Context(lab2_rubric, sub, Sandbox(TierInfo(Tier.C, "test"), job, Limits(None, 1)), None, "cpu")
    calls = []
    real = extract.parse
    monkeypatch.setattr("autograder.checks.context.notebooks.parse", lambda nb: calls.append(1) or real(nb))
    for task in lab2_rubric.tasks.values():
        assert [s.label for s in ctx.models.sources(task)] == ["StudentID_lab2.ipynb"]
    assert len(lab2_rubric.tasks) == 2 and len(calls) == 1


def _context(folder: Path, root: Path, rubric) -> Context:
    job = Job(root, *(root / n for n in ("submission", "extracted", "inputs", "out", "lib")))
    sandbox = Sandbox(TierInfo(Tier.C, "t"), job, Limits(None, 1))
    return Context(rubric, intake(folder, job.submission), sandbox, None, "cpu")


def test_a_python_file_over_the_code_cap_is_named_and_not_parsed(tmp_path, lab2_rubric):
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "simple_cnn.py").write_text("WEIGHTS = [" + "0.1, " * 500_000 + "]\n")
    ctx = _context(folder, tmp_path / "job", lab2_rubric)
    task = next(iter(lab2_rubric.tasks.values()))
    assert ctx.models.sources(task) == []
    with pytest.raises(Exception, match=r"simple_cnn.py is over 2 MiB, more than the grader reads as Python"):
        ctx.models.build(task.id)


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("class SimpleCNN(nn.Module)\n    pass\n", "line 1 has a syntax error: expected ':'"),  # control
        ("import torch\x00\n", "holds a NUL byte, which Python cannot read: save it again as plain text"),
        (
            "x = " + "-" * 200_000 + "1\n",
            "nests expressions too deeply for Python to read: write them as several statements",
        ),
    ],
    ids=["syntax_error", "nul_byte", "nested_too_deep"],
)
def test_a_python_file_python_cannot_read_is_named_with_why(code, why, tmp_path, lab2_rubric):
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "simple_cnn.py").write_text(code)
    ctx = _context(folder, tmp_path / "job", lab2_rubric)
    task = next(iter(lab2_rubric.tasks.values()))
    with pytest.raises(CheckFailed, match=re.escape(f"; simple_cnn.py {why}")):
        ctx.models.build(task.id)


def test_a_notebook_cell_python_cannot_read_leaves_the_transform_search_to_the_model_cells(
    tmp_path, lab2_rubric
):
    folder = tmp_path / "sub"
    nb = notebooks.runnable()
    nb.cells.insert(1, v4.new_code_cell("print('saved by a broken editor')\x00"))
    notebooks.write(folder, nb, "StudentID_lab2.ipynb")
    ctx = _context(folder, tmp_path / "job", lab2_rubric)
    source = ctx.models.sources(next(iter(lab2_rubric.tasks.values())))[0]
    text, locate = ctx.models.full_text(source)
    assert text == source.text and locate(1) == source.where(1)


# --- batch fingerprints of checkpoints ---------------------------------------------


def test_a_checkpoint_of_too_many_tensors_is_hashed_as_bytes_without_listing_it(tmp_path, monkeypatch):
    path = tmp_path / "model.pth"
    torch.save({f"w{k}": torch.zeros(1) for k in range(120)}, path)
    assert integrity.weights_digest(path).startswith("tensors:")  # control: under the cap
    monkeypatch.setattr(integrity, "MAX_CHECKPOINT_ENTRIES", 100)
    monkeypatch.setattr(integrity.zipfile, "ZipFile", lambda *a, **k: pytest.fail("the zip was listed"))
    assert integrity.weights_digest(path).startswith("file:")


@pytest.mark.slow  # writes a zip of 70,000 members
def test_the_declared_member_count_is_read_from_the_end_record(tmp_path):
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for k in range(70_000):  # past 65,535: the count lives in the zip64 end record
            zf.writestr(f"archive/data/{k}", b"")
    assert zip_directory(path).entries == 70_000
    assert integrity.weights_digest(path).startswith("file:")


# --- memory: one bound per submission --------------------------------------------------

# Three children, each mapping 1400 MiB (address space, untouched: RLIMIT_AS counts it, the
# machine does not have to), all alive at once: 4200 MiB together under a 4 GiB cap.
HOG = """
import mmap, subprocess, sys
SIZE = 1400 << 20
CHILD = "import mmap, time; m = mmap.mmap(-1, %d); print('mapped', flush=True); time.sleep(60)" % SIZE
children = [subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE) for _ in range(3)]
mapped = [c.stdout.readline().strip() == b"mapped" for c in children]
for c in children:
    c.kill()
raise RuntimeError("%d children mapped %d MiB each at once" % (sum(mapped), SIZE >> 20))
"""


def import_hog(tier: str, single_process: bool) -> tuple[str, str]:
    root = Path(tempfile.mkdtemp())
    root.chmod(0o711)
    job = Job(root, *(root / n for n in ("submission", "extracted", "inputs", "out", "lib")))
    box = Sandbox(TierInfo(Tier(tier), "test"), job, Limits(4 << 30, 1, single_process=single_process))
    try:
        box.request("hello", 300)
        (job.submission / "hog.py").write_text(HOG)
        (job.submission / "hog.py").chmod(0o644)
        path = "/sandbox/submission/hog.py" if tier == "A" else str(job.submission / "hog.py")
        with pytest.raises(WorkerFailure) as failed:
            box.request("load_source", 300, name="hog", path=path)
        return failed.value.message, box.provenance()["limits"]["memory"]
    finally:
        box.close()


@pytest.mark.slow
@pytest.mark.skipif(cgroup.detect().parent is not None, reason="a cgroup sums the processes' memory here")
@pytest.mark.parametrize("tier", ["A", "B"])
def test_children_cannot_add_their_memory_up_past_the_submissions_cap(tier):
    if detect_tier(False).tier is not Tier.A and tier == "A" or tier == "B" and os.geteuid() != 0:
        pytest.skip(f"tier {tier} is not available here")
    message, memory = import_hog(tier, single_process=True)
    assert message == (
        "PermissionError: [Errno 1] Operation not permitted (the sandbox runs your code in one "
        "process: do not start subprocesses or DataLoader workers)"
    )
    assert memory == "RLIMIT_AS 4096 MiB on the worker, which may start no process"
    # control: with processes allowed, per-process caps add up past the 4 GiB the submission has
    message, memory = import_hog(tier, single_process=False)
    assert message == "RuntimeError: 3 children mapped 1400 MiB each at once"
    assert memory == "RLIMIT_AS 4096 MiB per process"


def test_a_model_cell_python_cannot_read_is_named_when_the_model_is_not_found(tmp_path, lab2_rubric):
    """A notebook whose SimpleCNN cell has a typo: the student is told which cell and line Python
    could not read, not only that no SimpleCNN was found."""
    model_cell = (Path(__file__).resolve().parent.parent / "reference" / "lab2" / "simple_cnn.py").read_text()
    task = next(iter(lab2_rubric.tasks.values()))
    for name, cell, found in [
        ("control", model_cell, True),
        ("typo", model_cell.replace("class SimpleCNN(nn.Module):", "class SimpleCNN(nn.Module)"), False),
    ]:
        folder = tmp_path / name
        notebooks.write(folder, notebooks.runnable(cell), "StudentID_lab2.ipynb")
        ctx = _context(folder, tmp_path / f"job-{name}", lab2_rubric)
        assert ("class SimpleCNN" in ctx.models.sources(task)[0].text) is found
    line = model_cell.splitlines().index("class SimpleCNN(nn.Module):") + 1
    with pytest.raises(CheckFailed) as failed:
        ctx.models.build(task.id)
    assert str(failed.value).startswith("no class or function named SimpleCNN found")
    assert str(failed.value).endswith(
        f"; StudentID_lab2.ipynb cell 6: line {line} has a syntax error: expected ':' "
        "(the grader leaves out a cell Python cannot read)"
    )
