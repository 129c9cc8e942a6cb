"""Reading a saved notebook's printouts: the training logs students print in
their many formats, the accuracy claims, which task each claim belongs to,
and the smoke-mode rewrite that makes a 100-epoch notebook run one epoch."""

from __future__ import annotations

import nbformat
import pytest
from helpers import notebooks
from nbformat import v4

from autograder.data.registry import CIFAR10_CLASSES, FASHION_CLASSES
from autograder.notebook import claims, history, outputs, smoke


def cells_of(*texts: str) -> list[outputs.Cell]:
    nb = v4.new_notebook()
    for k, text in enumerate(texts, start=1):
        cell = v4.new_code_cell("pass", execution_count=k)
        cell.outputs = [notebooks.stream(text)]
        nb.cells.append(cell)
    return outputs.cells(nb)


def run_of(text: str) -> dict:
    (run,) = history.runs(cells_of(text))
    return run.as_dict()


def each_epoch(line: str) -> str:
    """A three-epoch training log: ``line`` printed for epochs 1 to 3, its fields the curves
    every format must give: {loss} 1/e, {acc} 60+e, {val_loss} 1.5/e, {val_acc} 50+e ({index}: e-1)."""
    fields = (
        {"e": e, "index": e - 1, "loss": 1 / e, "acc": 60 + e, "val_loss": 1.5 / e, "val_acc": 50 + e}
        for e in (1, 2, 3)
    )
    return "".join(line.format(**epoch) for epoch in fields)


LOGS = {
    "keras one line": each_epoch(
        "Epoch {e}/3 - loss: {loss:.3f} - acc: {acc}.0% - val_loss: {val_loss:.3f} - val_acc: {val_acc}.0%\n"
    ),
    "handout brackets": each_epoch(
        "Epoch [{e}/3], Train Loss: {loss:.4f}, Train Acc: {acc:.2f}%, Val Loss: {val_loss:.4f}, "
        "Val Acc: {val_acc:.2f}%\n"
    ),
    "keras progress bar": each_epoch(
        "Epoch {e}/3\n\r 10/782 [>...] - loss: 2.9 - accuracy: 0.05"
        "\r782/782 [======] - 9s 11ms/step - loss: {loss:.4f} - accuracy: 0.{acc} "
        "- val_loss: {val_loss:.4f} - val_accuracy: 0.{val_acc}\n"
    ),
    "train and val lines": each_epoch(
        "Epoch {e}/3\nTrain Loss: {loss:.3f} | Train Acc: {acc}.00%\n"
        "Val Loss: {val_loss:.3f} | Val Acc: {val_acc}.00%\n\n"
    )
    + "Test Accuracy: 99.00%\n",
    "sides": each_epoch(
        "epoch {e}: Train - loss: {loss:.3f} acc: {acc}% | Val - loss: {val_loss:.3f} acc: {val_acc}%\n"
    ),
    "pandas table": "   epoch  train_loss  train_acc  val_loss  val_acc\n"
    + each_epoch("{index}  {e}  {loss:.3f}  0.{acc}  {val_loss:.3f}  0.{val_acc}\n"),
    "history dict": "{'train_loss': [1.0, 0.5, 0.333], 'train_acc': [0.61, 0.62, 0.63], "
    "'val_loss': [1.5, 0.75, 0.5], 'val_acc': [51.0, 52.0, 53.0]}\n",
}


@pytest.mark.parametrize("name", sorted(LOGS))
def test_training_logs_in_common_formats_become_the_same_curves(name):
    run = run_of(LOGS[name])
    assert run["epochs"] == [1, 2, 3]
    assert run["train_loss"] == pytest.approx([1.0, 0.5, 0.333], abs=1e-3)
    assert run["train_acc"] == pytest.approx([0.61, 0.62, 0.63])
    assert run["val_loss"] == pytest.approx([1.5, 0.75, 0.5], abs=1e-3)
    assert run["val_acc"] == pytest.approx([0.51, 0.52, 0.53])


