"""Student text on its way out (``autograder/untrusted.py``): every output form
a TA or student opens, fed a hostile-text corpus, and each attack shown
working with the encoder bypassed.

The corpus is one real submission graded through the CLI: a file name that
is an SVG with ``onload``, another carrying terminal escapes and a newline, a
notebook error whose name and value are HTML, Markdown and escape sequences,
a layer class named like an SVG tag and a layer attribute named like an IMG
tag, and an import-time print of a ``<script>``. Every HTML payload sets
``document.title`` to ``PWNED`` when it runs; headless Chromium says whether
it did."""

from __future__ import annotations

import ast
import contextlib
import csv
import dataclasses
import io
import json
import os
import re
import shutil
import subprocess
import traceback
import unicodedata
import zipfile
from pathlib import Path

import jinja2
import jsonschema
import nbformat
import pytest
from helpers import moodle
from nbformat import v4
from rich.console import Console

from autograder import cli, preprocess, submission, untrusted
from autograder.batch import gradebook as gb
from autograder.batch import moodle as batch_moodle
from autograder.batch import runner, summary
from autograder.batch.grades import FinalGrade
from autograder.checks import KINDS
from autograder.grade import grade
from autograder.notebook import extract, outputs
from autograder.notebook.extract import NotebookError, parse_notebook
from autograder.report import write
from autograder.report.gradescope import results_json
from autograder.result import Outcome
from autograder.rubric import load
from autograder.sandbox import launcher
from autograder.selfcheck import CheckRow, SelfCheck
from autograder.selfcheck import render as check_render
from autograder.submission import SubmissionError, intake

CHROMIUM = shutil.which("chromium")
RUBRIC = Path(__file__).parent / "rubrics" / "hostile-text.toml"

# HTML payloads: each sets the page title when it runs (no "." inside: module names forbid it)
SCRIPT = "<script>document.title='PWNED'</script>"
IMG = "<img src=x onerror=\"document['title']='PWNED'\">"
SVG = "<svg onload=\"document['title']='PWNED'\">"
MARKDOWN = "![pixel](http://evil.example/p.png) [click](https://evil.example/x) www.evil.example <b>bold</b>"
# terminal payloads: clear the screen, set the window title, return to column 0, fake lines
CLEAR, TITLE = "\x1b[2J\x1b[H", "\x1b]0;pwned\x07"
FAKE = "\r  ok   9     Fake item passed, 40 of 40 points\n  ok   10    Another fake line"
CONTROL_BYTES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

MODEL = f"""\
import torch
from torch import nn

print({SCRIPT!r} + {TITLE!r})
Evil = type({SVG!r}, (nn.ReLU,), {{}})
ATTR = {IMG!r}


class SimpleCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.add_module(ATTR, Evil())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = getattr(self, ATTR)(self.bn1(self.conv1(x)))
        return self.fc(torch.flatten(self.pool(x), 1))
"""


def hostile_notebook() -> nbformat.NotebookNode:
    nb = v4.new_notebook()
    nb.cells = [
        v4.new_code_cell("import torch", execution_count=1),
        v4.new_code_cell("train()", execution_count=2),
    ]
    nb.cells[1].outputs = [
        v4.new_output("error", ename=IMG + CLEAR + TITLE, evalue=MARKDOWN + FAKE + SCRIPT, traceback=[])
    ]
    return nb


def hostile_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("simple_cnn.py", MODEL)
        zf.writestr("lab.ipynb", nbformat.writes(hostile_notebook()))
        zf.writestr(f"{SVG}.pdf", b"%PDF-1.4\n")
        zf.writestr(f"notes{CLEAR}{TITLE}{FAKE}.pdf", b"%PDF-1.4\n")
    return path


