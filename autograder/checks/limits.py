"""Time limits the checks put on single worker requests, in seconds: named
defaults in one place, listed in docs/rubrics.md ("Time limits").

Each is a ceiling for one request; the item's ``timeout`` and the submission's
``time_budget`` cut it further (``sandbox.Deadline``). Importing a file and
building its model take the rubric's ``import_timeout``; a fresh worker's
start takes ``START_TIMEOUT`` (``sandbox/session.py``).
"""

from __future__ import annotations

# One forward pass at a candidate input size: a task's ``input_sizes``, or the sizes
# the classic networks are written for when a layer stack is judged apart from them.
PROBE_TIMEOUT = 60.0
# Reading a checkpoint: matching it to a task by its keys and shapes, listing its
# tensors' shapes in a pristine worker, loading it for evaluation.
LOAD_TIMEOUT = 300.0
# Listing the module types a model declares (``spec``, after its probe failed: is it a CNN at all?).
MODULES_TIMEOUT = 30.0
# ``notebook_execute``: the default of the rubric option ``cell_timeout`` (one cell).
CELL_TIMEOUT = 120.0
# ``retrain``: seconds on top of 1.1 x the recipe's ``budget`` for start-up, the speed
# probe and the evaluation (the item's own ``timeout`` wins when it is longer).
RETRAIN_SLACK = 300.0