# PyTorch's quickstart (FashionMNIST) train and test loops, as students copy them: a heading
# per epoch, a ruler, batch losses with their sample counter, the test result on two lines
QUICKSTART = each_epoch(
    "Epoch {e}\n-------------------------------\n"
    "loss: 2.302585  [   64/60000]\nloss: {loss:>7f}  [57664/60000]\n"
    "Test Error: \n Accuracy: {val_acc:>0.1f}%, Avg loss: {val_loss:>8f} \n\n"
) + "Done!\n"


def test_the_pytorch_cifar10_tutorial_log_gives_a_loss_curve():
    """``print(f'[{epoch + 1}, {i + 1:5d}] loss: {running_loss / 2000:.3f}')`` every 2000
    mini-batches: each epoch's last line is its training loss. A printed pair is no epoch."""
    text = "[1, 2]\n" + each_epoch("[{e},  2000] loss: 2.302\n[{e},  4000] loss: {loss:.3f}\n")
    run = run_of(text + "Finished Training\n")
    assert run["epochs"] == [1, 2, 3]
    assert run["train_loss"] == pytest.approx([1.0, 0.5, 0.333], abs=1e-3)


def test_the_pytorch_quickstart_log_gives_curves_and_its_test_accuracy():
    run = run_of(QUICKSTART)
    assert run["epochs"] == [1, 2, 3]
    assert run["train_loss"] == pytest.approx([1.0, 0.5, 0.333], abs=1e-3)  # each epoch's last batch
    assert run["val_loss"] == pytest.approx([1.5, 0.75, 0.5], abs=1e-3)  # its test loop, per epoch
    assert run["val_acc"] == pytest.approx([0.51, 0.52, 0.53])
    assert [c.value for c in claims.read(cells_of(QUICKSTART), CIFAR10_CLASSES).test_accuracy] == [
        pytest.approx(v) for v in (0.51, 0.52, 0.53)
    ]


def test_tqdm_bar_keeps_the_last_update_of_each_epoch_and_not_its_percentage():
    text = "".join(
        "".join(
            f"\rEpoch {e}: {p:3d}%|███  | {p}/100 [00:01<00:02, 38.1it/s, "
            f"loss={2 - p / 100:.2f}, acc={p / 2:.1f}]"
            for p in (10, 50, 100)
        )
        + "\n"
        for e in (1, 2)
    )
    run = run_of(text)
    assert run["epochs"] == [1, 2] and run["train_loss"] == [1.0, 1.0] and run["train_acc"] == [0.5, 0.5]
    assert "val_acc" not in run


def test_a_second_training_run_in_one_cell_is_its_own_curve():
    text = "".join(f"Epoch {e}/2 loss {1 / e:.2f}\n" for e in (1, 2)) * 2
    assert [r.epochs for r in history.runs(cells_of(text))] == [[1, 2], [1, 2]]


