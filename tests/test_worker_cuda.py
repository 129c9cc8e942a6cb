"""Code hard-coding CUDA, run where there is no GPU (``sandbox/worker/cuda.py``): every
spelling students use lands on the CPU while student code runs, and the place is recorded;
with the mapping off (the control) the same code fails as it does on a CPU-only torch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from variants import models as m

from autograder.sandbox.worker.cuda import CpuForCuda
from autograder.sandbox.worker.errors import WorkerError
from autograder.sandbox.worker.student import StudentCode

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="the mapping is for graders without a GPU")


def student(tmp_path: Path, text: str) -> StudentCode:
    (tmp_path / "net.py").write_text(text)
    code = StudentCode((str(tmp_path),))
    code.load("net", str(tmp_path / "net.py"))
    return code


SPELLINGS = [
    ("torch.zeros(2, device='cuda')", "torch.zeros(device='cuda')"),
    ("torch.ones(2, device=torch.device('cuda'))", "torch.ones(device='cuda')"),
    ("torch.randn(2, device='cuda:0')", "torch.randn(device='cuda')"),
    ("torch.tensor([1.0], device=DEVICE)", "torch.tensor(device='cuda')"),
    ("x.new_zeros(2, device='cuda')", ".new_zeros(device='cuda')"),
    ("x.to('cuda')", ".to('cuda')"),
    ("x.to(DEVICE)", ".to('cuda')"),
    ("x.to(torch.device('cuda', 0))", ".to('cuda')"),
    ("x.to(device='cuda')", ".to(device='cuda')"),
    ("x.to('cuda', torch.float64)", ".to('cuda')"),
    ("x.cuda()", ".cuda()"),
    ("x.cuda(0)", ".cuda()"),
    ("nn.Linear(2, 2).cuda()", ".cuda()"),
    ("nn.Linear(2, 2).to(DEVICE)", ".to('cuda')"),
    ("nn.Linear(2, 2).to(device=DEVICE)", ".to(device='cuda')"),
    ("nn.Linear(2, 2, device='cuda')", "torch.empty(device='cuda')"),
]


@pytest.mark.parametrize(("spelling", "what"), SPELLINGS)
def test_each_cuda_spelling_runs_on_the_cpu_and_is_recorded(tmp_path, monkeypatch, spelling, what):
    text = (
        "import torch\nfrom torch import nn\n\nDEVICE = torch.device('cuda')\nx = torch.ones(2)\n\n\n"
        f"def f():\n    return {spelling}\n"
    )
    code = student(tmp_path, text)
    got = code.call(code.attribute("net", "f"))
    tensors = list(got.parameters()) if isinstance(got, torch.nn.Module) else [got]
    assert all(t.device.type == "cpu" for t in tensors)
    assert code.devices.places == {str(tmp_path / "net.py"): (9, what)}
    # the control: without the mapping, the same call fails as on any CPU-only torch
    monkeypatch.setattr(CpuForCuda, "needed", lambda self: False)
    with pytest.raises(WorkerError, match="CUDA|NVIDIA"):
        code.call(code.attribute("net", "f"))


@pytest.mark.parametrize(
    "source",
    [m.CUDA_INIT, m.CUDA_FORWARD, m.CUDA_FACTORY, m.CUDA_TOP_LEVEL],
    ids=["init", "forward", "factory", "top"],
)
def test_the_graded_cuda_files_fail_without_the_mapping(tmp_path, monkeypatch, source):
    """The control for ``resnet_cuda_styles`` in test_variants_models.py: each of its files,
    imported, built and run in the worker's code, fails once the mapping is off."""

    def run(code: StudentCode) -> torch.Tensor:
        code.load("net", str(tmp_path / "net.py"))
        model = code.call(code.attribute("net", "ResNet18"))
        return code.call(model, torch.zeros(2, 3, 32, 32))

    (tmp_path / "net.py").write_text(source)
    assert run(StudentCode((str(tmp_path),))).shape == (2, 10)
    monkeypatch.setattr(CpuForCuda, "needed", lambda self: False)
    with pytest.raises(WorkerError, match="CUDA|NVIDIA"):
        run(StudentCode((str(tmp_path),)))


def test_nothing_changes_where_cuda_is_available_or_outside_student_code(tmp_path, monkeypatch):
    code = student(tmp_path, "import torch\n\n\ndef f():\n    return torch.zeros(1, device='cuda')\n")
    assert code.call(code.attribute("net", "f")).device.type == "cpu"
    with pytest.raises(RuntimeError, match="CUDA|NVIDIA"):  # the grader's own code: as written
        torch.zeros(1, device="cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a grader with a GPU
    with pytest.raises(WorkerError, match="CUDA|NVIDIA"):  # (this one has none: the call fails)
        StudentCode((str(tmp_path),)).call(code.attribute("net", "f"))


@pytest.mark.parametrize(
    "spelling",
    [
        "torch.set_default_device('cuda') or torch.zeros(2)",
        "torch.cuda.FloatTensor(2)",
        "torch.ones(2).type(torch.cuda.FloatTensor)",
        "torch.ones(2).pin_memory()",
        "torch.Generator(device='cuda')",
        "torch.load(PATH, map_location='cuda')",
    ],
)
def test_what_the_mapping_does_not_catch_fails_as_before(tmp_path, spelling):
    """docs/rubrics.md lists these as not caught: no hack for them."""
    torch.save(torch.ones(1), tmp_path / "w.pth")
    text = f"import torch\n\nPATH = {str(tmp_path / 'w.pth')!r}\n\n\ndef f():\n    return {spelling}\n"
    code = student(tmp_path, text)
    try:
        with pytest.raises(WorkerError, match="CUDA|NVIDIA|cuda"):
            code.call(code.attribute("net", "f"))
    finally:
        torch.set_default_device(None)


def test_the_grader_keeps_only_well_formed_places_the_worker_reports():
    from autograder.sandbox.session import Sandbox

    box = object.__new__(Sandbox)
    box.cuda = {}
    box._record_cuda({"/s/a.py": [3, ".cuda()"], "/s/b.py": ["3", "x"], "/s/c.py": [1, "z" * 500]})
    box._record_cuda({"/s/a.py": [9, ".to('cuda')"]})  # the first place per file stays
    assert box.cuda == {"/s/a.py": (3, ".cuda()"), "/s/c.py": (1, "z" * 60)}
