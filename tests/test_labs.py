"""Every rubric of the course packet grades a correct and a broken submission
with the expected verdicts, on generated data in the real on-disk formats,
and the reference solutions reproduce the numbers the rubrics pin."""

from __future__ import annotations

import functools

import pytest
import torch
from helpers import grading, labs

from autograder.checks import residual
from autograder.rubric import load
from autograder.sandbox.worker import structure
from autograder.sandbox.worker.introspect import counts
from reference.demo import mnist_models
from reference.lab2 import resnet18 as lab2
from reference.lab2.simple_cnn import SimpleCNN
from reference.lab4.fashion_cnn import NORMALIZE as FASHION
from reference.lab4.fashion_cnn import FashionCNN
from reference.lab7 import resnet18 as lab7
from reference.lecture15 import alexnet, googlenet, lenet, resnet, vgg

IMAGENET_STEM = functools.partial(lab2.ResNet18, imagenet_stem=True)


def slow(*values):
    """A parameter set only the full suite runs (counting it takes seconds)."""
    return pytest.param(*values, marks=pytest.mark.slow)


def call(fn, *args, **kwargs):
    return fn(*args, **kwargs)


def verdicts(graded: grading.Graded) -> dict[str, bool | None]:
    return {i.id: i.passed for i in graded.result.items}


# --- the numbers the rubrics pin ---------------------------------------------
@pytest.mark.parametrize(
    ("rubric", "item", "model", "shape", "params", "macs"),
    [
        ("lab2-resnet18-cifar10", "task1.counts", SimpleCNN, [3, 32, 32], 60_554, 5_840_896),
        # ResNet-18 and AlexNet take seconds each to count: the quick subset counts the small models
        slow("lab2-resnet18-cifar10", "task2.counts", lab2.ResNet18, [3, 32, 32], 11_173_962, 557_880_320),
        slow("lab2-resnet18-cifar10", "task2.counts", IMAGENET_STEM, [3, 32, 32], 11_181_642, 37_219_328),
        slow("lab7-resnet18-cifar10", "task1.counts", lab7.ResNet18, [3, 32, 32], 11_173_962, 557_889_024),
        ("lecture15-classic-cnns", "lenet.counts", lenet.LeNet, [1, 28, 28], 61_706, None),
        slow("lecture15-classic-cnns", "alexnet.counts", alexnet.AlexNet, [1, 224, 224], 46_764_746, None),
        ("lecture15-classic-cnns", "vgg.counts", vgg.VGG, [1, 28, 28], 210_506, None),
        ("lecture15-classic-cnns", "googlenet.counts", googlenet.GoogLeNet, [1, 28, 28], 63_094, None),
        ("lecture15-classic-cnns", "resnet.counts", resnet.ResNet, [1, 28, 28], 175_338, None),
        ("demo-mnist", "cnn.counts", mnist_models.SmallCNN, [1, 28, 28], 105_866, 1_117_056),
        slow("demo-mnist", "resnet.counts", mnist_models.resnet18_mnist, [1, 28, 28], 11_175_370, 33_184_000),
    ],
)
def test_reference_counts_are_the_rubrics(rubric, item, model, shape, params, macs):
    got = counts(model(), shape, call)
    options = load(rubric).item(item).options
    assert got["params"] == params and params in options["params"]
    if macs is not None:
        assert got["macs"] == macs and macs in options["macs"]


@pytest.mark.parametrize(
    ("model", "flops"),
    [
        (SimpleCNN, 11_288_576),
        slow(lab2.ResNet18, 1_110_845_440),
        slow(IMAGENET_STEM, 74_033_152),
    ],
    ids=["simple_cnn", "resnet18_cifar", "resnet18_imagenet_stem"],
)
def test_reference_flops_are_the_handouts(model, flops):
    """FLOPs as the lab 2 handout prints them (FlopCounterMode: 2 x conv and linear MACs)."""
    assert counts(model(), [3, 32, 32], call)["flops"] == flops


