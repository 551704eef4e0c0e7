"""The update's guards. Against non-finite weights: a change to the networks (an optimizer step, a refresh of
the input statistics) is applied, and undone if it leaves a NaN or an infinity in a parameter, a buffer or
an optimizer's state. Against steps too large (``target_kl``): a step that moves the policy further from
the one that sampled the batch than the target is scaled back along its direction.

A finite loss and gradient do not make a finite step: a large enough learning rate, or observations near
float32's limit folded into the first layer by the input normaliser, overflow all the same. The networks
are tiny, so copying them before each change costs little next to the forward and backward passes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.distributions import Distribution, kl_divergence

if TYPE_CHECKING:
    from agents.distributed import Combiner

SMALLEST_SCALE = 2.0**-10  # of a step scaled back for the KL target; below it the step is undone


def _tensors(modules: Sequence[nn.Module], optimizers: Sequence[torch.optim.Optimizer]) -> Iterator[torch.Tensor]:
    """Every parameter and buffer of ``modules`` and every tensor of the ``optimizers``' states."""
    for module in modules:
        yield from module.parameters()
        yield from module.buffers()
    for optimizer in optimizers:
        for state in optimizer.state.values():
            yield from (value for value in state.values() if isinstance(value, torch.Tensor))


@torch.no_grad()
def _flat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """All the values of ``tensors`` in one vector (of their widest float type): one copy, one check."""
    return torch.cat([t.reshape(-1) for t in tensors]) if tensors else torch.zeros(0)


def _all_finite(tensors: Sequence[torch.Tensor]) -> bool:
    return bool(torch.isfinite(_flat(tensors)).all())


class Snapshot:
    """The values of the parameters and buffers of ``modules`` and of the ``optimizers``' states, to put
    back. One flat copy: the networks are small, and per-tensor copies cost more in calls than in bytes."""

    def __init__(self, modules: Sequence[nn.Module], optimizers: Sequence[torch.optim.Optimizer]) -> None:
        self.tensors = list(_tensors(modules, optimizers))
        self.values = _flat(self.tensors)
        # which state each parameter had (the tensors themselves; their values are in ``values``)
        self.states = [(opt, {p: dict(state) for p, state in opt.state.items()}) for opt in optimizers]

    @torch.no_grad()
    def restore(self) -> None:
        """Put every copied value back, and drop optimizer states created since."""
        for optimizer, states in self.states:
            optimizer.state.clear()  # a first step creates the states: none must remain
            optimizer.state.update(states)
        start = 0
        for tensor in self.tensors:  # in place: counted by the policy's version, so the numpy copy follows
            tensor.copy_(self.values[start : start + tensor.numel()].view(tensor.shape))
            start += tensor.numel()


def apply_or_undo(
    change: Callable[[], None], modules: Sequence[nn.Module], optimizers: Sequence[torch.optim.Optimizer] = ()
) -> bool:
    """Run ``change``; if it leaves a non-finite value in ``modules`` or the ``optimizers``' states, put them
    back as they were. Returns whether the change was kept. Processes that share an update hold the same
    values, so they all make the same decision without communicating.

    :param change: changes the modules' tensors and the optimizers' states in place.
    :param modules: the networks it may change.
    :param optimizers: the optimizers whose states it may change.
    """
    snapshot = Snapshot(modules, optimizers)
    try:
        change()
    except RuntimeError as error:
        # Adam turns lr / (1 - beta1^t) into a float32 step size, and refuses one beyond float32's range with
        # this error, half-way through its parameters: that is an overflow like any other
        if "without overflow" not in str(error):
            raise
        snapshot.restore()
        return False
    if _all_finite(list(_tensors(modules, optimizers))):
        return True
    snapshot.restore()
    return False


def step_or_undo(modules: Sequence[nn.Module], optimizers: Sequence[torch.optim.Optimizer]) -> bool:
    """Step every optimizer, all undone if that leaves a non-finite value (see ``apply_or_undo``); returns
    whether the steps were kept."""

    def step() -> None:
        for optimizer in optimizers:
            optimizer.step()

    return apply_or_undo(step, modules, optimizers)


@torch.no_grad()
def limit_kl(
    policy: nn.Module,
    sampling: Distribution,
    inputs: torch.Tensor,
    before: Sequence[torch.Tensor],
    target: float,
    combine: Combiner,
) -> tuple[float, bool]:
    """Scale the step the policy's parameters just took from ``before`` back along its direction, halving it
    until the mean KL divergence from ``sampling`` (the policy that sampled the batch, at ``inputs``) to the
    policy is at most ``target``; below ``SMALLEST_SCALE`` of the step, undo it. Returns that KL divergence
    and whether the step was scaled back (a backtracking line search on the step Adam chose, as TRPO's on its
    natural gradient)."""
    parameters = list(policy.parameters())
    after = [p.detach().clone() for p in parameters]

    def divergence() -> float:
        per_state = kl_divergence(sampling, policy(inputs))
        total = combine.sum(torch.stack([per_state.double().sum(), torch.tensor(len(per_state), dtype=torch.float64)]))
        return float(total[0] / total[1])

    kl, scale = divergence(), 1.0
    while kl > target and scale > 0:
        scale = scale / 2 if scale / 2 >= SMALLEST_SCALE else 0.0
        for parameter, start, end in zip(parameters, before, after):
            parameter.copy_(start + scale * (end - start))
        kl = divergence()
    return kl, scale < 1.0