@pytest.fixture(scope="module")
def graded(tmp_path_factory, cifar_root):
    """The corpus graded by ``autograder grade``: its terminal output and its result."""
    tmp = tmp_path_factory.mktemp("hostile-text")
    submission = hostile_zip(tmp / "StudentID_lab2.zip")
    results = []

    def keep(*args, **kwargs):
        results.append(grade(*args, **kwargs))
        return results[-1]

    stdout = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout):
        patch.setattr("autograder.grade.grade", keep)
        status = cli.main(
            [
                "grade",
                str(submission),
                "--rubric",
                str(RUBRIC),
                "--data-root",
                str(cifar_root),
                "--out",
                str(tmp),
            ]
        )
    assert status == 0
    return {"out": tmp, "stdout": stdout.getvalue(), "result": results[0]}


def bypass(loader: jinja2.BaseLoader, markdown: bool = False, **filters) -> jinja2.Environment:
    """The defence off: templates rendered as they were before (no escaping at all)."""
    env = jinja2.Environment(loader=loader, autoescape=False, keep_trailing_newline=True)
    env.filters.update({"md_code": str, "md_fence": str, **filters})
    return env


def title_after_load(page: Path) -> str:
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=3000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r"<title>(.*?)</title>", done.stdout, re.S)
    return found.group(1) if found else ""


def summary_page(result, rubric) -> str:
    student = batch_moodle.Student(
        '=HYPERLINK("http://evil.example","x")', IMG + SCRIPT, "student_id", "x", Path(".")
    )
    grade_ = FinalGrade(auto=1, auto_max=2, manual={}, manual_max=0, feedback=SCRIPT)
    row = summary.StudentRow(
        student, "students/x/report.html", result, grade_, reasons=[f"grader error: {SVG}"]
    )
    meta = {
        "graded_now": 1,
        "from_cache": 0,
        "errors": 0,
        "grader": "test",
        "device": "cpu",
        "tiers": ["A"],
        "finished": "now",
        "manual_points": 0,
    }
    return summary.render(rubric, [row], [], 10.0, meta, [f"ignored {SVG}.zip: not a Moodle submission name"])


# --- the corpus really carries the payloads -----------------------------------------


def test_the_payloads_reach_the_result(graded):
    result = graded["result"]
    spec, files, notebook = (result.item(i) for i in ("task1.spec", "files", "notebook.run"))
    assert SVG in spec.message and any(r.get("name") == IMG for r in spec.data["layers"])
    assert SVG in files.message and "\x1b]0;pwned" in files.message and "\n  ok   10" in files.message
    assert (
        notebook.data["errors"][0]["ename"].startswith(IMG) and SCRIPT in notebook.data["errors"][0]["evalue"]
    )
    assert SCRIPT in result.worker_output


# --- HTML: report.html and the batch summary ---------------------------------------


def test_report_html_shows_every_payload_as_text(graded):
    page = (graded["out"] / "report.html").read_text()
    for payload in (SCRIPT, IMG, SVG):
        assert payload not in page
    assert "&lt;script&gt;document.title=&#39;PWNED&#39;&lt;/script&gt;" in page  # shown, not run
    assert "&lt;svg onload=" in page


def test_summary_html_shows_moodle_names_and_reasons_as_text(graded):
    page = summary_page(graded["result"], load(RUBRIC))
    for payload in (SCRIPT, IMG, SVG):
        assert payload not in page
    assert "&lt;img src=x onerror=" in page


@pytest.mark.slow  # four Chromium page loads: 26 s measured on the shared 2-core machine (load ~17)
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed")
def test_no_script_runs_in_chromium_and_does_with_the_encoder_bypassed(graded, tmp_path, monkeypatch):
    result, rubric = graded["result"], load(RUBRIC)
    pages = {
        "report.html": (graded["out"] / "report.html").read_text(),
        "summary.html": summary_page(result, rubric),
    }
    for name, text in pages.items():
        (tmp_path / name).write_text(text)
        assert title_after_load(tmp_path / name) != "PWNED", name
    # control: the same pages rendered without the encoder run the payloads
    monkeypatch.setattr(untrusted, "jinja_env", bypass)
    raw = {
        "report.html": write.render(result, "report.html.j2"),
        "summary.html": summary_page(result, rubric),
    }
    for name, text in raw.items():
        (tmp_path / f"raw-{name}").write_text(text)
        assert title_after_load(tmp_path / f"raw-{name}") == "PWNED", name