@pytest.mark.parametrize("item", ["vgg.block", "googlenet.block", "resnet.block"])
def test_reference_blocks_are_the_rubrics(item):
    """The block probes' expected shapes, parameter counts and structure are the references'."""
    options = load("lecture15-classic-cnns").item(item).options
    module = {"vgg.block": vgg, "googlenet.block": googlenet, "resnet.block": resnet}[item]
    probes = [{"args": p["args"], "kwargs": p["kwargs"], "input": p["input"]} for p in options["probes"]]
    facts = structure.block(getattr(module, options["block"]), options["block"], probes, call)
    assert facts["signature"][: len(options["signature"])] == options["signature"]
    for want, got in zip(options["probes"], facts["probes"], strict=True):
        assert got["output_shape"] == want["output"] and got["params"] == want["params"]
        assert sorted(got["skips"]) == sorted(want.get("skips", []))
        assert got["concat_inputs"] == want.get("branches", 0)
        assert all(got["layers"].get(k) == v for k, v in want.get("layers", {}).items())
        if "orders" in options:  # the reference block is in the handout's order (listed first)
            assert [residual.order_name(o["main"], o["after"], options["orders"]) for o in got["orders"]] == [
                options["orders"][0]
            ]


def test_skip_connections_are_found_in_the_data_flow():
    """Identity and projection shortcuts of the lab 7 reference; none in a plain CNN."""
    facts = structure.residual(lab7.ResNet18(widths=(8, 16, 32, 64)), [3, 32, 32], call)
    kinds = [s["shortcut"] for s in facts["skips"]]
    assert kinds.count("identity") == 5 and kinds.count("projection") == 3
    assert structure.residual(FashionCNN(), [1, 28, 28], call)["skips"] == []
    assert structure.residual(vgg.VGG(), [1, 28, 28], call)["skips"] == []


# --- UW Lab 4 -----------------------------------------------------------------
LAB4 = labs.TEMPLATES / "lab4-cnn-fashion-mnist"
MLP = '''import torch
from torch import nn

NORMALIZE = {"mean": (0.2860,), "std": (0.3530,)}


class FashionCNN(nn.Module):
    """Not a CNN: flattens the image straight away."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, num_classes))

    def forward(self, x):
        return self.net(x)
'''


@pytest.fixture(scope="module")
def lab4_graded(tmp_path_factory, fashion_root, lab4_trained):
    tmp = tmp_path_factory.mktemp("lab4")
    correct, truth = labs.lab4_submission(tmp / "correct", lab4_trained, fashion_root)
    mlp = labs.load_module("mlp", MLP)["FashionCNN"]()
    ranked = sorted(truth["per_class"], key=truth["per_class"].get)
    broken = labs.write(
        tmp / "broken",
        {
            "lab4.ipynb": labs.run_notebook(
                LAB4 / "lab4.ipynb",
                labs.measured(mlp, fashion_root, "fashion_mnist", FASHION),
                plots=1,
                claimed=0.95,
                best_worst=(ranked[0], ranked[-1]),
            ),
            "fashion_cnn.py": MLP,
            "fashion_cnn.pth": mlp.state_dict(),
        },
    )
    rubric = load("lab4-cnn-fashion-mnist")
    return (
        truth,
        grading.run(correct, rubric, fashion_root, tmp / "out-correct"),
        grading.run(broken, rubric, fashion_root, tmp / "out-broken"),
    )


@pytest.mark.slow  # grades a whole lab with trained references
def test_lab4_correct_submission_gets_every_point(lab4_graded):
    truth, correct, _ = lab4_graded
    assert truth["accuracy"] > 0.89
    assert all(verdicts(correct).values()), [(i.id, i.message) for i in correct.result.items if not i.passed]
    assert correct.json["score"] == 100
    acc = correct.test("task1.accuracy")["extra_data"]
    assert acc["accuracy"] == pytest.approx(truth["accuracy"], abs=1e-6)
    assert acc["normalization"]["source"].startswith("NORMALIZE declared in fashion_cnn.py")
    assert correct.test("task1.counts")["extra_data"]["params"] == 421_834


