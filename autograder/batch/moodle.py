"""Finding each student's submission in what a TA downloaded.

Layouts (docs/batch.md):

- Moodle >= 4.1, "download in folders": ``Full Name_<id>_assignsubmission_file/…``;
- Moodle 3.1–4.0: the same with a trailing underscore, ``…_assignsubmission_file_/…``;
- folders off (flat): ``Full Name_<id>_assignsubmission_file_<filename>``;
- team submissions: the number is the group id (``--teams``), and a submission
  without a group is ``Default group_assignsubmission_file``;
- a folder (or zip) of ``StudentID_lab2.zip`` files or ``StudentID_lab2/`` folders.

The student key parsed from those names is what every output carries. A
download zip is unpacked once, defensively (no path may leave the staging
folder, no symbolic links, sizes capped while reading), and kept across
re-runs so a resumed batch does not unpack it again.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
from ..submission import JUNK, MAX_FOLDER_DEPTH, walk, zip_directory, zip_entry
from ..untrusted import file_name, short, utf8

MOODLE_NAME = re.compile(
    r"^(?P<name>[^_]+?)(?:_(?P<id>\d+))?_assignsubmission_(?P<plugin>[a-z]+)(?P<sep>_?)(?P<rest>.*)$",
    re.DOTALL,
)
STUDENT_ID = re.compile(r"^(?P<id>[A-Za-z0-9]+)(?:[_\-. ].*)?$")
MAX_FILE_BYTES = 4 << 30
MAX_TOTAL_BYTES = 256 << 30
MAX_ENTRIES = 200_000
# zipfile parses a zip's whole central directory first, about 410 bytes of memory for every
# 47-byte entry (measured: 200,000 such entries, 82 MB, 0.8 s). 32 MiB holds MAX_ENTRIES entries
# with paths of ~120 characters (a Moodle folder name and a file in it); at worst, entries of
# 46 bytes, it costs zipfile ~300 MB and a few seconds.
MAX_DIRECTORY = 32 << 20
STAGE_MARK = ".autograder-staged.json"


class DownloadError(UsageError):
    """The download cannot be read at all; the message is the one line to show."""


@dataclass(frozen=True)
class Student:
    """One gradable submission and who it belongs to."""

    key: str  # the Moodle participant id, ``group-<id>``, or the student id
    name: str  # full name, group name, or the student id
    kind: str  # "participant" | "team" | "student_id"
    folder: str  # the per-student output folder name
    source: Path  # a folder or a zip, handed to grade()

    @property
    def identifier(self) -> str | None:
        """The worksheet's ``Identifier`` cell for this student, when there is one."""
        return f"Participant {self.key}" if self.kind == "participant" else None


@dataclass
class Download:
    students: list[Student]
    layout: str
    notes: list[str] = field(default_factory=list)


def discover(path: Path, staging: Path, teams: bool = False) -> Download:
    """The students in ``path`` (a download zip or folder), in a stable order."""
    path = Path(path)
    if not path.exists():
        raise DownloadError(f"{path} does not exist")
    notes: list[str] = []
    root = path
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise DownloadError(
                f"{path} is neither a folder nor a zip file; pass Moodle's 'Download all submissions' "
                "zip or a folder of submissions"
            )
        root = unpack_download(path, staging / "download", notes)
    root = _unwrap(root)
    entries = sorted(p for p in root.iterdir() if not _junk(p.name))
    moodle = [e for e in entries if MOODLE_NAME.match(e.name)]
    if moodle:
        students = _moodle_students(moodle, staging / "flat", teams, notes)
        layout = _layout_name(moodle)
        for other in entries:
            if other not in moodle:
                notes.append(f"ignored {other.name}: not a Moodle submission name")
    else:
        students, layout = _id_students(entries, notes), "student-id"
    if not students:
        raise DownloadError(
            f"no submissions found in {path}: expected Moodle folders such as "
            "'Full Name_1234567_assignsubmission_file' or files such as 'StudentID_lab2.zip'"
        )
    return Download(sorted(students, key=lambda s: (s.name.casefold(), s.key)), layout, notes)


def _junk(name: str) -> bool:
    return name in JUNK or name.startswith((".", "._"))


def _unwrap(root: Path) -> Path:
    """A download unzipped into a folder of its own: grade what is inside."""
    for _ in range(2):
        entries = [p for p in root.iterdir() if not _junk(p.name)]
        if len(entries) != 1 or not entries[0].is_dir() or MOODLE_NAME.match(entries[0].name):
            return root
        if STUDENT_ID.match(entries[0].name) and any(c.is_file() for c in entries[0].iterdir()):
            return root  # a single StudentID_lab2/ folder is one student, not a wrapper
        root = entries[0]
    return root


