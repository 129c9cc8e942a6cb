"""A class of 28 from a Moodle "Download all submissions" zip to Moodle again:
every student found under both folder conventions, a gradebook CSV that
Moodle's import rules accept, the TA's worksheet filled in place with nothing
but grades and feedback changed, hostile code kept in its sandbox, copies
flagged with their groups, a batch killed with SIGKILL finished by a re-run,
and the Slurm path run with submitit's local executor."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from urllib.parse import unquote

import nbformat
import pytest
import torch
from helpers import moodle, submissions, waits

from reference.lab2 import simple_cnn as ref_simple

pytestmark = pytest.mark.slow  # grades a class of 28 in a batch, and runs real Slurm

ROOT = Path(__file__).resolve().parent.parent
RUBRIC = Path(__file__).parent / "rubrics" / "batch-simplecnn.toml"
AUTO_MAX, TOTAL = 30, 50  # autograded points and rubric total (20 manual points for the report)

NARROW_CNN = (  # 16 channels where the handout asks for 32
    submissions.simple_cnn_source()
    .replace("nn.Conv2d(3, 32", "nn.Conv2d(3, 16")
    .replace("nn.BatchNorm2d(32)", "nn.BatchNorm2d(16)")
    .replace("nn.Conv2d(32, 64", "nn.Conv2d(16, 64")
)


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autograder.cli", "batch", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def batch_args(download: Path, cifar_root: Path, out: Path, *more: str) -> list[str]:
    """``autograder batch`` arguments: ``download`` graded with RUBRIC on ``cifar_root``
    into ``out``, then ``more`` options."""
    return [str(download), "--rubric", str(RUBRIC), "--data-root", str(cifar_root), "--out", str(out), *more]


def popen(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "autograder.cli", "batch", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


@dataclass
class Klass:
    people: list[moodle.Person]
    kind: dict[str, str]  # uid -> category
    expected: dict[str, float]  # uid -> autograded points
    download: Path
    worksheet: Path
    worksheet_before: bytes
    manual: dict[str, float]  # uid -> report points
    out: Path
    run: subprocess.CompletedProcess
    tmp: Path

    def uid(self, kind: str) -> str:
        return next(u for u, k in self.kind.items() if k == kind)

    def download_of(self, people: list[moodle.Person], target: Path) -> Path:
        """The class download cut to ``people``'s folders (either naming convention)."""
        prefixes = tuple(moodle.folder_name(p, "folders") for p in people)
        with zipfile.ZipFile(self.download) as src, zipfile.ZipFile(target, "w") as dst:
            for info in src.infolist():
                if info.filename.startswith(prefixes):
                    dst.writestr(info, src.read(info))
        return target