# --- Markdown and Gradescope ---------------------------------------------------------


def test_report_md_has_no_html_links_or_images_from_student_text(graded, monkeypatch):
    md = (graded["out"] / "report.md").read_text()
    assert md.count("\n```") % 2 == 0  # every fenced block is closed where it should be
    prose = re.sub(r"`[^`\n]*`", "", re.sub(r"```.*?```", "", md, flags=re.S))  # code is shown literally
    assert not re.search(r"(?<!\\)<(img|script|svg|b>)", prose)  # every tag's "<" is escaped
    for raw in ("![pixel](", "[click](", "https://evil", "www.evil", "\x1b"):
        assert raw not in prose, raw
    assert r"\!\[pixel\](http:\/\/evil.example/p.png)" in md  # the same text, inert
    assert "| 3 | `ReLU()` | `<svg onload=" in md  # inside a code span: literal, never a tag
    # control: without the encoder, the notebook's error puts an image and a link in report.md
    monkeypatch.setattr(untrusted, "jinja_env", bypass)
    raw_md = write.markdown(graded["result"])
    raw_prose = re.sub(r"`[^`\n]*`", "", re.sub(r"```.*?```", "", raw_md, flags=re.S))
    assert "![pixel](http://evil.example/p.png)" in raw_prose and IMG in raw_prose


def test_gradescope_output_is_plain_text_without_control_bytes(graded, results_schema):
    doc = results_json(graded["result"])
    jsonschema.validate(doc, results_schema)
    assert doc["output_format"] == doc["test_output_format"] == "text"
    texts = [doc["output"], doc["extra_data"]["worker_output"], *(t["output"] for t in doc["tests"])]
    assert all(not CONTROL_BYTES.search(t) for t in texts)
    lines = doc["output"].splitlines()
    assert not any(line.lstrip().startswith("ok   10") for line in lines)  # the newline made no line
    assert SVG in doc["output"]  # text: shown as written, Gradescope does not render it


# --- terminals ------------------------------------------------------------------------


def test_grade_prints_no_control_bytes_and_no_fake_lines(graded):
    out = graded["stdout"]
    assert not CONTROL_BYTES.search(out)
    lines = out.splitlines()
    assert len(lines) == 1 + len(graded["result"].items) + 1  # title, one line per item, where the files are
    assert not any(line.lstrip().startswith(("ok   9", "ok   10")) for line in lines)
    files = next(line for line in lines if "files" in line.split()[:2] or "required files" in line)
    assert "notes ⏎   ok   9     Fake item passed, 40 of 40 points ⏎   ok   10" in files
    # control: the message itself would clear the screen, set the title and add lines
    raw = graded["result"].item("files").message
    assert CLEAR in raw and TITLE in raw and "\n" in raw


def test_batch_progress_lines_show_moodle_names_inert(capsys):
    student = batch_moodle.Student("42", f"Ann{CLEAR}{TITLE}{FAKE}", "participant", "x", Path("."))
    with runner._Progress(total=1, done=0, enabled=True, to_grade=1, from_cache=0) as progress:
        progress.advance(student, {"error": f"crashed{CLEAR}"})
    err = capsys.readouterr().err
    assert not CONTROL_BYTES.search(err) and len(err.splitlines()) == 2
    assert "[1/1] Ann ⏎   ok   9     Fake item passed, 40 of 40 points ⏎   ok   10" in err


def test_self_check_shows_square_brackets_and_no_escapes():
    rubric = load(RUBRIC)
    rows = [
        CheckRow(
            "1",
            "task1.spec",
            "Task 1: [bold]spec[/bold]",
            "fail",
            "0/0",
            f"runs ReLU() [functional] there{CLEAR}{TITLE}",
        )
    ]
    report = SelfCheck(rubric, Path("/lab[red]"), rows, None, notes=["[link=http://evil.example]x[/link]"])
    buffer = io.StringIO()
    check_render(report, Console(file=buffer, width=300, force_terminal=True, emoji=False, highlight=False))
    out = buffer.getvalue()
    assert "runs ReLU() [functional] there" in out and "[bold]spec[/bold]" in out
    assert "[link=http://evil.example]x[/link]" in out and "/lab[red]" in out
    assert (
        "\x1b]0;pwned" not in out and "\x1b[2J" not in out and "\x1b]8;" not in out
    )  # no title, clear, link
    # control: rich applies the same text as markup (the brackets vanish)
    buffer = io.StringIO()
    Console(file=buffer, width=300).print("runs ReLU() [functional] there")
    assert buffer.getvalue().strip() == "runs ReLU()  there"


