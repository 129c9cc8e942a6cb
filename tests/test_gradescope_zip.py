"""``autograder build-gradescope``: the zip is unpacked into a fake /autograder
tree (AUTOGRADER_ROOT), its setup.sh and run_autograder run as Gradescope runs
them (on a PATH whose python3 is Python 3.10, like Gradescope's Ubuntu 22.04),
and a submission is graded by the code inside the zip, in the strongest sandbox
tier this machine has, reached through the linked /autograder/.venv."""

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
from helpers import labs, stdlib310

from autograder.cli import main
from autograder.sandbox.tiers import _bwrap_works

pytestmark = pytest.mark.slow  # builds the Gradescope zip and runs its setup.sh

RUBRIC = "lab4-cnn-fashion-mnist"


def unpack(archive: Path, target: Path) -> None:
    """Like Gradescope's unzip: files with their modes."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            path = target / info.filename
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(zf.read(info))
            path.chmod(stat.S_IMODE(info.external_attr >> 16) or 0o644)


def stand_in_environment(grader: Path) -> bool:
    """What ``pip install -e grader`` gives on Gradescope, without a network: a venv
    holding this environment's packages (hard links: a few seconds, no disk) and the
    bundled grader on its path. False where links cannot be made (another file system):
    then the packages are reached by path, which the bubblewrap sandbox does not bind."""
    venv = grader / ".venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    packages = next(venv.glob("lib/python3*/site-packages"))
    ours = [Path(p) for p in site.getsitepackages() if p.startswith(sys.prefix) and Path(p).is_dir()]
    mine = ("__editable__", "autograder-", "distutils-precedence")
    linked = True
    try:
        for folder in ours:
            for entry in folder.iterdir():
                if entry.name.startswith(mine):
                    continue
                if entry.is_dir():
                    shutil.copytree(entry, packages / entry.name, symlinks=True, copy_function=os.link)
                else:
                    os.link(entry, packages / entry.name)
    except OSError:
        linked = False
    extra = [] if linked else [str(p) for p in ours]
    (packages / "bundled_grader.pth").write_text("\n".join([str(grader), *extra]) + "\n")
    return linked


def ubuntu_2204_path(folder: Path) -> dict[str, str]:
    """A PATH whose python3 is Python 3.10 (the real one where this machine has it, else a
    shim that says so), and an apt-get that records its calls and "installs" python3.11
    as this machine's 3.11."""
    folder.mkdir()
    py310 = stdlib310.find()
    if py310:
        (folder / "python3").symlink_to(py310)
    else:
        (folder / "python3").write_text('#!/bin/sh\necho "Python 3.10.12"; exit 1\n')
    (folder / "apt-get").write_text(
        f'#!/bin/sh\necho "$@" >> {folder}/apt.log\n'
        f'[ "$1" = install ] && ln -sf {sys._base_executable} {folder}/python3.11\nexit 0\n'
    )
    for name in ("python3", "apt-get"):
        (folder / name).chmod(0o755)
    return {"PATH": f"{folder}:{os.environ['PATH']}"}
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
    linked = stand_in_environment(root / "source" / "grader")
    shutil.copytree(fashion_root / "FashionMNIST", root / "data" / "FashionMNIST")  # downloaded at build
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOGRADER_", "PYTHON"))}
    env |= {"AUTOGRADER_ROOT": str(root), "AUTOGRADER_CACHE": os.environ["AUTOGRADER_CACHE"]}
    setup = subprocess.run(
        ["bash", str(root / "source" / "setup.sh")],
        env=env | ubuntu_2204_path(world / "ubuntu") | {"AUTOGRADER_SKIP_INSTALL": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")  # Gradescope's step
    labs.lab4_submission(root / "submission", lab4_trained, fashion_root)
    graded = subprocess.run(
        [str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )
    graded.linked = linked
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


def test_grading_reaches_bubblewrap_through_the_linked_venv(gradescope):
    """/autograder/.venv is a link: the sandbox must start Python by the path it binds,
    or grading falls back to tier B (``execvp .../.venv/bin/python: No such file``)."""
    _, root, _, graded = gradescope
    works, why = _bwrap_works()
    if not works:
        pytest.skip(f"no tier A on this machine: {why}")
    if not graded.linked:
        pytest.skip("the stand-in venv could not hard-link this environment's packages (another file system)")
    assert (root / ".venv").is_symlink()
    results = json.loads((root / "results" / "results.json").read_text())
    sandbox = results["extra_data"]["provenance"]["sandbox"]
    assert sandbox["tier"] == "A", sandbox
    assert "tier A" in graded.stdout
    crashed = [t["output"][:200] for t in results["tests"] if "crashed the worker" in t.get("output", "")]
    assert results["score"] == 100 and not crashed, crashed  # the workers really ran in there


def test_setup_installs_python_311_where_python3_is_310(gradescope, world):
    _, _, setup, _ = gradescope
    assert "is older than 3.11: installing python3.11 (apt)" in setup.stdout
    assert "install -y -q python3.11 python3.11-venv" in (world / "ubuntu" / "apt.log").read_text()


def test_a_dataset_that_cannot_be_downloaded_fails_the_build(gradescope, tmp_path):
    """Without the test split every student would get 0 on the hidden accuracy items."""
    archive, root, _, _ = gradescope
    other = tmp_path / "autograder"
    unpack(archive, other / "source")
    (other / "source" / "grader" / ".venv").symlink_to(root / "source" / "grader" / ".venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOGRADER_", "PYTHON"))}
    env |= {"AUTOGRADER_ROOT": str(other), "AUTOGRADER_SKIP_INSTALL": "1"}
    setup = subprocess.run(
        ["bash", str(other / "source" / "setup.sh")], env=env, capture_output=True, text=True, timeout=120
    )
    assert setup.returncode != 0
    assert f"setup.sh: ERROR: fashion_mnist could not be put into {other / 'data'}" in setup.stderr


def test_run_autograder_without_a_rubric_explains_without_a_traceback(gradescope, tmp_path):
    _, root, _, _ = gradescope
    home = tmp_path / "autograder"
    home.mkdir()
    shutil.copy2(root / "run_autograder", home / "run_autograder")
    (home / ".venv").symlink_to(root / ".venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOGRADER_", "PYTHON"))}
    env["AUTOGRADER_ROOT"] = str(home)
    done = subprocess.run([str(home / "run_autograder")], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    results = json.loads((home / "results" / "results.json").read_text())
    assert results["score"] == 0
    assert "no rubric is configured: build the zip with `autograder build-gradescope" in results["output"]