def build_class(tmp: Path, state: dict) -> tuple[list[moodle.Person], dict, dict, Path]:
    """16 correct students (varied code, logs, weights), 3 copies, 6 broken, 3 hostile."""
    rng = random.Random(5)
    people = moodle.roster(28, seed=1)
    src = tmp / "src"
    kind, expected, folders = {}, {}, {}

    def add(person: moodle.Person, category: str, points: float, folder: Path) -> None:
        kind[person.uid], expected[person.uid], folders[person.uid] = category, points, folder

    correct = people[:16]
    for k, p in enumerate(correct):
        nb = moodle.notebook(moodle.student_code(rng), moodle.training_log(rng))
        add(p, f"correct{k}", AUTO_MAX, moodle.write_student(src / p.uid, moodle.perturbed(state, k), nb))
    for k in (3, 7):  # these two hand in StudentID_lab2.zip inside their Moodle folder
        folder = folders[correct[k].uid]
        inner = submissions.zip_folder(folder, tmp / f"{correct[k].uid}.zip", prefix="F74_lab2/")
        for f in folder.iterdir():
            f.unlink()
        inner.rename(folder / "F74_lab2.zip")
    c0, c1, c2 = (folders[p.uid] for p in correct[:3])
    d1, d2, d3, *rest = people[16:]
    add(d1, "copy-exact", AUTO_MAX, c0)  # byte-identical to correct0
    code_cell = nbformat.read(str(c1 / "lab2.ipynb"), as_version=4).cells[-1].source
    renamed = re.sub(r"\boptimizer\b", "opt", code_cell).replace("model", "net") + "\nprint('done')"
    near_nb = moodle.notebook(renamed, moodle.training_log(rng))
    weights = torch.load(c1 / "simple_cnn.pth")
    add(
        d2, "copy-near", AUTO_MAX, moodle.write_student(src / d2.uid, weights, near_nb, "simplecnn_final.pth")
    )
    own_nb = moodle.notebook(moodle.student_code(rng), moodle.training_log(rng))
    add(
        d3,
        "copy-weights",
        AUTO_MAX,
        moodle.write_student(src / d3.uid, torch.load(c2 / "simple_cnn.pth"), own_nb),
    )

    def nb() -> object:
        return moodle.notebook(moodle.student_code(rng), moodle.training_log(rng))

    own = iter(moodle.perturbed(state, 100 + n) for n in range(10))  # distinct weights, full accuracy

    b = iter(rest)
    add(next(b), "broken-no-weights", 10, moodle.write_student(src / "b1", None, nb()))
    namespace: dict = {"nn": torch.nn, "torch": torch}
    exec(NARROW_CNN, namespace)  # noqa: S102 - our own test source
    narrow = moodle.notebook(moodle.student_code(rng), moodle.training_log(rng), simple_cnn=NARROW_CNN)
    add(
        next(b),
        "broken-architecture",
        5,
        moodle.write_student(src / "b2", namespace["SimpleCNN"]().state_dict(), narrow),
    )
    add(
        next(b),
        "broken-weights-file",
        10,
        moodle.write_student(src / "b3", None, nb(), files={"simple_cnn.pth": os.urandom(3000)}),
    )
    garbage = src / "b4"
    garbage.mkdir(parents=True)
    (garbage / "F74_lab2.zip").write_bytes(b"this is not a zip file" * 10)
    add(next(b), "broken-not-a-zip", 0, garbage)
    torch.manual_seed(1)
    add(
        next(b),
        "broken-untrained",
        10,
        moodle.write_student(src / "b5", ref_simple.SimpleCNN().state_dict(), nb()),
    )
    bad_cell = "class SimpleCNN(nn.Module):\n    def __init__(self:\n        pass\n"
    add(
        next(b),
        "broken-syntax",
        0,
        moodle.write_student(
            src / "b6",
            next(own),
            moodle.notebook(moodle.student_code(rng), moodle.training_log(rng), simple_cnn=bad_cell),
        ),
    )
    out = tmp / "out"
    tamper = (
        "import os, pathlib\n"
        f"targets = [{str(out / 'gradebook.csv')!r}, {str(tmp / 'escaped.txt')!r}]\n"
        f"for target in targets + ['/tmp/{tmp.name}-pwned']:\n"
        "    try:\n        pathlib.Path(target).write_text('hacked')\n    except Exception:\n        pass\n"
        f"os.system('touch {tmp}/escaped-system')\n"
        "import torch\nfrom torch import nn\n" + submissions.simple_cnn_source()
    )
    add(
        next(b),
        "hostile-tamper",
        AUTO_MAX,
        moodle.write_student(src / "h1", next(own), nb(), files={"simple_cnn.py": tamper}),
    )
    killer = (
        "import os, signal\nprint('x' * 5_000_000)\nos.kill(os.getppid(), signal.SIGKILL)\nos._exit(0)\n"
        "import torch\nfrom torch import nn\n" + submissions.simple_cnn_source()
    )
    add(
        next(b),
        "hostile-killer",
        0,
        moodle.write_student(src / "h2", next(own), nb(), files={"simple_cnn.py": killer}),
    )
    nan = submissions.simple_cnn_source().replace("return self.fc(", "return float('nan') * self.fc(")
    add(
        next(b),
        "hostile-nan",
        5,
        moodle.write_student(
            src / "h3", next(own), nb(), files={"simple_cnn.py": "import torch\nfrom torch import nn\n" + nan}
        ),
    )
    download = tmp / "Lab2-download.zip"
    with zipfile.ZipFile(download, "w") as zf:
        for n, person in enumerate(people):
            moodle.add_submission(zf, person, folders[person.uid], "folders" if n % 2 else "folders_")
        mallory = moodle.folder_name(people[-1], "folders")
        moodle.add_symlink(zf, f"{mallory}/passwd.py", "/etc/passwd")
        zf.writestr("../../escape.txt", "zip slip")
    return people, kind, expected, download