# --- CSV: the gradebook ------------------------------------------------------------------

FORMULAS = ['=HYPERLINK("evil.example","x")', "@SUM(1+1)", "+2+3", "-2+3"]


def test_gradebook_ids_that_are_formulas_are_never_written(tmp_path):
    folder = tmp_path / "download"
    folder.mkdir()
    for name in [*FORMULAS, "F74001_lab2"]:
        with zipfile.ZipFile(folder / f"{name}.zip", "w") as zf:
            zf.writestr("model.py", "x = 1\n")
    students = batch_moodle.discover(folder, tmp_path / "stage").students
    assert sorted(s.key for s in students) == sorted([*FORMULAS, "F74001"])  # the attack reaches the key
    feedback = "=cmd|' /C calc'!A0 <img src=x onerror=alert(1)>"
    grades = {
        s.key: FinalGrade(auto=1, auto_max=2, manual={}, manual_max=0, feedback=feedback) for s in students
    }
    book = gb.gradebook(students, grades, None, 10.0)
    path = tmp_path / "gradebook.csv"
    gb.write_gradebook(path, book, "Lab 2")
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert rows == [
        ["ID number", "Lab 2", "Lab 2 feedback"],
        ["F74001", "5.00", "'=cmd|' /C calc'!A0 &lt;img src=x onerror=alert(1)&gt;"],
    ]
    for formula in FORMULAS:
        assert any(
            s.startswith(f"{formula} ({formula}): the ID number {formula!r} starts with")
            for s in book.skipped
        )
    # control: a CSV writer puts the same key at the start of a cell, where a spreadsheet runs it
    raw = io.StringIO()
    csv.writer(raw).writerow([FORMULAS[0]])
    assert next(csv.reader(io.StringIO(raw.getvalue())))[0].startswith("=HYPERLINK(")


# --- intake: names the file system refuses, folders that clash -----------------------------

LONG = "實驗報告" * 22 + ".pdf"  # 88 CJK characters: 268 bytes, over the 255-byte limit


def test_a_file_name_over_255_bytes_is_shortened_with_a_note(tmp_path):
    with pytest.raises(OSError, match="File name too long"):  # control: the name as it is cannot be written
        (tmp_path / LONG).write_bytes(b"x")
    archive = tmp_path / "StudentID_lab2.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("simple_cnn.py", "x = 1\n")
        zf.writestr(f"docs/{LONG}", b"%PDF-1.4\n")
    sub = intake(archive, tmp_path / "job")
    (short,) = [f for f in sub.files if f.suffix == ".pdf"]
    assert (
        len(short.name.encode()) <= 255 and short.name.startswith("實驗報告") and short.parent.name == "docs"
    )
    assert sub.notes == [f"shortened a file name of 268 bytes (the limit is 255) to {short.name}"]


def test_a_download_with_a_file_name_over_255_bytes_is_still_read(tmp_path):
    download = tmp_path / "download.zip"
    with zipfile.ZipFile(download, "w") as zf:
        zf.writestr(f"Ann Lee_101_assignsubmission_file/{LONG}", b"%PDF-1.4\n")
        zf.writestr("Ann Lee_101_assignsubmission_file/model.py", "x = 1\n")
        zf.writestr(f"{'陳' * 90}_102_assignsubmission_file/model.py", "x = 1\n")
    for _ in range(2):  # a rerun reads the same download the same way
        found = batch_moodle.discover(download, tmp_path / "stage")
        assert [s.key for s in found.students] == ["101", "102"]
        assert any(n.startswith("shortened a name over 255 bytes: 'Ann Lee_101") for n in found.notes)
        assert all(len(s.folder.encode()) <= 255 for s in found.students)


