"""A student's own environment (Colab, a laptop): a torch other than the grader's pinned
one is already installed. ``pip install`` of the project keeps it, and ``autograder
check`` there, without bubblewrap, gives the verdicts it gives with the pinned versions."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import labs

pytestmark = pytest.mark.slow  # installs a second torch into a fresh venv

ROOT = Path(__file__).resolve().parent.parent
OTHER_TORCH = "2.13.0"  # the grader pins 2.14.1 (constraints.txt)
OTHER_VISION = "0.28.0"


def pip(python: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=1800,
    )


@pytest.fixture(scope="session")
def other_torch(tmp_path_factory):
    """A fresh venv with torch 2.13.0 (and its torchvision), then the project installed
    into it the way a student would: ``pip install -e`` without constraints.txt."""
    folder = Path(tempfile.mkdtemp(prefix="ag-student-env-", dir="/tmp"))
    folder.chmod(0o755)  # the grader's sandbox uid runs this interpreter
    try:
        subprocess.run([sys._base_executable, "-m", "venv", str(folder / "venv")], check=True)
        python = folder / "venv" / "bin" / "python"
        wheels = folder / "wheels"
        offline = subprocess.run(
            [str(python), "-m", "pip", "download", "-q", "--no-deps", "--no-index", "-d", str(wheels)]
            + [f"torch=={OTHER_TORCH}"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if offline.returncode != 0:
            pytest.skip(
                f"torch {OTHER_TORCH} cannot be installed offline here (no wheel where pip looks "
                "without an index); a CUDA build from PyPI would be gigabytes"
            )
        first = pip(python, *map(str, wheels.glob("torch-*.whl")), f"torchvision=={OTHER_VISION}")
        if first.returncode != 0:
            pytest.skip(f"torch {OTHER_TORCH} + torchvision {OTHER_VISION}: {first.stderr.strip()[-300:]}")
        project = pip(python, "-e", str(ROOT))
        assert project.returncode == 0, project.stderr[-2000:]
        yield python, project
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def verdicts(python: Path | str, folder: Path) -> dict[str, list[str]]:
    """``autograder.check`` from a notebook cell, with no bubblewrap on PATH (Colab)."""
    cell = (
        "import json, autograder\n"
        f"report = autograder.check({str(folder)!r})\n"
        "print('VERDICTS', json.dumps({r.id: [r.verdict, r.why] for r in report.rows}))\n"
    )
    done = subprocess.run(
        [str(python), "-c", cell],
        env={"PATH": "/nonexistent", "COLUMNS": "200", "LANG": "C.UTF-8", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "note: no sandbox here" in done.stdout
    return json.loads(done.stdout.split("VERDICTS ", 1)[1])


def test_install_keeps_the_students_torch_and_check_agrees_with_the_pinned_one(
    other_torch, tmp_path, lab4_trained, fashion_root
):
    python, _ = other_torch
    version = subprocess.run(
        [str(python), "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True
    )
    assert version.stdout.strip().startswith(OTHER_TORCH), version.stdout + version.stderr
    template = tmp_path / "template"  # nothing written yet
    shutil.copytree(labs.TEMPLATES / "lab4-cnn-fashion-mnist", template)
    finished, _ = labs.lab4_submission(tmp_path / "finished", lab4_trained, fashion_root, plots=1)
    (finished / ".rubric").write_text("lab4-cnn-fashion-mnist\n")
    for folder in (template, finished):
        theirs = verdicts(python, folder)
        ours = verdicts(sys.executable, folder)  # this environment: the pinned versions
        assert theirs == ours, folder.name
    assert theirs["task1.spec"][0] == theirs["task1.counts"][0] == "pass"  # the finished lab: real verdicts
    assert theirs["notebook.outputs"][0] == "fail" and "found 1, need 2" in theirs["notebook.outputs"][1]
