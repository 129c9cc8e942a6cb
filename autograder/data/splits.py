"""Reading a split with torchvision's own readers, verifying official files,
and caching the decoded uint8 tensor so later runs need only numpy.

torchvision's CIFAR10 refuses files whose md5 differs from the official
release; the grader must also take an instructor's private held-out split or
generated data in the same format, so integrity is checked here instead and
reported: official files as verified, others as custom with their hashes.

torchvision's readers are imported inside functions: the grader itself never loads
torch (tests/test_grader_light.py).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from .registry import DatasetSpec, dataset_spec

CACHE_ENV = "AUTOGRADER_CACHE"
CACHE_VERSION = 2  # 2: the official flag is cached too


class DataError(UsageError):
    """The data root does not hold the split the rubric needs."""


@dataclass
class Split:
    spec: DatasetSpec
    images: np.ndarray  # uint8, (N, C, H, W)
    labels: np.ndarray  # int64, (N,)
    files: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> sha256/md5
    official: bool = False

    def provenance(self) -> dict[str, Any]:
        return {
            "dataset": self.spec.name,
            "images": int(len(self.labels)),
            "official": self.official,
            "files": self.files,
        }


def cache_dir() -> Path:
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "autograder")
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    root.chmod(0o700)  # decoded labels live here: never readable by a sandbox uid
    return root


def _hashes(path: Path) -> dict[str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5()  # noqa: S324 - md5 only to match the release list
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            sha.update(chunk)
            md5.update(chunk)
    return {"sha256": sha.hexdigest(), "md5": md5.hexdigest()}


def load_split(root: str | Path, name: str, train: bool = False) -> Split:
    """The decoded split, from the cache when its source files are unchanged."""
    spec = dataset_spec(name)
    folder = Path(root) / spec.folder
    if not folder.is_dir():
        raise DataError(
            f"no {name} data under {root}: expected the folder {folder} "
            f"(run `autograder data {name} --data-root {root}` where there is network)"
        )
    sources = _cifar_files(folder, train) if name == "cifar10" else _idx_files(folder, train)
    files = {p.name: _hashes(p) for p in sources}
    key = hashlib.sha256(
        repr((CACHE_VERSION, name, train, sorted((n, h["sha256"]) for n, h in files.items()))).encode()
    ).hexdigest()[:24]
    cached = cache_dir() / f"{name}-{'train' if train else 'test'}-{key}.npz"
    if not cached.exists():
        _decode(Path(root), name, train, cached)
    with np.load(cached, allow_pickle=False) as z:  # numpy only: no torch in the grader
        images, labels, official = z["images"], z["labels"], bool(z["official"])
    _check(spec, images, labels, folder)
    return Split(spec, images, labels, files, official)


def _decode(root: Path, name: str, train: bool, cached: Path) -> None:
    """Decode with torchvision's readers into ``cached``.

    When this process has not imported torch, a short-lived child does it:
    importing torch would keep ~500 MB in the grader for the whole run, next
    to the worker's own, and Gradescope gives both together 768 MB."""
    if "torch" in sys.modules:
        _write_cache(root, name, train, cached)
        return
    package_root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-c", _CHILD, str(root), name, "train" if train else "test", str(cached)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
    )
    if done.returncode != 0 or not cached.exists():
        lines = done.stderr.strip().splitlines()
        reason = next((ln for ln in reversed(lines) if ln.startswith("DataError: ")), None)
        raise DataError(reason[len("DataError: ") :] if reason else f"decoding {root} failed: {lines[-1:]}")


_CHILD = (
    "import sys; from pathlib import Path; from autograder.data.splits import _write_cache; "
    "_write_cache(Path(sys.argv[1]), sys.argv[2], sys.argv[3] == 'train', Path(sys.argv[4]))"
)


def _write_cache(root: Path, name: str, train: bool, cached: Path) -> None:
    folder = root / dataset_spec(name).folder
    sources = _cifar_files(folder, train) if name == "cifar10" else _idx_files(folder, train)
    files = {p.name: _hashes(p) for p in sources}
    images, labels = _read_cifar(folder, train) if name == "cifar10" else _read_idx(sources)
    official = _official(name, files, train)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, images=images, labels=labels, official=np.bool_(official))
    os.replace(tmp, cached)


def _check(spec: DatasetSpec, images: np.ndarray, labels: np.ndarray, folder: Path) -> None:
    want = (spec.channels, spec.size, spec.size)
    if images.ndim != 4 or images.shape[1:] != want or len(images) != len(labels):
        raise DataError(f"{folder}: images have shape {images.shape}, expected (N, {want})")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(spec.classes)):
        raise DataError(f"{folder}: labels outside 0..{len(spec.classes) - 1}")


# --- CIFAR-10 (python pickled batches) ---------------------------------------


def _cifar_files(folder: Path, train: bool) -> list[Path]:
    names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    paths = [folder / n for n in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"{folder} lacks {', '.join(missing)} (torchvision's CIFAR-10 layout)")
    return paths


def _read_cifar(folder: Path, train: bool) -> tuple[np.ndarray, np.ndarray]:
    from torchvision.datasets import CIFAR10

    class AnyCIFAR10(CIFAR10):
        """torchvision's reader without its md5 gate (integrity is reported instead)."""

        def _check_integrity(self) -> bool:
            return True

        def _load_meta(self) -> None:
            self.classes = list(dataset_spec("cifar10").classes)
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    try:
        data = AnyCIFAR10(str(folder.parent), train=train, download=False)
    except Exception as exc:  # noqa: BLE001 - corrupt instructor files: say which
        raise DataError(f"{folder}: cannot read the CIFAR-10 batches: {exc}") from None
    images = np.ascontiguousarray(data.data.transpose(0, 3, 1, 2))
    return images, np.asarray(data.targets, dtype=np.int64)


def _official(name: str, files: dict[str, dict[str, str]], train: bool) -> bool:
    if name == "cifar10":
        from torchvision.datasets import CIFAR10

        listed = dict(CIFAR10.train_list if train else CIFAR10.test_list)
        return bool(files) and all(listed.get(n) == h["md5"] for n, h in files.items())
    from torchvision.datasets import MNIST, FashionMNIST

    cls = MNIST if name == "mnist" else FashionMNIST
    listed = {Path(url).name: md5 for url, md5 in cls.resources}
    gz = [n for n in files if n.endswith(".gz")]
    return bool(gz) and all(listed.get(n) == files[n]["md5"] for n in gz)


# --- MNIST / Fashion-MNIST (IDX files, raw or gzipped) ------------------------


def _idx_files(folder: Path, train: bool) -> list[Path]:
    stem = "train" if train else "t10k"
    found = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        plain, packed = folder / f"{stem}-{kind}", folder / f"{stem}-{kind}.gz"
        if packed.is_file():
            found.append(packed)
        elif plain.is_file():
            found.append(plain)
        else:
            raise DataError(f"{folder} lacks {plain.name} (torchvision's MNIST layout)")
    return found


def _read_idx(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    from torchvision.datasets.mnist import read_image_file, read_label_file

    plain = []
    for path in paths:
        if path.suffix == ".gz":
            target = cache_dir() / f"{_hashes(path)['sha256'][:16]}-{path.stem}"
            if not target.exists():
                with gzip.open(path, "rb") as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            path = target
        plain.append(path)
    try:
        images = read_image_file(str(plain[0])).numpy()[:, None, :, :]
        labels = read_label_file(str(plain[1])).numpy().astype(np.int64)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot read {paths[0].parent}: {exc}") from None
    return np.ascontiguousarray(images), labels
