"""The worker's batched evaluation: the same logits as the bare model, small
CPU batches, a channels_last fallback for models that need contiguous input,
and a thread count that respects a cgroup CPU quota."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from autograder import machine
from autograder.checks import accuracy
from autograder.sandbox.worker import evaluate, introspect
from autograder.sandbox.worker.errors import WorkerError
from reference.lab2.simple_cnn import SimpleCNN

MEAN, STD = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]


class Flattening(nn.Module):
    """``.view`` on its input: fails on a channels_last tensor, as student code often does."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.view(x.size(0), -1))


def call(fn, *args, **kwargs):
    """The worker's StudentCode.call, reduced: student exceptions become WorkerError."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        raise WorkerError("crash", f"{type(exc).__name__}: {exc}") from None


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (300, 3, 32, 32), dtype=np.uint8)
    path = tmp_path_factory.mktemp("eval") / "test_images.npy"
    np.save(path, array)
    return path, array


def bare(model: nn.Module, array: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(array).float() / 255
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    with torch.inference_mode():
        return model.eval()(x)


@pytest.mark.parametrize("model_cls", [SimpleCNN, Flattening])
def test_logits_match_the_bare_model(tmp_path, images, model_cls):
    path, array = images
    torch.manual_seed(0)
    model = model_cls()
    expected = bare(model, array)
    out = tmp_path / "logits.npy"
    info = evaluate.logits(model, str(path), str(out), MEAN, STD, None, 500, "cpu", call)
    got = np.load(out)
    assert got.shape == (300, 10) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-4, atol=1e-4)
    assert info["batch_size"] == 32 * torch.get_num_threads()  # 500 asked; 32 CIFAR images per thread
    assert info["layout"] == ("channels_last" if model_cls is SimpleCNN else "contiguous_format")


def test_student_error_on_the_first_batch_is_reported_not_masked(tmp_path, images):
    class Broken(nn.Module):
        def forward(self, x):
            raise ValueError("shapes do not line up")

    with pytest.raises(WorkerError, match="ValueError: shapes do not line up"):
        evaluate.logits(Broken(), str(images[0]), str(tmp_path / "x.npy"), MEAN, STD, None, 64, "cpu", call)


def test_cpu_batches_shrink_for_large_inputs_and_gpu_batches_do_not():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert evaluate.batch_size_for(500, cpu, 32, 32, threads=1) == 32
    assert evaluate.batch_size_for(500, cpu, 32, 32, threads=4) == 128
    assert evaluate.batch_size_for(500, cpu, 224, 224, threads=8) == 5
    assert evaluate.batch_size_for(500, cpu, 224, 224, threads=1) == 1
    assert evaluate.batch_size_for(16, cpu, 28, 28, threads=2) == 16
    assert evaluate.batch_size_for(500, cuda, 224, 224, threads=1) == 500


def _cgroup(tmp_path, membership: str, files: dict[str, str]):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "self").write_text(membership)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return machine.cgroup_cpu_quota(tmp_path, tmp_path / "self")


def test_cgroup_cpu_quota_v2_v1_and_none(tmp_path):
    assert _cgroup(tmp_path / "a", "0::/job\n", {"job/cpu.max": "50000 100000\n"}) == 0.5
    assert _cgroup(tmp_path / "b", "0::/job\n", {"job/cpu.max": "max 100000\n"}) is None
    v1 = {"cpu/docker/x/cpu.cfs_quota_us": "200000\n", "cpu/docker/x/cpu.cfs_period_us": "100000\n"}
    assert _cgroup(tmp_path / "c", "4:cpu,cpuacct:/docker/x\n", v1) == 2.0
    # inside a container the mount shows the container's own group at its top
    top = {"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}
    assert _cgroup(tmp_path / "d", "4:cpu,cpuacct:/docker/x\n", top) == 0.5
    assert _cgroup(tmp_path / "e", "4:cpu,cpuacct:/\n", {"cpu/cpu.cfs_quota_us": "-1\n"}) is None
    assert machine.usable_cpus() >= 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_logits_match_cpu_within_tf32(tmp_path, images):
    path, array = images
    torch.manual_seed(0)
    model = SimpleCNN()
    expected = bare(model, array)
    out = tmp_path / "logits.npy"
    evaluate.logits(model, str(path), str(out), MEAN, STD, None, 500, "cuda", call)
    np.testing.assert_allclose(np.load(out), expected.numpy(), rtol=2e-2, atol=2e-2)


def _stack(model: nn.Module) -> tuple[list[dict], list[str]]:
    """What the worker's introspection reports for ``model`` (no sandbox needed)."""
    facts = introspect.layers(model, [3, 32, 32], lambda fn, *a, **k: fn(*a, **k))
    return facts["executed"], [u["name"] for u in facts["unused"]]


def _shapes(model: nn.Module) -> tuple[Path, dict[str, list[int]]]:
    return Path("simple_cnn.pth"), {k: list(v.shape) for k, v in model.state_dict().items()}


class Twice(nn.Module):
    """One convolution registered under two names, as students do (an attribute, then a Sequential)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.body = nn.Sequential(self.conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


@pytest.mark.parametrize("model_cls", [SimpleCNN, Twice])
def test_a_checkpoint_agrees_with_the_stack_of_its_own_model(model_cls):
    model = model_cls()
    assert accuracy.not_the_checked_network(*_stack(model), _shapes(model)) is None


def test_a_decoys_stack_disagrees_with_another_networks_checkpoint():
    resnet = torchvision.models.resnet18(num_classes=10)
    assert accuracy.not_the_checked_network(*_stack(SimpleCNN()), _shapes(resnet)) == (
        "it holds 0 parameters for the layer features.0, not 896"
    )
    # the decoy's own layers, plus a ResNet-18 (model.real) its report leaves out
    both = {**_shapes(SimpleCNN())[1], **{f"real.{k}": v for k, v in _shapes(resnet)[1].items()}}
    differs = accuracy.not_the_checked_network(*_stack(SimpleCNN()), (Path("simple_cnn.pth"), both))
    assert differs.startswith(
        "it holds weights of layers the checked forward pass never ran: real.conv1.weight (64, 3, 7, 7), "
    )
