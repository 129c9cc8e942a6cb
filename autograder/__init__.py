"""Autograder for PyTorch CNN labs: sandboxed student code, hidden-label accuracy."""

__version__ = "0.1.0"
