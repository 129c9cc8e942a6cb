"""The batch's parts without grading anything: every Moodle layout and its
student keys, gradebook rows that never lack an identifier, worksheet fills for
teams, scales and locked rows, the TA's manual CSV with its line-numbered
errors, rounding, and the integrity fingerprints."""

from __future__ import annotations

import io
import os
import struct
import tracemalloc
import zipfile
from pathlib import Path

import matplotlib
import nbformat
import pytest
import torch
from helpers import moodle
from nbformat import v4

from autograder.batch import gradebook as gb
from autograder.batch import integrity
from autograder.batch import moodle as batch_moodle
from autograder.batch.grades import BatchInputError, FinalGrade, load_manual
from autograder.batch.moodle import DownloadError, Student, content_hash, discover
from autograder.notebook.outputs import PLOTLY
from autograder.rubric import load
from autograder.submission import MAX_ZIP_DIRECTORY, ZipDirectory

RUBRIC = Path(__file__).parent / "rubrics" / "batch-simplecnn.toml"
matplotlib.use("Agg")


def touch(path: Path, text: str = "x = 1\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_every_moodle_folder_convention_and_the_flat_layout(tmp_path):
    d = tmp_path / "download"
    touch(d / "Alice Example_1234567_assignsubmission_file" / "model.py")
    touch(d / "Bob Ångström_7654321_assignsubmission_file_" / "src" / "net.py")
    touch(d / "Carol Z_5555555_assignsubmission_file_model.py", "y = 2\n")
    touch(d / "Carol Z_5555555_assignsubmission_file_notes.txt")
    touch(d / "Dave Q_4444444_assignsubmission_onlinetext" / "onlinetext.html")
    touch(d / "grading.csv")
    found = discover(d, tmp_path / "staging")
    assert [(s.key, s.name, s.kind) for s in found.students] == [
        ("1234567", "Alice Example", "participant"),
        ("7654321", "Bob Ångström", "participant"),
        ("5555555", "Carol Z", "participant"),
    ]
    carol = found.students[2]
    assert sorted(p.name for p in carol.source.iterdir()) == ["model.py", "notes.txt"]
    assert (carol.source / "model.py").read_text() == "y = 2\n"
    assert found.students[0].identifier == "Participant 1234567"
    assert found.students[1].folder == "Bob Ångström_7654321"
    assert any("onlinetext" in n and "only file submissions" in n for n in found.notes)
    assert "ignored grading.csv: not a Moodle submission name" in found.notes
    assert found.layout == "moodle-flat+moodle-folders+moodle-folders-underscore"


def test_team_submissions_are_keyed_by_group(tmp_path):
    d = tmp_path / "download"
    touch(d / "Team Rocket_42_assignsubmission_file" / "model.py")
    touch(d / "Default group_assignsubmission_file" / "model.py")
    teams = discover(d, tmp_path / "staging", teams=True)
    assert [(s.key, s.name, s.kind) for s in teams.students] == [
        ("group-default", "Default group", "team"),
        ("group-42", "Team Rocket", "team"),
    ]
    plain = discover(d, tmp_path / "staging2")
    assert [s.key for s in plain.students] == ["42"]
    assert any("pass --teams" in n for n in plain.notes)


def test_a_folder_of_student_id_zips_keeps_the_newest_per_id(tmp_path):
    d = tmp_path / "class"
    for name in ("F74001_lab2.zip", "F74001_lab2 (1).zip", "F74002_lab2.zip"):
        with zipfile.ZipFile(d / name if d.exists() else (d.mkdir() or d / name), "w") as zf:
            zf.writestr("model.py", name)
    os.utime(d / "F74001_lab2.zip", (1_000_000, 1_000_000))
    touch(d / "F74003_lab2" / "model.py")
    touch(d / "notes.txt")
    found = discover(d, tmp_path / "staging")
    assert [(s.key, s.source.name, s.kind) for s in found.students] == [
        ("F74001", "F74001_lab2 (1).zip", "student_id"),
        ("F74002", "F74002_lab2.zip", "student_id"),
        ("F74003", "F74003_lab2", "student_id"),
    ]
    assert "F74001: graded F74001_lab2 (1).zip, the newest of several; ignored F74001_lab2.zip" in found.notes
    assert "ignored notes.txt: not a zip file or a folder" in found.notes


def test_an_encrypted_file_in_a_download_costs_that_file_only(tmp_path):
    """A student's password-protected file inside the download: zipfile refuses to read it
    (the control), so it is skipped with a note and the rest of the class is unpacked."""
    archive = tmp_path / "dl.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Ann Lee_1000001_assignsubmission_file/model.py", "z = 3\n")
        zf.writestr("Ann Lee_1000001_assignsubmission_file/secret.py", "z = 4\n")
        zf.writestr("Bo Chen_1000002_assignsubmission_file/model.py", "z = 5\n")
    moodle.mark_encrypted(archive, "Ann Lee_1000001_assignsubmission_file/secret.py")
    with zipfile.ZipFile(archive) as zf, pytest.raises(RuntimeError, match="encrypted"):
        zf.read("Ann Lee_1000001_assignsubmission_file/secret.py")
    found = discover(archive, tmp_path / "staging")
    assert [sorted(p.name for p in s.source.iterdir()) for s in found.students] == [["model.py"]] * 2
    assert "skipped 'Ann Lee_1000001_assignsubmission_file/secret.py': it is encrypted" in found.notes


