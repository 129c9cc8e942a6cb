"""Python 3.10 (Ubuntu 22.04's, Gradescope's default image's) can run the package: every
module parses as 3.10 and every standard-library name it uses exists there, checked by a
real CPython 3.10. (The third-party packages are not installed for 3.10 here: PyTorch's
3.10 wheels are gigabytes; docs/labs.md says what only Gradescope itself can show.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import stdlib310

ROOT = Path(__file__).resolve().parent.parent


def test_the_package_uses_only_python_310_syntax_and_stdlib():
    python = stdlib310.find()
    if python is None:
        pytest.skip("no CPython 3.10 on this machine (python3.10, /usr/bin/python3.10 or pyenv's)")
    done = subprocess.run(
        [python, stdlib310.__file__, "autograder", "reference"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "ok"


def test_the_checker_catches_what_310_lacks(tmp_path):
    """Control: the 3.11-only names this package used before are reported."""
    python = stdlib310.find()
    if python is None:
        pytest.skip("no CPython 3.10 on this machine (python3.10, /usr/bin/python3.10 or pyenv's)")
    (tmp_path / "m.py").write_text(
        "import enum\nimport tomllib\nfrom datetime import UTC\n\nclass T(enum.StrEnum):\n    A = 'A'\n"
    )
    done = subprocess.run([python, stdlib310.__file__, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 1
    for problem in ("no module tomllib", "datetime.UTC is not", "enum.StrEnum is not"):
        assert problem in done.stdout