def test_a_run_continued_in_the_next_cell_is_joined():
    first = "".join(f"Epoch {e}/4 - loss: {1 / e:.2f}\n" for e in (1, 2))
    second = "".join(f"Epoch {e}/4 - loss: {1 / e:.2f}\n" for e in (3, 4))
    (run,) = history.runs(cells_of(first, second))
    assert run.epochs == [1, 2, 3, 4] and run.cells == [1, 2]


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("Test Accuracy: 97.00%", 0.97),
        ("Accuracy of the network on the 10000 test images: 54 %", 0.54),
        ("test acc = 0.8431", 0.8431),
        ("Test set: Average loss: 0.0318, Accuracy: 9890/10000 (99%)", 0.99),
        ("Final test loss 0.52, test accuracy 0.81", 0.81),
        ("Accuracy on test set: 84.3", 0.843),
        ("Epoch 3: test acc 80%", None),  # a per-epoch line, read as a curve
        ("Test accuracy of cat: 50%", None),  # a per-class line
        # a tqdm bar over the test loader: 100% is its progress, not an accuracy
        ("Computing test accuracy: 100%|██████████| 79/79 [00:02<00:00, 35.10it/s]", None),
        ("Testing accuracy: 100%|██████████| 79/79 [00:02<00:00, 35.10it/s, acc=84.3]", 0.843),
        # printed in Chinese, traditional and simplified ("test set accuracy")
        ("測試集準確率: 85.32%", 0.8532),
        ("测试准确率：85.32%", 0.8532),
        ("訓練準確率: 90%", None),  # training accuracy is no test claim
        # snake and camel case: a printed dict, Lightning's trainer.test() table
        ("{'test_loss': 0.45, 'test_acc': 0.8532}", 0.8532),
        ("│        test_acc         │   0.8532   │", 0.8532),
        ("TestAcc 85.3%", 0.853),
        ("val_acc: 0.80", None),
        # the d2l book's train_ch6 prints its train accuracy before the test one
        ("loss 0.469, train acc 0.823, test acc 0.779", 0.779),
    ],
)
def test_test_accuracy_claims(line, value):
    found = claims.read(cells_of(line + "\n"), CIFAR10_CLASSES)
    assert [c.value for c in found.test_accuracy] == ([value] if value is not None else [])


def test_best_and_worst_class_named_in_chinese():
    found = claims.read(cells_of("最差的類別: cat (45.0%)\n最佳的類別: truck (91.0%)\n"), CIFAR10_CLASSES)
    assert ([c.value for c in found.best_class], [c.value for c in found.worst_class]) == (["truck"], ["cat"])


def test_per_class_lines_and_best_worst_classes():
    text = "".join(
        f"Accuracy for class: {name:5s} is {50 + k}.0 %\n"
        for k, name in enumerate(
            ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        )
    )
    text += "The model performs best on truck and worst on airplane\n"
    found = claims.read(cells_of(text), CIFAR10_CLASSES)
    (table,) = found.per_class
    assert {k: c.value for k, c in table.items()} == pytest.approx(
        {name: (50 + k) / 100 for k, name in enumerate(CIFAR10_CLASSES)}
    )
    assert [c.value for c in found.best_class] == ["truck"]
    assert [c.value for c in found.worst_class] == ["airplane"]


CLASSIFICATION_REPORT = """              precision    recall  f1-score   support

    airplane     0.8404    0.8229    0.8316        96
  automobile     0.8485    0.8485    0.8485        99
        bird     0.7912    0.8571    0.8229        84
         cat     0.8333    0.7812    0.8065        96
        deer     0.7609    0.7955    0.7778        88
         dog     0.8333    0.8547    0.8439       117
        frog     0.8544    0.8627    0.8585       102
       horse     0.7931    0.8598    0.8251       107
        ship     0.9158    0.8286    0.8700       105
       truck     0.8100    0.7642    0.7864       106

    accuracy                         0.8280      1000
   macro avg     0.8281    0.8275    0.8271      1000
weighted avg     0.8296    0.8280    0.8281      1000
"""


def test_a_classification_report_gives_each_class_its_recall():
    """sklearn's report, the usual per-class print: a class's accuracy is its recall (the
    second column), not the precision its row starts with."""
    (table,) = claims.read(cells_of(CLASSIFICATION_REPORT), CIFAR10_CLASSES).per_class
    recall = [0.8229, 0.8485, 0.8571, 0.7812, 0.7955, 0.8547, 0.8627, 0.8598, 0.8286, 0.7642]
    expected = dict(zip(CIFAR10_CLASSES, recall, strict=True))
    assert {k: c.value for k, c in table.items()} == pytest.approx(expected)