def test_a_download_zip_is_unpacked_once_and_refused_when_unreadable(tmp_path):
    archive = tmp_path / "dl.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Ann Lee_1000001_assignsubmission_file/model.py", "z = 3\n")
        zf.writestr("/etc/cron.d/evil", "boom")
        moodle.add_symlink(zf, "Ann Lee_1000001_assignsubmission_file/link.py", "/etc/shadow")
    first = discover(archive, tmp_path / "staging")
    source = first.students[0].source
    assert sorted(p.name for p in source.iterdir()) == ["model.py"]
    assert any("'/etc/cron.d/evil': its path leaves the download folder" in n for n in first.notes)
    stamp = (source / "model.py").stat().st_mtime_ns
    again = discover(archive, tmp_path / "staging")
    assert (again.students[0].source / "model.py").stat().st_mtime_ns == stamp
    assert again.notes == first.notes
    assert content_hash(source) == content_hash(again.students[0].source)
    (tmp_path / "not.zip").write_bytes(b"PK but not really")
    with pytest.raises(DownloadError, match="neither a folder nor a zip file"):
        discover(tmp_path / "not.zip", tmp_path / "s2")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DownloadError, match="no submissions found"):
        discover(tmp_path / "empty", tmp_path / "s3")


def claimed_directory(path: Path, size: int, entries: int) -> Path:
    """A zip that is only its (zip64) end records, declaring ``entries`` entries in a central
    directory of ``size`` bytes at its start: a sparse file, a few KB on disk however large.
    zipfile believes the record and reads (and parses) every byte it declares."""
    with open(path, "wb") as handle:
        handle.truncate(size)  # the declared directory: a hole, zeros when read
        handle.seek(size)
        handle.write(struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, size, 0))
        handle.write(struct.pack("<4sLQL", b"PK\x06\x07", 0, size, 1))
        handle.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))
    return path


def peak_bytes(call) -> tuple[int, Exception]:  # noqa: ANN001
    """What ``call`` raised and the most memory Python held while it ran."""
    tracemalloc.start()
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - each case below raises; the test checks what
        raised = exc
    else:
        raise AssertionError("nothing was refused")
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, raised


def zipfile_calls(monkeypatch) -> list[tuple]:  # noqa: ANN001
    """The archives handed to ``zipfile.ZipFile`` from now on; each call fails the test."""
    calls: list[tuple] = []
    monkeypatch.setattr(
        zipfile, "ZipFile", lambda *a, **k: calls.append(a) or pytest.fail("zipfile parsed it")
    )
    return calls


def test_a_download_declaring_a_huge_directory_is_refused_from_its_end_record(tmp_path, monkeypatch):
    attack = claimed_directory(tmp_path / "CS101-Lab2-1234.zip", 8 << 30, 10**9)
    assert batch_moodle.zip_directory(attack) == ZipDirectory(10**9, 8 << 30)
    parsed = zipfile_calls(monkeypatch)
    peak, refused = peak_bytes(lambda: discover(attack, tmp_path / "staging"))
    assert isinstance(refused, DownloadError) and str(refused) == (
        "CS101-Lab2-1234.zip lists 1,000,000,000 entries in a directory of 8,192.0 MiB, more than a download "
        "may hold (200,000 entries, 32 MiB): it is damaged or not a Moodle download; download it again"
    )
    assert parsed == [] and peak < 1 << 20
    # control: with the check off, the same file goes to zipfile, which would read all 8 GiB
    monkeypatch.setattr(batch_moodle, "zip_directory", lambda path: ZipDirectory(0, 0))
    with pytest.raises(pytest.fail.Exception):
        discover(attack, tmp_path / "staging")
    assert parsed == [(attack,)]


