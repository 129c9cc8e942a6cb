"""Taking in what a student handed in: a folder or a zip (Gradescope, Moodle,
``StudentID_lab2.zip``), copied into the job folder as plain regular files.

Nothing here executes student material. Zips are extracted defensively: no
path may leave the target (zip-slip), symlinks are dropped, and sizes are
capped while reading, not by trusting the headers (zip bombs).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from . import untrusted
from .errors import SubmissionProblem

MAX_TOTAL_BYTES = 2 << 30
MAX_FILE_BYTES = 1 << 30
MAX_FILES = 5000
MAX_ZIP_DEPTH = 2
MAX_NOTES = 20  # intake notes kept (each output shows them all); the rest are counted
MAX_FOLDER_DEPTH = 32  # folders inside the submission; Python's own walkers recurse per level
# A zip's central directory, parsed whole by zipfile before any entry is read: ~1.1 KB of
# memory per entry (300,000 empty entries, a 27 MB zip: 330 MB). 4 MiB lists well over
# MAX_FILES entries with long paths.
MAX_ZIP_DIRECTORY = 4 << 20
JUNK = ("__MACOSX", ".DS_Store", "Thumbs.db", ".ipynb_checkpoints", "__pycache__", ".git")
# archives a student may hand in that the grader does not open (by suffix; .tar.gz before .gz)
OTHER_ARCHIVES = {
    ".rar": "RAR",
    ".7z": "7-Zip",
    ".tar": "tar",
    ".tar.gz": "tar.gz",
    ".tgz": "tar.gz",
    ".gz": "gzip",
}
WEIGHT_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".pkl", ".safetensors")


class SubmissionError(SubmissionProblem):
    """The submission cannot be read at all (not a zip, not a folder, empty)."""


@dataclass
class Submission:
    root: Path  # the grader's copy; only regular files, no symlinks
    source: Path
    files: list[Path] = field(default_factory=list)  # relative to root
    notes: list[str] = field(default_factory=list)  # what intake skipped or changed

    def _by_suffix(self, *suffixes: str) -> list[Path]:
        return [f for f in self.files if f.name.lower().endswith(suffixes)]

    @property
    def notebooks(self) -> list[Path]:
        return self._by_suffix(".ipynb")

    @property
    def python_files(self) -> list[Path]:
        return self._by_suffix(".py")

    @property
    def weights(self) -> list[Path]:
        return self._by_suffix(*WEIGHT_SUFFIXES)

    def find(self, patterns: list[str]) -> list[Path]:
        """Files whose name matches any pattern (case-insensitive), pattern order
        first, then shallower paths first."""
        found: list[Path] = []
        for pattern in patterns:
            pat = pattern.lower()
            hits = [
                f
                for f in self.files
                if fnmatch.fnmatch(f.name.lower(), pat) or fnmatch.fnmatch(f.as_posix().lower(), pat)
            ]
            for hit in sorted(hits, key=lambda p: (len(p.parts), p.as_posix())):
                if hit not in found:
                    found.append(hit)
        return found

    def sha256(self, relative: Path) -> str:
        digest = hashlib.sha256()
        with (self.root / relative).open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()

    def listing(self) -> str:
        return ", ".join(f.as_posix() for f in self.files) or "(no files)"


def intake(source: Path, dest: Path) -> Submission:
    """Copy ``source`` (folder or zip) into ``dest`` and index its files."""
    source = Path(source)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    sub = Submission(root=dest, source=source)
    budget = _Budget()
    try:
        if source.is_dir():
            _copy_tree(source, dest, sub, budget)
        elif source.is_file() and zipfile.is_zipfile(source):
            _extract(source, dest, sub, budget, depth=0)
        elif source.is_file() and source.suffix.lower() == ".zip":
            raise SubmissionError(
                f"{untrusted.terminal(source.name)} is not a valid zip file (another kind of archive, "
                "or cut short?): zip your lab folder again and upload that"
            )
        elif source.is_file():
            target = dest / _safe_name(source.name, sub)
            budget.copy(source.open("rb"), target, source.name)
        else:
            raise SubmissionError(f"{source} is neither a folder nor a file")
        _unpack_nested(dest, sub, budget)
        _flatten_single_folder(dest)
    except OSError as exc:  # whatever the file system refuses: one line, never a traceback
        raise SubmissionError(
            f"{untrusted.terminal(source.name)} could not be taken in: {exc.strerror or exc}"
        ) from None
    sub.files = sorted(p.relative_to(dest) for p in walk(dest) if p.is_file())
    if not sub.files:
        raise SubmissionError(f"{source.name} contains no files")
    for rel in sub.files:
        kind = next((k for suffix, k in OTHER_ARCHIVES.items() if rel.name.lower().endswith(suffix)), None)
        if kind:
            sub.notes.append(
                f"{untrusted.short(rel.as_posix())} is a {kind} archive, which the grader does not "
                "open: hand in a .zip (or the files themselves)"
            )
    if len(sub.notes) > MAX_NOTES:
        sub.notes[MAX_NOTES:] = [f"… and {len(sub.notes) - MAX_NOTES} more notes like these"]
    return sub


class _Budget:
    def __init__(self) -> None:
        self.total = 0
        self.count = 0

    def copy(self, reader, target: Path, label: str) -> None:
        self.count += 1
        if self.count > MAX_FILES:
            raise SubmissionError(f"more than {MAX_FILES} files in the submission")
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with reader, target.open("wb") as out:
            while chunk := reader.read(1 << 20):
                written += len(chunk)
                self.total += len(chunk)
                if written > MAX_FILE_BYTES or self.total > MAX_TOTAL_BYTES:
                    out.close()
                    target.unlink()
                    raise SubmissionError(
                        f"{label} unpacks to more than {_mb(min(MAX_FILE_BYTES, MAX_TOTAL_BYTES))}"
                        " (a zip bomb or a far too large file); remove it and resubmit"
                    )
                out.write(chunk)


def _mb(n: int) -> str:
    return f"{n / (1 << 20):,.0f} MB"


def _junk(parts: tuple[str, ...]) -> bool:
    return any(p in JUNK or p.startswith("._") for p in parts)


def _safe_name(name: str, sub: Submission) -> str:
    return _fit(name.replace("/", "_").replace("\\", "_").lstrip(".") or "file", sub)


def _fit(name: str, sub: Submission) -> str:
    """One path component the file system takes (255 bytes); a shortened one is noted."""
    fitted = untrusted.file_name(name)
    if fitted == name:
        return name
    size = len(untrusted.utf8(name).encode())
    if size > untrusted.NAME_BYTES:
        sub.notes.append(
            f"shortened a file name of {size} bytes (the limit is {untrusted.NAME_BYTES}) to {fitted}"
        )
    else:
        sub.notes.append(f"renamed a file whose name is not UTF-8 to {fitted}")
    return fitted


def _write(budget: _Budget, reader, target: Path, label: str, sub: Submission) -> None:  # noqa: ANN001
    """One file of the submission; one the file system refuses is skipped with a note."""
    try:
        budget.copy(reader, target, label)
    except (FileExistsError, NotADirectoryError, IsADirectoryError):
        sub.notes.append(
            f"skipped {untrusted.short(label)!r}: a file and a folder of the submission have the same name"
        )
    except OSError as exc:
        why = exc.strerror or exc
        sub.notes.append(f"skipped {untrusted.short(label)!r}: it cannot be written here ({why})")


def walk(root: Path, too_deep: list[str] | None = None) -> list[Path]:
    """Every entry under ``root`` but folders, sorted, at most ``MAX_FOLDER_DEPTH`` folders down,
    without recursion (``Path.rglob`` and ``os.walk`` recurse once per level, so a tree a
    thousand folders deep raises RecursionError). Folders deeper than that are listed in
    ``too_deep`` and not entered."""
    found: list[Path] = []
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            path = Path(entry.path)
            if not entry.is_dir(follow_symlinks=False):
                found.append(path)
            elif depth + 1 < MAX_FOLDER_DEPTH:
                stack.append((path, depth + 1))
            elif too_deep is not None:
                too_deep.append(untrusted.utf8(path.relative_to(root).as_posix()))
    return sorted(found)


def too_deep_note(label: str, where: str = "") -> str:
    """The note for an entry skipped for its depth (intake's, a Moodle download's)."""
    return f"skipped {untrusted.short(label)!r}{where}: folders nested more than {MAX_FOLDER_DEPTH} deep"


def _copy_tree(source: Path, dest: Path, sub: Submission, budget: _Budget) -> None:
    too_deep: list[str] = []
    for path in walk(source, too_deep):
        rel = path.relative_to(source)
        if _junk(rel.parts):
            continue
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            sub.notes.append(f"skipped the symbolic link {untrusted.short(rel.as_posix())}")
        elif stat.S_ISREG(info.st_mode):
            target = dest.joinpath(*(_fit(p, sub) for p in rel.parts))
            _write(budget, path.open("rb"), target, untrusted.utf8(rel.as_posix()), sub)
    sub.notes.extend(too_deep_note(folder) for folder in too_deep if not _junk(Path(folder).parts))


@dataclass(frozen=True)
class ZipDirectory:
    """A zip's central directory as its end record declares it: what ``zipfile`` will
    read and parse whole, into one object per entry, before any entry can be refused."""

    entries: int
    size: int  # bytes


def zip_directory(archive: Path) -> ZipDirectory:
    """The declared directory of ``archive`` (zip64 too), read from the last 64 KiB of the
    file without parsing the directory itself; zeros when there is no readable end record
    (``zipfile`` then refuses the file at once). Every zip the grader opens is checked
    against this first: a submission here, a Moodle download and a checkpoint in ``batch``."""
    try:
        with open(archive, "rb") as handle:
            end = zipfile._EndRecData(handle)  # the stdlib's own reader of that record
    except (OSError, zipfile.BadZipFile):  # BadZipFile: a zip64 record naming several disks
        end = None
    if not end:
        return ZipDirectory(0, 0)
    return ZipDirectory(int(end[zipfile._ECD_ENTRIES_TOTAL]), int(end[zipfile._ECD_SIZE]))


class ZipEntry(NamedTuple):
    name: str  # as stored, with "/" separators
    parts: tuple[str, ...]
    skipped: str | None  # None: extract it; "": skip it without a word; else the note


def zip_entry(info: zipfile.ZipInfo, within: str, where: str = "", depth: int = MAX_FOLDER_DEPTH) -> ZipEntry:
    """What to do with one archive entry: the one rule for every zip the grader unpacks (a
    submission, a Moodle download). Folders and operating-system junk are skipped without a
    word; a path that leaves ``within`` (the folder it is unpacked into), a link, an entry
    more than ``depth`` folders down and an encrypted one with a note naming it (and the
    archive, ``where``)."""
    name = info.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if info.is_dir() or not parts or _junk(parts):
        return ZipEntry(name, parts, "")
    shown = f"{untrusted.short(name)!r}{where}"
    if name.startswith("/") or ".." in parts or ":" in parts[0]:
        return ZipEntry(name, parts, f"skipped {shown}: its path leaves the {within}")
    if stat.S_ISLNK(info.external_attr >> 16):
        return ZipEntry(name, parts, f"skipped the symbolic link {untrusted.short(name)}{where}")
    if len(parts) > depth:
        return ZipEntry(name, parts, too_deep_note(name, where))
    if info.flag_bits & 0x1:
        return ZipEntry(name, parts, f"skipped {shown}: it is encrypted")
    return ZipEntry(name, parts, None)


def _extract(archive: Path, dest: Path, sub: Submission, budget: _Budget, depth: int) -> None:
    if zip_directory(archive).size > MAX_ZIP_DIRECTORY:
        raise SubmissionError(
            f"{untrusted.short(archive.name)} lists far more than {MAX_FILES} files (its directory alone "
            f"is over {MAX_ZIP_DIRECTORY >> 20} MiB): zip only your lab folder and upload that"
        )
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                name, parts, skipped = zip_entry(info, "submission folder", f" in {archive.name}")
                if skipped is None:
                    target = dest.joinpath(*(_fit(p, sub) for p in parts))
                    _write(budget, zf.open(info), target, name, sub)
                elif skipped:
                    sub.notes.append(skipped)
    except (zipfile.BadZipFile, EOFError, NotImplementedError) as exc:
        raise SubmissionError(f"{archive.name} is not a readable zip file: {exc}") from None


def _unpack_nested(dest: Path, sub: Submission, budget: _Budget) -> None:
    """A zip inside the zip (``StudentID_lab2.zip`` inside Gradescope's upload)."""
    for depth in range(MAX_ZIP_DEPTH):
        nested = [p for p in dest.rglob("*.zip") if p.is_file()]
        if not nested:
            return
        for archive in nested:
            target = archive.with_suffix("")
            if target.exists():
                target = archive.with_name(archive.stem + "_unzipped")
            if zipfile.is_zipfile(archive):
                _extract(archive, target, sub, budget, depth + 1)
                sub.notes.append(f"unpacked the zip inside the submission: {archive.relative_to(dest)}")
            else:
                sub.notes.append(f"left out {archive.relative_to(dest)}: not a valid zip file")
            archive.unlink()
    if any(dest.rglob("*.zip")):
        sub.notes.append(f"zips nested deeper than {MAX_ZIP_DEPTH} levels were not unpacked")


def _flatten_single_folder(dest: Path) -> None:
    """``StudentID_lab2/…`` as the only entry: grade its contents as the root."""
    while True:
        entries = list(dest.iterdir())
        if len(entries) != 1 or not entries[0].is_dir():
            return
        children = {c.name for c in entries[0].iterdir()}
        aside = ".flatten-in-progress"
        while aside in children:  # a name none of the folder's own entries has
            aside += "_"
        inner = entries[0].rename(dest / aside)
        for child in list(inner.iterdir()):
            shutil.move(str(child), dest / child.name)
        inner.rmdir()