@pytest.fixture(scope="module")
def klass(tmp_path_factory, trained_simple, cifar_root) -> Klass:
    tmp = tmp_path_factory.mktemp("klass")
    people, kind, expected, download = build_class(tmp, trained_simple)
    absent = moodle.roster(31, seed=1)[28:]  # enrolled, submitted nothing
    locked = {next(u for u, k in kind.items() if k == "broken-untrained")}
    worksheet = moodle.write_worksheet(tmp / "Grades-CS101-Lab2-42.csv", people + absent, set(kind), locked)
    before = worksheet.read_bytes()
    manual = {p.uid: float(10 + n) for n, p in enumerate(people[:8])}
    lines = ["Identifier,report,Comment"]
    lines += [
        f'Participant {u},{v:g},"clear plots, good discussion — {n}"'
        for n, (u, v) in enumerate(manual.items())
    ]
    lines.append("Participant 999,12,nobody")
    (tmp / "manual.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    options = ("--workers", "2", "--worksheet", str(worksheet), "--manual", str(tmp / "manual.csv"))
    run = cli(*batch_args(download, cifar_root, tmp / "out", *options))
    assert run.returncode == 0, run.stderr[-3000:]
    return Klass(people, kind, expected, download, worksheet, before, manual, tmp / "out", run, tmp)


def student_json(klass: Klass, uid: str) -> dict:
    found = [json.loads(p.read_text()) for p in (klass.out / "students").glob("*/student.json")]
    return next(s for s in found if s["key"] == uid)


def test_every_student_found_with_their_key_under_both_conventions(klass):
    folders = sorted((klass.out / "students").iterdir())
    assert len(folders) == len(klass.people) == 28
    keys = {json.loads((f / "student.json").read_text())["key"] for f in folders}
    assert keys == {p.uid for p in klass.people}
    for person in klass.people:
        folder = klass.out / "students" / f"{person.name}_{person.uid}"
        assert (folder / "results.json").is_file() and (folder / "report.html").is_file(), person.name
        assert (folder / "report.md").is_file()
    assert "28 submissions: 27 graded now, 0 from the cache, 0 grader errors" in klass.run.stdout


def test_autograded_scores_follow_what_each_student_handed_in(klass):
    for uid, points in klass.expected.items():
        result = json.loads(next((klass.out / "students").glob(f"*_{uid}/results.json")).read_text())
        assert result["score"] == points, (klass.kind[uid], [t["output"][:120] for t in result["tests"]])
    fatal = json.loads(
        next((klass.out / "students").glob(f"*_{klass.uid('broken-not-a-zip')}/results.json")).read_text()
    )
    assert "could not be graded" in fatal["output"]


def test_gradebook_csv_passes_moodles_import_rules(klass):
    data = (klass.out / "gradebook.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    header = data.decode("utf-8-sig").splitlines()[0].split(",")
    assert header[0] == "Email address"
    imported = moodle.gradebook_import(data, klass.people, "Email address", "useremail", header[1], header[2])
    assert len(imported) == 28
    by_user = {p.user_id: p for p in klass.people}
    for user_id, (grade, feedback) in imported.items():
        uid = by_user[user_id].uid
        expected = klass.expected[uid] + klass.manual.get(uid, 0.0)
        assert grade == pytest.approx(round(expected / TOTAL * 50, 2)), klass.kind[uid]
        assert feedback.startswith(f"Autograded {klass.expected[uid]:g}/30")
    manual_uid = klass.people[2].uid
    assert (
        "Report (PDF): 12/20 (TA); TA comment: clear plots, good discussion — 2"
        in imported[klass.people[2].user_id][1]
    )
    assert manual_uid in klass.manual
    assert "no submission for 'Participant 999'" in klass.run.stdout


def test_worksheet_round_trip_changes_only_grade_and_feedback(klass):
    before_header, before = moodle.read_worksheet(klass.worksheet_before)
    after_header, after = moodle.read_worksheet(klass.worksheet)
    assert after_header == before_header
    assert klass.worksheet.read_bytes().startswith(b"\xef\xbb\xbf")
    grade, feedback = after_header.index("Grade"), after_header.index("Feedback comments")
    locked = klass.uid("broken-untrained")
    raw_before = klass.worksheet_before.decode("utf-8-sig").splitlines()
    raw_after = klass.worksheet.read_bytes().decode("utf-8-sig").splitlines()
    assert len(raw_after) == len(raw_before)
    for old, new, old_line, new_line in zip(before, after, raw_before[1:], raw_after[1:], strict=True):
        uid = old[0].removeprefix("Participant ")
        assert [c for n, c in enumerate(new) if n not in (grade, feedback)] == [
            c for n, c in enumerate(old) if n not in (grade, feedback)
        ]
        if uid not in klass.kind or uid == locked:
            assert new_line == old_line  # untouched rows: byte for byte
            continue
        points = klass.expected[uid] + klass.manual.get(uid, 0.0)
        assert new[grade] == f"{points / TOTAL * 100:.2f}"
        assert new[feedback].startswith("Autograded")
        cells = old_line.split(",")
        assert new_line.split(",")[:grade] == cells[:grade]  # same quoting before Grade
    assert "the worksheet says the grade cannot be changed" in klass.run.stdout


def test_hostile_material_changes_nothing_outside_its_sandbox(klass):
    assert not (klass.tmp / "escaped.txt").exists()
    assert not (klass.tmp / "escaped-system").exists()
    assert not Path(f"/tmp/{klass.tmp.name}-pwned").exists()
    assert b"hacked" not in (klass.out / "gradebook.csv").read_bytes()
    assert not (klass.tmp.parent / "escape.txt").exists() and not (klass.out / "escape.txt").exists()
    assert "skipped '../../escape.txt': its path leaves the download folder" in klass.run.stdout
    assert "skipped the symbolic link" in klass.run.stdout
    staged = klass.out / ".autograder" / "staging" / "download"
    assert not list(staged.rglob("passwd.py"))
    killer = klass.uid("hostile-killer")
    result = json.loads(next((klass.out / "students").glob(f"*_{killer}/results.json")).read_text())
    assert result["score"] == 0 and len(result["tests"]) == 5
    # the class's grades and code sit in a folder no sandbox uid can enter
    assert stat.S_IMODE(klass.out.stat().st_mode) == 0o700


def test_summary_flags_copies_with_their_groups_and_links_reports(klass):
    html = unescape((klass.out / "summary.html").read_text())  # O&#39;Neil -> O'Neil
    names = {p.uid: p.name for p in klass.people}
    groups = re.findall(r'<tr class="group"><td>([^<]+)</td><td>(.*?)</td>', html)
    found = {(label, tuple(sorted(re.findall(r">([^<]+)</a>", members)))) for label, members in groups}

    def pair(a: str, b: str) -> tuple[str, ...]:
        return tuple(sorted(names[klass.uid(x)] for x in (a, b)))

    assert found == {
        ("Identical checkpoints", pair("correct0", "copy-exact")),
        ("Identical checkpoints", pair("correct1", "copy-near")),
        ("Identical checkpoints", pair("correct2", "copy-weights")),
        ("Identical notebook outputs", pair("correct0", "copy-exact")),
        ("Identical code", pair("correct0", "copy-exact")),
        ("Near-identical code", pair("correct1", "copy-near")),
    }
    attention = html.split('id="attention"')[1].split('id="integrity"')[0]
    assert names[klass.uid("broken-not-a-zip")] in attention
    assert "submission could not be read" in attention
    assert names[klass.uid("correct5")] not in attention
    untrained = attention.split(names[klass.uid("broken-untrained")])[1].split("</tr>")[0]
    assert "the notebook claims 97.00%" in untrained  # the claims check's flag, shown to the TA
    for link in set(re.findall(r'href="(students/[^"]+)"', html)):
        assert (klass.out / unquote(link)).is_file(), link
    assert html.count('<tr class="student">') == 28
    assert "Per-class accuracy across the class" in html and "airplane" in html


def test_rerun_grades_nothing_and_writes_the_same_gradebook(klass, cifar_root):
    before = (klass.out / "gradebook.csv").read_bytes()
    again = cli(*batch_args(klass.download, cifar_root, klass.out, "--manual", str(klass.tmp / "manual.csv")))
    assert again.returncode == 0, again.stderr[-2000:]
    assert "28 submissions: 0 graded now, 27 from the cache" in again.stdout
    assert (klass.out / "gradebook.csv").read_bytes() == before


def grades(out: Path) -> dict[str, str]:
    rows = (out / "gradebook.csv").read_text(encoding="utf-8-sig").splitlines()[1:]
    return {r.split(",")[0]: r.split(",")[1] for r in rows}


def cached(out: Path) -> int:
    return len(list((out / ".autograder" / "cache").glob("*/*.json")))


def test_kill_9_mid_batch_then_rerun_gives_one_result_per_student(klass, tmp_path, cifar_root):
    subset = [p for p in klass.people if klass.kind[p.uid].startswith(("correct", "broken"))][12:18]
    download = klass.download_of(subset, tmp_path / "subset.zip")
    sheet = moodle.write_worksheet(tmp_path / "ws.csv", subset, {p.uid for p in subset})
    out = tmp_path / "out"
    args = batch_args(download, cifar_root, out, "--workers", "2", "--worksheet", str(sheet))
    proc = popen(*args)
    waits.until(lambda: cached(out) >= 2, 300, "two submissions graded and cached", proc)
    workers = waits.descendants(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert waits.exited(workers, 30) == [], "grading processes outlived the killed batch"
    partial = cached(out)  # final: nothing is left to grade on
    assert 2 <= partial < len(subset)
    rerun = cli(*args)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{len(subset) - partial} graded now, {partial} from the cache, 0 grader errors" in rerun.stdout
    folders = list((out / "students").iterdir())
    assert sorted(json.loads((f / "student.json").read_text())["key"] for f in folders) == sorted(
        p.uid for p in subset
    )
    assert not [p for f in folders for p in f.iterdir() if p.name.startswith(".")]
    header, rows = moodle.read_worksheet(sheet)
    assert len(rows) == len(subset)
    for row in rows:
        uid = row[0].removeprefix("Participant ")
        assert row[header.index("Grade")] == f"{klass.expected[uid] / TOTAL * 100:.2f}"
    for p in subset:  # the same grades, item by item, as the uninterrupted run
        mine = json.loads(next((out / "students").glob(f"*_{p.uid}/results.json")).read_text())
        theirs = json.loads(next((klass.out / "students").glob(f"*_{p.uid}/results.json")).read_text())
        assert [t.get("score") for t in mine["tests"]] == [t.get("score") for t in theirs["tests"]]
        assert mine["score"] == theirs["score"] == klass.expected[p.uid]


def test_slurm_path_runs_with_submitits_local_executor(klass, tmp_path, cifar_root):
    trio = [klass.uid("correct0"), klass.uid("copy-exact"), klass.uid("correct4")]
    people = [p for p in klass.people if p.uid in trio]
    download = klass.download_of(people, tmp_path / "trio.zip")
    options = ("--executor", "submitit-local", "--workers", "2", "--time-limit", "10")
    run = cli(*batch_args(download, cifar_root, tmp_path / "out", *options))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "3 submissions: 2 graded now, 0 from the cache, 0 grader errors" in run.stdout
    assert "grading 2 of 3 submissions (0 from the cache; 1 identical to another, graded once)" in run.stderr
    logs = list((tmp_path / "out" / ".autograder" / "jobs").rglob("*_log.out"))
    assert len(logs) == 2  # one submitit job per chunk, the identical copy graded once
    for p in people:
        mine = json.loads(next((tmp_path / "out" / "students").glob(f"*_{p.uid}/results.json")).read_text())
        assert mine["score"] == klass.expected[p.uid] == AUTO_MAX


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """A real single-node Slurm (munged, slurmctld, slurmd), stopped at the end."""
    from helpers import slurm

    try:
        cluster = slurm.start(Path(tempfile.mkdtemp(prefix="ag-slurm-", dir="/tmp")))
    except slurm.Unavailable as exc:
        pytest.skip(f"no Slurm cluster here: {exc}")
    yield cluster
    cluster.stop()
    shutil.rmtree(cluster.folder, ignore_errors=True)


def test_real_slurm_grades_cancels_and_resumes_like_a_local_run(klass, slurm_cluster, tmp_path, cifar_root):
    """`--executor slurm` through real sbatch: scancel part-way, re-run, and the results and
    gradebook are a local run's."""
    kinds = ("correct0", "copy-exact", "correct4", "broken-no-weights")
    subset = [p for p in klass.people if klass.kind[p.uid] in kinds]
    download = klass.download_of(subset, tmp_path / "four.zip")

    def args(name: str) -> list[str]:
        sheet = moodle.write_worksheet(tmp_path / f"{name}.csv", subset, {p.uid for p in subset})
        return batch_args(download, cifar_root, tmp_path / name, "--worksheet", str(sheet))

    local = cli(*args("local"), "--workers", "2")
    assert local.returncode == 0, local.stderr[-2000:]
    on_slurm = args("slurm") + ["--executor", "slurm", "--partition", "debug", "--cpus-per-job", "1"]
    on_slurm += ["--mem-gb", "2", "--time-limit", "10", "--per-job", "1", "--array-size", "1"]
    env = slurm_cluster.env
    proc = subprocess.Popen(
        [sys.executable, "-m", "autograder.cli", "batch", *on_slurm],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    out = tmp_path / "slurm"
    waits.until(lambda: cached(out) >= 1, 300, "an array task graded and cached", proc)
    assert slurm_cluster.jobs(), "the array tasks ran through before they could be cancelled"
    slurm_cluster.run("scancel", "--user", "root")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-2000:]
    partial = cached(out)
    assert 1 <= partial < 3, stdout
    assert "left the queue without a result (cancelled?); re-run to retry" in stdout
    resumed = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "batch", *on_slurm],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    resumed_line = f"4 submissions: {3 - partial} graded now, {partial} from the cache, 0 grader errors"
    assert resumed_line in resumed.stdout
    assert (out / "gradebook.csv").read_bytes() == (tmp_path / "local" / "gradebook.csv").read_bytes()
    for p in subset:
        mine = json.loads(next((out / "students").glob(f"*_{p.uid}/results.json")).read_text())
        theirs = json.loads(next((tmp_path / "local/students").glob(f"*_{p.uid}/results.json")).read_text())
        assert [t.get("score") for t in mine["tests"]] == [t.get("score") for t in theirs["tests"]]
        assert mine["score"] == theirs["score"] == klass.expected[p.uid]