def test_a_declared_directory_just_over_the_cap_costs_zipfile_all_of_it(tmp_path, monkeypatch):
    attack = claimed_directory(tmp_path / "download.zip", batch_moodle.MAX_DIRECTORY + (1 << 20), 1000)
    peak, refused = peak_bytes(lambda: discover(attack, tmp_path / "staging"))
    assert isinstance(refused, DownloadError) and "a directory of 33.0 MiB" in str(refused)
    assert peak < 1 << 20
    # control: with the check off, zipfile reads the 33 MiB it was told of before finding it is no zip
    monkeypatch.setattr(batch_moodle, "zip_directory", lambda path: ZipDirectory(0, 0))
    peak, refused = peak_bytes(lambda: discover(attack, tmp_path / "staging"))
    assert str(refused) == "download.zip is not a readable zip file: Bad magic number for central directory"
    assert peak > batch_moodle.MAX_DIRECTORY


def test_a_checkpoint_declaring_a_huge_directory_is_hashed_as_bytes(tmp_path, monkeypatch):
    checkpoint = claimed_directory(tmp_path / "model.pth", MAX_ZIP_DIRECTORY + 1, 100)  # few entries
    parsed = zipfile_calls(monkeypatch)
    assert integrity.weights_digest(checkpoint).startswith("file:") and parsed == []
    monkeypatch.setattr(integrity, "MAX_ZIP_DIRECTORY", 1 << 40)  # control: the directory goes to zipfile
    with pytest.raises(pytest.fail.Exception):
        integrity.weights_digest(checkpoint)
    assert parsed == [(checkpoint,)]


def grade(auto: float, manual: float | None = None, feedback: str = "fb") -> FinalGrade:
    return FinalGrade(auto=auto, auto_max=30, manual={"report": manual}, manual_max=20, feedback=feedback)


def test_gradebook_rows_always_carry_an_identifier_moodle_knows(tmp_path):
    people = moodle.roster(4)
    sheet = gb.Worksheet.read(moodle.write_worksheet(tmp_path / "ws.csv", people[:3], set()))
    roster = gb.Roster.from_worksheet(sheet)
    students = [Student(p.uid, p.name, "participant", p.name, tmp_path) for p in people]
    grades = {s.key: grade(30, 15) for s in students}
    grades[people[1].uid] = None
    book = gb.gradebook(students, {k: v for k, v in grades.items() if v}, roster, 100)
    assert book.id_header == "Email address"
    assert [r[0] for r in book.rows] == [people[0].email, people[2].email]
    assert book.skipped == [
        f"{people[1].name} ({people[1].uid}): not graded (grader error)",
        f"{people[3].name} ({people[3].uid}): no Email address known",
    ]
    gb.write_gradebook(tmp_path / "gradebook.csv", book, "Lab 2")
    imported = moodle.gradebook_import(
        (tmp_path / "gradebook.csv").read_bytes(),
        people,
        "Email address",
        "useremail",
        "Lab 2",
        "Lab 2 feedback",
    )
    assert imported == {people[0].user_id: (90.0, "fb"), people[2].user_id: (90.0, "fb")}
    ids = [Student("F74001", "F74001", "student_id", "F74001", tmp_path)]
    assert gb.gradebook(ids, {"F74001": grade(30)}, None, 50).rows == [("F74001", "30.00", "fb")]


def test_team_grades_reach_every_member_in_gradebook_and_worksheet(tmp_path):
    people = moodle.roster(3)
    groups = {people[0].uid: "Team Rocket", people[1].uid: "Team Rocket"}
    path = moodle.write_worksheet(tmp_path / "ws.csv", people, {p.uid for p in people}, group=groups)
    sheet = gb.Worksheet.read(path)
    team = Student("group-42", "Team Rocket", "team", "Team Rocket_42", tmp_path)
    grades = {"group-42": grade(24, 16, "team feedback")}
    book = gb.gradebook([team], grades, gb.Roster.from_worksheet(sheet), 40)
    assert book.rows == [
        (people[0].email, "32.00", "team feedback"),
        (people[1].email, "32.00", "team feedback"),
    ]
    report = gb.fill_worksheet(sheet, [team], grades)
    gb.save_worksheet(sheet)
    header, rows = moodle.read_worksheet(path)
    g, f = header.index("Grade"), header.index("Feedback comments")
    assert [(r[g], r[f]) for r in rows] == [("80.00", "team feedback"), ("80.00", "team feedback"), ("", "")]
    assert report.filled == 2


