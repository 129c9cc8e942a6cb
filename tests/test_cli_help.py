"""`autograder --help` and each command's --help: every argument says what it is and,
where it has one, its default; no reStructuredText markup reaches the terminal."""

from __future__ import annotations

import argparse

from autograder.cli import build_parser


def test_every_argument_has_a_help_text_with_its_default():
    parser = build_parser()
    assert "``" not in parser.description and parser.description.startswith("Sandboxed autograder")
    commands = parser._subparsers._group_actions[0].choices
    silent, no_default = [], []
    for name, command in commands.items():
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            label = f"{name} {'/'.join(action.option_strings) or action.dest}"
            if not action.help:
                silent.append(label)
            elif action.default not in (None, False, [], argparse.SUPPRESS) and "default" not in action.help:
                no_default.append(label)
    assert silent == [] and no_default == []
