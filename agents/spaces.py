"""The Gymnasium spaces the agent supports: the check, the observation encoding, the checks that observations
and actions given to the public API fit the spaces, and spaces as plain data (so that checkpoints load with
``weights_only=True``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from gymnasium import spaces


def check_spaces(observation_space: spaces.Space, action_space: spaces.Space, action_bound: str = "clip") -> None:
    """Raise a one-line ``ValueError`` unless the agent supports these spaces.

    :param observation_space: the environment's observation space: a ``Box`` (flattened) or a ``Discrete``
        (one-hot) that holds at least one number.
    :param action_space: the environment's action space: a ``Discrete(n)`` with ``n >= 2``, or a ``Box`` of at
        least one number.
    :param action_bound: how Box actions are kept in bounds, ``"clip"`` or ``"tanh"``; with ``"tanh"`` a Box of
        actions needs finite bounds to squash into.
    """
    if not isinstance(observation_space, (spaces.Box, spaces.Discrete)):
        raise ValueError(
            f"unsupported observation space {observation_space}: the agent supports Box (flattened) and "
            "Discrete (one-hot) observations"
        )
    if isinstance(observation_space, spaces.Box) and int(np.prod(observation_space.shape)) == 0:
        raise ValueError(f"unsupported observation space {observation_space}: it holds no number for the policy")
    few = isinstance(action_space, spaces.Discrete) and action_space.n < 2
    empty = isinstance(action_space, spaces.Box) and int(np.prod(action_space.shape)) == 0
    if few or empty or not isinstance(action_space, (spaces.Box, spaces.Discrete)):
        raise ValueError(
            f"unsupported action space {action_space}: the agent supports Discrete(n) with n >= 2, or Box of at "
            "least one number"
        )
    if action_bound == "tanh" and isinstance(action_space, spaces.Box) and not action_space.is_bounded("both"):
        raise ValueError(
            f"action_bound tanh squashes actions into finite bounds, and {action_space} has infinite ones: "
            "use action_bound clip"
        )


def input_size(observation_space: spaces.Space) -> int:
    """Width of the policy's input: the flattened Box, or one unit per Discrete observation."""
    if isinstance(observation_space, spaces.Discrete):
        return int(observation_space.n)
    return int(np.prod(observation_space.shape))


def observation_encoder(observation_space: spaces.Space) -> Callable[[Any], np.ndarray]:
    """The function that turns observations of the space (one or a batch, numpy or torch) into the
    policy's ``(B, input_size)`` float inputs: Box ones flattened, Discrete ones one-hot. It runs at
    every environment step, so what can be is worked out once, here."""
    size = input_size(observation_space)
    if isinstance(observation_space, spaces.Discrete):
        start, one_hot = int(observation_space.start), np.eye(size, dtype=np.float32)

        def encode(observations: Any) -> np.ndarray:
            index = np.asarray(observations).astype(np.int64).reshape(-1) - start
            if index.size and (index.min() < 0 or index.max() >= size):
                raise ValueError(f"observations outside {observation_space}: give values of the observation space")
            return one_hot[index]

    else:

        def encode(observations: Any) -> np.ndarray:
            return np.asarray(observations, dtype=np.float32).reshape(-1, size)

    return encode


def _batch_of(shape: tuple[int, ...]) -> str:
    """How a batch of ``shape``-d values is written in messages: ``(n, 4)``, or ``(n,)`` for scalars."""
    return f"(n, {', '.join(map(str, shape))})" if shape else "(n,)"


def is_one_observation(observations: Any, observation_space: spaces.Space) -> bool:
    """Whether ``observations`` is one observation of the space rather than a batch ``(n, *shape)`` of them;
    a one-line ``ValueError`` if it is neither (the encoder would silently regroup its numbers into however
    many observations they fill)."""
    shape, expected = tuple(np.shape(observations)), observation_space.shape
    if shape == expected:
        return True
    if shape[1:] == expected:
        return False
    raise ValueError(
        f"observations of shape {shape} do not fit the observation space: give one observation of shape "
        f"{expected} or a batch of shape {_batch_of(expected)}"
    )


def check_step_observations(observations: Any, observation_space: spaces.Space) -> None:
    """A one-line ``ValueError`` unless ``observations`` are ``(B, ...)`` per-step observations of the space,
    each of its shape or flattened (``EpisodeBatch.from_episodes`` stores them flat)."""
    step_shape, expected = tuple(np.shape(observations)[1:]), observation_space.shape
    flat = (int(np.prod(expected)),)
    if step_shape not in (expected, flat):
        either = f"{expected}" if flat == expected else f"{expected} (or flattened, {flat})"
        raise ValueError(
            f"observations of shape {step_shape} per step do not fit the observation space: give observations "
            f"of shape {either}"
        )


def check_step_actions(actions: torch.Tensor, action_space: spaces.Space) -> None:
    """A one-line ``ValueError`` unless ``actions`` are ``(B, ...)`` per-step actions of the space: of its
    shape, and for ``Discrete`` whole numbers in its range (the policy would score any other number as if it
    were an action, and learn from it). Box actions may lie outside the bounds: the update learns from the
    Gaussian's raw samples."""
    step_shape, expected = tuple(actions.shape[1:]), action_space.shape
    if step_shape != expected:
        raise ValueError(
            f"actions of shape {step_shape} per step do not fit {action_space}: give actions of shape {expected}"
        )
    if isinstance(action_space, spaces.Discrete) and actions.numel():
        low, high = int(action_space.start), int(action_space.start + action_space.n - 1)
        whole = actions == actions.floor() if actions.is_floating_point() else torch.ones_like(actions, dtype=bool)
        fits = whole & (actions >= low) & (actions <= high)  # NaN fails every comparison
        if not bool(fits.all()):
            outside = actions[~fits][0].item()
            raise ValueError(f"action {outside} is not in {action_space}: give whole numbers from {low} to {high}")


def space_to_dict(space: spaces.Space) -> dict[str, Any]:
    """A supported space as plain data."""
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.Box):
        return {"type": "Box", "low": space.low.tolist(), "high": space.high.tolist(), "dtype": str(space.dtype)}
    raise ValueError(f"cannot store space {space}")


def space_from_dict(data: dict[str, Any]) -> spaces.Space:
    """The space ``space_to_dict`` stored."""
    if data["type"] == "Discrete":
        return spaces.Discrete(data["n"], start=data["start"])
    if data["type"] == "Box":
        dtype = np.dtype(data["dtype"])
        return spaces.Box(np.array(data["low"], dtype=dtype), np.array(data["high"], dtype=dtype), dtype=dtype)
    raise ValueError(f"unknown space type {data['type']!r} in checkpoint")