def test_worksheet_scales_to_each_rows_maximum_and_leaves_what_it_cannot_grade(tmp_path):
    people = moodle.roster(4)
    path = moodle.write_worksheet(
        tmp_path / "ws.csv", people, {p.uid for p in people}, locked={people[2].uid}
    )
    text = path.read_text(encoding="utf-8-sig")
    text = text.replace(f'"Participant {people[1].uid}"', "X", 1)  # marker to edit one row
    lines = text.splitlines(keepends=True)
    for n, line in enumerate(lines):
        if line.startswith("X,"):
            lines[n] = line.replace("X,", f'"Participant {people[1].uid}",', 1).replace(",100.00,", ",10.0,")
        if people[3].uid in line:
            lines[n] = line.replace(",100.00,", ',"Pass/Fail",')
    path.write_bytes(b"\xef\xbb\xbf" + "".join(lines).encode())
    before = path.read_bytes()
    sheet = gb.Worksheet.read(path)
    students = [Student(p.uid, p.name, "participant", p.name, tmp_path) for p in people]
    report = gb.fill_worksheet(sheet, students, {s.key: grade(25, 14.5, 'says "ok", fine') for s in students})
    gb.save_worksheet(sheet)
    header, rows = moodle.read_worksheet(path)
    g = header.index("Grade")
    assert [r[g] for r in rows] == ["79.00", "7.9", "", ""]
    assert rows[0][header.index("Feedback comments")] == 'says "ok", fine'
    assert report.filled == 2
    assert any("cannot be changed" in s for s in report.skipped)
    assert any("'Pass/Fail' is a scale" in s for s in report.skipped)
    old, new = before.decode("utf-8-sig").splitlines(), path.read_bytes().decode("utf-8-sig").splitlines()
    assert old[0] == new[0] and old[3:] == new[3:]


def test_a_worksheet_without_moodle_columns_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "ws.csv"
    path.write_text("Identifier,Full name,Grade\nParticipant 1,A,\n")
    with pytest.raises(
        BatchInputError, match=r"ws.csv:1: not a Moodle grading worksheet: no 'Maximum Grade'"
    ):
        gb.Worksheet.read(path)


def test_manual_scores_with_line_numbered_errors(tmp_path):
    rubric = load(str(RUBRIC))
    people = moodle.roster(3)
    students = [Student(p.uid, p.name, "participant", p.name, tmp_path) for p in people]
    aliases = {people[2].email: people[2].uid}
    path = tmp_path / "manual.csv"
    path.write_text(
        "Identifier,Report (PDF),Comment\n"
        f"Participant {people[0].uid},18.5,great\n"
        f"{people[2].email},,\n"
        "Participant 1,3,\n",
        encoding="utf-8",
    )
    scores = load_manual(path, rubric, students, aliases)
    assert scores.scores == {people[0].uid: {"report": 18.5}, people[2].uid: {"report": None}}
    assert scores.comments == {people[0].uid: "great"}
    assert scores.warnings == ["manual.csv:4: no submission for 'Participant 1'; row ignored"]
    uid = people[0].uid
    cases = {
        f"Student,report\n{uid},25\n": r"manual.csv:2: 25 for report is outside 0\.\.20",
        f"Student,score\n{uid},lots\n": r"manual.csv:2: 'lots' in column report is not a number",
        f"Student,report\n{uid},1\n{uid},2\n": rf"manual.csv:3: {uid} appears twice",
        "Name,report\nA,1\n": r"manual.csv:1: no student column",
        f"Student,points for code\n{uid},1\n": r"manual.csv:1: no score column; expected a column for report",
    }
    for text, message in cases.items():
        path.write_text(text)
        with pytest.raises(BatchInputError, match=message):
            load_manual(path, rubric, students, {})


def test_grades_are_scaled_and_rounded_half_up():
    assert str(FinalGrade(1, 8, {}, 0, "").scaled(1)) == "0.13"
    assert str(grade(30, 20).scaled(10, 1)) == "10.0"
    assert str(grade(0).scaled(100)) == "0.00"
    assert grade(30).complete is False and grade(30, 0).complete is True