def test_a_zip_whose_top_folder_holds_the_flatten_name_is_graded(tmp_path):
    archive = tmp_path / "StudentID_lab2.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("StudentID_lab2/simple_cnn.py", "x = 1\n")
        zf.writestr("StudentID_lab2/.flatten-in-progress/keep.txt", "x\n")
    sub = intake(archive, tmp_path / "job")
    assert [f.as_posix() for f in sub.files] == [".flatten-in-progress/keep.txt", "simple_cnn.py"]


def test_moodle_names_differing_only_in_normalisation_are_both_kept(tmp_path):
    nfc, nfd = unicodedata.normalize("NFC", "José Núñez"), unicodedata.normalize("NFD", "José Núñez")
    assert nfc != nfd and batch_moodle.safe_folder(nfc) == batch_moodle.safe_folder(
        nfd
    )  # control: one folder
    for name, text in ((nfc, "honest = 1\n"), (nfd, "other = 2\n")):
        folder = tmp_path / "download" / f"{name}_555_assignsubmission_file"
        folder.mkdir(parents=True)
        (folder / "model.py").write_text(text)
    found = batch_moodle.discover(tmp_path / "download", tmp_path / "stage")
    keys = {s.key: s for s in found.students}
    assert sorted(keys) == ["555", "555~2"] and keys["555"].folder != keys["555~2"].folder
    assert {(s.source / "model.py").read_text() for s in found.students} == {"honest = 1\n", "other = 2\n"}
    (note,) = [n for n in found.notes if "two submissions" in n]
    assert "the same name in two Unicode normalisations" in note and "the second as 555~2" in note


def test_an_entry_the_file_system_refuses_is_skipped_with_a_note(tmp_path):
    archive = tmp_path / "StudentID_lab2.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("simple_cnn.py", "x = 1\n")
        zf.writestr("simple_cnn.py/inner.py", "y = 2\n")  # a file where a folder must go
    sub = intake(archive, tmp_path / "job")
    assert [f.as_posix() for f in sub.files] == ["simple_cnn.py"]
    assert sub.notes == [
        "skipped 'simple_cnn.py/inner.py': a file and a folder of the submission have the same name"
    ]


def test_names_that_are_not_utf8_are_renamed_and_printable(tmp_path):
    folder = tmp_path / "download" / "Ann Lee_101_assignsubmission_file"
    folder.mkdir(parents=True)
    (folder / "model.py").write_text("x = 1\n")
    bad = os.fsdecode(b"report\xff.pdf")
    (folder / bad).write_bytes(b"%PDF-1.4\n")
    with pytest.raises(UnicodeEncodeError):  # control: the name as Python holds it cannot be written as text
        bad.encode()
    (student,) = batch_moodle.discover(tmp_path / "download", tmp_path / "stage").students
    assert len(batch_moodle.content_hash(student.source)) == 64
    sub = intake(student.source, tmp_path / "job")
    assert sorted(f.as_posix() for f in sub.files) == ["model.py", "report\ufffd.pdf"]
    assert sub.notes == ["renamed a file whose name is not UTF-8 to report\ufffd.pdf"]
    assert untrusted.terminal(f"skipped {bad}").encode() == "skipped report\ufffd.pdf".encode()


# --- bounds: what no real submission holds, each costing one line -------------------------


