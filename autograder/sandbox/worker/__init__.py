"""Code that runs *inside* the sandbox, next to student code.

Everything here is importable without the rest of the ``autograder`` package:
the sandbox only sees this folder, the submission copy and the Python
environment. Nothing it returns is trusted by the grader.
"""
