"""The processes of one run under ``torchrun``: which one this is, and how they share decisions and
episode statistics. Without torchrun there is one worker, and nothing distributed is initialised."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from training.command_line import command


class WorkerLost(Exception):
    """Under torchrun, a collective with the other workers failed (one of them died, or its connection): the
    run cannot go on; the message is one line naming the error and the checkpoint to resume from."""


@dataclass(frozen=True)
class Workers:
    """This process's place among the workers torchrun started (without torchrun: 0 of 1)."""

    rank: int = 0
    size: int = 1

    @classmethod
    def from_environment(cls) -> Workers:
        """The workers torchrun describes in ``WORLD_SIZE``/``RANK``, their process group joined."""
        size = int(os.environ.get("WORLD_SIZE", "1"))
        if size == 1:
            return cls()
        # torch.optim imports torch._dynamo, which keeps a reference to a process group that exists at
        # that moment; destroy_process_group then cannot stop gloo's threads, and one of them still
        # freeing a finished collective aborts the interpreter at exit (SIGABRT). So: import it first.
        import torch._dynamo  # noqa: F401

        if not dist.is_initialized():  # gloo even where CUDA exists: every tensor here lives on the CPU
            dist.init_process_group("gloo")
        return cls(dist.get_rank(), size)

    def close(self) -> None:
        """Leave the process group once every worker has finished its collectives."""
        if self.size > 1:
            dist.barrier()
            dist.destroy_process_group()

    @property
    def main(self) -> bool:
        """Whether this is the worker that logs, evaluates and writes (rank 0)."""
        return self.rank == 0

    def resume_command(self, run_dir: Path) -> str:
        """The command that continues the run in ``run_dir`` with as many workers (a resumed run needs as many
        as the run had), started as this one was."""
        launch = command(None if self.size == 1 else f"torchrun [the same {self.size} workers]")
        return f"{launch} --resume {shlex.quote(str(run_dir))}"

    def first(self, value: Any) -> Any:
        """The first value that is not None among every worker's, in rank order, on every worker: a
        decision (an error, a reason to stop) that any worker may take and all must follow."""
        if self.size == 1:
            return value
        values: list[Any] = [None] * self.size
        dist.all_gather_object(values, value)
        return next((v for v in values if v is not None), None)

    def raise_first(self, error: str | None) -> None:
        """Raise the first worker's error as a ``ValueError`` on every worker (a worker alone must not go on)."""
        error = self.first(error)
        if error is not None:
            raise ValueError(error)

    def concatenate(self, values: np.ndarray) -> np.ndarray:
        """Every worker's ``values``, concatenated in rank order, on every worker."""
        if self.size == 1:
            return values
        parts: list[Any] = [None] * self.size
        dist.all_gather_object(parts, values)
        return np.concatenate(parts)

    def sum(self, values: list[int]) -> list[int]:
        """Counts added up over the workers."""
        if self.size == 1:
            return values
        total = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(total)
        return [int(x) for x in total]
