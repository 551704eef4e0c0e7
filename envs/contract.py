"""When an environment's own code fails: ``EnvironmentFailed``, one line naming the call, the error and the line
of the environment's code that raised it, instead of a traceback through the vector environment and the loop."""

from __future__ import annotations

import sysconfig
import traceback
from pathlib import Path

# Files of the project and of installed packages (Gymnasium's vector environments, numpy): not the environment's
# own code, which is what a failure should point at.
_NOT_THE_ENVIRONMENT = (
    *(str(Path(__file__).resolve().parent.parent / package) for package in ("agents", "envs", "training")),
    sysconfig.get_paths()["purelib"],
    sysconfig.get_paths()["platlib"],
    sysconfig.get_paths()["stdlib"],
)


def first_line(error: BaseException, width: int | None = 200) -> str:
    """The first line of ``error``'s message, at most ``width`` characters, or all of it for ``None`` ("" for an
    empty message): what a one-line report of an error raised by someone else's code quotes."""
    return (str(error).strip().splitlines() or [""])[0][:width]


class EnvironmentFailed(Exception):
    """The environment raised (or exited) in ``reset``, ``step`` or its construction; ``__cause__`` is its error.
    The message is one line: what raised, where, and what to do."""


def environment_failed(call: str, error: BaseException) -> EnvironmentFailed:
    """The ``EnvironmentFailed`` of ``error``, raised by the environment's ``call`` (``"step"``, ``"reset"``)."""
    reason = first_line(error)
    frames = traceback.extract_tb(error.__traceback__)
    own = [frame for frame in frames if not frame.filename.startswith(_NOT_THE_ENVIRONMENT)]
    at = f" at {own[-1].filename}:{own[-1].lineno}, in {own[-1].name}" if own else ""
    return EnvironmentFailed(
        f"the environment's {call} raised {type(error).__name__}{': ' + reason if reason else ''}{at}: fix the "
        "environment (gymnasium.utils.env_checker.check_env tests one against Gymnasium's rules)"
    )