def deep_folder(root: Path, depth: int) -> Path:
    """``root/a/a/…/model.py``, ``depth`` folders down, made one level at a time (no path
    gets near PATH_MAX, so nothing but the depth stops a walker)."""
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    for _ in range(depth):
        os.mkdir("a", dir_fd=fd)
        inner = os.open("a", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    with open(os.open("model.py", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as handle:
        handle.write("x = 1\n")
    os.close(fd)
    return root


@pytest.fixture
def deep_tmp(tmp_path):
    """``tmp_path``, emptied with the remover under test: pytest's own clean-up is
    Python's rmtree, which the deep trees below defeat."""
    yield tmp_path
    for entry in tmp_path.iterdir():
        launcher.remove_tree(entry)


def test_a_folder_tree_a_thousand_deep_left_by_student_code_is_removed(deep_tmp):
    tmp_path = deep_tmp
    # control: Python's rmtree recurses once per level and gives up, leaving the tree
    deep = deep_folder(tmp_path / "out", 1200)
    with pytest.raises(RecursionError):
        shutil.rmtree(deep, ignore_errors=True)
    assert deep.exists()
    launcher.remove_tree(deep)  # what the sandbox's forget() and the job folder's removal use
    assert not deep.exists()


def test_a_submission_folder_nested_1200_deep_is_taken_in_with_a_note(deep_tmp):
    tmp_path = deep_tmp
    source = deep_folder(tmp_path / "lab", 1200)
    (source / "simple_cnn.py").write_text("x = 1\n")
    with pytest.raises(RecursionError):  # control: the walker intake used recursed once per level
        sorted(source.rglob("*"))
    sub = intake(source, tmp_path / "job")
    assert [f.as_posix() for f in sub.files] == ["simple_cnn.py"]
    (note,) = sub.notes
    assert note.startswith("skipped 'a/a/a/") and note.endswith("': folders nested more than 32 deep")
    assert len(note) < 250


def test_an_encrypted_file_in_a_submission_zip_is_skipped_with_a_note(tmp_path):
    archive = tmp_path / "StudentID_lab2.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("simple_cnn.py", "x = 1\n")
        zf.writestr("weights/best.pth", b"locked")
    moodle.mark_encrypted(archive, "weights/best.pth")
    with zipfile.ZipFile(archive) as zf, pytest.raises(RuntimeError, match="encrypted"):
        zf.read("weights/best.pth")  # control: the entry cannot be read without its password
    sub = intake(archive, tmp_path / "job")
    assert [f.as_posix() for f in sub.files] == ["simple_cnn.py"]
    assert sub.notes == ["skipped 'weights/best.pth' in StudentID_lab2.zip: it is encrypted"]


def test_a_zip_entry_1500_folders_deep_is_skipped_with_a_short_note(deep_tmp):
    tmp_path = deep_tmp
    deep = "a/" * 1500 + "model.py"
    with pytest.raises(RecursionError):  # control: creating its folders recurses once per level
        (tmp_path / "control" / deep).parent.mkdir(parents=True)
    archive = tmp_path / "StudentID_lab2.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("simple_cnn.py", "x = 1\n")
        zf.writestr(deep, "x = 1\n")
        zf.writestr("../" + "x" * 10_000, "x = 1\n")
    sub = intake(archive, tmp_path / "job")
    assert [f.as_posix() for f in sub.files] == ["simple_cnn.py"]
    assert len(sub.notes) == 2 and all(len(n) < 250 for n in sub.notes)
    assert sub.notes[0].endswith("a/model.py' in StudentID_lab2.zip: folders nested more than 32 deep")
    assert sub.notes[1].endswith("xxxx' in StudentID_lab2.zip: its path leaves the submission folder")
    assert sub.notes[1].startswith("skipped '../xxx") and "…" in sub.notes[1]


def test_a_moodle_download_with_a_folder_1500_deep_is_still_read(deep_tmp):
    tmp_path = deep_tmp
    download = tmp_path / "download.zip"
    with zipfile.ZipFile(download, "w") as zf:
        zf.writestr("Ann Lee_101_assignsubmission_file/model.py", "x = 1\n")
        zf.writestr("Bob Lin_102_assignsubmission_file/" + "a/" * 1500 + "model.py", "x = 1\n")
        zf.writestr("Bob Lin_102_assignsubmission_file/model.py", "x = 1\n")
    found = batch_moodle.discover(download, tmp_path / "stage")
    assert [s.key for s in found.students] == ["101", "102"]
    (note,) = [n for n in found.notes if "nested" in n]
    assert note.endswith("folders nested more than 32 deep") and len(note) < 250


def test_a_notebook_number_too_long_to_read_is_one_line(tmp_path):
    nb = v4.new_notebook()
    nb.cells = [v4.new_code_cell("x = 1", execution_count=1)]
    raw = nbformat.writes(nb).replace('"execution_count": 1', '"execution_count": ' + "9" * 5000)
    with pytest.raises(ValueError) as control:  # control: json's own error is not a JSONDecodeError
        json.loads(raw)
    assert not isinstance(control.value, json.JSONDecodeError)
    with pytest.raises(NotebookError, match=r"^lab\.ipynb is not a notebook: it holds a number too long"):
        parse_notebook(raw.encode(), "lab.ipynb")


@pytest.mark.parametrize(
    "source",
    [
        "class SimpleCNN:\n    pass\n\x00",
        "x = " + "+".join(["1"] * 100_000) + "\n",
        "x = " + "-" * 50_000 + "1\n",
    ],
    ids=["nul-byte", "100000-term-sum", "50000-unary-minus"],
)
def test_python_the_parser_refuses_is_no_definitions_not_a_grader_error(source):
    with pytest.raises((ValueError, RecursionError, MemoryError)):  # control: not a SyntaxError
        ast.parse(source)
    assert extract.defined_names(source) == {} and extract.model_candidates(source) == []
    assert preprocess.from_code(source, str) is None


def test_html_and_terminals_drop_bidi_overrides_and_invisible_characters():
    spoof = "report\u202efdp.exe\u200b\U000e0041\x1b[2J"
    page = untrusted.jinja_env(jinja2.DictLoader({"t.html": "<td>{{ x }}</td>"})).get_template("t.html")
    assert page.render(x=spoof) == "<td>reportfdp.exe</td>"
    assert untrusted.terminal(spoof) == "reportfdp.exe"
    # control: autoescape alone keeps them, so the name reads "reportexe.pdf"
    raw = bypass(jinja2.DictLoader({"t.html": "<td>{{ x }}</td>"})).get_template("t.html")
    assert "\u202e" in raw.render(x=spoof)


def test_an_exception_name_of_30_kb_costs_a_line_not_30_kb():
    nb = v4.new_notebook()
    nb.cells = [v4.new_code_cell("train()", execution_count=1)]
    nb.cells[0].outputs = [v4.new_output("error", ename="E" * 30_000, evalue="boom", traceback=[])]
    (cell,) = outputs.cells(nb)
    (error,) = cell.errors()
    assert len(error["ename"]) == 30_000  # control: the bytes reach the grader whole
    line = outputs.error_line(cell, error)
    assert len(line) < 160 and line.endswith("EEEE: boom") and "…" in line


def test_a_student_key_in_a_grader_error_traceback_reaches_stderr_inert(tmp_path, capsys, monkeypatch):
    """A check that fails on student bytes (here: a layer name from the submission) prints
    its traceback for the staff; the exception's text is the student's."""
    rubric = tmp_path / "one.toml"
    rubric.write_text(
        'id = "one"\ntitle = "One"\ndataset = "cifar10"\n\n[[items]]\nid = "files"\nkind = "files"\n'
        'name = "Files"\nrequired = [{ pattern = "*.py", what = "code" }]\n'
    )
    key = f"layer{CLEAR}{TITLE}{FAKE}"

    def crash(item, ctx):
        raise ValueError(f"no layer named {key}")

    monkeypatch.setitem(KINDS, "files", dataclasses.replace(KINDS["files"], run=crash))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "model.py").write_text("x = 1\n")
    result = grade(tmp_path / "sub", load(rubric), None, allow_unsandboxed=True)
    err = capsys.readouterr().err
    assert result.item("files").message.startswith("internal grader error in this check (ValueError:")
    assert "ValueError: no layer named layer" in err and not CONTROL_BYTES.search(err)
    # control: the traceback as Python prints it carries the escapes and the fake line
    try:
        crash(None, None)
    except ValueError:
        raw = traceback.format_exc()
    assert CLEAR in raw and TITLE in raw


def test_a_moodle_folder_named_in_latin1_still_gets_its_student_json(tmp_path):
    folder = tmp_path / "download" / os.fsdecode(b"Ren\xe9 Roy_101_assignsubmission_file")
    folder.mkdir(parents=True)
    (folder / "model.py").write_text("x = 1\n")
    (student,) = batch_moodle.discover(tmp_path / "download", tmp_path / "stage").students
    with pytest.raises(UnicodeEncodeError):  # control: the folder's name as Python holds it
        json.dumps({"source": student.source.name}, ensure_ascii=False).encode()
    record = {"key": "k", "error": f"RuntimeError: {CLEAR}{TITLE}worker died"}  # a grader error
    runner._write_student(tmp_path / "out", student.folder, student, record)
    written = tmp_path / "out" / "students" / student.folder
    info = json.loads((written / "student.json").read_bytes().decode("utf-8"))
    assert info["name"] == "Ren\ufffd Roy" and info["source"] == "Ren\ufffd Roy_101_assignsubmission_file"
    failure = (written / "error.txt").read_text()
    assert failure == "The grader failed on this submission: RuntimeError: worker died\n"


def test_a_zip_listing_100000_files_is_refused_before_its_directory_is_parsed(tmp_path):
    archive = tmp_path / "StudentID_lab2.zip"
    with zipfile.ZipFile(archive, "w") as zf:  # 9 MB: every entry empty
        zf.writestr("simple_cnn.py", "x = 1\n")
        for n in range(100_000):
            zf.writestr(f"data/{n}", b"")
    with zipfile.ZipFile(archive) as zf:  # control: zipfile builds an object for every entry first
        assert len(zf.infolist()) == 100_001
    with pytest.raises(SubmissionError) as refused:
        intake(archive, tmp_path / "job")
    assert str(refused.value) == (
        "StudentID_lab2.zip lists far more than 5000 files (its directory alone is over 4 MiB): "
        "zip only your lab folder and upload that"
    )


def test_a_message_quoting_a_megabyte_name_is_cut_to_its_start_and_end(tmp_path, monkeypatch):
    rubric = tmp_path / "one.toml"
    rubric.write_text(
        'id = "one"\ntitle = "One"\ndataset = "cifar10"\n\n[[items]]\nid = "files"\nkind = "files"\n'
        'name = "Files"\nrequired = [{ pattern = "*.py", what = "code" }]\n'
    )
    name = "conv" * 250_000  # a checkpoint key, a class name: whatever the check quotes
    outcome = Outcome(False, f"it holds weights of layers the checked forward pass never ran: {name}", name)
    assert len(outcome.message) > 1_000_000  # control: the check's own message, whole
    monkeypatch.setitem(KINDS, "files", dataclasses.replace(KINDS["files"], run=lambda item, ctx: outcome))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "model.py").write_text("x = 1\n")
    item = grade(tmp_path / "sub", load(rubric), None, allow_unsandboxed=True).item("files")
    assert len(item.message) <= 4_000 and len(item.details) <= 50_000
    assert item.message.startswith("it holds weights of layers the checked forward pass never ran: conv")
    assert item.message.endswith("conv") and "…" in item.message


def test_a_thousand_refused_entries_make_twenty_notes_and_a_count(tmp_path, monkeypatch):
    archive = tmp_path / "StudentID_lab2.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("simple_cnn.py", "x = 1\n")
        for n in range(1000):  # entries that never count as files: each one a note
            zf.writestr(f"../escape{n}.py", "x = 1\n")
    with monkeypatch.context() as uncapped:  # control: without the cap, a note per entry
        uncapped.setattr(submission, "MAX_NOTES", 10_000)
        assert len(intake(archive, tmp_path / "control").notes) == 1000
    sub = intake(archive, tmp_path / "job")
    assert len(sub.notes) == 21 and sub.notes[-1] == "… and 980 more notes like these"
    assert sub.notes[0] == (
        "skipped '../escape0.py' in StudentID_lab2.zip: its path leaves the submission folder"
    )
