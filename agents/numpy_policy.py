"""A numpy copy of a ``Policy``, which acts in the environment steps.

Acting runs once per step of a numpy simulator; torch's per-call overhead, and the cost of switching
between torch and numpy code at every step, make a torch forward several times slower than the simulator
there. The copy computes the same function (to float32 rounding; tested against the torch policy for every
activation) and is taken again whenever the policy changes (see ``policy_version``); the ``Actor`` keeps
it current and turns its actions into the action space's, checking nothing on that per-step path.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from agents.network import ACTIVATIONS
from agents.reinforce import ObservationNormalizer, Policy


def policy_version(tensors: Sequence[torch.Tensor]) -> tuple[int, ...]:
    """A key that changes whenever any of a policy's tensors is changed in place: an optimizer step,
    ``load_state_dict``, a normaliser update, or a user's own ``copy_``. PyTorch counts in-place changes
    of every tensor (autograd's version counter); no public hook sees all of them."""
    return tuple(t._version for t in tensors)


class NumpyPolicy:
    """The network of a ``Policy`` as numpy arrays, acting through the numpy form of its activation and head
    (``agents.network``)."""

    def __init__(self, policy: Policy) -> None:
        linears = [m for m in policy.net if isinstance(m, nn.Linear)]
        self.layers = [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in linears]
        if isinstance(policy.normalizer, ObservationNormalizer):
            # fold (x - shift) * scale into the first layer: one matmul instead of three operations
            shift, scale = policy.normalizer.shift.numpy(), policy.normalizer.scale.numpy()
            weight, bias = self.layers[0]
            self.layers[0] = (weight * scale[:, None], bias - (shift * scale) @ weight)
        self.activation = ACTIVATIONS[policy.activation].numpy
        self.head = policy.head
        self.std = policy.std().detach().numpy().copy() if policy.continuous else None

    def outputs(self, observations: np.ndarray) -> np.ndarray:
        """The network's output: logits, or the Gaussian's mean for continuous actions."""
        x = np.asarray(observations, dtype=np.float32)
        for weight, bias in self.layers[:-1]:
            x = self.activation(x @ weight + bias)
        weight, bias = self.layers[-1]
        return x @ weight + bias

    def actions(self, observations: np.ndarray, deterministic: bool, rng: np.random.Generator) -> np.ndarray:
        """Actions for a ``(B, obs_dim)`` batch, as the policy's distribution holds them (indices from 0,
        raw Gaussian samples): sampled with ``rng``, or the most likely ones."""
        return self.head.act(self.outputs(observations), self.std, deterministic, rng)


class Actor:
    """Actions for batches of encoded observations, from a numpy copy of ``policy`` taken again whenever
    the policy changes. A rollout calls it at every environment step, so it checks nothing: its callers
    give inputs of the right shape.

    :param policy: the policy that acts.
    :param action_space: its ``Discrete`` actions start at the space's start; its ``Box`` samples are
        brought into the bounds for the environment as ``action_bound`` says.
    :param action_bound: ``"clip"``, or ``"tanh"``: squashed into the (finite) bounds.
    """

    def __init__(self, policy: Policy, action_space: spaces.Space, action_bound: str = "clip") -> None:
        self.policy, self.action_space = policy, action_space
        self.continuous = isinstance(action_space, spaces.Box)
        if self.continuous and action_bound == "tanh":  # tanh(u) in [-1, 1] onto [low, high]
            # in float64, halved before adding: bounds near the float64 limit neither overflow nor lose digits
            low, high = action_space.low.astype(np.float64), action_space.high.astype(np.float64)
            self._squash = high / 2 + low / 2, high / 2 - low / 2
        else:
            self._squash = None
        self.start = 0 if self.continuous else int(action_space.start)
        self._tensors = [*policy.parameters(), *policy.buffers()]
        self._copy: NumpyPolicy | None = None
        self._version: tuple[int, ...] = ()

    def numpy_policy(self) -> NumpyPolicy:
        """The numpy copy of the current policy, taken again after any change of the policy."""
        version = policy_version(self._tensors)
        if version != self._version:
            self._copy, self._version = NumpyPolicy(self.policy), version
        return self._copy

    def __call__(
        self, inputs: np.ndarray, deterministic: bool, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(actions for the environment, actions to learn from)`` for ``(B, input_size)`` inputs."""
        actions = self.numpy_policy().actions(inputs, deterministic, rng)
        if self.continuous:
            space = self.action_space
            actions = actions.reshape(-1, *space.shape)
            if self._squash is None:
                return np.clip(actions, space.low, space.high).astype(space.dtype), actions
            centre, half_width = self._squash  # clipped again only against rounding at the bounds
            squashed = centre + half_width * np.tanh(actions.astype(np.float64))
            return np.clip(squashed, space.low, space.high).astype(space.dtype), actions
        actions = actions + self.start if self.start else actions
        return actions, actions
