"""What the benchmark scripts share."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent  # the project's folder
TRAIN_PY = str(ROOT / "train.py")


def train_command(workers: int) -> list[str]:
    """The command that runs train.py: this Python, or torchrun's module with ``workers`` processes (as the
    ``torchrun`` command runs it) when there are several."""
    if workers == 1:
        return [sys.executable, TRAIN_PY]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={workers}", TRAIN_PY]


def worker_share(config: dict, workers: int) -> dict[str, int]:
    """Each of ``workers`` torchrun processes' share of a run's batch (``config``'s ``num_envs`` and
    ``episodes_per_update``), so that an update learns from as many episodes as under one process; a
    one-line ``ValueError`` unless ``workers`` divides both."""
    batch = {name: config[name] for name in ("num_envs", "episodes_per_update")}
    if any(value % workers for value in batch.values()):
        shown = " and ".join(f"{name} {value}" for name, value in batch.items())
        raise ValueError(f"--workers {workers} does not divide {config['env']}'s {shown}: give a divisor of both")
    return {name: value // workers for name, value in batch.items()}


def split_settings(argv: list[str]) -> tuple[list[str], list[str]]:
    """The script's own arguments, and the train.py settings given after ``--``."""
    if "--" not in argv:
        return argv, []
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1 :]


MOST_SEEDS = 10_000  # far beyond any benchmark here, far below what a list of them costs


def parse_seeds(text: str) -> list[int]:
    """``1-3`` or ``1,3,5`` (or both, ``1-3,7``) as a list of seeds; a one-line ``ValueError`` otherwise."""
    try:
        parts = [part.partition("-") for part in text.split(",")]
        ranges = [range(int(first), int(last or first) + 1) for first, _, last in parts]
    except ValueError:
        ranges = []
    if sum(len(seeds) for seeds in ranges) > MOST_SEEDS:  # counted before listed: 1-10000000000 would fill memory
        raise ValueError(f"{text!r} names more than {MOST_SEEDS:,} seeds: give fewer")
    seeds = [seed for seeds in ranges for seed in seeds]
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ValueError(f"bad seeds {text!r}: give e.g. 1-3 or 1,3,5 (distinct seeds from 0)")
    return seeds


def seed_list(seeds: list[int]) -> str:
    """``parse_seeds``'s inverse, as short as it goes: [1, 2, 3, 5] as ``1-3,5``; ``-`` for no seed."""
    runs: list[list[int]] = []  # consecutive seeds
    for seed in sorted(seeds):
        if runs and seed == runs[-1][-1] + 1:
            runs[-1].append(seed)
        else:
            runs.append([seed])
    return ",".join(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs) or "-"


class BadFile(ValueError):
    """A file a benchmark reads back is not what it wrote (truncated, hand-edited): one line naming it and the fix."""


def read_json(path: Path, what: str, fix: str, check: Callable[[Any], str | None] | None = None) -> Any:
    """The JSON in ``path``, which must be ``what``: a ``BadFile`` naming the file, what is wrong and the ``fix``
    if it is not readable JSON, or if ``check`` (the data -> what is wrong in it, or None) finds a fault."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:  # ValueError: not JSON, or not UTF-8
        raise BadFile(f"{path} is not {what} ({type(error).__name__}: {error}): {fix}") from None
    fault = check(data) if check is not None else None
    if fault is not None:
        raise BadFile(f"{path} is not {what} ({fault}): {fix}")
    return data


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def output_fault(path: str, flag: str) -> str | None:
    """Why a file cannot be written at ``path`` (``flag`` names it), checked before hours of training, or None."""
    target = Path(path)
    if target.exists() and not target.is_file():
        return f"{flag} {path} is not a file: give a file's path"
    if not target.parent.is_dir():
        return f"{flag} {path}: no folder {target.parent}: create it, or give another path"
    if not os.access(target.parent, os.W_OK):
        return f"{flag} {path}: the folder {target.parent} is not writable: give another path"
    return None
