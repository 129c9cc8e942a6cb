"""The reports of a full Lab 2 submission whose notebook ran and printed
everything the handout asks for: the SimpleCNN claim is true, the ResNet-18
claim is not. report.html is rendered in headless Chromium (Debian's
`chromium`): the score table, per-class chart, confusion matrix and curves
are laid out, decoded and visible in a screenshot, and the page fits a phone.
report.md stays within Gradescope's limit; results.json keeps later results
out of the summary students see at once and carries the TA flag."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import grading, labs, submissions
from PIL import Image

from autograder.checks import spec
from autograder.rubric import load

CHROMIUM = shutil.which("chromium")
LAYOUT = """<script>
window.addEventListener("load", () => {
  const place = (el) => { const r = el.getBoundingClientRect();
    return {id: el.id, cls: el.className, top: r.top + scrollY, bottom: r.bottom + scrollY, width: r.width,
            decoded: el.tagName !== "IMG" || (el.complete && el.naturalWidth > 0)}; };
  const info = {height: document.documentElement.scrollHeight,
                overflow: document.documentElement.scrollWidth - window.innerWidth,
                parts: [...document.querySelectorAll("#items, #flags, table.claims, img")].map(place)};
  document.body.setAttribute("data-layout", JSON.stringify(info));
});
</script></body>"""


@pytest.fixture(scope="module")
def lab2(lab2_graded):
    """The complete lab 2 hand-in (conftest.py), graded once for this module and test_lab2.py."""
    return lab2_graded


def chromium(*args: str) -> str:
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def layout(page: Path, width: int) -> dict:
    dom = chromium(f"--window-size={width},900", "--virtual-time-budget=5000", "--dump-dom", page.as_uri())
    found = re.search(r'data-layout="([^"]*)"', dom)
    assert found, "the page never finished loading"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.slow  # a lab 2 grade with the trained ResNet-18
def test_claims_are_compared_with_the_measured_accuracy_and_the_gap_flagged(lab2):
    g, task1, resnet, claim2 = lab2
    ok = g.test("task1.claims")
    assert ok["status"] == "passed" and ok["visibility"] == "after_due_date"
    assert ok["extra_data"]["claimed"] == ok["extra_data"]["measured"] == pytest.approx(task1["accuracy"])
    assert g.message("task1.claims") == (
        f"StudentID_lab2.ipynb cell 5 claims {task1['accuracy']:.2%}; the submitted weights score "
        f"{task1['accuracy']:.2%} on the hidden test split: within ±2 points"
    )
    bad = g.test("task2.claims")
    gap = 100 * abs(claim2 - resnet["accuracy"])
    side = "above" if claim2 > resnet["accuracy"] else "below"
    assert g.message("task2.claims") == (
        f"StudentID_lab2.ipynb cell 13 claims {claim2:.2%}; the submitted weights score "
        f"{resnet['accuracy']:.2%} on the hidden test split: {gap:.1f} points apart, more than the ±2 "
        "allowed; flagged for the TA"
    )
    assert bad["extra_data"]["flag"] == (
        f"ResNet18: the notebook claims {claim2:.2%}, {gap:.1f} points {side} the measured "
        f"{resnet['accuracy']:.2%}"
    )
    for item in ("notebook.run", "notebook.outputs"):
        assert g.test(item)["status"] == "passed", g.test(item)["output"]


@pytest.mark.slow  # a lab 2 grade with the trained ResNet-18
def test_gradescope_summary_keeps_later_results_out(lab2, lab2_rubric):
    g, task1, resnet, _ = lab2
    lines = g.json["output"].splitlines()
    assert lines[:2] == [
        "NCKU Lab 2 — SimpleCNN and ResNet-18 on CIFAR-10",
        "Checks shown now: 9 of 9 passed",
    ]
    assert lines[2].startswith("4 more results (40 points) appear after the due date: Task 1: SimpleCNN test")
    assert "✓ every check shown now passed" in lines
    assert f"{resnet['accuracy']:.2%}" not in g.json["output"] and "flag" not in g.json["output"]
    board = g.json["leaderboard"]
    assert {"name": "Task 1: SimpleCNN test accuracy", "value": round(task1["accuracy"], 4)} in board
    params = lab2_rubric.item("task1.counts").options["params"][0]  # the reference's (test_labs.py)
    assert {"name": "Task 1: parameters and FLOPs params", "value": params, "order": "asc"} in board


@pytest.mark.slow  # a lab 2 grade with the trained ResNet-18
def test_markdown_report_has_the_evidence_within_gradescopes_limit(lab2, lab2_rubric):
    g, task1, _, claim2 = lab2
    md = g.markdown
    assert len(md) < 100_000
    assert f"> **Flagged for the TA:** ResNet18: the notebook claims {claim2:.2%}" in md
    assert "| Class | Accuracy | Claimed |" in md
    assert f"| cat | {100 * task1['per_class']['cat']:.1f}% | {100 * task1['per_class']['cat']:.1f}% |" in md
    assert "| true \\ predicted | airplane | automobile |" in md
    assert (
        "### Task 1 training log (cell 4)\n\n30 epochs logged of 30 declared (every few epochs shown)." in md
    )
    assert "| 30 | 0.3 | 0.5 | 90.0% | 85.0% |" in md  # the last epoch of the printed log
    assert "| 1 | `Conv2d(in_channels=3, out_channels=32, kernel_size=3, padding=1)` |" in md
    accepted = lab2_rubric.item("task2.counts").options["params"]  # the reference's first (test_labs.py)
    assert f"| parameters | {accepted[0]:,} | {' or '.join(f'{p:,}' for p in accepted)} | ✅ |" in md


@pytest.mark.slow  # Chromium, on a lab 2 grade with the trained ResNet-18
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed")
def test_html_report_in_chromium_shows_table_charts_and_curves(lab2, tmp_path):
    g = lab2[0]
    page = tmp_path / "report.html"
    page.write_text((g.out / "report.html").read_text().replace("</body>", LAYOUT))
    wide = layout(page, 1000)
    parts = {p["id"] or p["cls"]: p for p in wide["parts"]}
    wanted = ["items", "flags", "per-class-task1", "confusion-task1", "per-class-task2", "confusion-task2"]
    assert set(wanted) <= set(parts)
    curves = [p for p in wide["parts"] if p["cls"] == "curves"]
    assert len(curves) == 2 and all(p["decoded"] and p["width"] > 300 for p in curves)
    assert all(parts[k]["decoded"] and parts[k]["width"] > 300 for k in wanted)
    # the screenshot holds the whole page; each part is drawn, not blank
    shot = tmp_path / "report.png"
    chromium(f"--window-size=1000,{wide['height']}", f"--screenshot={shot}", page.as_uri())
    image = Image.open(shot).convert("L")
    assert image.size == (1000, wide["height"])
    for part in [*(parts[k] for k in wanted), *curves]:
        region = image.crop((0, int(part["top"]), 1000, int(part["bottom"])))
        inked = sum(region.histogram()[:200]) / (region.width * region.height)  # share of dark pixels
        assert 0.02 < inked < 0.9, (part, inked)
    # the page content a TA reads
    text = re.sub(r"<[^>]+>", " ", (g.out / "report.html").read_text())
    assert re.search(rf"Autograded score: {g.result.score:g} / 40\s+· 60 points graded by a TA", text)
    assert "Flagged for the TA:" in text and "Layers compared with the reference" in text
    assert "Per-class accuracy" in text and "Confusion matrix" in text and "Training curves" in text
    assert "sandbox tier A" in text and "torch 2.14.1" in text
    # on a phone, wide tables scroll inside their box instead of widening the page
    assert layout(page, 390)["overflow"] <= 0


def test_layer_and_count_differences_are_highlighted(tmp_path, cifar_root, lab2_rubric):
    narrow = (
        submissions.simple_cnn_source()
        .replace("nn.Conv2d(32, 64", "nn.Conv2d(32, 48")
        .replace("nn.BatchNorm2d(64)", "nn.BatchNorm2d(48)")
        .replace("64 * 8 * 8", "48 * 8 * 8")
    )
    folder = submissions.write_lab2(
        tmp_path / "sub", None, None, notebook=submissions.lab2_notebook(simple_cnn=narrow), resnet_source=""
    )
    g = grading.run(
        folder, grading.only(lab2_rubric, "task1.spec", "task1.counts"), cifar_root, tmp_path / "out"
    )
    page = (g.out / "report.html").read_text()
    rows = re.findall(r'<tr class="diff">(.*?)</tr>', page, re.S)
    cells = [re.sub(r"<[^>]+>", "", r).split("\n")[0] for r in rows]
    required = [c for c in cells if "Conv2d(in_channels=32" in c]
    assert required and "out_channels=64" in required[0] and "out_channels=48" in required[0]
    assert any(c.startswith("parameters") for c in cells)
    md = g.markdown
    assert (
        "| 4 | `Conv2d(in_channels=32, out_channels=64, kernel_size=3, padding=1)` | "
        "`Conv2d(in_channels=32, out_channels=48, kernel_size=3, stride=1, padding=1)` | ❌ |" in md
    )
    pinned = lab2_rubric.item("task1.counts").options["params"][0]
    assert f"| parameters | 45,658 | {pinned:,} | ❌ differs |" in md


def test_layer_table_shows_the_checks_own_alignment_with_a_custom_between(tmp_path, fashion_root):
    """Lecture 15's LeNet-5 lists its average pooling as required layers (its ``between``
    leaves pooling out): the report's table is the check's decision, row by row."""
    rubric = grading.only(load("lecture15-classic-cnns"), "lenet.spec")
    folder = labs.write(tmp_path / "sub", {"lenet.py": labs.reference_source("lecture15/lenet.py")})
    g = grading.run(folder, rubric, fashion_root, tmp_path / "out")
    assert g.test("lenet.spec")["status"] == "passed"
    page = (g.out / "report.html").read_text()
    table = re.search(r'<table class="required">(.*?)</table>', page, re.S).group(1)
    rows = [
        [
            html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)
        ]
        for r in re.findall(r"<tr class=\"(?:req|diff)\">(.*?)</tr>", table, re.S)
    ]
    assert rows == [
        [
            "1",
            "Conv2d(in_channels=1, out_channels=6, kernel_size=5, padding=2)",
            "Conv2d(in_channels=1, out_channels=6, kernel_size=5, stride=1, padding=2)",
            "✓",
        ],
        ["2", "AvgPool2d(kernel_size=2)", "AvgPool2d(kernel_size=2, stride=2, padding=0)", "✓"],
        [
            "3",
            "Conv2d(in_channels=6, out_channels=16, kernel_size=5)",
            "Conv2d(in_channels=6, out_channels=16, kernel_size=5, stride=1, padding=0)",
            "✓",
        ],
        ["4", "AvgPool2d(kernel_size=2)", "AvgPool2d(kernel_size=2, stride=2, padding=0)", "✓"],
        ["5", "Linear(in_features=400, out_features=120)", "Linear(in_features=400, out_features=120)", "✓"],
        ["6", "Linear(in_features=120, out_features=84)", "Linear(in_features=120, out_features=84)", "✓"],
        [
            "7",
            "final layer: Linear(in_features=84, out_features=10)",
            "Linear(in_features=84, out_features=10)",
            "✓",
        ],
    ]
    assert "✗" not in page and "❌" not in g.markdown
    # control: the same layers paired with the default ``between`` (pooling skipped) disagree,
    # which is what the report showed when it re-paired them itself
    item = rubric.item("lenet.spec")
    executed = g.result.item("lenet.spec").data["layers"]
    ok, _, _, alignment = spec.compare(executed, item.options["layers"], spec.DEFAULT_BETWEEN, None)
    assert not ok and sum(not row["ok"] for row in alignment) == 3