def _layout_name(entries: list[Path]) -> str:
    kinds = set()
    for entry in entries:
        match = MOODLE_NAME.match(entry.name)
        assert match
        if entry.is_dir():
            kinds.add("moodle-folders" + ("-underscore" if match["sep"] and not match["rest"] else ""))
        else:
            kinds.add("moodle-flat")
    return "+".join(sorted(kinds))


def _moodle_students(entries: list[Path], flat_root: Path, teams: bool, notes: list[str]) -> list[Student]:
    groups: dict[tuple[str, str | None], list[Path]] = {}
    for entry in entries:
        match = MOODLE_NAME.match(entry.name)
        assert match
        if match["plugin"] != "file":
            notes.append(f"ignored {entry.name}: only file submissions are graded ({match['plugin']})")
            continue
        if match["id"] is None and not teams:
            notes.append(f"ignored {entry.name}: no participant number (pass --teams for group submissions)")
            continue
        groups.setdefault((utf8(match["name"]), match["id"]), []).append(entry)
    students = []
    taken: dict[str, str] = {}  # student key -> the Moodle name that has it
    for (name, number), members in sorted(groups.items(), key=lambda g: (g[0][1] or "", g[0][0])):
        key = (f"group-{number}" if number else "group-default") if teams else str(number)
        folder = _prefix(name, number)
        if key in taken:
            # Two names, one number (e.g. the same name in NFC and NFD from a zip made on
            # a Mac): both are graded, neither overwrites the other, and the TA is told.
            n = 2
            while f"{key}~{n}" in taken:
                n += 1
            how = (
                " (the same name in two Unicode normalisations)"
                if unicodedata.normalize("NFC", name) == unicodedata.normalize("NFC", taken[key])
                else ""
            )
            notes.append(
                f"two submissions carry the number {number}: {taken[key]!r} and {name!r}{how}; both "
                f"graded, the second as {key}~{n} (its grade is not filled in: check which is the student's)"
            )
            key, folder = f"{key}~{n}", safe_folder(f"{folder}~{n}")
        taken[key] = name
        folders = [m for m in members if m.is_dir()]
        flat = [m for m in members if m.is_file()]
        if folders and not flat and len(folders) == 1:
            source = folders[0]
        else:
            source = _stage_flat(flat_root / folder, folders, flat)
        kind = "team" if teams else "participant"
        students.append(Student(key, name, kind, folder, source))
    return students


def _prefix(name: str, number: str | None) -> str:
    return safe_folder(f"{name}_{number}" if number else name)


def safe_folder(name: str) -> str:
    """A folder name that stays one path component, keeps readable Unicode."""
    name = unicodedata.normalize("NFC", name).replace("/", "_").replace("\\", "_").replace("\0", "")
    name = "".join(c for c in name if c.isprintable()).strip().lstrip(".")
    return file_name(name[:120], limit=200) or "student"