def test_weight_digests_see_tensors_not_file_names(tmp_path):
    state = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(2)}
    torch.save(state, tmp_path / "a.pth")
    torch.save(state, tmp_path / "renamed_checkpoint.pth")
    torch.save({**state, "b": torch.zeros(2)}, tmp_path / "other.pth")
    (tmp_path / "raw.bin").write_bytes(b"\x00" * 10)
    a, b = (
        integrity.weights_digest(tmp_path / "a.pth"),
        integrity.weights_digest(tmp_path / "renamed_checkpoint.pth"),
    )
    assert a == b and a.startswith("tensors:")
    assert (tmp_path / "a.pth").read_bytes() != (tmp_path / "renamed_checkpoint.pth").read_bytes()
    assert integrity.weights_digest(tmp_path / "other.pth") != a
    assert integrity.weights_digest(tmp_path / "raw.bin").startswith("file:")


CODE = '''
import torch

class Net(torch.nn.Module):
    """My network."""
    def forward(self, x):
        hidden = torch.relu(self.conv(x))  # the first layer
        return self.fc(torch.flatten(hidden, 1)) * 0.5
'''
RENAMED = """
import torch
# reworded comment
class Model(torch.nn.Module):
    def forward(self, inputs):
        h = torch.relu(self.conv(inputs))
        return self.fc(torch.flatten(h, 2)) * 0.25
"""


def test_code_fingerprints_ignore_names_comments_and_literals(tmp_path):
    def fingerprint(code: str, name: str) -> integrity.Fingerprints:
        folder = tmp_path / name
        folder.mkdir()
        nb = v4.new_notebook()
        nb.cells = [v4.new_code_cell("!pip install thop\n" + code)]
        nbformat.write(nb, str(folder / "lab.ipynb"))
        return integrity.fingerprints(folder)

    a, b = fingerprint(CODE, "a"), fingerprint(RENAMED, "b")
    c = fingerprint(CODE.replace("torch.relu", "torch.sigmoid"), "c")
    assert a.code == b.code and a.statements == b.statements
    assert c.code != a.code
    assert integrity.fingerprints(tmp_path / "missing") == integrity.Fingerprints()


def svg_curve(losses: list[float]) -> str:
    """A loss curve as Jupyter saves it under ``%config InlineBackend.figure_format = 'svg'``."""
    import matplotlib.pyplot as plt  # pyplot after the backend is chosen

    fig, ax = plt.subplots()
    ax.plot(losses)
    ax.set_title("Training loss")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    return buffer.getvalue().decode()


def figure_hand_in(folder: Path, plot: str, mime: str, figure) -> Path:  # noqa: ANN001
    """A notebook whose only output is one figure, below the student's own plotting code."""
    nb = v4.new_notebook()
    text = "<Figure size 640x480 with 1 Axes>"
    shown = v4.new_output("display_data", data={mime: figure, "text/plain": text})
    nb.cells = [
        v4.new_code_cell("%config InlineBackend.figure_format = 'svg'\nimport matplotlib.pyplot as plt"),
        v4.new_code_cell(plot, outputs=[shown], execution_count=2),
    ]
    folder.mkdir()
    nbformat.write(nb, str(folder / "lab2.ipynb"))
    return folder


def test_hand_ins_sharing_only_an_svg_figure_are_linked(tmp_path, monkeypatch):
    copied = svg_curve([2.3, 1.6, 1.2, 0.9, 0.8])
    own = svg_curve([2.3, 1.8, 1.5, 1.3, 1.1])
    svg = "image/svg+xml"
    sources = {
        "ann": figure_hand_in(tmp_path / "ann", "plt.plot(history['loss'])\nplt.show()", svg, copied),
        "bob": figure_hand_in(
            tmp_path / "bob", "plt.plot(train_losses, label='train')\nplt.legend()", svg, copied
        ),
        "cem": figure_hand_in(tmp_path / "cem", "plt.plot(losses)", svg, own),  # control: its own curve
    }
    prints = {key: integrity.fingerprints(folder) for key, folder in sources.items()}
    groups = integrity.find_groups(prints)
    assert [(g.kind, g.members) for g in groups] == [("outputs", ["ann", "bob"])]
    assert groups[0].evidence.startswith("identical notebook outputs (")
    # control: without reading the figure, the shared SVG links nobody (the text alone is too short)
    monkeypatch.setattr(integrity, "figure_data", lambda output: None)
    blind = {key: integrity.fingerprints(folder) for key, folder in sources.items()}
    assert integrity.find_groups(blind) == [] and blind["ann"].outputs is None