@pytest.mark.slow  # grades a whole lab with trained references
def test_lab4_broken_submission_fails_what_it_breaks(lab4_graded):
    truth, _, broken = lab4_graded
    assert verdicts(broken) == {
        "files": True,
        "task1.spec": False,
        "task1.forward": True,
        "task1.counts": True,
        "task1.accuracy": False,
        "notebook.run": True,
        "notebook.outputs": False,
        "task1.claims": False,
        "task1.generalisation": True,  # evidence for the TA: an untrained MLP is not flagged
    }
    assert broken.message("task1.spec") == (
        "FashionCNN (fashion_cnn.py) is not a CNN (no convolution layer): it has only Flatten, Linear, ReLU"
    )
    assert broken.test("task1.accuracy")["score"] == 0 and "task1.spec failed" in broken.message(
        "task1.accuracy"
    )
    assert "plots" in broken.message("notebook.outputs")
    assert "95.00%" in broken.test("task1.claims")["output"]


# --- UW Lab 7 -----------------------------------------------------------------
LAB7 = labs.TEMPLATES / "lab7-resnet18-cifar10"
NARROW = ("WIDTHS = (64, 128, 256, 512)", "WIDTHS = (8, 16, 32, 64)")  # a variant lab 7 allows
NO_SKIP = ("        out += identity  # the skip connection\n", "")


@pytest.fixture(scope="module")
def lab7_graded(tmp_path_factory, cifar_root):
    tmp = tmp_path_factory.mktemp("lab7")
    source = labs.reference_source("lab7/resnet18.py", NARROW)
    torch.manual_seed(0)
    model = labs.load_module("lab7", source)["ResNet18"]()
    labs.fit(model, cifar_root, "cifar10", lab7.NORMALIZE, steps=40, batch=32, lr=3e-3)
    truth = labs.measured(model, cifar_root, "cifar10", lab7.NORMALIZE)
    correct = labs.write(
        tmp / "correct",
        {
            "lab7.ipynb": labs.run_notebook(LAB7 / "lab7.ipynb", truth),
            "resnet18.py": source,
            "resnet18.pth": labs.state(model),
        },
    )
    plain_source = labs.reference_source("lab7/resnet18.py", NARROW, NO_SKIP)
    plain = labs.load_module("plain", plain_source)["ResNet18"]()
    plain.load_state_dict(model.state_dict())  # same layers, so the weights fit; no skips
    plain_truth = labs.measured(plain, cifar_root, "cifar10", lab7.NORMALIZE)
    ranked = sorted(plain_truth["per_class"], key=plain_truth["per_class"].get)
    notebook = labs.run_notebook(LAB7 / "lab7.ipynb", plain_truth, best_worst=(ranked[0], ranked[-1]))
    broken = labs.write(
        tmp / "broken",
        {"lab7.ipynb": notebook, "resnet18.py": plain_source, "resnet18.pth": labs.state(model)},
    )
    rubric = load("lab7-resnet18-cifar10")
    return (
        truth,
        (ranked[0], ranked[-1]),
        grading.run(correct, rubric, cifar_root, tmp / "out-correct"),
        grading.run(broken, rubric, cifar_root, tmp / "out-broken"),
    )


@pytest.mark.slow  # grades a whole lab with trained references
def test_lab7_narrow_variant_is_graded_on_its_merits(lab7_graded):
    truth, _, correct, _ = lab7_graded
    assert truth["accuracy"] >= 0.85
    assert all(verdicts(correct).values()), [(i.id, i.message) for i in correct.result.items if not i.passed]
    assert correct.json["score"] == 100
    assert "8 skip connections (5 identity, 3 projection)" in correct.message("task1.residual")
    counted = correct.test("task1.counts")
    assert counted["extra_data"]["params"] == 176_402 and "reported only" in counted["output"]
    acc = correct.test("task1.accuracy")["extra_data"]
    ranked = sorted(truth["per_class"], key=truth["per_class"].get)
    assert acc["worst_class"] == ranked[0] and acc["accuracy"] == pytest.approx(truth["accuracy"], abs=1e-6)


