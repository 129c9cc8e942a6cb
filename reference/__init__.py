"""Reference solutions: the models the handouts describe, with the numbers
the rubrics pin (checked by tests/test_reference.py with the grader's own
counting code)."""