def test_a_plotly_figure_is_fingerprinted_whatever_its_key_order(tmp_path):
    figure = {"data": [{"type": "scatter", "y": [2.3, 1.6, 1.2]}], "layout": {"title": {"text": "Loss"}}}
    reordered = {"layout": figure["layout"], "data": figure["data"]}
    a = integrity.fingerprints(figure_hand_in(tmp_path / "a", "fig.show()", PLOTLY, figure))
    b = integrity.fingerprints(figure_hand_in(tmp_path / "b", "fig.show()", PLOTLY, reordered))
    other = {**figure, "data": [{"type": "scatter", "y": [2.3, 1.9, 1.5]}]}
    c = integrity.fingerprints(figure_hand_in(tmp_path / "c", "fig.show()", PLOTLY, other))
    assert a.outputs is not None and a.outputs == b.outputs != c.outputs


def test_groups_need_enough_distinctive_code_and_skip_the_handout():
    handout = [f"h{n}" for n in range(20)]  # every student has these: set aside
    prints = {
        f"s{n}": integrity.Fingerprints(statements=handout + [f"own{n}-{k}" for k in range(10)])
        for n in range(8)
    }
    prints["s0"].code = prints["s1"].code = "same"
    prints["s1"].statements = list(prints["s0"].statements)
    prints["s2"].statements = prints["s0"].statements[:-1] + ["new"]  # 9 of 11 distinctive statements shared
    prints["s3"].code = prints["s4"].code = "bare"
    prints["s3"].statements = prints["s4"].statements = handout  # the untouched handout: nothing to compare
    groups = {(g.kind, tuple(g.members)) for g in integrity.find_groups(prints)}
    assert groups == {("code", ("s0", "s1")), ("near-code", ("s0", "s1", "s2"))}


def test_slurm_options_reach_the_sbatch_script(tmp_path, monkeypatch):
    """The Slurm path up to sbatch, with stand-ins for srun and sbatch on PATH."""
    from autograder.batch.job import Entry, Settings
    from autograder.batch.slurm import SlurmOptions, SubmititPool

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sbatch").write_text(
        f'#!/bin/sh\ncp "$1" {tmp_path}/submitted.sh\necho "Submitted batch job 4242"\n'
    )
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    options = SlurmOptions(
        partition="gpu-a40",
        account="cse-lab",
        extra={"qos": "ckpt"},
        gpus_per_job=1,
        cpus_per_job=8,
        mem_gb=32,
        time_limit_min=45,
        array_size=2,
        per_job=2,
    )
    pool = SubmititPool(tmp_path / "jobs", "slurm", options, workers=2)
    entries = [Entry(f"k{n}", tmp_path, f"student {n}") for n in range(5)]
    chunks = pool.chunks(entries)
    assert [len(c) for c in chunks] == [2, 2, 1]
    settings = Settings(rubric=load(str(RUBRIC)), data_root=tmp_path, cache_dir=tmp_path / "cache")
    from autograder.batch.job import grade_chunk

    jobs = pool.executor.map_array(grade_chunk, chunks, [settings] * len(chunks))
    assert [j.job_id for j in jobs] == ["4242_0", "4242_1", "4242_2"]
    script = (tmp_path / "submitted.sh").read_text()
    for line in (
        "#SBATCH --partition=gpu-a40",
        "#SBATCH --account=cse-lab",
        "#SBATCH --qos=ckpt",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --mem=32GB",
        "#SBATCH --time=45",
        "#SBATCH --array=0-2%2",  # 3 chunks, at most 2 at once
        "#SBATCH --job-name=autograder-batch",
    ):
        assert line in script, line
    default = SubmititPool(tmp_path / "jobs2", "slurm", SlurmOptions(array_size=4), workers=2)
    assert [len(c) for c in default.chunks([Entry(f"k{n}", tmp_path, "") for n in range(10)])] == [3, 3, 3, 1]


def test_progress_start_line_counts_identical_submissions_once(capsys):
    """5 submissions, two of them byte-identical: 4 to grade, as the summary will say."""
    from autograder.batch.runner import _Progress

    with _Progress(5, 0, True, to_grade=4, from_cache=0):
        pass
    assert capsys.readouterr().err == (
        "grading 4 of 5 submissions (0 from the cache; 1 identical to another, graded once)\n"
    )