@pytest.mark.slow  # grades a whole lab with trained references
def test_lab7_without_skips_loses_the_accuracy_points(lab7_graded):
    _, (claimed_best, claimed_worst), _, broken = lab7_graded
    got = verdicts(broken)
    assert got["task1.residual"] is False and got["task1.forward"] is True
    assert broken.message("task1.residual").startswith(
        "ResNet18 (resnet18.py) has 0 skip connections (0 identity, 0 projection); at least 8 required"
    )
    assert broken.test("task1.accuracy")["score"] == 0
    assert "task1.residual failed" in broken.message("task1.accuracy")
    claims = broken.test("task1.claims")
    assert claims["status"] == "failed"
    assert f"names {claimed_best} as the best class" in claims["output"]


# --- ECE 4252 lecture 15 --------------------------------------------------------
HARD_CODED_CONVS = ("    for _ in range(num_convs):\n", "    for _ in range(2):  # num_convs ignored\n")
SUMMED_BRANCHES = ("return torch.cat((p1, p2, p3, p4), dim=1)", "return p1 + p2[:, : p1.shape[1]]")
NO_RESIDUAL = ("        return F.relu(y + x)\n", "        return F.relu(y)\n")
MAX_FOR_AVG = (
    "            nn.AvgPool2d(kernel_size=2, stride=2),  # 28 -> 14\n",
    "            nn.MaxPool2d(2),\n",
)
ALEXNET_28 = (
    ("class AlexNet(nn.Module)", "class AlexNet224(nn.Module)"),
    ("class AlexNet28(", "class AlexNet("),
)
# The 224-input design, narrow enough to evaluate in a test: it refuses 28x28 input.
ALEXNET_224 = (
    (
        "nn.Conv2d(1, 96, kernel_size=11, stride=4, padding=1)",
        "nn.Conv2d(1, 4, kernel_size=11, stride=4, padding=1)",
    ),
    ("nn.Conv2d(96, 256, kernel_size=5, padding=2)", "nn.Conv2d(4, 8, kernel_size=5, padding=2)"),
    ("nn.Conv2d(256, 384, kernel_size=3, padding=1)", "nn.Conv2d(8, 8, kernel_size=3, padding=1)"),
    ("nn.Conv2d(384, 384, kernel_size=3, padding=1)", "nn.Conv2d(8, 8, kernel_size=3, padding=1)"),
    ("nn.Conv2d(384, 256, kernel_size=3, padding=1)", "nn.Conv2d(8, 4, kernel_size=3, padding=1)"),
    ("nn.Linear(6400, 4096)", "nn.Linear(100, 32)"),
    ("nn.Linear(4096, 4096)", "nn.Linear(32, 32)"),
    ("nn.Linear(4096, num_classes)", "nn.Linear(32, num_classes)"),
)
TRAINED = {  # task -> (file, class, steps, lr): the ones that learn the generated data in a second
    "lenet_max": ("lenet.py", "LeNetMaxPool", 40, 3e-3),
    "vgg": ("vgg.py", "VGG", 80, 2e-3),
    "resnet": ("resnet.py", "ResNet", 20, 3e-3),
}
WEIGHTS = {
    "lenet": "lenet.pth",
    "lenet_max": "lenet_maxpool.pth",
    "alexnet": "alexnet.pth",
    "vgg": "vgg.pth",
    "googlenet": "googlenet.pth",
    "resnet": "resnet.pth",
}
CLASSES = {
    "lenet": "LeNet",
    "lenet_max": "LeNetMaxPool",
    "alexnet": "AlexNet",
    "vgg": "VGG",
    "googlenet": "GoogLeNet",
    "resnet": "ResNet",
}
FILES = {
    "lenet": "lenet.py",
    "lenet_max": "lenet.py",
    "alexnet": "alexnet.py",
    "vgg": "vgg.py",
    "googlenet": "googlenet.py",
    "resnet": "resnet.py",
}


