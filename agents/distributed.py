"""Data-parallel training with ``torch.distributed`` (processes started by ``torchrun``): which worker
this process is, and how the workers combine their values. Without torchrun there is one worker and
nothing to combine, and nothing distributed is initialised."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


def world_size() -> int:
    """How many processes share each update (``torch.distributed``, e.g. under ``torchrun``)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def all_sum(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` added up over the processes that share each update (in place); with one, itself."""
    if world_size() > 1:
        dist.all_reduce(tensor)
    return tensor


@dataclass(frozen=True)
class Workers:
    """This process's place among the workers ``torchrun`` started (without torchrun: 0 of 1)."""

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
        return self.rank == 0

    @property
    def launcher(self) -> str:
        """How to start these workers again (a resumed run should have as many as the run had)."""
        return "python" if self.size == 1 else f"torchrun [the same {self.size} workers]"

    def seed_keys(self) -> tuple[int, ...]:
        """Extra keys for the random streams, so that each worker plays its own episodes; none for
        one worker, whose streams stay those of a plain run."""
        return () if self.size == 1 else (self.rank,)

    def everyone(self, value: Any) -> list[Any]:
        """Every worker's ``value``, in rank order, on every worker."""
        if self.size == 1:
            return [value]
        values: list[Any] = [None] * self.size
        dist.all_gather_object(values, value)
        return values

    def gather(self, values: np.ndarray) -> np.ndarray:
        """Every worker's ``values``, concatenated, on every worker."""
        return values if self.size == 1 else np.concatenate(self.everyone(values))


ALONE = Workers()  # a plain run's only worker