def test_fastai_training_table_is_read_from_its_html():
    """fastai's fit shows the epochs as an HTML table only (its text form is
    '<IPython.core.display.HTML object>'), with a 'time' column that is not a number."""
    rows = "".join(
        f"<tr><td>{e}</td><td>{1 / (e + 1):.6f}</td><td>{1.5 / (e + 1):.6f}</td><td>{0.51 + e / 100:.6f}</td>"
        f"<td>00:1{e}</td></tr>"
        for e in range(3)
    )
    html = (
        '<table border="1" class="dataframe">\n  <thead>\n    <tr style="text-align: left;">\n'
        "      <th>epoch</th>\n      <th>train_loss</th>\n      <th>valid_loss</th>\n"
        "      <th>accuracy</th>\n      <th>time</th>\n    </tr>\n  </thead>\n"
        f"  <tbody>{rows}</tbody>\n</table>"
    )
    nb = v4.new_notebook()
    shown = v4.new_output(
        "display_data", data={"text/html": html, "text/plain": "<IPython.core.display.HTML object>"}
    )
    nb.cells = [v4.new_code_cell("learn.fit_one_cycle(3)", execution_count=1, outputs=[shown])]
    (run,) = history.runs(outputs.cells(nb))
    assert run.epochs == [0, 1, 2]
    assert run.series["train_loss"] == pytest.approx([1.0, 0.5, 0.333333])
    assert run.series["val_loss"] == pytest.approx([1.5, 0.75, 0.5])


def test_fashion_class_names_with_slashes_and_shared_words():
    text = "T-shirt/top: 85.0%\nShirt: 40.1%\nAnkle boot : 97 %\nSandal: 90.0%\nBag: 0.95\nCoat: 0.7\n"
    (table,) = claims.read(cells_of(text), FASHION_CLASSES).per_class
    assert {k: c.value for k, c in table.items()} == pytest.approx(
        {"T-shirt/top": 0.85, "Shirt": 0.401, "Ankle boot": 0.97, "Sandal": 0.9, "Bag": 0.95, "Coat": 0.7}
    )


def test_claims_belong_to_the_task_whose_model_the_notebook_was_using():
    task1 = {"accuracy": 0.846, "per_class": {n: 0.8 for n in CIFAR10_CLASSES}}
    nb = notebooks.executed_lab2(task1, task2_claim=0.91)
    cells = outputs.cells(nb)
    owners = claims.attribute(cells, {"task1": ("SimpleCNN", "Task 1"), "task2": ("ResNet18", "Task 2")})
    found = claims.read(cells, CIFAR10_CLASSES, owners)
    mine = found.for_task("task1")
    assert mine["test_accuracy"].value == 0.846 and mine["test_accuracy"].cell == 5
    assert found.for_task("task2")["test_accuracy"].value == 0.91
    assert [r.owner for r in found.runs] == ["task1", "task2"]
    assert len(mine["per_class"]) == 10


def prepared(nb):
    return smoke.prepare(nb, smoke=True)


def test_smoke_mode_injects_after_the_parameters_cell_and_rewrites_the_constant():
    out = prepared(notebooks.runnable())
    sources = [c.source for c in out.nb.cells]
    assert sources[2].startswith("EPOCHS = 1  # [autograder] smoke mode, was 100\nBATCH_SIZE = 64")
    assert out.nb.cells[3].metadata["tags"] == ["injected-parameters"] and "EPOCHS = 1" in sources[3]
    assert "BATCH_SIZE" not in sources[3]  # only the overridden names
    assert "pass  # [autograder] skipped: !pip install thop" in sources[1]
    assert "pass  # [autograder] skipped: drive.mount('/content/drive')" in sources[1]
    assert out.overridden and out.injected_at == 4 and out.original(6) == 5
    assert compile(smoke._parseable(sources[1]), "cell", "exec")  # still valid Python


