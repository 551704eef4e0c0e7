"""The policy network, described once: its layers, its activations and its heads, each with the torch form
that learns and the numpy form that acts.

``Policy`` (``agents/reinforce.py``) builds its module from this description and ``NumpyPolicy``
(``agents/numpy_policy.py``) derives the fast acting path from that module, so a new activation or head is one
entry here. Acting runs once per step of a numpy simulator, where torch's per-call overhead would make a
forward several times slower than the simulator; the numpy forms compute the same function (to float32
rounding; tested for every activation and head).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.distributions import Bernoulli, Categorical, Distribution, Independent, Normal


@dataclass(frozen=True)
class Activation:
    """A hidden activation: the torch module that learns, and the same function on numpy arrays."""

    module: Callable[[], nn.Module]
    numpy: Callable[[np.ndarray], np.ndarray]


def _gelu(x: np.ndarray) -> np.ndarray:  # the tanh form, as nn.GELU(approximate="tanh")
    return 0.5 * x * (1.0 + np.tanh(np.float32(np.sqrt(2.0 / np.pi)) * (x + np.float32(0.044715) * x**3)))


ACTIVATIONS: dict[str, Activation] = {
    "elu": Activation(nn.ELU, lambda x: np.where(x > 0, x, np.expm1(x))),
    "relu": Activation(nn.ReLU, lambda x: np.maximum(x, 0)),
    "tanh": Activation(nn.Tanh, np.tanh),
    "gelu": Activation(lambda: nn.GELU(approximate="tanh"), _gelu),
    "silu": Activation(nn.SiLU, lambda x: x / (1 + np.exp(-x))),
}


def mlp(in_features: int, out_features: int, hidden_sizes: Sequence[int], activation: str) -> nn.Sequential:
    """Linear layers of ``hidden_sizes`` units with ``activation`` between them, then a linear output."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")
    layers: list[nn.Module] = []
    for size in hidden_sizes:
        layers += [nn.Linear(in_features, size), ACTIVATIONS[activation].module()]
        in_features = size
    return nn.Sequential(*layers, nn.Linear(in_features, out_features))


def initialize_orthogonally(network: nn.Sequential, output_gain: float) -> None:
    """Orthogonal weights (gain sqrt(2) in the hidden layers, ``output_gain`` in the last) and zero biases,
    as Andrychowicz et al. 2021 ("What matters in on-policy RL") recommend."""
    linears = [m for m in network if isinstance(m, nn.Linear)]
    for layer in linears:
        nn.init.orthogonal_(layer.weight, output_gain if layer is linears[-1] else np.sqrt(2))
        nn.init.zeros_(layer.bias)


class BinaryBernoulli(Bernoulli):
    """Bernoulli over the integer actions {0, 1}: samples and modes are int64, like Categorical's."""

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:  # noqa: B008 (immutable)
        return super().sample(sample_shape).long()

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return super().log_prob(value.to(self.logits.dtype))

    @property
    def mode(self) -> torch.Tensor:
        return (self.logits > 0).long()


class Head:
    """How the network's outputs become a distribution over actions (``distribution``, for learning) and
    actions (``act``, the same distribution sampled with numpy, for acting). ``std`` is a Gaussian's standard
    deviation, None for the discrete heads. No argument validation in ``distribution``: it costs time, and a
    non-finite batch must reach the update's guard."""

    outputs: int  # the network's output units

    def distribution(self, outputs: torch.Tensor, std: torch.Tensor | None) -> Distribution:
        raise NotImplementedError

    def act(
        self, outputs: np.ndarray, std: np.ndarray | None, deterministic: bool, rng: np.random.Generator
    ) -> np.ndarray:
        """Actions for ``(B, outputs)``, as ``distribution`` holds them (indices from 0, raw Gaussian samples):
        sampled with ``rng``, or the most likely ones."""
        raise NotImplementedError


class BernoulliHead(Head):
    """Two actions from one logit (the seed notebook's sigmoid output): a Bernoulli on action 1."""

    outputs = 1

    def distribution(self, outputs: torch.Tensor, std: torch.Tensor | None) -> Distribution:
        return BinaryBernoulli(logits=outputs.squeeze(-1), validate_args=False)

    def act(
        self, outputs: np.ndarray, std: np.ndarray | None, deterministic: bool, rng: np.random.Generator
    ) -> np.ndarray:
        logits = outputs[:, 0]
        if deterministic:
            return (logits > 0).astype(np.int64)
        # u < sigmoid(logit), with the sigmoid in its tanh form, which cannot overflow
        return (rng.random(len(logits)) < 0.5 + 0.5 * np.tanh(0.5 * logits)).astype(np.int64)


class CategoricalHead(Head):
    """n > 2 actions from n logits."""

    def __init__(self, n_actions: int) -> None:
        self.outputs = n_actions

    def distribution(self, outputs: torch.Tensor, std: torch.Tensor | None) -> Distribution:
        return Categorical(logits=outputs, validate_args=False)

    def act(
        self, outputs: np.ndarray, std: np.ndarray | None, deterministic: bool, rng: np.random.Generator
    ) -> np.ndarray:
        if deterministic:
            return outputs.argmax(-1)
        probs = np.exp(outputs - outputs.max(-1, keepdims=True))
        cdf = np.cumsum(probs, -1)
        drawn = (cdf < rng.random((len(cdf), 1)) * cdf[:, -1:]).sum(-1)
        return np.minimum(drawn, self.outputs - 1)


class GaussianHead(Head):
    """A diagonal Gaussian over ``action_dim`` numbers, its mean the network's outputs; its standard deviation
    is the policy's (a learnt vector, the same for every state)."""

    def __init__(self, action_dim: int) -> None:
        self.outputs = action_dim

    def distribution(self, outputs: torch.Tensor, std: torch.Tensor | None) -> Distribution:
        normal = Normal(outputs, std.expand_as(outputs), validate_args=False)
        return Independent(normal, 1, validate_args=False)

    def act(
        self, outputs: np.ndarray, std: np.ndarray | None, deterministic: bool, rng: np.random.Generator
    ) -> np.ndarray:
        if deterministic:
            return outputs
        return outputs + std * rng.standard_normal(outputs.shape, dtype=np.float32)


def head_for(n_actions: int | None, action_dim: int | None) -> Head:
    """The head of a policy with ``n_actions`` discrete actions (2: Bernoulli, more: Categorical), or with
    continuous actions of ``action_dim`` numbers (Gaussian)."""
    if (n_actions is None) == (action_dim is None):
        raise ValueError("a policy needs either n_actions (discrete) or action_dim (continuous)")
    if action_dim is not None:
        return GaussianHead(action_dim)
    if n_actions < 2:
        raise ValueError(f"a policy needs at least 2 actions, got {n_actions}")
    return BernoulliHead() if n_actions == 2 else CategoricalHead(n_actions)
