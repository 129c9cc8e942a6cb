"""``autograder build-gradescope``: the zip is unpacked into a fake /autograder
tree (AUTOGRADER_ROOT), its setup.sh and run_autograder run as Gradescope runs
them, and a submission is graded by the code inside the zip."""

from __future__ import annotations

import json
import os
import shutil
import site
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import jsonschema
import pytest
from helpers import labs

from autograder.cli import main

RUBRIC = "lab4-cnn-fashion-mnist"


def unpack(archive: Path, target: Path) -> None:
    """Like Gradescope's unzip: files with their modes."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            path = target / info.filename
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(zf.read(info))
            path.chmod(stat.S_IMODE(info.external_attr >> 16) or 0o644)


def stand_in_environment(grader: Path) -> Path:
    """What ``pip install -e grader`` gives on Gradescope, without a network: a venv
    whose site-packages holds the bundled grader and this environment's packages."""
    venv = grader / ".venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    packages = next(venv.glob("lib/python3*/site-packages"))
    ours = [p for p in site.getsitepackages() if p.startswith(sys.prefix)]
    (packages / "bundled_grader.pth").write_text("\n".join([str(grader), *ours]) + "\n")
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def world():
    """A folder other users may traverse, like /autograder (pytest's own tmp is private,
    and the grader runs student code as a separate uid)."""
    folder = Path(tempfile.mkdtemp(prefix="ag-gradescope-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def gradescope(world, fashion_root, lab4_trained):
    archive = world / "autograder.zip"
    assert main(["build-gradescope", "--rubric", RUBRIC, "--out", str(archive)]) == 0
    root = world / "autograder"
    unpack(archive, root / "source")
    stand_in_environment(root / "source" / "grader")
    shutil.copytree(fashion_root / "FashionMNIST", root / "data" / "FashionMNIST")  # downloaded at build
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOGRADER_", "PYTHON"))}
    env |= {"AUTOGRADER_ROOT": str(root), "AUTOGRADER_CACHE": os.environ["AUTOGRADER_CACHE"]}
    setup = subprocess.run(
        ["bash", str(root / "source" / "setup.sh")],
        env=env | {"AUTOGRADER_SKIP_INSTALL": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")  # Gradescope's step
    labs.lab4_submission(root / "submission", lab4_trained, fashion_root)
    # The stand-in venv reaches this environment's packages by path, which bubblewrap's
    # minimal root does not contain: grade unsandboxed here (the tiers have their own tests).
    graded = subprocess.run(
        [str(root / "run_autograder")],
        cwd=root,
        env=env | {"AUTOGRADER_SANDBOX_TIER": "C", "AUTOGRADER_ALLOW_UNSANDBOXED": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    return archive, root, setup, graded


def test_zip_layout(gradescope):
    archive, _, _, _ = gradescope
    with zipfile.ZipFile(archive) as zf:
        infos = {i.filename: i for i in zf.infolist()}
    for name in ("setup.sh", "run_autograder"):
        assert stat.S_IMODE(infos[name].external_attr >> 16) == 0o755, name
    assert infos["rubric-id"].file_size and "grader/rubrics/lab4-cnn-fashion-mnist.toml" in infos
    assert {"grader/pyproject.toml", "grader/setup.sh", "grader/reference/lab4/fashion_cnn.py"} <= set(infos)
    assert "grader/autograder/sandbox/worker/main.py" in infos
    with zipfile.ZipFile(archive) as zf:  # Gradescope has no GPU: the CPU-only torch build
        assert 'bash "$HERE/grader/setup.sh" --cpu\n' in zf.read("setup.sh").decode()
    assert not [n for n in infos if "__pycache__" in n or n.startswith(("grader/tests", "grader/.venv"))]
    repo = Path(__file__).resolve().parent.parent
    with zipfile.ZipFile(archive) as zf:
        assert zf.read("run_autograder") == (repo / "run_autograder").read_bytes()  # the repository's own


def test_setup_links_the_tree_and_finds_the_data(gradescope):
    _, root, setup, _ = gradescope
    assert setup.returncode == 0, setup.stderr
    assert f"fashion_mnist: already in {root / 'data' / 'FashionMNIST' / 'raw'}" in setup.stdout
    assert (root / "rubric-id").read_text().strip() == RUBRIC
    assert (root / ".venv").resolve() == (root / "source" / "grader" / ".venv").resolve()
    where = subprocess.run(
        [str(root / ".venv" / "bin" / "python"), "-I", "-c", "import autograder; print(autograder.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(root / "source" / "grader")  # the zip's code


def test_run_autograder_grades_with_the_zip(gradescope, results_schema):
    _, root, _, graded = gradescope
    assert graded.returncode == 0, graded.stderr[-3000:]
    results = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(results, results_schema)
    failed = [t["output"][:200] for t in results["tests"] if t.get("status") == "failed"]
    assert results["score"] == 100, failed
    tests = {t["extra_data"]["id"]: t for t in results["tests"]}
    assert tests["task1.accuracy"]["visibility"] == "after_due_date"  # from the rubric
    assert tests["files"]["visibility"] == "visible"
    assert results["extra_data"]["rubric"] == RUBRIC
    assert results["extra_data"]["provenance"]["rubric"]["path"] == f"{RUBRIC}.toml"