def _stage_flat(target: Path, folders: list[Path], flat: list[Path]) -> Path:
    """Flat-layout files (``…_assignsubmission_file_model.py``) as one folder."""
    tmp = target.with_name(f".tmp-{target.name}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for folder in folders:
        shutil.copytree(folder, tmp, dirs_exist_ok=True, symlinks=True)
    for path in flat:
        match = MOODLE_NAME.match(path.name)
        assert match
        if path.is_symlink():
            continue
        shutil.copyfile(path, tmp / (safe_folder(match["rest"]) or "file"))
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return target


def _id_students(entries: list[Path], notes: list[str]) -> list[Student]:
    """``StudentID_lab2.zip`` / ``StudentID_lab2/``: the key is the leading id."""
    by_id: dict[str, list[Path]] = {}
    for entry in entries:
        if entry.is_symlink():
            notes.append(f"ignored {entry.name}: a symbolic link")
            continue
        if entry.is_file() and not zipfile.is_zipfile(entry):
            if entry.suffix.lower() == ".zip":
                by_id.setdefault(_student_id(entry.name), []).append(entry)  # graded: says "not a zip"
            else:
                notes.append(f"ignored {entry.name}: not a zip file or a folder")
            continue
        by_id.setdefault(_student_id(entry.name), []).append(entry)
    students = []
    for sid, paths in by_id.items():
        chosen = max(paths, key=lambda p: (p.stat().st_mtime, p.name))
        for other in paths:
            if other != chosen:
                notes.append(f"{sid}: graded {chosen.name}, the newest of several; ignored {other.name}")
        students.append(Student(sid, sid, "student_id", safe_folder(sid), chosen))
    return students


def _student_id(name: str) -> str:
    stem = name[:-4] if name.lower().endswith(".zip") else name
    match = STUDENT_ID.match(stem)
    return match["id"] if match else safe_folder(stem)


# --- unpacking the download zip ---------------------------------------------------


def _zip_signature(infos: list[zipfile.ZipInfo]) -> str:
    """Names, sizes and CRCs of every entry: unchanged download, unchanged staging."""
    digest = hashlib.sha256()
    for info in infos:
        digest.update(f"{info.filename}\0{info.file_size}\0{info.CRC}\n".encode())
    return digest.hexdigest()


def unpack_download(archive: Path, target: Path, notes: list[str]) -> Path:
    """Unpack ``archive`` into ``target`` once; a re-run with the same zip reuses it."""
    declared = zip_directory(archive)  # before zipfile parses the directory it declares
    if declared.entries > MAX_ENTRIES or declared.size > MAX_DIRECTORY:
        raise DownloadError(
            f"{archive.name} lists {declared.entries:,} entries in a directory of "
            f"{declared.size / (1 << 20):,.1f} MiB, more than a download may hold ({MAX_ENTRIES:,} "
            f"entries, {MAX_DIRECTORY >> 20} MiB): it is damaged or not a Moodle download; download it again"
        )
    unreadable = f"{archive.name} is not a readable zip file"
    try:  # its directory is parsed once, for the signature and the extraction
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DownloadError(f"{unreadable}: {exc}") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ENTRIES:  # more than its end record declared
            raise DownloadError(f"{archive.name} has {len(infos)} entries (limit {MAX_ENTRIES})")
        signature = _zip_signature(infos)
        mark = target / STAGE_MARK
        if mark.is_file():
            saved = json.loads(mark.read_text(encoding="utf-8"))
            if saved.get("signature") == signature:
                notes.extend(saved.get("notes", []))
                return target
        tmp = target.with_name(f".tmp-{target.name}")
        for stale in (tmp, target):
            if stale.exists():
                shutil.rmtree(stale)
        tmp.mkdir(parents=True)
        try:
            skipped = _extract_all(zf, infos, tmp)
        except (zipfile.BadZipFile, EOFError, NotImplementedError) as exc:
            raise DownloadError(f"{unreadable}: {exc}") from None
    (tmp / STAGE_MARK).write_text(json.dumps({"signature": signature, "notes": skipped}), encoding="utf-8")
    tmp.rename(target)
    notes.extend(skipped)
    return target


def _extract_all(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], dest: Path) -> list[str]:
    skipped: list[str] = []
    total = 0
    for info in infos:
        # the student's folder, then theirs: one folder more than a submission may nest
        name, parts, why = zip_entry(info, "download folder", depth=MAX_FOLDER_DEPTH + 1)
        if why is not None:
            if why:
                skipped.append(why)
            continue
        fitted = [file_name(p) for p in parts]
        try:
            total += _copy_capped(zf, info, dest.joinpath(*fitted), total)
        except OSError as exc:  # what the file system refuses costs this file only
            why = exc.strerror or exc
            skipped.append(f"skipped {short(name)!r}: it cannot be written here ({why})")
            continue
        if fitted != list(parts):
            skipped.append(
                f"shortened a name over 255 bytes: {short(name)!r} -> {short('/'.join(fitted))!r}"
            )
    return skipped


def _copy_capped(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, total: int) -> int:
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with zf.open(info) as reader, open(target, "wb") as out:
        while chunk := reader.read(1 << 20):
            written += len(chunk)
            if written > MAX_FILE_BYTES or total + written > MAX_TOTAL_BYTES:
                out.close()
                target.unlink()
                raise DownloadError(
                    f"{info.filename} unpacks to more than {MAX_FILE_BYTES >> 30} GiB "
                    "(a zip bomb or a far too large file); remove it from the download"
                )
            out.write(chunk)
    return written


def content_hash(source: Path) -> str:
    """What the student handed in, by content: the cache key's first part."""
    digest = hashlib.sha256()
    if source.is_file():
        digest.update(b"file\0")
        _hash_file(source, digest)
        return digest.hexdigest()
    for path in walk(source):
        if path.is_symlink() or not path.is_file() or path.name == STAGE_MARK:
            continue
        digest.update(path.relative_to(source).as_posix().encode("utf-8", "surrogateescape") + b"\0")
        _hash_file(path, digest)
    return digest.hexdigest()


def _hash_file(path: Path, digest) -> None:  # noqa: ANN001 - hashlib has no public type
    inner = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            inner.update(chunk)
    digest.update(inner.digest())


__all__ = ["Download", "DownloadError", "Student", "content_hash", "discover"]