@pytest.fixture(scope="module")
def lecture15_graded(tmp_path_factory, fashion_root):
    tmp = tmp_path_factory.mktemp("lecture15")
    sources = {f: labs.reference_source(f"lecture15/{f}") for f in set(FILES.values())}
    sources["alexnet.py"] = labs.reference_source("lecture15/alexnet.py", *ALEXNET_28)
    models, truths = {}, {}
    for task, cls in CLASSES.items():
        torch.manual_seed(0)
        models[task] = labs.load_module(task, sources[FILES[task]])[cls]()
        if task in TRAINED:
            _, _, steps, lr = TRAINED[task]
            labs.fit(models[task], fashion_root, "fashion_mnist", FASHION, steps=steps, batch=32, lr=lr)
        truths[task] = labs.measured(models[task], fashion_root, "fashion_mnist", FASHION)
    weights = {WEIGHTS[t]: labs.state(m) for t, m in models.items()}
    correct = labs.write(tmp / "correct", {**sources, **weights})
    broken_sources = {
        "lenet.py": labs.reference_source("lecture15/lenet.py", MAX_FOR_AVG),
        "alexnet.py": labs.reference_source("lecture15/alexnet.py", *ALEXNET_224),
        "vgg.py": labs.reference_source("lecture15/vgg.py", HARD_CODED_CONVS),
        "googlenet.py": labs.reference_source("lecture15/googlenet.py", SUMMED_BRANCHES),
        "resnet.py": labs.reference_source("lecture15/resnet.py", NO_RESIDUAL),
    }
    torch.manual_seed(0)
    alex224 = labs.load_module("alex224", broken_sources["alexnet.py"])["AlexNet"]()
    broken = labs.write(tmp / "broken", {**broken_sources, **weights, "alexnet.pth": labs.state(alex224)})
    rubric = load("lecture15-classic-cnns")
    return (
        rubric,
        truths,
        grading.run(correct, rubric, fashion_root, tmp / "out-correct"),
        grading.run(broken, rubric, fashion_root, tmp / "out-broken"),
    )


@pytest.mark.slow  # grades a whole lab with trained references
def test_lecture15_correct_submission(lecture15_graded):
    rubric, truths, correct, _ = lecture15_graded
    got = verdicts(correct)
    structure_items = [i.id for i in rubric.items if i.kind in ("spec", "block", "forward", "counts")]
    assert all(got[i] for i in structure_items), [
        (i, correct.message(i)) for i in structure_items if not got[i]
    ]
    for task, truth in truths.items():
        item = rubric.item(f"{task}.accuracy")
        measured = correct.test(item.id)
        assert measured["extra_data"]["accuracy"] == pytest.approx(truth["accuracy"], abs=1e-6)
        assert measured["score"] == labs.tier_points(truth["accuracy"], item.options["tiers"])
        if task in TRAINED:  # really trained: the instructor's top tier
            assert measured["score"] == item.points, (task, truth["accuracy"])
    assert correct.test("alexnet.forward")["output"].startswith("input (8, 1, 28, 28) -> output (8, 10)")
    assert "input_sizes" not in correct.test("alexnet.accuracy")["output"]


@pytest.mark.slow  # grades a whole lab with trained references
def test_lecture15_broken_blocks_are_named(lecture15_graded):
    _, _, _, broken = lecture15_graded
    got = verdicts(broken)
    assert got["lenet.spec"] is False and "should be AvgPool2d(kernel_size=2)" in broken.message("lenet.spec")
    assert got["vgg.block"] is False
    assert broken.message("vgg.block").startswith("vgg_block(3, 16, 32) builds 2 Conv2d; expected 3")
    assert got["googlenet.block"] is False
    assert "expected (256, 12, 12)" in broken.message("googlenet.block")
    assert got["googlenet.forward"] is False
    assert got["resnet.block"] is False
    assert "its skip connections: none; expected identity" in broken.message("resnet.block")
    assert got["vgg.accuracy"] is False and "does not fit VGG" in broken.message("vgg.accuracy")
    # The lecture's AlexNet design (224x224 input) is recognised and its test images up-sampled.
    assert got["alexnet.spec"] is True and got["alexnet.forward"] is True
    assert broken.test("alexnet.forward")["output"].startswith("input (8, 1, 224, 224) -> output (8, 10)")
    assert broken.test("alexnet.accuracy")["extra_data"]["images"] == 300
    assert got["lenet_max.spec"] is True and got["lenet_max.accuracy"] is True