def test_smoke_mode_shortens_a_literal_epoch_loop_and_keeps_other_loops():
    nb = v4.new_notebook()
    nb.cells = [
        v4.new_code_cell(
            "for epoch in range(100):\n    for i in range(100):\n        pass\n"
            "for epoch in range(1, 51):\n    pass"
        )
    ]
    out = prepared(nb)
    assert out.nb.cells[0].source.splitlines() == [
        "for epoch in range(1):  # [autograder] smoke mode, was 100",
        "    for i in range(100):",
        "        pass",
        "for epoch in range(1, 2):  # [autograder] smoke mode, was 51",
        "    pass",
    ]
    assert out.changes == ["cell 1: range(..100) → 1", "cell 1: range(..51) → 2"]


def test_kaggle_dataset_paths_point_at_the_sandboxs_copy():
    """A Kaggle notebook reads its dataset from /kaggle/input/<dataset> and saves to
    /kaggle/working; in the sandbox the dataset is ./data and the working folder is '.'."""
    nb = v4.new_notebook()
    nb.cells = [
        v4.new_code_cell(
            "trainset = torchvision.datasets.CIFAR10(root='/kaggle/input/cifar10-python', train=True)\n"
            'DATA = "/kaggle/input/cifar10-python/cifar-10-batches-py"\n'
            "torch.save(model.state_dict(), '/kaggle/working/simple_cnn.pth')"
        )
    ]
    out = smoke.prepare(nb, smoke=False)
    assert out.nb.cells[0].source.splitlines() == [
        "trainset = torchvision.datasets.CIFAR10(root='data', train=True)",
        'DATA = "data/cifar-10-batches-py"',
        "torch.save(model.state_dict(), './simple_cnn.pth')",
    ]
    assert out.changes == ["cell 1: /kaggle/input/cifar10-python → data", "cell 1: /kaggle/working → ."]


def test_without_smoke_mode_only_unrunnable_lines_change():
    out = smoke.prepare(notebooks.runnable(), smoke=False)
    assert "EPOCHS = 100" in out.nb.cells[2].source and not out.overridden and out.injected_at is None
    assert all("skipped" in c for c in out.changes)


def test_with_one_task_every_claim_is_its_own():
    cells = cells_of("Test Accuracy: 91.2%\n", "Best class: Trouser, worst class: Shirt\n")
    owners = claims.attribute(cells, {"task1": ("FashionCNN", None)})  # never mentioned
    mine = claims.read(cells, FASHION_CLASSES, owners).for_task("task1")
    assert mine["test_accuracy"].value == 0.912 and mine["best_class"].value == "Trouser"
    assert mine["worst_class"].value == "Shirt"


def test_hostile_output_cannot_stall_the_parsers():
    """Regexes that could backtrack exponentially would hang here (the alarm fails the test)."""
    import signal

    def stalled(*_):
        raise TimeoutError("parsing a hostile output did not finish")

    hostile = [
        "{'train_loss': [" + ", ".join(["1" * 12] * 40) + " x",
        "Epoch 1 " + "train loss " * 2000,
        "test " + "a" * 5000 + " accuracy " * 1000,
        "Accuracy of cat " + "1" * 10000,
    ]
    previous = signal.signal(signal.SIGALRM, stalled)
    signal.alarm(30)
    try:
        found = claims.read(cells_of(*hostile), CIFAR10_CLASSES)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert found.test_accuracy == [] and found.runs == []


def test_a_key_an_editor_adds_beyond_the_format_version_is_not_a_schema_problem():
    """nteract writes ``outputExpanded`` on its cells; nbformat 4.4's schema lists no such key."""
    nb = v4.new_notebook(nbformat_minor=4)
    cell = v4.new_code_cell("x = 1", execution_count=1)
    del cell["id"]  # 4.4 has no cell ids
    cell["outputExpanded"] = False
    nb.cells = [cell]
    with pytest.raises(nbformat.ValidationError, match="'outputExpanded' was unexpected"):
        nbformat.validate(nb)  # control: the strict schema refuses it
    assert outputs.schema_problem(nb) is None
    cell["cell_type"] = "kode"  # what the student did wrong is still said
    assert outputs.schema_problem(nb) is not None
