"""The hostile corpus: small lab 2 style submissions that attack the grader.

Each builder writes an honest SimpleCNN (with really trained weights) plus an
attack, so the tests can compare the grade with the honest one. Attacks that
leave the model working record what happened to them in one line of the
worker's output (``HOSTILE {json}``); the tests assert on that line and on
what the grader reports, never on the attack's own claims of success.
"""
