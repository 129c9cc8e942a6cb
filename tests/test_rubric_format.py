"""Every rubric in rubrics/ loads; a wrong one is rejected with the file, the
line and the reason (what an instructor sees when a new lab's rubric has a typo)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import rubrics

from autograder.rubric import RubricError, available, load

HEAD = """id = "lab-x"
title = "Lab X"
dataset = "fashion_mnist"

[tasks.task1]
model = "Net"
"""


def write(tmp_path: Path, items: str, head: str = HEAD) -> Path:
    path = tmp_path / "lab-x.toml"
    path.write_text(head + items)
    return path


def rejected(path: Path) -> tuple[int, str]:
    """(line, reason) from the loader's 'FILE:LINE: reason' message."""
    with pytest.raises(RubricError) as caught:
        load(str(path))
    where, _, reason = str(caught.value).partition(": ")
    file, _, line = where.rpartition(":")
    assert file == str(path)
    return int(line), reason


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.mark.parametrize("rubric_id", available())
def test_every_bundled_rubric_loads(rubric_id):
    rubric = load(rubric_id)
    assert rubric.id == rubric_id and rubric.items
    for item in rubric.items:
        assert item.line > 0 and (item.task is None or item.task in rubric.tasks)


def test_course_packet_rubrics_are_all_there():
    assert {
        "lab2-resnet18-cifar10",
        "lab4-cnn-fashion-mnist",
        "lab7-resnet18-cifar10",
        "lecture15-classic-cnns",
        "demo-mnist",
    } <= set(available())


def test_unknown_kind(tmp_path):
    path = write(tmp_path, '\n[[items]]\nid = "a"\nkind = "acuracy"\nname = "A"\ntask = "task1"\n')
    line, reason = rejected(path)
    assert line == line_of(path, 'id = "a"')
    assert reason.startswith("item a: unknown kind 'acuracy'; known kinds: accuracy, block,")


def test_missing_field(tmp_path):
    path = write(
        tmp_path,
        '\n[[items]]\nid = "ok"\nkind = "forward"\nname = "F"\ntask = "task1"\n'
        '\n[[items]]\nkind = "forward"\ntask = "task1"\nname = "no id"\n',
    )
    line, reason = rejected(path)
    assert line == 14 and reason == "item 2 is missing the string field 'id'"


def test_tiers_out_of_order(tmp_path):
    tiers = rubrics.above((0.7, 5), (0.8, 10))
    path = write(
        tmp_path,
        rubrics.item(id="acc", kind="accuracy", task="task1", name="Accuracy", points=10, tiers=tiers),
    )
    line, reason = rejected(path)
    assert line == line_of(path, 'id = "acc"')
    assert "tiers out of order: list them from the highest threshold down" in reason
    assert "(>70% then >80%)" in reason


def test_best_tier_must_pay_the_items_points(tmp_path):
    path = write(
        tmp_path,
        '\n[[items]]\nid = "acc"\nkind = "accuracy"\ntask = "task1"\nname = "A"\n'
        "points = 20\ntiers = [{ at_least = 0.9, points = 10 }]\n",
    )
    assert rejected(path)[1] == "item acc: the best tier gives 10 points but the item is worth 20"


def test_block_probe_without_input_shape(tmp_path):
    path = write(
        tmp_path,
        """
[[items]]
id = "blk"
kind = "block"
task = "task1"
name = "vgg_block"
block = "vgg_block"
probes = [{ args = [2, 1, 16], output = [16, 14, 14] }]
""",
    )
    line, reason = rejected(path)
    assert line == line_of(path, 'id = "blk"')
    assert reason == "item blk: block: probe 1: input must be a shape like [3, 32, 32] (no batch)"


def test_residual_and_unknown_options(tmp_path):
    path = write(
        tmp_path, '\n[[items]]\nid = "res"\nkind = "residual"\ntask = "task1"\nname = "R"\nmin_skips = -1\n'
    )
    assert rejected(path)[1] == "item res: residual: min_skips must be a whole number >= 0"
    path = write(
        tmp_path, '\n[[items]]\nid = "res"\nkind = "residual"\ntask = "task1"\nname = "R"\nskips = 8\n'
    )
    assert rejected(path)[1] == (
        "item res: kind residual has no option skips (options: min_skips, orders, projections)"
    )


def test_a_curves_requirement_needs_loss_or_accuracy(tmp_path):
    item = '\n[[items]]\nid = "out"\nkind = "notebook_outputs"\nname = "O"\nrequire = [{{ {} }}]\n'
    for entry in ('find = "curves", needs = ["loss", "f1"]', 'find = "plots", needs = ["loss"]'):
        assert rejected(write(tmp_path, item.format(entry)))[1] == (
            'item out: notebook_outputs: needs goes with find = "curves" and lists loss and/or accuracy'
        )
    load(str(write(tmp_path, item.format('find = "curves", needs = ["loss", "accuracy"]'))))


def test_task_errors(tmp_path):
    path = write(tmp_path, '\n[[items]]\nid = "f"\nkind = "forward"\nname = "F"\ntask = "task2"\n')
    assert rejected(path)[1] == "item f: unknown task 'task2'"
    bad_sizes = HEAD + "input_sizes = [28, 'big']\n"
    path = write(tmp_path, '\n[[items]]\nid = "f"\nkind = "forward"\nname = "F"\ntask = "task1"\n', bad_sizes)
    line, reason = rejected(path)
    assert line == line_of(path, "[tasks.task1]")
    assert reason == "task task1: input_sizes must be a list of image sizes, e.g. [28, 224]"


def test_requires_an_earlier_item(tmp_path):
    tiers = rubrics.above((0.5, 1))
    acc = rubrics.item(
        id="acc", kind="accuracy", task="task1", name="A", points=1, requires=["fwd"], tiers=tiers
    )
    path = write(tmp_path, acc + rubrics.item(id="fwd", kind="forward", task="task1", name="F"))
    line, reason = rejected(path)
    assert (
        line == line_of(path, 'id = "acc"') and reason == "acc requires 'fwd', which is not an earlier item"
    )


def test_toml_syntax_error_names_the_file(tmp_path):
    path = write(tmp_path, '\n[[items]]\nid = "a\n')
    with pytest.raises(RubricError, match=rf"^{path}: .*line 9"):
        load(str(path))


def test_time_budget_must_be_positive_seconds(tmp_path):
    items = '\n[[items]]\nid = "a"\nkind = "forward"\nname = "A"\ntask = "task1"\n'
    assert load(str(write(tmp_path, items))).time_budget == 480
    path = write(tmp_path, items, head=HEAD.replace("[tasks.task1]", "time_budget = -5\n\n[tasks.task1]"))
    reason = "time_budget must be a positive number of seconds"
    assert rejected(path) == (line_of(path, "time_budget"), reason)
