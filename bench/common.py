"""What the benchmark scripts share."""

from __future__ import annotations


def split_settings(argv: list[str]) -> tuple[list[str], list[str]]:
    """The script's own arguments, and the train.py settings given after ``--``."""
    if "--" not in argv:
        return argv, []
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1 :]
