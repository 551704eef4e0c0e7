"""The command line as its user meets it: the name its messages start with, the commands they suggest (as the
program was started: the installed console command ``reinforce-train``, ``python -m train`` or
``python train.py``), and the layout of ``--help``."""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

CONSOLE_COMMAND = "reinforce-train"  # [project.scripts] in pyproject.toml
HELP_COLUMN = 27  # where each flag's help starts: one line per setting at 100 columns
HELP_WIDTH = 100  # the width of --help when no terminal gives one (piped, redirected)


def _started_as() -> tuple[bool, str]:
    """Whether the program runs under ``python``, and what follows it: ``-m train``, the script's path as it was
    given, or the console command (its name where the shell finds it by name, else its path). In any other
    program (``fit`` from Python, a benchmark), ``train.py``: the command line of the project's folder."""
    script = sys.argv[0] if sys.argv else ""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name == "train":
        return True, "-m train"
    if Path(script).stem == CONSOLE_COMMAND:  # the launcher pip writes (reinforce-train.exe on Windows)
        found = shutil.which(CONSOLE_COMMAND)
        same = found is not None and Path(found).resolve() == Path(script).resolve()
        return False, CONSOLE_COMMAND if same else shlex.quote(script)
    if Path(script).name == "train.py":
        return True, shlex.quote(script)
    return True, "train.py"


def program_name() -> str:
    """The name that starts the command line's messages: the console command's, else ``train.py``."""
    return "train.py" if _started_as()[0] else CONSOLE_COMMAND


def running_program() -> str:
    """The name of whatever program runs, for a run's own messages: ``train.py`` or ``reinforce-train`` from the
    command line, a script's name when ``fit`` is called from it, ``fit`` under ``python -c``."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return name if name and name != "-c" else "fit"


def command(torchrun: str | None = None) -> str:
    """The command that starts the program again as it was started; under ``torchrun`` (that launcher with its
    options) when given."""
    python, program = _started_as()
    if torchrun is None:
        return f"python {program}" if python else program
    return f"{torchrun} {program if python else '--no-python ' + program}"


def flag_value(value: Any) -> str:
    """A setting's value as it is typed on the command line: ``none``, ``true``, ``64 64``."""
    if value is None or isinstance(value, bool):
        return {None: "none", True: "true", False: "false"}[value]
    return " ".join(map(str, value)) if isinstance(value, tuple) else str(value)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """``--help`` with one line per flag: a boolean as ``--[no-]flag``, a flag too long for the help column
    followed on its own line by its help when both fit. Laid out for ``HELP_WIDTH`` columns unless a terminal
    (or ``COLUMNS``) gives its width; the description and epilog are kept as written."""

    def __init__(self, prog: str) -> None:
        columns = shutil.get_terminal_size((HELP_WIDTH, 24)).columns
        super().__init__(prog, max_help_position=HELP_COLUMN, width=columns - 2)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if isinstance(action, argparse.BooleanOptionalAction):
            return "--[no-]" + action.option_strings[0].removeprefix("--")
        return super()._format_action_invocation(action)

    def _split_lines(self, text: str, width: int) -> list[str]:
        # a narrower terminal wraps the help, never inside "(default: X)"
        lines = super()._split_lines(text.replace("(default: ", "(default:\0"), width)
        return [line.replace("\0", " ") for line in lines]

    def _format_action(self, action: argparse.Action) -> str:
        text = super()._format_action(action)
        lines = text.splitlines()
        if len(lines) == 2 and action.help:  # argparse put the help under the long flag: beside it if it fits
            joined = f"{lines[0]}  {lines[1].strip()}"
            if len(joined) <= self._width:
                return joined + "\n"
        return text
