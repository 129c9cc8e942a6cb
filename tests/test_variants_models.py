"""Models and weights as students really write them (issue 10, items 1-4, 10, 12).

Each variant is one submission written in a style students hand in, graded once
with only the rubric items it is about; ``VERDICTS`` holds what a careful TA
gives per item (pass/fail and the words the message must say), and the grader
is asserted against it item by item. ``autograder check`` must agree with the
grader on every item that needs no hidden labels (slow: it grades again, so it
runs on ``SELF_CHECKED``, one variant per way an item can end).
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import grading, labs, submissions
from variants import models as m

from autograder import selfcheck
from autograder.checks import KINDS
from autograder.rubric import Rubric, load

pytestmark = pytest.mark.slow  # the model variant suite: dozens of full grades

# The rubric's accepted ResNet-18 counts (CIFAR stem, ImageNet stem); test_labs.py ties them to the reference.
CIFAR_STEM, IMAGENET_STEM = load("lab2-resnet18-cifar10").item("task2.counts").options["params"]
TASK1 = ("task1.spec", "task1.forward", "task1.accuracy")
TASK2 = ("task2.make_layer", "task2.forward", "task2.counts")
CUDA_NOTE = "note: your code asks for CUDA ({}); graded on the CPU: no GPU here"


@dataclasses.dataclass
class Variant:
    rubric: str
    items: tuple[str, ...]
    build: Callable[[Path, dict], Path]  # (folder, trained SimpleCNN state) -> submission folder
    tasks: dict = dataclasses.field(default_factory=dict)  # task id -> Task field overrides
    names: tuple[str, ...] = ()  # make_layer names the rubric adds (the item's ``names`` option)
    # several ResNet-18s in one grade: file stem -> task 2's items graded on that file alone
    # (a copy of task 2 named after the file; the item ids become ``<stem>.<kind>``)
    copies: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)


def resnet_styles(
    files: dict[str, tuple[str, tuple[str, ...]]], helpers: dict[str, str] | None = None
) -> Variant:
    """One grade of several ResNet-18 files (stem -> (source, task 2's item kinds)), each its own
    task; ``helpers``: other files of the submission (name -> source) they may import."""
    return Variant(
        "lab2-resnet18-cifar10",
        tuple(f"{stem}.{kind}" for stem, (_, kinds) in files.items() for kind in kinds),
        lambda folder, _: labs.write(
            folder, {**(helpers or {}), **{f"{stem}.py": source for stem, (source, _) in files.items()}}
        ),
        copies={stem: kinds for stem, (_, kinds) in files.items()},
    )


def resnet_only(source: str) -> Callable[[Path, dict], Path]:
    return lambda folder, _: labs.write(folder, {"resnet18.py": source})


def simple(source: str, weights: Callable[[dict, Path], dict | bytes] | None = None, **kw):
    def build(folder: Path, state: dict) -> Path:
        payload = weights(state, folder.parent / "scratch.pth") if weights else None
        return m.lab2_task1(folder, source, payload, **kw)

    return build


def broken_resnet(cell: str, resnet: str) -> Variant:
    """The handout SimpleCNN, in a notebook whose ``cell`` imports a resnet18.py that fails
    (``resnet``): task 1 is graded as if task 2's file were fine."""
    return Variant(
        "lab2-resnet18-cifar10",
        (*TASK1, "task2.make_layer"),
        simple(m.simple_source(), lambda s, _: s, extra_cells=[cell], resnet=resnet),
    )


VARIANTS: dict[str, Variant] = {
    # --- ResNet-18 as copied from the popular repositories ---------------------
    "kuangliu": Variant("lab2-resnet18-cifar10", TASK2, resnet_only(m.KUANGLIU)),
    "torchvision_style": Variant("lab2-resnet18-cifar10", TASK2, resnet_only(m.TORCHVISION_STYLE)),
    "cifar100_style": Variant("lab2-resnet18-cifar10", TASK2, resnet_only(m.CIFAR100_STYLE)),
    "conv_bias_before_norm": Variant(
        "lab2-resnet18-cifar10", ("task2.counts",), resnet_only(m.KUANGLIU_BIAS)
    ),
    "conv_bias_relu_first": Variant(
        "lab2-resnet18-cifar10", ("task2.counts",), resnet_only(m.KUANGLIU_BIAS_RELU_FIRST)
    ),
    "imagenet_stem": Variant(
        "lab2-resnet18-cifar10", TASK2, resnet_only(m.reference_resnet(*m.IMAGENET_STEM))
    ),
    "torchvision_adapted": Variant("lab2-resnet18-cifar10", TASK2, resnet_only(m.TORCHVISION_ADAPTED)),
    "unnamed_stages": Variant(
        "lab2-resnet18-cifar10", ("task2.make_layer", "task2.forward"), resnet_only(m.UNNAMED_STAGES)
    ),
    "resnet_case": Variant(
        "lab2-resnet18-cifar10",
        ("task2.make_layer", "task2.forward"),
        resnet_only(m.reference_resnet(*m.RESNET_CASE)),
    ),
    "resnet_case_exact": Variant(
        "lab2-resnet18-cifar10",
        ("task2.make_layer", "task2.forward"),
        resnet_only(m.reference_resnet(*m.RESNET_CASE)),
        tasks={"task2": {"model_match": "exact"}},
    ),
    "rubric_make_layer_name": Variant(
        "lab2-resnet18-cifar10",
        ("task2.make_layer",),
        resnet_only(m.reference_resnet(*m.BUILD_STAGE)),
        names=("build_stage",),
    ),
    # --- SimpleCNN: code styles and checkpoint shapes ---------------------------
    "functional_relu": Variant(
        "lab2-resnet18-cifar10",
        TASK1,
        simple(m.SIMPLE_FUNCTIONAL, lambda s, _: m.renamed(s, m.SIMPLE_FUNCTIONAL)),
    ),
    "sequential_wrapper": Variant(
        "lab2-resnet18-cifar10",
        TASK1,
        simple(m.SIMPLE_WRAPPER, lambda s, _: m.renamed(s, m.SIMPLE_WRAPPER)),
    ),
    "spelled_differently": Variant(
        "lab2-resnet18-cifar10",
        TASK1,
        simple(m.SIMPLE_SPELLED, lambda s, _: m.renamed(s, m.SIMPLE_SPELLED)),
    ),
    "dataparallel": Variant(
        "lab2-resnet18-cifar10", TASK1, simple(m.simple_source(), lambda s, _: m.prefixed(s, "module."))
    ),
    "torch_compile": Variant(
        "lab2-resnet18-cifar10", TASK1, simple(m.simple_source(), lambda s, _: m.prefixed(s, "_orig_mod."))
    ),
    # torch.save(nn.Sequential(Normalize(...), model).state_dict()): every key starts with "1."
    "sequential_normalize_wrapper": Variant(
        "lab2-resnet18-cifar10",
        ("task1.accuracy",),
        simple(m.simple_source(), lambda s, _: m.prefixed(s, "1.")),
    ),
    "checkpoint_dict": Variant(
        "lab2-resnet18-cifar10",
        ("task1.accuracy",),
        simple(
            m.simple_source(),
            lambda s, _: {"epoch": 30, "model_state_dict": s, "optimizer_state_dict": {"lr": 0.01}},
        ),
    ),
    "nested_unnamed_file": Variant(
        "lab2-resnet18-cifar10",
        ("task1.accuracy",),
        simple(
            m.simple_source(),
            lambda s, _: {"state_dict": m.prefixed(s, "module."), "best_acc": 0.83},
            weights_name="best_model.pth",
        ),
    ),
    "pickled_model": Variant(
        "lab2-resnet18-cifar10",
        ("task1.accuracy",),
        simple(m.simple_source(), m.save_whole_model, weights_name="best_model.pth"),
    ),
    "torchscript": Variant(
        "lab2-resnet18-cifar10",
        ("task1.accuracy",),
        simple(m.simple_source(), m.save_torchscript, weights_name="model_scripted.pt"),
    ),
    "truncated": Variant(
        "lab2-resnet18-cifar10", ("task1.accuracy",), simple(m.simple_source(), m.truncated)
    ),
    "simplecnn_case": Variant(
        "lab2-resnet18-cifar10", TASK1, simple(m.simple_source("SimpleCnn"), lambda s, _: s)
    ),
    "thop_buffers": Variant(
        "lab2-resnet18-cifar10",
        ("task1.accuracy",),
        simple(m.simple_source(), lambda s, _: m.thop_counted(s)),
    ),
    "loads_weights_at_import": Variant(  # simple_cnn.py defines the model and loads simple_cnn.pth
        "lab2-resnet18-cifar10",
        TASK1,
        lambda folder, state: m.lab2_task1(
            folder, m.simple_source(), state, files={"simple_cnn.py": m.SIMPLE_LOADS_WEIGHTS}
        ),
    ),
    "return_features": Variant(
        "lab2-resnet18-cifar10", TASK1, simple(m.SIMPLE_RETURN_FEATURES, lambda s, _: s)
    ),
    "config_required": Variant(
        "lab2-resnet18-cifar10", ("task1.spec", "task1.forward"), simple(m.SIMPLE_CONFIG)
    ),
    "norm_in_model_buffers": Variant(
        "lab2-resnet18-cifar10",
        ("task1.accuracy",),
        simple(m.SIMPLE_NORM_BUFFERS, lambda s, _: m.with_stats(s), test_transform=m.TOTENSOR_ONLY),
    ),
    "norm_in_model_module": Variant(
        "lab2-resnet18-cifar10",
        ("task1.accuracy",),
        simple(m.SIMPLE_NORM_MODULE, lambda s, _: s, test_transform=m.TOTENSOR_ONLY),
    ),
    "norm_in_model_twice": Variant(  # ... and the notebook's test transform normalises as well
        "lab2-resnet18-cifar10",
        ("task1.accuracy",),
        simple(m.SIMPLE_NORM_BUFFERS, lambda s, _: m.with_stats(s)),
    ),
    # the SimpleCNN's cell timed with %%time; task 2's model written to a file with %%writefile
    # in the notebook, which is all that was handed in for it
    "cell_magics": Variant(
        "lab2-resnet18-cifar10",
        (*TASK1, "task2.make_layer"),
        lambda folder, state: labs.write(
            folder,
            {
                "StudentID_lab2.ipynb": submissions.lab2_notebook(
                    simple_cnn="%%time\n" + m.NOTEBOOK_IMPORTS + m.simple_source(),
                    extra_cells=[
                        "%%writefile resnet18.py\n" + m.reference_resnet(),
                        "from resnet18 import ResNet18\nmodel2 = ResNet18()",
                    ],
                ),
                "simple_cnn.pth": state,
            },
        ),
    ),
    "resnet_package": Variant(
        "lab2-resnet18-cifar10",
        TASK2,
        lambda folder, _: labs.write(
            folder,
            {
                **m.RESNET_PACKAGE,
                "StudentID_lab2.ipynb": submissions.lab2_notebook(
                    extra_cells=["from models.resnet import ResNet18\nmodel2 = ResNet18()"]
                ),
            },
        ),
    ),
    # --- one task's files must not zero another --------------------------------
    "broken_resnet_exit": broken_resnet("from resnet18 import ResNet18\nmodel2 = ResNet18()", m.BROKEN_EXIT),
    "broken_resnet_used_by_a_helper": broken_resnet(  # a kept function uses it: task 1 still needs it not
        "from resnet18 import ResNet18\n\n\ndef build_models():\n    return SimpleCNN(), ResNet18()",
        m.BROKEN_EXIT,
    ),
    "broken_resnet_syntax": broken_resnet("import resnet18\nnet2 = resnet18.ResNet18()", m.BROKEN_SYNTAX),
    # --- not what was asked ------------------------------------------------------
    "dropout_left_on": Variant("lab2-resnet18-cifar10", ("task1.forward",), simple(m.SIMPLE_DROPOUT_ON)),
    "batch_centred": Variant("lab2-resnet18-cifar10", ("task1.forward",), simple(m.SIMPLE_BATCH_CENTRED)),
    "mlp_for_cnn_lab": Variant(
        "lab2-resnet18-cifar10", ("task1.spec", "task1.forward"), simple(m.SIMPLE_MLP)
    ),
    "fashion_near_miss": Variant(
        "lab4-cnn-fashion-mnist",
        ("task1.spec", "task1.forward"),
        lambda folder, _: labs.write(folder, {"fashion_cnn.py": m.fashion_near_miss()}),
    ),
    "fashion_alias": Variant(
        "lab4-cnn-fashion-mnist",
        ("task1.spec",),
        lambda folder, _: labs.write(folder, {"fashion_cnn.py": m.fashion_near_miss()}),
        tasks={"task1": {"model_aliases": ["FashionMNISTCNN"]}},
    ),
    "fashion_reshapes_input": Variant(
        "lab4-cnn-fashion-mnist",
        ("task1.spec", "task1.forward", "task1.counts"),
        lambda folder, _: labs.write(folder, {"fashion_cnn.py": m.FASHION_RESHAPES}),
    ),
    "fashion_mlp": Variant(
        "lab4-cnn-fashion-mnist",
        ("task1.spec", "task1.forward"),
        lambda folder, _: labs.write(folder, {"fashion_cnn.py": m.FASHION_MLP}),
    ),
    "fashion_cnn": Variant(
        "lab4-cnn-fashion-mnist",
        ("task1.spec",),
        lambda folder, _: labs.write(
            folder, {"fashion_cnn.py": labs.reference_source("lab4/fashion_cnn.py")}
        ),
    ),
    "lenet_sequential": Variant(
        "lecture15-classic-cnns",
        ("lenet.spec",),
        lambda folder, _: labs.write(folder, {"lenet.py": m.LENET_SEQUENTIAL}),
    ),
    "alexnet_227": Variant(
        "lecture15-classic-cnns",
        ("alexnet.spec", "alexnet.forward"),
        lambda folder, _: labs.write(folder, {"alexnet.py": m.ALEXNET_227}),
    ),
    # one grade, five files: LeNet with F.avg_pool2d/F.max_pool2d, torch.flatten and x.view;
    # torchvision's AlexNet (one ReLU module reused, nn.LazyLinear, num_classes required,
    # print(model) at import); the d2l book's current lazy blocks (no input-channel argument)
    "lecture15_book_styles": Variant(
        "lecture15-classic-cnns",
        (
            "lenet.spec",
            "lenet.forward",
            "lenet_max.spec",
            "alexnet.spec",
            "alexnet.forward",
            "vgg.block",
            "googlenet.block",
            "resnet.block",
            "resnet.counts",
        ),
        lambda folder, _: labs.write(
            folder,
            {
                "lenet.py": m.LENET_FUNCTIONAL,
                "alexnet.py": m.ALEXNET_TORCHVISION,
                **{f"{net}.py": m.D2L_BLOCKS for net in ("vgg", "googlenet", "resnet")},
            },
        ),
    ),
    "vgg_cfg_and_fixed_inception": Variant(
        "lecture15-classic-cnns",
        ("vgg.block", "vgg.forward", "googlenet.block"),
        lambda folder, _: labs.write(folder, {"vgg.py": m.VGG_CFG, "googlenet.py": m.INCEPTION_FIXED_INPUT}),
    ),
    # make_layer signatures other than the handout's, called by parameter role, and two controls;
    # a plain .py that trains when imported, graded on its definitions, and two controls
    "resnet_file_styles": resnet_styles(
        {
            "static_in_out": (m.RESNET_STATIC, ("make_layer", "forward", "counts")),
            "in_out": (m.MAKE_LAYER_IN_OUT, ("make_layer",)),
            "no_block": (m.MAKE_LAYER_NO_BLOCK, ("make_layer",)),
            "planes": (m.MAKE_LAYER_PLANES, ("make_layer",)),
            "keywords": (m.MAKE_LAYER_KEYWORDS, ("make_layer",)),
            "ignores_count": (m.MAKE_LAYER_IGNORES_COUNT, ("make_layer",)),
            "unnamed": (m.MAKE_LAYER_UNNAMED, ("make_layer",)),
            "two_blocks": (m.MAKE_LAYER_TWO_BLOCKS, ("make_layer",)),
            "script": (m.RESNET_SCRIPT, ("make_layer", "forward")),
            "summary": (m.RESNET_SUMMARY, ("make_layer",)),
            "script_classes": (m.RESNET_SCRIPT_CLASSES, ("make_layer",)),
        }
    ),
    # CUDA hard-coded in __init__, in forward, in a factory call in forward, at the top level
    "resnet_cuda_styles": resnet_styles(
        {
            "cuda_init": (m.CUDA_INIT, ("make_layer", "forward")),
            "cuda_forward": (m.CUDA_FORWARD, ("make_layer", "forward")),
            "cuda_factory": (m.CUDA_FACTORY, ("make_layer", "forward")),
            "cuda_top": (m.CUDA_TOP_LEVEL, ("make_layer", "forward")),
        }
    ),
    "resnet_colab_export": Variant(
        "lab2-resnet18-cifar10", ("task2.make_layer", "task2.forward"), resnet_only(m.RESNET_COLAB)
    ),
    # a train.py that parses its options at the top level (with defaults, one required, sys.argv[1]),
    # Jupyter's "Download as .py" (magics as get_ipython() calls), Aladdin Persson's tutorial
    "resnet_script_styles": resnet_styles(
        {
            "argparse_defaults": (m.RESNET_ARGPARSE, ("make_layer", "forward")),
            "argparse_required": (m.RESNET_ARGPARSE_REQUIRED, ("make_layer", "forward")),
            "argv": (m.RESNET_ARGV, ("make_layer",)),
            "nbconvert": (m.RESNET_NBCONVERT, ("make_layer", "forward")),
            "persson": (m.RESNET_PERSSON, ("make_layer", "forward", "counts")),
            "argparse_config": (m.RESNET_CONFIG_ARGS, ("make_layer",)),
        },
        helpers={"config.py": m.CONFIG_ARGS},
    ),
    "lab7_modulelist_dataclass": Variant(
        "lab7-resnet18-cifar10",
        ("task1.residual", "task1.forward", "task1.counts"),
        lambda folder, _: labs.write(folder, {"resnet18.py": m.RESNET_MODULELIST}),
    ),
    "fashion_typed_config": Variant(
        "lab4-cnn-fashion-mnist",
        ("task1.spec", "task1.forward"),
        lambda folder, _: labs.write(folder, {"fashion_cnn.py": m.FASHION_TYPED}),
    ),
}


def task2_verdicts(
    make_layer: tuple, forward: str = "output (8, 10)", counts: tuple = (f"params {CIFAR_STEM:,}",)
) -> dict[str, tuple]:
    """Task 2's verdicts for a ResNet-18 that runs: ``make_layer`` its own, forward and counts
    passed with the words ``forward`` and ``counts`` (message, then details)."""
    return {
        "task2.make_layer": make_layer,
        "task2.forward": ("pass", forward),
        "task2.counts": ("pass", *counts),
    }


def task1_passes(spec: tuple = ("6-layer stack",), accuracy: tuple = ("test accuracy",)) -> dict[str, tuple]:
    """Task 1's verdicts for a SimpleCNN the grader accepts: all three items passed, spec and
    accuracy with the words ``spec`` and ``accuracy`` (message, then details)."""
    return {
        "task1.spec": ("pass", *spec),
        "task1.forward": ("pass", "output (8, 10)"),
        "task1.accuracy": ("pass", *accuracy),
    }


# What a careful TA gives, item by item: (verdict, words the message says[, words in the details]).
VERDICTS: dict[str, dict[str, tuple]] = {
    "kuangliu": task2_verdicts(
        ("pass", "make_layer (as _make_layer) builds layer1, layer2, layer3, layer4"),
        "output (8, 10), finite",
    ),
    "torchvision_style": task2_verdicts(
        (
            "pass",
            "(as _make_layer) builds",
            "_make_layer's parameters are named (block, planes, blocks, stride)",
        )
    ),
    # the paper's stage names: the stages are graded where they are, with a note
    "cifar100_style": task2_verdicts(
        (
            "pass",
            "make_layer (as _make_layer) builds conv2_x, conv3_x, conv4_x, conv5_x with 2/2/2/2 blocks",
            "note: the stages are ResNet18.conv2_x, conv3_x, conv4_x, conv5_x (the handout names them",
        )
    ),
    # bias=True before BatchNorm is the reference network: the TA accepts it, saying why
    "conv_bias_before_norm": {
        "task2.counts": (
            "pass",
            f"params {CIFAR_STEM + 4800:,}",
            f"{CIFAR_STEM:,} without the 4,800 bias values of layers that feed a BatchNorm",
        )
    },
    "conv_bias_relu_first": {  # the same extra count, but ReLU before the norm: another network
        "task2.counts": ("fail", f"params {CIFAR_STEM + 4800:,} (reference {CIFAR_STEM:,} or")
    },
    "imagenet_stem": task2_verdicts(
        ("pass", "make_layer builds layer1"), counts=(f"params {IMAGENET_STEM:,}", "ImageNet stem")
    ),
    "torchvision_adapted": task2_verdicts(
        ("fail", "ResNet18._make_layer is the library's own (torchvision.models.resnet)")
    ),
    "unnamed_stages": {
        "task2.make_layer": (
            "fail",
            "make_layer is a function at resnet18.py line 20, outside the class",
            "its stages seem to be features.3 (2 x Block), features.4 (2 x Block)",
        ),
        "task2.forward": ("pass", "output (8, 10)"),
    },
    "resnet_case": {
        "task2.make_layer": ("pass", "make_layer builds", "found Resnet18, not ResNet18: accepted"),
        "task2.forward": ("pass", "output (8, 10)", "found Resnet18, not ResNet18"),
    },
    "resnet_case_exact": {
        "task2.make_layer": (
            "fail",
            "no class or function named ResNet18 found",
            "class Resnet18 (resnet18.py",
        ),
        "task2.forward": (
            "fail",
            "the grader found: class BasicBlock (resnet18.py, line 10); class Resnet18",
        ),
    },
    "rubric_make_layer_name": {
        "task2.make_layer": ("pass", "make_layer (as build_stage) builds layer1"),
    },
    "fashion_alias": {
        "task1.spec": (
            "pass",
            "FashionCNN (fashion_cnn.py) runs Conv2d(in_channels=1)",
            "note: FashionMNISTCNN accepted for FashionCNN (a rubric alias)",
        ),
    },
    "functional_relu": task1_passes(
        ("has the required 6-layer stack in order",), ("SimpleCNN test accuracy",)
    ),
    "sequential_wrapper": task1_passes(
        ("has the required 6-layer stack",),
        ("SimpleCNN test accuracy", "weights: simple_cnn.pth (named simple_cnn.pth)"),
    ),
    "spelled_differently": task1_passes(
        ("has the required 6-layer stack in order and ends in Linear(out_features=10)",),
        ("SimpleCNN test accuracy",),
    ),
    "dataparallel": task1_passes(
        accuracy=("test accuracy", "note: stripped the 'module.' prefix from every key")
    ),
    "torch_compile": task1_passes(
        accuracy=("test accuracy", "note: stripped the '_orig_mod.' prefix from every key")
    ),
    "checkpoint_dict": {
        "task1.accuracy": (
            "pass",
            "test accuracy",
            "used the 'model_state_dict' entry of the checkpoint dict",
        ),
    },
    "nested_unnamed_file": {
        "task1.accuracy": (
            "pass",
            "test accuracy",
            "best_model.pth matched to SimpleCNN by its keys and shapes (used the 'state_dict' entry",
        ),
    },
    "pickled_model": {
        "task1.accuracy": (
            "fail",
            "no loadable weights file for SimpleCNN: best_model.pth: best_model.pth "
            "is a whole pickled object",
        ),
    },
    "sequential_normalize_wrapper": {  # the wrapper's prefix undone, as for DataParallel's
        "task1.accuracy": ("pass", "test accuracy", "stripped the '1.' prefix from every key")
    },
    "torchscript": {  # the weights are in the archive: the TA reads them and grades
        "task1.accuracy": ("pass", "test accuracy", "read the weights of a TorchScript archive")
    },
    "truncated": {
        "task1.accuracy": ("fail", "simple_cnn.pth is not a readable PyTorch checkpoint"),
    },
    "simplecnn_case": task1_passes(
        (
            "SimpleCNN (StudentID_lab2.ipynb) has the required 6-layer stack",
            "found SimpleCnn, not SimpleCNN: accepted",
        )
    ),
    "thop_buffers": {  # an older thop's counters saved with the weights: the weights are right
        "task1.accuracy": (
            "pass",
            "test accuracy",
            "left out the 24 total_ops/total_params buffers thop.profile() added",
        )
    },
    "loads_weights_at_import": task1_passes(
        ("6-layer stack", "note: simple_cnn.py loads its weights when imported (line 29): graded on its"),
    ),
    "return_features": task1_passes(),
    # a constructor that needs a config dict: what the grader could not pass, and what to do
    "config_required": {
        item: (
            "fail",
            "SimpleCNN() failed at StudentID_lab2.ipynb: SimpleCNN requires config, which the grader "
            "cannot pass: it builds the model as SimpleCNN(); give config a default value",
        )
        for item in ("task1.spec", "task1.forward")
    },
    # the model normalises its input, the notebook's one transform is ToTensor() only: the grader
    # gives [0, 1] pixels (it normalised them again, with the rubric's default, before: 50%)
    "norm_in_model_buffers": {
        "task1.accuracy": ("pass", "test accuracy 100.00%", "transform without Normalize (StudentID_lab2")
    },
    "norm_in_model_module": {
        "task1.accuracy": ("pass", "test accuracy 100.00%", "transform without Normalize (StudentID_lab2")
    },
    # trained on ToTensor() pixels, tested with the notebook's Normalize as well: the student's bug,
    # said in the message
    "norm_in_model_twice": {
        "task1.accuracy": (
            "fail",
            "0/20 points; SimpleCNN normalises its input itself ((x - self.mean) / self.std in "
            "StudentID_lab2.ipynb cell 3, line",
            "after the test transform's Normalize: the images are normalised twice",
        )
    },
    "cell_magics": {
        **task1_passes(),
        "task2.make_layer": ("pass", "make_layer builds layer1"),
    },
    "resnet_package": task2_verdicts(("pass", "make_layer builds layer1")),
    "broken_resnet_exit": {
        **task1_passes(),
        "task2.make_layer": ("fail", "importing resnet18.py failed: it called exit("),
    },
    "broken_resnet_used_by_a_helper": {
        **task1_passes(),
        "task2.make_layer": ("fail", "importing resnet18.py failed: it called exit("),
    },
    "broken_resnet_syntax": {
        **task1_passes(),
        "task2.make_layer": ("fail", "resnet18.py line 5 has a syntax error"),
    },
    "dropout_left_on": {
        "task1.forward": ("fail", "gives a different answer for the same input on a second call")
    },
    "batch_centred": {  # deterministic, but mixes samples: the batch message, not the random one
        "task1.forward": ("fail", "gives a different answer for an image alone than in a batch")
    },
    "mlp_for_cnn_lab": {
        "task1.spec": ("fail", "is not a CNN (no convolution layer): it has only Linear"),
        "task1.forward": ("fail", "forward pass failed"),
    },
    "fashion_near_miss": {
        "task1.spec": ("fail", "no class or function named FashionCNN found", "class FashionMNISTCNN"),
        "task1.forward": ("fail", "the grader found: class FashionMNISTCNN (fashion_cnn.py, line 13)"),
    },
    "fashion_mlp": {
        "task1.spec": ("fail", "FashionCNN (fashion_cnn.py) is not a CNN (no convolution layer)"),
        "task1.forward": ("pass", "output (8, 10)"),
    },
    "fashion_reshapes_input": {
        "task1.spec": ("pass", "runs Conv2d(in_channels=1) and ends in Linear(out_features=10)"),
        "task1.forward": ("pass", "input (8, 1, 28, 28) -> output (8, 10)"),
        "task1.counts": ("pass", "params 421,834"),
    },
    "fashion_cnn": {
        "task1.spec": ("pass", "runs Conv2d(in_channels=1) and ends in Linear(out_features=10)"),
    },
    "lenet_sequential": {
        "lenet.spec": (
            "fail",
            "no class or function named LeNet found",
            "net = nn.Sequential(...) (lenet.py, line 4)",
        ),
    },
    "alexnet_227": {
        "alexnet.spec": (
            "pass",
            "judged at 227x227, the size AlexNet is built for; this lab accepts 28x28, 224x224",
        ),
        "alexnet.forward": ("fail", "AlexNet maps none of the accepted input sizes to (N, 10) logits"),
    },
    "lecture15_book_styles": {
        "lenet.spec": (
            "pass",
            "LeNet (lenet.py) has the required 6-layer stack in order",
            "AvgPool2d(kernel_size=2, stride=2, padding=0) [functional]",
        ),
        "lenet.forward": ("pass", "output (8, 10)"),
        "lenet_max.spec": (
            "pass",
            "LeNetMaxPool (lenet.py) has the required 6-layer stack in order",
            "MaxPool2d(kernel_size=2, stride=2, padding=0) [functional]",
        ),
        # its LazyLinear takes its size from the accepted 224x224, not from the dataset's 28x28
        "alexnet.spec": ("pass", "AlexNet (alexnet.py) has the required 7-layer stack in order"),
        "alexnet.forward": ("pass", "input (8, 1, 224, 224) -> output (8, 10)"),
        "vgg.block": (
            "pass",
            "vgg_block (vgg.py) builds what the lecture describes for all 2 probe calls",
            "without in_channels (the d2l book's lazy-layer style): probed without it",
            "vgg_block(2, 16) on (1, 28, 28) -> (16, 14, 14), 2,480 parameters",
        ),
        "googlenet.block": (
            "pass",
            "Inception (googlenet.py) builds what the lecture describes",
            "163,696 parameters, 4 branches concatenated",
        ),
        "resnet.block": (
            "pass",
            "Residual (resnet.py) builds what the lecture describes for all 2 probe calls, in the basic",
            "Residual(6, True, 2) on (3, 6, 6) -> (6, 3, 3), 546 parameters, skips: projection",
        ),
        "resnet.counts": ("pass", "params 175,338"),
    },
    "vgg_cfg_and_fixed_inception": {
        "vgg.block": ("pass", "vgg_block (vgg.py) builds what the lecture describes for all 2 probe calls"),
        "vgg.forward": ("pass", "output (8, 10)"),
        # the book's signature without its lazy layers: it runs on 64-channel input only
        "googlenet.block": (
            "fail",
            "Inception(64, [96, 128], [16, 32], 32) running it on an input of shape (2, 192, 12, 12) failed",
            "without in_channels (the d2l book's lazy-layer style)",
        ),
    },
    # the template's signature is make_layer(block, channels, num_blocks, stride); a TA reads
    # what the stages do, whatever the parameters are called
    "resnet_file_styles": {
        "static_in_out.make_layer": (
            "pass",
            "make_layer builds layer1, layer2, layer3, layer4 with 2/2/2/2 blocks",
            "note: make_layer takes (block, in_channels, out_channels, num_blocks, stride), not the "
            "handout's (block, channels, num_blocks, stride): called with its parameters by name",
            "make_layer(block=BasicBlock, in_channels=512, out_channels=512, num_blocks=3, stride=1) "
            "built 3 blocks",
        ),
        "static_in_out.forward": ("pass", "output (8, 10)"),
        "static_in_out.counts": ("pass", f"params {CIFAR_STEM:,}"),
        "in_out.make_layer": (
            "pass",
            "make_layer (as _make_layer) builds layer1",
            "_make_layer(block=BasicBlock, in_channels=512, out_channels=512, num_blocks=3, stride=1) "
            "built 3 blocks",
        ),
        "no_block.make_layer": (
            "pass",
            "make_layer builds layer1",
            "make_layer(out_channels=512, num_blocks=3, stride=1) built 3 blocks",
        ),
        "planes.make_layer": (
            "pass",
            "make_layer (as _make_layer) builds",
            "note: _make_layer takes (planes, blocks, stride)",
        ),
        "keywords.make_layer": (
            "pass",
            "make_layer builds",
            "make_layer(block=BasicBlock, channels=512, num_blocks=3, stride=1) built 3 blocks",
        ),
        "ignores_count.make_layer": (
            "fail",
            "_make_layer(block=BasicBlock, in_channels=512, out_channels=512, num_blocks=3, stride=1) "
            "built 2 blocks instead of 3: num_blocks seems to be ignored",
        ),
        "unnamed.make_layer": (
            "fail",
            "make_layer takes (block, c1, c2, n, s): the grader cannot tell what to pass for c1, c2: "
            "name them like the handout's (block, channels, num_blocks, stride)",
        ),
        "two_blocks.make_layer": (
            "fail",
            "make_layer(block=BasicBlock, out_channels=512, stride=1) built 2 blocks instead of 3: "
            "make_layer takes no number of blocks",
        ),
        # a notebook exported by hand: graded like the notebook, its 200 epochs never run
        "script.make_layer": (
            "pass",
            "make_layer builds layer1, layer2, layer3, layer4",
            "note: script.py loads data or trains when imported (line 81): graded on its definitions; "
            'put that script under `if __name__ == "__main__":`',
        ),
        "script.forward": ("pass", "output (8, 10)"),
        "summary.make_layer": (
            "fail",
            "importing summary.py line 8 failed: ModuleNotFoundError: No module named 'torchsummary'",
        ),
        # its model needs the class count the script reads from the data: the file as it is
        "script_classes.make_layer": (
            "fail",
            "importing script_classes.py line 12 failed: RuntimeError: Dataset not found or corrupted",
        ),
    },
    # the first place in each file that asked, on every item of its task
    "resnet_cuda_styles": {
        f"{stem}.{kind}": ("pass", words, CUDA_NOTE.format(place))
        for stem, place in {
            "cuda_init": "cuda_init.py line 56: .cuda()",
            "cuda_forward": "cuda_forward.py line 68: .to('cuda')",
            "cuda_factory": "cuda_factory.py line 66: torch.tensor(device='cuda')",
            "cuda_top": "cuda_top.py line 73: .to('cuda')",
        }.items()
        for kind, words in (("make_layer", "make_layer builds layer1"), ("forward", "output (8, 10)"))
    },
    # File > Download > .py: !pip, %matplotlib, drive.mount, cuda hard-coded, training at the top
    "resnet_colab_export": {
        "task2.make_layer": (
            "pass",
            "make_layer builds layer1, layer2, layer3, layer4",
            "note: resnet18.py was saved from a notebook (it has ! and % lines): graded on its definitions",
        ),
        "task2.forward": ("pass", "output (8, 10)"),
    },
    "resnet_script_styles": {
        "argparse_defaults.make_layer": ("pass", "make_layer builds layer1, layer2, layer3, layer4"),
        "argparse_defaults.forward": ("pass", "output (8, 10)"),
        "argparse_required.make_layer": (
            "pass",
            "make_layer builds layer1",
            "note: argparse_required.py reads command-line arguments when imported (line",
        ),
        "argparse_required.forward": ("pass", "output (8, 10)"),
        "argv.make_layer": (
            "pass",
            "make_layer builds layer1",
            "note: argv.py reads command-line arguments when imported (line",
        ),
        "nbconvert.make_layer": (
            "pass",
            "make_layer builds layer1",
            "note: nbconvert.py was saved from a notebook (it calls get_ipython()): graded on its",
        ),
        "nbconvert.forward": ("pass", "output (8, 10)"),
        # imported as it is: config.py's parse_args() sees no options, as under ``python resnet18.py``
        "argparse_config.make_layer": ("pass", "make_layer builds layer1, layer2, layer3, layer4"),
        "persson.make_layer": ("pass", "make_layer (as _make_layer) builds layer1, layer2, layer3, layer4"),
        "persson.forward": ("pass", "output (8, 10)"),
        "persson.counts": ("pass", f"params {CIFAR_STEM:,}"),
    },
    "lab7_modulelist_dataclass": {
        "task1.residual": ("pass", "ResNet18 is residual: 8 skip connections (5 identity, 3 projection)"),
        "task1.forward": ("pass", "output (8, 10)"),
        "task1.counts": ("pass", f"params {CIFAR_STEM:,}"),
    },
    "fashion_typed_config": {
        "task1.spec": ("pass", "FashionCNN (fashion_cnn.py) runs Conv2d(in_channels=1)"),
        "task1.forward": ("pass", "output (8, 10)"),
    },
}

FLAGGED = {"pickled_model": "task1.accuracy", "truncated": "task1.accuracy"}


def copied(rubric: Rubric, copies: dict[str, tuple[str, ...]]) -> Rubric:
    """``rubric`` with task 2 copied once per file stem (reading ``<stem>.py`` only) and the
    listed task 2 items for each copy, ``<stem>.<kind>``."""
    task = rubric.tasks["task2"]
    tasks = {
        stem: dataclasses.replace(task, id=stem, sources=[f"{stem}.py"], weights=[f"{stem}.pth"])
        for stem in copies
    }
    items = [
        dataclasses.replace(rubric.item(f"task2.{kind}"), id=f"{stem}.{kind}", task=stem, requires=[])
        for stem, kinds in copies.items()
        for kind in kinds
    ]
    return dataclasses.replace(rubric, tasks=tasks, items=items)


def rubric_for(variant: Variant) -> Rubric:
    rubric = grading.only(
        copied(load(variant.rubric), variant.copies) if variant.copies else load(variant.rubric),
        *variant.items,
    )
    rubric = dataclasses.replace(rubric, items=[i for i in rubric.items if i.id in variant.items])
    tasks = {
        tid: dataclasses.replace(task, **variant.tasks.get(tid, {})) for tid, task in rubric.tasks.items()
    }
    items = [
        dataclasses.replace(i, options={**i.options, "names": [*i.options["names"], *variant.names]})
        if i.kind == "make_layer"
        else i
        for i in rubric.items
    ]
    return dataclasses.replace(rubric, tasks=tasks, items=items)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, request):
    """Each variant graded once, on first use: (folder, rubric, data root, Graded)."""
    done: dict[str, tuple] = {}

    def get(name: str):
        if name not in done:
            variant = VARIANTS[name]
            lab2 = variant.rubric.startswith("lab2")
            cifar = variant.rubric.startswith(("lab2", "lab7"))  # the CIFAR-10 labs
            root = request.getfixturevalue("cifar_root" if cifar else "fashion_root")
            state = request.getfixturevalue("trained_simple") if lab2 else {}
            tmp = tmp_path_factory.mktemp(name)
            folder = variant.build(tmp / "submission", state)
            rubric = rubric_for(variant)
            done[name] = (folder, rubric, root, grading.run(folder, rubric, root, tmp / "out"))
        return done[name]

    return get


def test_the_suite_covers_every_style():
    assert len(VARIANTS) >= 20 and set(VARIANTS) == set(VERDICTS) and set(SELF_CHECKED) <= set(VARIANTS)
    for name, variant in VARIANTS.items():
        assert set(VERDICTS[name]) == set(variant.items), name


@pytest.mark.parametrize("name", list(VARIANTS))
def test_the_grader_gives_the_TA_verdict(name, graded):
    _, _, _, result = graded(name)
    for item_id, (verdict, words, *in_details) in VERDICTS[name].items():
        test = result.test(item_id)
        said = result.message(item_id)
        assert test["status"] == ("passed" if verdict == "pass" else "failed"), (item_id, said)
        assert (test["score"] > 0) == (verdict == "pass") or test["max_score"] == 0, (item_id, said)
        assert words in said, (item_id, said)
        for detail in in_details:
            assert detail in test["output"], (item_id, test["output"])
    if name in FLAGGED:
        item = next(i for i in result.result.items if i.id == FLAGGED[name])
        assert "cannot be loaded" in item.data["flag"] and "Flagged for the TA" in result.markdown


def test_the_report_shows_the_count_as_the_check_judged_it(graded):
    """A count accepted for its redundant biases is a match in the report's table, not a
    difference; the control (ReLU before the norm) is a difference in both."""
    accepted, control = graded("conv_bias_before_norm")[3], graded("conv_bias_relu_first")[3]
    row = f"| parameters | {CIFAR_STEM + 4800:,} | {CIFAR_STEM:,} or {IMAGENET_STEM:,} |"
    assert f"{row} ✅ |" in accepted.markdown
    assert f"{row} ❌ differs |" in control.markdown


# The self-check grades again (about as long as the grade): one variant per way an
# item can end (pass with a note, fail before or after building, a hidden item that
# cannot be measured, another input size, another task's broken file).
SELF_CHECKED = (
    "kuangliu",
    "unnamed_stages",
    "resnet_case",
    "pickled_model",
    "truncated",
    "broken_resnet_exit",
    "fashion_mlp",
    "fashion_alias",
    "lenet_sequential",
    "alexnet_227",
)


@pytest.mark.parametrize("name", SELF_CHECKED)
def test_self_check_agrees_with_the_grader(name, graded):
    folder, rubric, root, result = graded(name)
    checked = selfcheck.run(folder, rubric, root)
    rows = {r.id: r for r in checked.rows}
    for item in result.result.items:
        if KINDS[item.kind].hidden and "accuracy" in item.data:
            assert rows[item.id].verdict == "later", item.id  # measured: the test split decides
        elif KINDS[item.kind].hidden:  # no number at all (weights that cannot load): said now
            assert (rows[item.id].verdict, rows[item.id].why) == ("fail", item.message), item.id
        else:
            assert rows[item.id].verdict == ("pass" if item.passed else "fail"), item.id
            assert rows[item.id].why == item.message, item.id


def test_keys_are_tried_as_saved_before_any_prefix_is_stripped():
    """A ``self.model = nn.Sequential(...)`` wrapper saves ``model.…`` keys: they fit
    as saved; stripping the prefix first (what the grader once did) would not."""
    from autograder.sandbox.worker.student import best_reading, fit_report, readings

    namespace = labs.load_module("wrapper", "import torch\nfrom torch import nn\n" + m.SIMPLE_WRAPPER)
    model = namespace["SimpleCNN"]()
    saved = model.state_dict()
    state, notes, report, _ = best_reading(model, saved)
    assert report["fits"] and notes == [] and state.keys() == saved.keys()
    stripped, why = readings(saved)[0][1]
    assert why == ["stripped the 'model.' prefix from every key"]
    assert not fit_report(model, stripped)["fits"]  # the control: prefix first breaks it
    nested = {"checkpoint": 3, "model_state_dict": m.prefixed(m.prefixed(saved, "_orig_mod."), "module.")}
    state, notes, report, _ = best_reading(model, nested)
    assert report["fits"] and notes == [
        "used the 'model_state_dict' entry of the checkpoint dict",
        "stripped the 'module.' prefix from every key",
        "stripped the '_orig_mod.' prefix from every key",
    ]


def test_a_notebook_imports_another_student_file_only_when_its_definitions_use_it():
    from autograder.notebook.extract import extract

    nb = submissions.lab2_notebook(
        extra_cells=[
            "from resnet18 import ResNet18\nimport resnet18 as r\nmodel2 = ResNet18()",
            "def build_both():\n    return SimpleCNN(), r.ResNet18()",
        ]
    )
    kept = extract(nb, frozenset({"resnet18"})).text
    assert "from resnet18 import ResNet18" not in kept and "import resnet18 as r" in kept
    # without knowing which files are the student's, every import stays (the control)
    assert "from resnet18 import ResNet18" in extract(nb).text


@pytest.mark.parametrize(
    ("got", "left_out"),
    [
        (["num_convs", "out_channels"], ["in_channels"]),  # d2l 1.0's vgg_block
        (["c1", "c2", "c3", "c4"], ["in_channels"]),  # d2l 1.0's Inception
        (["num_channels", "use_1x1conv", "strides"], ["input_channels"]),  # d2l 1.0's Residual
        (["num_convs", "in_channels", "out_channels"], []),  # the lecture's own
        (["n", "cout"], []),  # renamed: not the lecture's parameters, its own failure
        (["out_channels", "num_convs"], []),  # reordered: the arguments would land wrong
        (None, []),
    ],
)
def test_a_block_may_leave_out_what_lazy_layers_infer(got, left_out):
    from autograder.checks.block import _left_out

    want = {
        "num_convs": ["num_convs", "in_channels", "out_channels"],
        "c1": ["in_channels", "c1", "c2", "c3", "c4"],
        "num_channels": ["input_channels", "num_channels", "use_1x1conv", "strides"],
    }
    lecture = next((w for k, w in want.items() if got and k in got), want["num_convs"])
    assert _left_out(got, lecture) == left_out


HANDOUT = ["block", "channels", "num_blocks", "stride"]


@pytest.mark.parametrize(
    ("signature", "plan"),
    [
        ("self, block, channels, num_blocks, stride", ("position", HANDOUT)),  # the handout's
        ("self, block, planes, blocks, stride=1", ("position", HANDOUT)),  # torchvision's names
        ("self, block, out_channels, blocks, stride=1, dilate=False", ("position", HANDOUT)),
        ("self, a, b, c, d", ("position", HANDOUT)),  # names that say nothing: the handout's order
        (
            "self, block, in_channels, out_channels, num_blocks, stride",
            ("name", ["block", "in_channels", "channels", "num_blocks", "stride"]),
        ),
        ("self, out_channels, num_blocks, stride", ("name", ["channels", "num_blocks", "stride"])),
        ("self, planes, blocks, stride=1", ("name", ["channels", "num_blocks", "stride"])),
        ("self, block, channels, *, num_blocks, stride=1", ("name", HANDOUT)),
        (
            "self, block, inplanes, planes, n_blocks, stride=1",
            ("name", ["block", "in_channels", "channels", "num_blocks", "stride"]),
        ),
        (  # the d2l book's resnet_block: first_block keeps its default
            "self, input_channels, num_channels, num_residuals, first_block=False",
            ("name", ["in_channels", "channels", "num_blocks"]),
        ),
        ("self, block, c1, c2, n, s", (None, ["c1", "c2"])),  # five, two of them unreadable
        ("self, stride, block, c, n", (None, ["c"])),  # the names contradict the handout's order
        ("self, block, channels, num_blocks, stride, *, norm", (None, ["norm"])),
    ],
)
def test_make_layer_is_called_by_parameter_role(signature, plan):
    from autograder.sandbox.worker.introspect import call_plan, parameters

    namespace: dict = {}
    exec(f"class ResNet18:\n    def make_layer({signature}):\n        pass\n", namespace)  # noqa: S102
    method = object.__new__(namespace["ResNet18"]).make_layer  # bound, as the worker sees it
    got = call_plan(parameters(method), HANDOUT)
    by, roles = plan
    assert got["by"] == by
    if by == "name":
        assert list(got["roles"].values()) == roles
    else:
        assert got["roles" if by else "unmapped"] == roles


def test_a_make_layer_signature_names_roles():
    from autograder.checks.make_layer import _validate

    assert _validate({"signature": ["block", "in_planes", "planes", "blocks", "stride"]})["signature"]
    for bad in (["block", "channels", "foo"], ["channels", "planes"]):
        with pytest.raises(ValueError, match="signature must name the handout's parameters"):
            _validate({"signature": bad})


@pytest.mark.parametrize(
    ("text", "exported"),
    [
        (m.RESNET_COLAB, True),
        ("!pip install thop\n%matplotlib inline\nimport torch\n", True),
        (m.RESNET_STATIC, False),  # plain Python: imported as it is
        (m.BROKEN_SYNTAX, False),  # a syntax error no magic explains: said as such
        ("!pip install thop\ndef f(:\n", False),
        ("x = 1  # !pip install thop\n", False),
        (m.RESNET_NBCONVERT, True),  # Jupyter's Download as .py: magics as get_ipython() calls
        ("def f():\n    get_ipython().system('ls')\n", False),  # not at the top level: a function
        (  # nbconvert keeps a magic's indentation; Colab's own check calls it too
            "if 'google.colab' in str(get_ipython()):\n    get_ipython().system('pip install thop')\n",
            True,
        ),
    ],
)
def test_a_py_file_saved_from_a_notebook_is_read_as_one(text, exported):
    from autograder.notebook.extract import as_notebook, extract, notebook_export, parse

    assert (notebook_export(text) is not None) == exported
    if exported and "class ResNet18" in text:
        code = extract(parse(as_notebook(text)))
        assert "class ResNet18" in code.text and "drive.mount" not in code.text
        assert "for epoch" not in code.text and "!pip" not in code.text


@pytest.mark.parametrize(
    ("cell", "kept"),
    [
        ("%%time\nclass Net:\n    pass\n", True),
        ("%%capture out --no-stderr\nclass Net:\n    pass\n", True),
        ("%%writefile model.py\nclass Net:\n    pass\n", True),
        ("%%writefile -a model.py\nclass Net:\n    pass\n", True),
        ("%%writefile config.yaml\nclass: Net\n", False),  # not Python
        ("%%bash\necho class Net\n", False),
        ("%%timeit\nclass Net:\n    pass\n", False),  # timeit's runs leave nothing behind
    ],
)
def test_a_cell_magic_keeps_a_python_body(cell, kept):
    from autograder.notebook.extract import as_notebook, extract, parse

    code = extract(parse(as_notebook(cell)))
    assert ("class Net" in code.text) == kept and not code.unreadable_cells
    if kept:
        assert code.locate(code.text.splitlines().index("class Net:") + 1) == "cell 1, line 2"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (m.RESNET_SCRIPT, 81),  # the dataset, then 200 epochs
        (  # the same script under a __main__ guard
            m.reference_resnet(m.SCRIPT_IMPORTS)
            + 'if __name__ == "__main__":\n'
            + textwrap.indent(m.TRAINING_SCRIPT, "    "),
            None,
        ),
        ("import torch\n\nfor epoch in range(3):\n    pass\n", 3),
        ("from utils import train\n\nhistory = train(net, 30)\n", 3),
        (m.RESNET_SUMMARY, None),  # a summary print is not training: imported as it is
        (m.ALEXNET_TORCHVISION, None),  # model = AlexNet(10); print(model)
        ("import sys\n\nsys.exit('run train.py')\nwhile True:\n    pass\n", None),
        (m.BROKEN_EXIT, None),  # sys.argv[0], the script's name, is no option: an exit, imported
        (m.RESNET_COLAB, None),  # not Python: notebook_export's
        (m.RESNET_ARGPARSE, 75),  # args = parser.parse_args()
        (m.RESNET_ARGV, 71),  # EPOCHS = int(sys.argv[1])
        (m.SIMPLE_LOADS_WEIGHTS, 29),  # model.load_state_dict(torch.load("simple_cnn.pth", ...))
        ("import argparse\n\n\ndef main():\n    return argparse.ArgumentParser().parse_args()\n", None),
    ],
)
def test_a_py_file_that_trains_at_import_is_told_from_its_code(text, line):
    from autograder.notebook.extract import as_notebook, extract, parse, script_at_import

    assert (script_at_import(text) or (None,))[0] == line
    if line and "transform_train" in text:
        code = extract(parse(as_notebook(text))).text
        assert "class ResNet18" in code and "transform_train = transforms.Compose" in code
        assert "CIFAR10(" not in code and "for epoch" not in code and "torch.save" not in code


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ('model_aliases = "FashionMNISTCNN"', "'model_aliases' must be a list of class or function names"),
        ('model_match = "loose"', 'model_match must be "similar" or "exact"'),
    ],
)
def test_a_wrong_name_option_is_rejected_with_its_line(tmp_path, line, error):
    from autograder.rubric import RubricError

    text = (Path(__file__).parent.parent / "rubrics" / "lab4-cnn-fashion-mnist.toml").read_text()
    target = tmp_path / "lab.toml"
    target.write_text(text.replace('model = "FashionCNN"', f'model = "FashionCNN"\n{line}'))
    with pytest.raises(RubricError, match=f"lab.toml:15: task task1: {error}"):
        load(str(target))
