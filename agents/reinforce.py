"""REINFORCE: the policy module and its loss, with what the loss needs (discounted returns, advantage
normalisation, input statistics). Tensors and statistics in, tensors out: no environment, no file, no
process group (``agents.distributed`` combines statistics across processes and passes them in).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.distributions import Distribution

from agents.config import LOG_STD_RANGE, NORMALIZATIONS, Normalization
from agents.network import head_for, mlp


class Moments(NamedTuple):
    """Count, mean and variance of a set of values (per feature, or per group), in double precision."""

    count: torch.Tensor
    mean: torch.Tensor
    var: torch.Tensor

    @classmethod
    def of(cls, values: torch.Tensor) -> Moments:
        """The moments of ``values`` along their first dimension, centred before squaring."""
        values = values.double()
        count = torch.tensor(float(values.shape[0]), dtype=torch.float64)
        mean = values.sum(0) / count
        return cls(count, mean, ((values - mean) ** 2).sum(0) / count)

    def merge(self, other: Moments) -> Moments:
        """The moments of both sets together (Chan et al.'s parallel update); not both empty."""
        total = self.count + other.count
        delta = other.mean - self.mean
        var = (self.var * self.count + other.var * other.count + delta**2 * self.count * other.count / total) / total
        return Moments(total, self.mean + delta * other.count / total, var)


def group_moments(values: torch.Tensor, group: torch.Tensor | None = None) -> Moments:
    """The moments of the 1-D ``values`` in each group (``group``: an index from 0 per value; by
    default one group), each of shape ``(groups,)``."""
    values = values.double()
    group = torch.zeros(values.shape, dtype=torch.long) if group is None else group
    count = torch.bincount(group, minlength=1).double()
    mean = torch.bincount(group, values, minlength=1) / count
    return Moments(count, mean, torch.bincount(group, (values - mean[group]) ** 2, minlength=1) / count)


class ObservationNormalizer(nn.Module):
    """Centres and scales observations by their running mean and standard deviation.

    The statistics are buffers (saved with the policy) and change only when ``update`` is called, so
    the policy is a fixed function between updates: the log-probabilities at update time are the ones
    the actions were sampled with.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("var", torch.ones(dim, dtype=torch.float64))
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return (observations - self.shift) * self.scale

    @torch.no_grad()
    def update(self, batch: Moments, preserve: Sequence[nn.Linear] = ()) -> None:
        """Merge a batch's moments into the running ones. Each layer in ``preserve`` (the first layer of
        a network fed by this normaliser) absorbs the change of shift and scale, so that its network
        computes the same function as before."""
        if batch.count == 0:
            return
        old_shift, old_scale = self.shift.clone(), self.scale.clone()
        merged = Moments(self.count, self.mean, self.var).merge(batch)
        self.var.copy_(merged.var)
        self.mean.copy_(merged.mean)
        self.count.copy_(merged.count)
        self.shift.copy_(self.mean)
        # a feature that never varies (so far) is only centred, not blown up
        self.scale.copy_(torch.where(self.var > 1e-8, self.var.rsqrt(), torch.ones_like(self.var)))
        for layer in preserve:
            layer.bias.add_(layer.weight @ (old_scale * (self.shift - old_shift)))
            layer.weight.mul_(old_scale / self.scale)


class Policy(nn.Module):
    """An MLP from flat observations to a distribution over actions.

    Its layers and head are described in ``agents.network``. Discrete actions (``n_actions``): two use the
    seed notebook's head, one logit and a Bernoulli on "action 1" (with one hidden layer of 16 units on
    CartPole that is its 97 parameters); more use a Categorical head. Continuous actions (``action_dim``): a
    diagonal Gaussian whose mean is the MLP's output and whose log standard deviation is a learnt vector, the
    same for every state, clamped to ``LOG_STD_RANGE``.

    :param obs_dim: width of the flat input.
    :param n_actions: number of discrete actions (>= 2), or None for continuous actions.
    :param hidden_sizes: units of each hidden layer.
    :param activation: a name in ``agents.network.ACTIVATIONS``.
    :param normalize_observations: pass the inputs through an ``ObservationNormalizer`` first.
    :param action_dim: size of a continuous action, or None for discrete actions.
    :param log_std_init: the initial log standard deviation (continuous actions).
    """

    def __init__(
        self,
        obs_dim: int,
        n_actions: int | None = None,
        hidden_sizes: Sequence[int] = (16,),
        activation: str = "elu",
        normalize_observations: bool = False,
        action_dim: int | None = None,
        log_std_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.head = head_for(n_actions, action_dim)
        self.continuous = action_dim is not None
        self.activation = activation
        self.net = mlp(obs_dim, self.head.outputs, hidden_sizes, activation)
        self.normalizer = ObservationNormalizer(obs_dim) if normalize_observations else nn.Identity()
        if self.continuous:
            self.log_std = nn.Parameter(torch.full((action_dim,), float(log_std_init)))

    def std(self) -> torch.Tensor:
        return self.log_std.clamp(*LOG_STD_RANGE).exp()

    def forward(self, observations: torch.Tensor) -> Distribution:
        out = self.net(self.normalizer(observations))
        return self.head.distribution(out, self.std() if self.continuous else None)

    def update_normalizer(self, observations: torch.Tensor | Moments, preserve: Sequence[nn.Linear] = ()) -> None:
        """Refresh the input statistics with a batch of observations (or its moments) without changing
        the policy, nor the networks whose first layers are in ``preserve``."""
        batch = observations if isinstance(observations, Moments) else Moments.of(observations)
        self.normalizer.update(batch, [self.net[0], *preserve])


ArrayLike = torch.Tensor | np.ndarray | Sequence[float]


def discounted_returns(
    rewards: ArrayLike, gamma: float, ends: ArrayLike | None = None, tails: ArrayLike | None = None
) -> torch.Tensor:
    """Reward-to-go ``G_t = r_t + gamma * G_{t+1}``, restarted after every step flagged in ``ends``.

    :param rewards: ``(T,)`` for one episode or ``(T, N)`` for N time-major streams (a tensor, an array
        or a list).
    :param gamma: the discount factor.
    :param ends: the last step of each episode, terminated or truncated alike (same shape, bool); without
        it each column is one episode.
    :param tails: the value of what follows each end (same shape): a bootstrap for a truncated episode, 0
        for a terminated one. Without it what follows an end is worth nothing: a Monte-Carlo return treats
        a truncated episode as complete.
    :return: the returns, of the shape of ``rewards``, as a float tensor (of ``rewards``' float type when it
        has one).
    """
    rewards = torch.as_tensor(np.asarray(rewards) if isinstance(rewards, Sequence) else rewards)
    r = rewards.detach().cpu().numpy().astype(np.float64)
    done = np.zeros_like(r, dtype=bool) if ends is None else torch.as_tensor(ends).detach().cpu().numpy()
    tail = np.zeros_like(r) if tails is None else torch.as_tensor(tails).detach().cpu().numpy().astype(np.float64)
    returns = np.empty_like(r)
    running = np.zeros(r.shape[1:])  # one per stream (r[0] would fail on an empty sequence)
    for t in range(len(r) - 1, -1, -1):
        running = r[t] + gamma * np.where(done[t], tail[t], running)
        returns[t] = running
    return torch.as_tensor(returns, dtype=rewards.dtype if rewards.is_floating_point() else torch.float32)


def normalize_advantages(
    advantages: torch.Tensor,
    valid: torch.Tensor,
    mode: Normalization = "batch",
    ids: torch.Tensor | None = None,
    batch_moments: Moments | None = None,
) -> torch.Tensor:
    """Centre and scale ``advantages`` over the ``valid`` steps.

    Where there is nothing to scale by (fewer than two steps, or a standard deviation of zero up to
    rounding) the values are only centred, never divided: one-step episodes and constant returns give
    zero advantages, not NaN.

    :param advantages: the advantage of every step.
    :param valid: the steps to normalise (same shape, bool); the others come back as zero.
    :param mode: over all the valid steps together (``"batch"``), each episode on its own (``"episode"``,
        the seed notebook's), or not at all (``"none"``).
    :param ids: the steps' episode ids (same shape), needed by ``"episode"``.
    :param batch_moments: moments that replace the valid steps' own in ``"batch"`` mode (for example the
        moments of several processes' batches together); ignored by the other modes.
    :return: the normalised advantages, of the shape and dtype of ``advantages``.
    """
    if mode not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {mode!r}: choose one of {', '.join(NORMALIZATIONS)}")
    out = torch.zeros_like(advantages)
    values = advantages[valid].double()
    if mode == "none" or (mode == "episode" and values.numel() == 0):
        out[valid] = values.to(advantages.dtype)
        return out
    if mode == "batch":
        group = torch.zeros(values.shape, dtype=torch.long)
    elif ids is None:
        raise ValueError("per-episode normalization needs the episode ids of the steps")
    else:
        group = torch.unique(ids[valid], return_inverse=True)[1]
    moments = batch_moments if mode == "batch" and batch_moments is not None else group_moments(values, group)
    std = moments.var.sqrt()
    scalable = (moments.count >= 2) & (std > 1e-8 * moments.mean.abs().clamp(min=1.0))
    scale = torch.where(scalable, std, torch.ones_like(std))
    out[valid] = ((values - moments.mean[group]) / scale[group]).to(advantages.dtype)
    return out


def policy_gradient_loss(log_probs: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """Minus the mean over every step of the batch of advantage x log-probability of the action taken.

    Its gradient is the REINFORCE estimate without the textbook's ``gamma**t`` factor (as almost every
    implementation does): biased for ``gamma < 1``, and usually better in practice.

    :param log_probs: the log-probability of each step's action under the policy (differentiable).
    :param advantages: each step's advantage (same shape); detached, so no gradient flows into it.
    """
    return -(advantages.detach() * log_probs).mean()


def reinforce_loss(
    distribution: Distribution,
    actions: torch.Tensor,
    advantages: torch.Tensor,
    entropy_coef: float = 0.0,
    values: torch.Tensor | None = None,
    returns: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The REINFORCE loss and its named terms, each a mean over every step given.

    :param distribution: the policy's distribution over the actions of every step.
    :param actions: the actions taken, one per step, as ``distribution`` scores them.
    :param advantages: each step's advantage.
    :param entropy_coef: the weight of the entropy bonus.
    :param values: a baseline's value of each step's state; with it, ``returns`` are needed.
    :param returns: the returns ``values`` learn, one per step.
    :return: ``policy_loss``, what the policy minimises, ``policy_gradient_loss - entropy_coef * entropy``;
        ``entropy``, the policy's mean entropy; with ``values``, ``value_loss``, their mean squared error
        from ``returns``; ``loss``, the sum of the two losses, the scalar to differentiate (the networks
        share no parameter, so each gets its own term's gradient).
    """
    entropy = distribution.entropy().mean()
    policy_loss = policy_gradient_loss(distribution.log_prob(actions), advantages) - entropy_coef * entropy
    terms = {"policy_loss": policy_loss, "entropy": entropy, "loss": policy_loss}
    if values is not None:
        terms["value_loss"] = nn.functional.mse_loss(values, returns)
        terms["loss"] = policy_loss + terms["value_loss"]
    return terms
