"""Combining an update across processes (``torch.distributed``, e.g. workers started by ``torchrun``):
the one place that does.

``ReinforceAgent.update(batch, distributed=True)`` opts in: each process passes its own episodes, and
the update combines what it needs here (step counts, the batch's advantage moments, the observation
moments, each network's gradient, the logged losses), so that every process takes the same step, the one
a single process would take on all the episodes. Without the opt-in nothing is combined, even when a
process group exists for other reasons.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist

from agents.reinforce import Moments


class Combiner:
    """How an update combines its values: here within one process, where there is nothing to combine."""

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` added up over the processes."""
        return tensor

    def moments(self, moments: Moments) -> Moments:
        """The moments of every process's values together."""
        return moments

    def share(self, n_steps: int) -> float:
        """This process's share of the steps of every process (the weight of its loss)."""
        return 1.0

    def gradients(self, parameters: Sequence[torch.nn.Parameter]) -> None:
        """Make each parameter's gradient the sum over the processes."""


class ProcessGroupCombiner(Combiner):
    """Combines over every process of the default ``torch.distributed`` process group, the same result
    on every process."""

    @staticmethod
    def _world_size() -> int:
        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError("a distributed update needs torch.distributed.init_process_group() first")
        return dist.get_world_size()

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        self._world_size()
        dist.all_reduce(tensor)  # in place
        return tensor

    def moments(self, moments: Moments) -> Moments:
        shape = moments.mean.shape
        packed = torch.cat([moments.count.reshape(-1), moments.mean.reshape(-1), moments.var.reshape(-1)])
        parts = [torch.empty_like(packed) for _ in range(self._world_size())]
        dist.all_gather(parts, packed)
        combined = None
        for part in parts:  # merged in rank order, so that every process gets the same floats
            count, mean, var = part.split([moments.count.numel(), shape.numel(), shape.numel()])
            moments = Moments(count.reshape(moments.count.shape), mean.reshape(shape), var.reshape(shape))
            if bool((moments.count > 0).all()):  # an empty part adds nothing (and has no mean)
                combined = moments if combined is None else combined.merge(moments)
        if combined is None:
            raise ValueError("a distributed update needs at least one step on some process")
        return combined

    def share(self, n_steps: int) -> float:
        return n_steps / self.sum(torch.tensor(float(n_steps), dtype=torch.float64)).item()

    def gradients(self, parameters: Sequence[torch.nn.Parameter]) -> None:
        """One all-reduce of the network's gradients as a single flat tensor."""
        flat = self.sum(torch.cat([p.grad.reshape(-1) for p in parameters]))
        for p, g in zip(parameters, flat.split([p.numel() for p in parameters])):
            p.grad.copy_(g.view_as(p))


LOCAL, PROCESS_GROUP = Combiner(), ProcessGroupCombiner()
