"""REINFORCE: the policy network, discounted returns, advantage normalisation and the loss.

Pure functions and modules only: no environment, no file I/O. Batches are laid out time-major as
``(T, N)`` grids, one column per environment stream, so that the vector-environment rollout needs no
reshuffling; a column may hold several episodes back to back, separated by ``ends`` flags, and
``valid`` marks the steps that are real transitions of complete episodes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.distributions import Bernoulli, Categorical, Distribution, Independent, Normal

Normalization = Literal["batch", "episode", "none"]
NORMALIZATIONS: tuple[str, ...] = ("batch", "episode", "none")


def local_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The default of the ``all_sum`` arguments below: one process, nothing to add up."""
    return tensor


def moments(
    values: torch.Tensor, all_sum: Callable[[torch.Tensor], torch.Tensor] = local_sum
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Count, mean and variance of ``values`` along their first dimension, over every process's rows
    (``all_sum``), in double precision and centred before squaring."""
    values = values.double()
    count = all_sum(torch.tensor(float(values.shape[0]), dtype=torch.float64))
    mean = all_sum(values.sum(0)) / count
    return count, mean, all_sum(((values - mean) ** 2).sum(0)) / count


def _numpy_gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(np.float32(np.sqrt(2.0 / np.pi)) * (x + np.float32(0.044715) * x**3)))


# Each activation in torch (training) and in numpy (acting, see ``Actor``); GELU is the tanh form.
ACTIVATIONS: dict[str, tuple[Callable[[], nn.Module], Callable[[np.ndarray], np.ndarray]]] = {
    "elu": (nn.ELU, lambda x: np.where(x > 0, x, np.expm1(x))),
    "relu": (nn.ReLU, lambda x: np.maximum(x, 0)),
    "tanh": (nn.Tanh, np.tanh),
    "gelu": (lambda: nn.GELU(approximate="tanh"), _numpy_gelu),
    "silu": (nn.SiLU, lambda x: x / (1 + np.exp(-x))),
}


class BinaryBernoulli(Bernoulli):
    """Bernoulli over the integer actions {0, 1}: samples and modes are int64, like Categorical's."""

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:  # noqa: B008 (immutable)
        return super().sample(sample_shape).long()

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return super().log_prob(value.to(self.logits.dtype))

    @property
    def mode(self) -> torch.Tensor:
        return (self.logits > 0).long()


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
    def update(
        self,
        observations: torch.Tensor,
        preserve: Sequence[nn.Linear] = (),
        all_sum: Callable[[torch.Tensor], torch.Tensor] = local_sum,
    ) -> None:
        """Merge a batch's statistics into the running ones (Chan et al.'s parallel update).

        Each layer in ``preserve`` (the first layer of a network fed by this normaliser) absorbs the
        change of shift and scale, so that its network computes the same function as before.
        ``all_sum`` adds a tensor up over the processes that share the batch (``torch.distributed``).
        """
        n, batch_mean, batch_var = moments(observations.reshape(-1, self.mean.numel()), all_sum)
        if n == 0:
            return
        old_shift, old_scale = self.shift.clone(), self.scale.clone()
        total = self.count + n
        delta = batch_mean - self.mean
        self.var.copy_((self.var * self.count + batch_var * n + delta**2 * self.count * n / total) / total)
        self.mean.add_(delta * n / total)
        self.count.copy_(total)
        self.shift.copy_(self.mean)
        # a feature that never varies (so far) is only centred, not blown up
        self.scale.copy_(torch.where(self.var > 1e-8, self.var.rsqrt(), torch.ones_like(self.var)))
        for layer in preserve:
            layer.bias.add_(layer.weight @ (old_scale * (self.shift - old_shift)))
            layer.weight.mul_(old_scale / self.scale)


def mlp(in_features: int, out_features: int, hidden_sizes: Sequence[int], activation: str) -> nn.Sequential:
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")
    layers: list[nn.Module] = []
    for size in hidden_sizes:
        layers += [nn.Linear(in_features, size), ACTIVATIONS[activation][0]()]
        in_features = size
    return nn.Sequential(*layers, nn.Linear(in_features, out_features))


LOG_STD_RANGE = (-5.0, 2.0)  # std from 0.007 to 7.4: wide enough to explore, never 0 or inf


class Policy(nn.Module):
    """An MLP from flat observations to a distribution over actions.

    Discrete actions (``n_actions``): two use the seed notebook's head, one logit and a Bernoulli on
    "action 1" (with one hidden layer of 16 units on CartPole that is its 97 parameters); more use a
    Categorical head. Continuous actions (``action_dim``): a diagonal Gaussian whose mean is the MLP's
    output and whose log standard deviation is a learnt vector, the same for every state, clamped to
    ``LOG_STD_RANGE``. With ``normalize_observations`` the inputs first pass an ``ObservationNormalizer``.
    """

    def __init__(
        self,
        obs_dim: int,
        n_actions: int | None = None,
        hidden_sizes: Sequence[int] = (16,),
        activation: str = "elu",
        normalize_observations: bool = False,
        action_dim: int | None = None,
    ) -> None:
        super().__init__()
        if (n_actions is None) == (action_dim is None):
            raise ValueError("a policy needs either n_actions (discrete) or action_dim (continuous)")
        if n_actions is not None and n_actions < 2:
            raise ValueError(f"a policy needs at least 2 actions, got {n_actions}")
        self.continuous = action_dim is not None
        self.n_actions = n_actions
        self.activation = activation
        outputs = action_dim if self.continuous else 1 if n_actions == 2 else n_actions
        self.net = mlp(obs_dim, outputs, hidden_sizes, activation)
        self.normalizer = ObservationNormalizer(obs_dim) if normalize_observations else nn.Identity()
        if self.continuous:
            self.log_std = nn.Parameter(torch.zeros(action_dim))

    def std(self) -> torch.Tensor:
        return self.log_std.clamp(*LOG_STD_RANGE).exp()

    def forward(self, observations: torch.Tensor) -> Distribution:
        # no argument validation: it costs time, and a non-finite batch must reach the update's guard
        out = self.net(self.normalizer(observations))
        if self.continuous:
            normal = Normal(out, self.std().expand_as(out), validate_args=False)
            return Independent(normal, 1, validate_args=False)
        if self.n_actions == 2:
            return BinaryBernoulli(logits=out.squeeze(-1), validate_args=False)
        return Categorical(logits=out, validate_args=False)

    def update_normalizer(
        self,
        observations: torch.Tensor,
        also: Sequence[nn.Linear] = (),
        all_sum: Callable[[torch.Tensor], torch.Tensor] = local_sum,
    ) -> None:
        """Refresh the input statistics without changing the policy (nor the networks whose first
        layers are in ``also``): see ``ObservationNormalizer.update``."""
        self.normalizer.update(observations, [self.net[0], *also], all_sum)


class Actor:
    """A numpy snapshot of a ``Policy`` that samples actions, for the environment steps.

    Acting runs once per step of a numpy simulator; torch's per-call overhead, and the cost of
    switching between torch and numpy code at every step, make a torch forward several times slower
    than the simulator there. The snapshot computes the same function (to float32 rounding) and must
    be taken again whenever the policy changes (``ReinforceAgent`` does so).
    """

    def __init__(self, policy: Policy) -> None:
        linears = [m for m in policy.net if isinstance(m, nn.Linear)]
        self.layers = [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in linears]
        if isinstance(policy.normalizer, ObservationNormalizer):
            # fold (x - shift) * scale into the first layer: one matmul instead of three operations
            shift, scale = policy.normalizer.shift.numpy(), policy.normalizer.scale.numpy()
            weight, bias = self.layers[0]
            self.layers[0] = (weight * scale[:, None], bias - (shift * scale) @ weight)
        self.activation = ACTIVATIONS[policy.activation][1]
        self.n_actions = policy.n_actions
        self.std = policy.std().detach().numpy().copy() if policy.continuous else None

    def logits(self, observations: np.ndarray) -> np.ndarray:
        """The network's output: logits, or the Gaussian's mean for continuous actions."""
        x = np.asarray(observations, dtype=np.float32)
        for weight, bias in self.layers[:-1]:
            x = self.activation(x @ weight + bias)
        weight, bias = self.layers[-1]
        return x @ weight + bias

    def __call__(self, observations: np.ndarray, deterministic: bool, rng: np.random.Generator) -> np.ndarray:
        """Actions for a ``(B, obs_dim)`` batch: sampled with ``rng``, or the most likely ones."""
        logits = self.logits(observations)
        if self.std is not None:
            if deterministic:
                return logits
            return logits + self.std * rng.standard_normal(logits.shape, dtype=np.float32)
        if self.n_actions == 2:
            logits = logits[:, 0]
            if deterministic:
                return (logits > 0).astype(np.int64)
            # u < sigmoid(logit), with the sigmoid in its tanh form, which cannot overflow
            return (rng.random(len(logits)) < 0.5 + 0.5 * np.tanh(0.5 * logits)).astype(np.int64)
        if deterministic:
            return logits.argmax(-1)
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        cdf = np.cumsum(probs, -1)
        drawn = (cdf < rng.random((len(cdf), 1)) * cdf[:, -1:]).sum(-1)
        return np.minimum(drawn, self.n_actions - 1)


def discounted_returns(rewards: torch.Tensor, gamma: float, ends: torch.Tensor | None = None) -> torch.Tensor:
    """Reward-to-go ``G_t = r_t + gamma * G_{t+1}``, restarted after every step flagged in ``ends``.

    ``rewards`` is ``(T,)`` for one episode or ``(T, N)`` for N time-major streams; ``ends`` (same
    shape, bool) marks the last step of each episode, terminated or truncated alike: a Monte-Carlo
    return treats a truncated episode as complete. Without ``ends`` each column is one episode.
    """
    r = rewards.detach().cpu().numpy().astype(np.float64)
    done = np.zeros_like(r, dtype=bool) if ends is None else ends.detach().cpu().numpy()
    returns = np.empty_like(r)
    running = np.zeros_like(r[0]) if r.ndim > 1 else 0.0
    for t in range(len(r) - 1, -1, -1):
        running = r[t] + gamma * running * ~done[t]
        returns[t] = running
    return torch.as_tensor(returns, dtype=rewards.dtype if rewards.is_floating_point() else torch.float32)


def episode_ids(ends: torch.Tensor) -> torch.Tensor:
    """A distinct integer for every episode of a ``(T, N)`` grid (episodes end at ``ends``)."""
    n_streams = ends.shape[1]
    finished_before = ends.long().cumsum(0) - ends.long()
    return finished_before * n_streams + torch.arange(n_streams)


def normalize_advantages(
    returns: torch.Tensor,
    valid: torch.Tensor,
    mode: Normalization = "batch",
    ids: torch.Tensor | None = None,
    all_sum: Callable[[torch.Tensor], torch.Tensor] = local_sum,
) -> torch.Tensor:
    """Centre and scale ``returns`` over the ``valid`` steps: all of them together (``"batch"``), each
    episode on its own (``"episode"``, the seed notebook's; needs ``ids``), or not at all (``"none"``).

    Where there is nothing to scale by (fewer than two steps, or a standard deviation of zero up to
    rounding) the values are only centred, never divided: one-step episodes and constant returns give
    zero advantages, not NaN. Invalid steps come back as zero. In ``"batch"`` mode the statistics are
    summed with ``all_sum`` over the processes that share the batch (episodes never span processes).
    """
    if mode not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {mode!r}: choose one of {', '.join(NORMALIZATIONS)}")
    out = torch.zeros_like(returns)
    values = returns[valid].double()
    if mode == "none" or (mode == "episode" and values.numel() == 0):
        out[valid] = values.to(returns.dtype)
        return out
    if mode == "batch":
        group = torch.zeros(values.shape, dtype=torch.long)
    else:
        if ids is None:
            raise ValueError("per-episode normalization needs the episode ids of the steps")
        group = torch.unique(ids[valid], return_inverse=True)[1]
        all_sum = local_sum
    counts = all_sum(torch.bincount(group, minlength=1).double())
    means = all_sum(torch.bincount(group, values, minlength=1)) / counts
    centred = values - means[group]
    stds = (all_sum(torch.bincount(group, centred**2, minlength=1)) / counts).sqrt()
    scalable = (counts >= 2) & (stds > 1e-8 * means.abs().clamp(min=1.0))
    scale = torch.where(scalable, stds, torch.ones_like(stds))
    out[valid] = (centred / scale[group]).to(returns.dtype)
    return out


def policy_gradient_loss(log_probs: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """Minus the mean over every step of the batch of advantage x log-probability of the action taken.

    Its gradient is the REINFORCE estimate without the textbook's ``gamma**t`` factor (as almost every
    implementation does): biased for ``gamma < 1``, and usually better in practice.
    """
    return -(advantages.detach() * log_probs).mean()


@dataclass
class EpisodeBatch:
    """Complete episodes in a time-major ``(T, N)`` grid; see the module docstring.

    ``terminated`` and ``truncated`` are kept apart (a truncated episode is treated as complete, but a
    bootstrapped variant would need to tell them apart).
    """

    observations: torch.Tensor  # (T, N, obs_dim) float32
    actions: torch.Tensor  # (T, N) int64 for discrete actions, (T, N, *action_shape) float32 for continuous
    rewards: torch.Tensor  # (T, N) float32
    terminated: torch.Tensor  # (T, N) bool
    truncated: torch.Tensor  # (T, N) bool
    valid: torch.Tensor  # (T, N) bool

    @property
    def ends(self) -> torch.Tensor:
        return self.terminated | self.truncated

    @property
    def num_steps(self) -> int:
        return int(self.valid.sum())

    @classmethod
    def from_episodes(
        cls,
        episodes: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
        truncated: Sequence[bool] | None = None,
    ) -> EpisodeBatch:
        """Pack episodes given as ``(observations, actions, rewards)`` sequences, one column each."""
        if not episodes:
            raise ValueError("an EpisodeBatch needs at least one episode")
        lengths = [len(rewards) for _, _, rewards in episodes]
        if min(lengths) < 1:
            raise ValueError("every episode needs at least one step")
        horizon, n = max(lengths), len(episodes)
        obs_dim = int(np.prod(np.shape(episodes[0][0])[1:]))
        observations = torch.zeros(horizon, n, obs_dim)
        first_actions = np.asarray(episodes[0][1])
        continuous = first_actions.dtype.kind == "f"
        actions = torch.zeros(horizon, n, *first_actions.shape[1:], dtype=torch.float32 if continuous else torch.long)
        rewards = torch.zeros(horizon, n)
        ends = torch.zeros(horizon, n, dtype=torch.bool)
        for i, (obs, acts, rews) in enumerate(episodes):
            length = lengths[i]
            observations[:length, i] = torch.as_tensor(np.asarray(obs, dtype=np.float32)).reshape(length, -1)
            actions[:length, i] = torch.as_tensor(np.asarray(acts, dtype=np.float32 if continuous else np.int64))
            rewards[:length, i] = torch.as_tensor(np.asarray(rews, dtype=np.float32))
            ends[length - 1, i] = True
        valid = torch.arange(horizon)[:, None] < torch.tensor(lengths)[None, :]
        was_truncated = torch.tensor(truncated if truncated is not None else [False] * n, dtype=torch.bool)
        return cls(
            observations=observations,
            actions=actions,
            rewards=rewards,
            terminated=ends & ~was_truncated,
            truncated=ends & was_truncated,
            valid=valid,
        )
