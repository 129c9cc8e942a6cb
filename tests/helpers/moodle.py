"""Moodle as a TA meets it, for tests: a class roster, a "Download all
submissions" zip in either folder convention (or flat), the assignment's
offline grading worksheet, and an importer that applies the gradebook CSV
import rules of Moodle's ``grade/import/csv/classes/load_data.php``."""

from __future__ import annotations

import csv
import io
import random
import re
import stat
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
import torch
from nbformat import v4

from helpers import submissions

FIRST_NAMES = (
    "Alice Bob Chen Dana Émile Farah Gao Hana Ivan Jia Kofi Lena Mateo Nour Olga Pedro Qing Rosa Sven "
    "Tomás Uma Vera Wei Xavi Yuki Zoë Ali Bea Cyd Dev Eva Finn"
)
FIRST = FIRST_NAMES.split()
LAST = ["Example", "Ångström", "O'Neil", "Lin", "Wang", "van Dijk", "Smith", "Nakamura", "Müller", "Silva"]


@dataclass(frozen=True)
class Person:
    name: str
    uid: str  # the assignment's participant number (folder names, worksheet Identifier)
    email: str
    id_number: str
    user_id: int  # Moodle's internal user.id


def roster(n: int, seed: int = 0) -> list[Person]:
    rng = random.Random(seed)
    people = []
    for k in range(n):
        name = f"{FIRST[k % len(FIRST)]} {LAST[(k * 7 + seed) % len(LAST)]}"
        uid = str(1_000_000 + rng.randrange(9_000_000))
        people.append(Person(name, uid, f"s{k:03d}@uni.example", f"F74{k:06d}", 100 + k))
    assert len({p.uid for p in people}) == n
    return people


def folder_name(person: Person, convention: str) -> str:
    """Moodle >= 4.1 ('folders') or 3.1-4.0 ('folders_', trailing underscore)."""
    base = f"{person.name.replace('_', ' ')}_{person.uid}_assignsubmission_file"
    return base + ("_" if convention == "folders_" else "")


def add_submission(zf: zipfile.ZipFile, person: Person, source: Path, convention: str) -> None:
    """One student's files as Moodle zips them; ``source`` is a folder or a single file."""
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    for path in files:
        rel = path.name if source.is_file() else path.relative_to(source).as_posix()
        if convention == "flat":
            zf.write(path, f"{person.name}_{person.uid}_assignsubmission_file_{rel.replace('/', '_')}")
        else:
            zf.write(path, f"{folder_name(person, convention)}/{rel}")


def add_symlink(zf: zipfile.ZipFile, name: str, target: str) -> None:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    zf.writestr(info, target)


def mark_encrypted(archive: Path, name: str) -> None:
    """Set the 'encrypted' flag of entry ``name`` in both its headers, as a password-protected
    zip (7-Zip, WinZip) stores it: ``zipfile`` then refuses to read the entry."""
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo(name)
        local, start = info.header_offset, zf.start_dir
    data[local + 6] |= 0x1
    at = start
    while data[at : at + 4] == b"PK\x01\x02":
        size, extra, comment = struct.unpack("<HHH", data[at + 28 : at + 34])
        if data[at + 46 : at + 46 + size].decode() == name:
            data[at + 8] |= 0x1
        at += 46 + size + extra + comment
    archive.write_bytes(bytes(data))


# --- student submissions ---------------------------------------------------------

POOL = [
    "optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)",
    "optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=5e-4)",
    "scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.1)",
    "criterion = nn.CrossEntropyLoss(label_smoothing=0.1)",
    "for epoch in range(10):\n    for images, labels in trainloader:\n        optimizer.zero_grad()\n"
    "        loss = criterion(model(images), labels)\n        loss.backward()\n        optimizer.step()",
    "def evaluate(model, loader):\n    correct = 0\n    with torch.no_grad():\n        for x, y in loader:\n"
    "            correct += (model(x).argmax(1) == y).sum().item()\n    return correct / len(loader.dataset)",
    "history = {'train_loss': [], 'val_acc': []}",
    "import matplotlib.pyplot as plt\nplt.plot(history['train_loss'])\nplt.title('loss')\nplt.show()",
    "best = max(range(len(history['val_acc'])), key=history['val_acc'].__getitem__)",
    "device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')",
    "trainloader = torch.utils.data.DataLoader(trainset, batch_size=128, shuffle=True, num_workers=2)",
    "total = sum(p.numel() for p in model.parameters() if p.requires_grad)",
    "class_correct = [0] * 10\nclass_total = [0] * 10",
    "while len(history['val_acc']) < 3:\n    history['val_acc'].append(0.0)",
    "torch.backends.cudnn.benchmark = True",
    "if total > 100000:\n    print('big model')\nelse:\n    print('small model')",
    "try:\n    from thop import profile\nexcept ImportError:\n    profile = None",
    "def count(m):\n    return sum(p.numel() for p in m.parameters())",
]


TORCH_NAMES = (
    "relu sigmoid tanh exp log abs sqrt mean sum amax amin softmax log_softmax flatten sign ceil floor "
    "round square erf clamp_min cumsum argmax std var"
)
POOL += [f"value = torch.{fn}(value)" for fn in TORCH_NAMES.split()]


def student_code(rng: random.Random, k: int = 8) -> str:
    """A cell of its own: ``k`` statements from a pool large enough that two
    students picked at random share little, as real students do."""
    return "\n".join(rng.sample(POOL, k))


