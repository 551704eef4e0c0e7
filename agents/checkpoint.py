"""Checkpoint files: written atomically, read without ever running code from them."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or does not fit what it is loaded for."""


def save_atomically(state: dict[str, Any], path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, flushed and synced, then renamed over
    ``path``: a crash at any point leaves either the old file or the new one, never half of one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            torch.save(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_safely(path: str | os.PathLike, expected: str = "a checkpoint file") -> Any:
    """``torch.load(weights_only=True)``, which never runs code from the file, with one-line errors.

    :param path: the file to read.
    :param expected: what the caller reads, named in the error when ``path`` is a folder or nothing.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder: give the path of {expected}")
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: give the path of {expected}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # an untrusted file can fail the unpickler in many ways; all mean "unreadable"
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"{path} is not a readable checkpoint (corrupt, truncated or unsafe: {reason[:100]})"
        ) from None
