"""``autograder build-gradescope``: the autograder.zip Gradescope builds its image from.

Gradescope unpacks the zip into ``/autograder/source``, runs ``setup.sh`` there
once (with network), copies ``run_autograder`` to ``/autograder/`` and runs it
for every submission. The zip holds:

* ``setup.sh`` (written here): installs Ubuntu's python3.11 where the image's python3 is
  older (the pins need 3.11), runs the repository's own ``setup.sh --cpu`` on the bundled
  grader (CPU-only torch, bubblewrap), points ``/autograder/.venv`` at its environment,
  records the rubric id, and downloads the rubric's dataset into ``/autograder/data``
  (a failed download fails the image build);
* ``run_autograder``: the repository's, unchanged (it reads ``rubric-id``,
  ``data/`` and ``.venv`` next to itself, i.e. in ``/autograder``);
* ``rubric-id`` and ``grader/``: the package, the rubric (and the reference files its
  ``generalisation`` items name, beside it), the reference solutions, ``pyproject.toml``,
  ``constraints.txt`` (the pinned versions), ``setup.sh``.

Item visibility comes from the rubric (``visibility`` per item, or the kind's
default), so hidden-test accuracy stays hidden until the due date.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

from .errors import UsageError
from .rubric import Rubric, load

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("autograder", "reference")
TOP_FILES = ("pyproject.toml", "constraints.txt", "README.md", "setup.sh", "run_autograder", "LICENSE")
EXECUTABLE = ("setup.sh", "run_autograder", "grader/setup.sh", "grader/run_autograder")
STAMP = (2020, 1, 1, 0, 0, 0)  # fixed timestamps: the same inputs give the same zip

SETUP = """#!/usr/bin/env bash
# Gradescope image build for the rubric {rubric_id} ({title}).
# Written by `autograder build-gradescope`; runs once, in /autograder/source, as root, with network.
# Any failure stops the build, and Gradescope shows its output to the instructor.
set -euo pipefail
HERE="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"

# 0. Python: the pinned versions in constraints.txt need >= 3.11. Gradescope's default image
#    (Ubuntu 22.04) has 3.10 as python3; Ubuntu's own python3.11 package is installed beside it.
if ! python3 -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  echo "setup.sh: $(python3 --version 2>&1) is older than 3.11: installing python3.11 (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q python3.11 python3.11-venv
  export PYTHON="$(command -v python3.11)"
fi

# 1. The grader, its pinned dependencies and the sandbox packages (bubblewrap): the repository's
#    setup.sh, with the CPU-only torch build (Gradescope has no GPU; it saves ~290 MB of the 768 MB).
if [ "${{AUTOGRADER_SKIP_INSTALL:-0}}" != 1 ]; then
  bash "$HERE/grader/setup.sh" --cpu
fi

# 2. run_autograder (copied to $ROOT) looks next to itself for .venv, rubric-id and data/.
ln -sfn "$HERE/grader/.venv" "$ROOT/.venv"
cp "$HERE/rubric-id" "$ROOT/rubric-id"

# 3. The dataset, downloaded now: grading itself never downloads. Without it every student
#    would get 0 on the hidden accuracy items, so a failed download fails the build.
if ! "$ROOT/.venv/bin/python" -I -m autograder.cli data {dataset} --data-root "$ROOT/data"; then
  echo "setup.sh: ERROR: {dataset} could not be put into $ROOT/data (see above); the accuracy" \\
    "items cannot be graded without it. Rebuild the image when the download works." >&2
  exit 1
fi
"""


class BuildError(UsageError):
    """The zip cannot be built; the message says why."""


def _members(rubric: Rubric) -> list[tuple[str, Path]]:
    """(name in the zip, file on disk) for the bundled grader."""
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*")):
            rel = path.relative_to(REPO)
            if path.is_file() and "__pycache__" not in rel.parts and path.suffix != ".pyc":
                found.append((f"grader/{rel.as_posix()}", path))
    for name in TOP_FILES:
        if (REPO / name).is_file():
            found.append((f"grader/{name}", REPO / name))
        elif name in ("pyproject.toml", "constraints.txt", "setup.sh", "run_autograder"):
            raise BuildError(f"{REPO / name} is missing: build the zip from a checkout of the autograder")
    # named after its id: run_autograder loads the rubric by the id in rubric-id
    found.append((f"grader/rubrics/{rubric.id}.toml", rubric.path))
    for item in rubric.items:  # files the rubric names beside itself (generalisation's reference)
        if item.options.get("reference"):
            path = rubric.path.parent / item.options["reference"]
            if not path.is_file():
                raise BuildError(f"{item.id}: reference file {path} is missing (run `autograder calibrate`)")
            found.append((f"grader/rubrics/{item.options['reference']}", path))
    return found


def _add(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, STAMP)
    mode = 0o755 if name in EXECUTABLE else 0o644
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def build(rubric_id: str, out: Path) -> tuple[Path, Rubric, int]:
    """Write the zip for ``rubric_id`` (an id or a .toml path); (path, rubric, files)."""
    rubric = load(rubric_id)
    members = _members(rubric)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        setup = SETUP.format(rubric_id=rubric.id, title=rubric.title, dataset=rubric.dataset)
        _add(zf, "setup.sh", setup.encode())
        _add(zf, "run_autograder", (REPO / "run_autograder").read_bytes())
        _add(zf, "rubric-id", f"{rubric.id}\n".encode())
        for name, path in members:
            _add(zf, name, path.read_bytes())
    tmp.replace(out)
    return out, rubric, len(members) + 3


def add_arguments(parser) -> None:
    parser.add_argument("--rubric", required=True, help="rubric id or path to a .toml file")
    parser.add_argument(
        "--out", type=Path, default=Path("autograder.zip"), help="the zip to write (default autograder.zip)"
    )


def command(args) -> int:
    path, rubric, count = build(args.rubric, args.out)
    visible = [i.id for i in rubric.items if i.visibility == "visible"]
    later = [f"{i.id} ({i.visibility})" for i in rubric.items if i.visibility != "visible"]
    print(f"{path}: {count} files for {rubric.id} ({rubric.title})")
    print(f"  students see at once: {', '.join(visible) or 'nothing'}")
    print(f"  students see later: {', '.join(later) or 'nothing'}")
    print(
        f"  upload it under Configure Autograder; the image build downloads {rubric.dataset} "
        "(Gradescope builds have network) and the sandbox needs bubblewrap (apt, in setup.sh)"
    )
    return 0