def training_log(rng: random.Random, epochs: int = 12) -> str:
    lines = []
    for epoch in range(1, epochs + 1):
        lines.append(
            f"Epoch {epoch}/{epochs} train_loss={rng.uniform(0.2, 2.0):.4f} "
            f"val_acc={rng.uniform(0.5, 0.95):.4f}"
        )
    return "\n".join(lines) + "\n"


def notebook(code: str, log: str, simple_cnn: str | None = None) -> nbformat.NotebookNode:
    nb = submissions.lab2_notebook(simple_cnn=simple_cnn, extra_cells=[code])
    nb.cells[-1].outputs = [v4.new_output("stream", name="stdout", text=log)]
    return nb


def perturbed(state: dict, k: int) -> dict:
    """The same model with a bias nudged by a hair: same accuracy, its own bytes."""
    out = {name: t.clone() for name, t in state.items()}
    out["fc.bias"] += 1e-6 * (k + 1)
    return out


def write_student(
    folder: Path,
    state: dict | None,
    nb: nbformat.NotebookNode | None,
    weights_name: str = "simple_cnn.pth",
    files: dict[str, bytes | str] | None = None,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if nb is not None:
        nbformat.write(nb, str(folder / "lab2.ipynb"))
    if state is not None:
        torch.save(state, folder / weights_name)
    (folder / "report.pdf").write_bytes(submissions.PDF)
    for name, content in (files or {}).items():
        path = folder / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    return folder


# --- the offline grading worksheet -------------------------------------------------

WORKSHEET_HEADER = [
    "Identifier",
    "Full name",
    "Email address",
    "ID number",
    "Status",
    "Grade",
    "Maximum Grade",
    "Grade can be changed",
    "Last modified (submission)",
    "Last modified (grade)",
    "Feedback comments",
]


def fputcsv(values: list[str]) -> str:
    """A row as PHP's fputcsv writes it (quotes around spaces, commas, quotes...)."""
    out = []
    for v in values:
        out.append('"' + v.replace('"', '""') + '"' if re.search(r'[,"\\\n\r\t ]', v) else v)
    return ",".join(out) + "\n"


def write_worksheet(
    path: Path,
    people: list[Person],
    submitted: set[str],
    locked: set[str] = frozenset(),
    group: dict[str, str] | None = None,
) -> Path:
    header = list(WORKSHEET_HEADER)
    if group is not None:
        header.insert(5, "Group")
    lines = [fputcsv(header)]
    for p in people:
        done = p.uid in submitted
        row = [
            f"Participant {p.uid}",
            p.name,
            p.email,
            p.id_number,
            "Submitted for grading" if done else "No submission",
            "",
            "100.00",
            "No" if p.uid in locked else "Yes",
            "Friday, 14 March 2025, 3:02 PM" if done else "-",
            "-",
            "",
        ]
        if group is not None:
            row.insert(5, group.get(p.uid, ""))
        lines.append(fputcsv(row))
    path.write_bytes(b"\xef\xbb\xbf" + "".join(lines).encode())
    return path


def read_worksheet(path: Path | bytes) -> tuple[list[str], list[list[str]]]:
    data = path if isinstance(path, bytes) else path.read_bytes()
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    return rows[0], rows[1:]


# --- Moodle's gradebook CSV import, as load_data.php applies it ----------------------


class ImportAborted(Exception):
    """Moodle refuses the whole file (the reason is Moodle's error string id)."""


def gradebook_import(
    data: bytes, users: list[Person], map_from: str, map_to: str, item: str, feedback: str | None = None
) -> dict[int, tuple[float | None, str | None]]:
    """user.id -> (grade, feedback), or ImportAborted as Moodle would."""
    text = data.decode("utf-8")  # the upload form's encoding: UTF-8
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")  # csvlib: BOM, newlines
    rows = list(csv.reader(io.StringIO(text)))
    header = [h.strip() for h in rows[0]]
    if any(len(r) != len(header) for r in rows[1:]):
        raise ImportAborted("csvweirdcolumns")
    if "Last downloaded from this course" in header:
        raise ImportAborted("gradealreadyupdated (stale export timestamp)")
    field = {"userid": "user_id", "useridnumber": "id_number", "useremail": "email"}[map_to]
    lookup = {str(getattr(u, field)): u for u in users}
    grade_col, id_col = header.index(item), header.index(map_from)
    fb_col = header.index(feedback) if feedback else None
    mapped = [c for c in (id_col, grade_col, fb_col) if c is not None]
    if len(set(mapped)) != len(mapped):
        raise ImportAborted("cannotmapfield")
    out: dict[int, tuple[float | None, str | None]] = {}
    for row in rows[1:]:
        value = row[id_col].strip()
        if not value:
            raise ImportAborted("blank identifier (skipped row or grades attached to the previous user)")
        user = lookup.get(value)
        if user is None:
            raise ImportAborted(f"usermappingerrorusernotfound: {value}")
        cell = row[grade_col].strip()
        if cell in ("", "-"):
            grade = None
        else:
            if not re.fullmatch(r"-?\d+(\.\d+)?", cell):
                raise ImportAborted(f"badgrade: {cell!r}")
            grade = float(cell)
            if grade > 100:
                raise ImportAborted("gradevaluetoobig")
        if user.user_id in out:
            raise ImportAborted(f"user {value} twice")
        out[user.user_id] = (grade, row[fb_col] if fb_col is not None else None)
    return out
