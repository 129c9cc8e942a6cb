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


def test_on_macos_or_windows_the_command_says_it_needs_linux_in_one_line():
    """The sandbox's Linux-only modules (fcntl, prctl) are imported with the grader: on Windows,
    without the entry point's check, `autograder` dies of a ModuleNotFoundError traceback."""
    import subprocess
    import sys

    no_fcntl = "import sys; sys.modules['fcntl'] = None; sys.platform = 'win32'\n"
    control = subprocess.run(
        [sys.executable, "-c", no_fcntl + "import autograder.cli"], capture_output=True, text=True
    )
    assert control.returncode == 1 and "ModuleNotFoundError" in control.stderr  # a traceback
    done = subprocess.run(
        [sys.executable, "-c", no_fcntl + "from autograder.entry import main; sys.exit(main(['--help']))"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        "autograder: the autograder needs Linux (this is win32): it runs code with Linux's process "
        "controls; run it on a Linux machine, Colab or Kaggle\n"
    )
    in_python = subprocess.run(
        [sys.executable, "-c", no_fcntl + "import autograder; autograder.check('lab')"],
        capture_output=True,
        text=True,
    )
    assert in_python.stderr.strip().endswith("RuntimeError: " + done.stderr.split(": ", 1)[1].strip())


def test_the_installed_command_runs_the_cli_on_linux(capsys):
    import pytest

    from autograder.entry import main

    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0 and "Sandboxed autograder" in capsys.readouterr().out
