"""``EpisodeBatch``: complete episodes laid out time-major, as the update takes them.

A batch is a ``(T, N)`` grid, one column per environment stream, so that a vector-environment rollout
needs no reshuffling; a column may hold several episodes back to back, separated by ``ends`` flags, and
``valid`` marks the steps that are real transitions of complete episodes. The observation that follows a step
is the next row's, or for the last row ``last_observations``: after an episode's last step it is the state the
episode ended in, which a value bootstrap after a time limit needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class EpisodeBatch:
    """Complete episodes in a time-major ``(T, N)`` grid (see the module docstring).

    ``terminated`` and ``truncated`` are kept apart: a Monte-Carlo return treats a truncated episode as
    complete, a bootstrapped one adds what would have followed a truncation.
    """

    observations: torch.Tensor  # (T, N, *observation_shape) float32
    actions: torch.Tensor  # (T, N) int64 for discrete actions, (T, N, *action_shape) float32 for continuous
    rewards: torch.Tensor  # (T, N) float32
    terminated: torch.Tensor  # (T, N) bool
    truncated: torch.Tensor  # (T, N) bool
    valid: torch.Tensor  # (T, N) bool
    # (N, *observation_shape) float32: what each stream observed after the last row; None if not recorded
    last_observations: torch.Tensor | None = None

    def __post_init__(self) -> None:
        # once per batch, not per step: a mismatched grid would otherwise broadcast or fail deep in the update
        grid = tuple(self.rewards.shape)
        if len(grid) != 2:
            raise ValueError(f"rewards must be a (T, N) grid, got shape {grid}")
        for name in ("terminated", "truncated", "valid"):
            flags = getattr(self, name)
            if tuple(flags.shape) != grid or flags.dtype != torch.bool:
                raise ValueError(
                    f"{name} must be a bool tensor of the rewards' shape {grid}, got {flags.dtype} {tuple(flags.shape)}"
                )
        for name in ("observations", "actions"):
            if tuple(getattr(self, name).shape[:2]) != grid:
                shape = tuple(getattr(self, name).shape)
                raise ValueError(f"{name} of shape {shape} do not start with the rewards' (T, N) grid {grid}")
        if self.last_observations is not None and self.last_observations.shape != self.observations.shape[1:]:
            raise ValueError(
                f"last_observations must have shape {tuple(self.observations.shape[1:])} (one observation per "
                f"stream), got {tuple(self.last_observations.shape)}"
            )

    @property
    def ends(self) -> torch.Tensor:
        """The last step of every episode, terminated or truncated."""
        return self.terminated | self.truncated

    @property
    def time_limit_cuts(self) -> torch.Tensor:
        """The last step of every episode a time limit cut short: truncated and not terminated (Gymnasium's
        ``TimeLimit`` reports truncated also when the last step it allows ends in a terminal state, after which
        nothing follows)."""
        return self.truncated & ~self.terminated

    @property
    def num_steps(self) -> int:
        return int(self.valid.sum())

    def truncation_states(self) -> torch.Tensor:
        """The state a time limit cut each valid episode in (the observation its last step returned), one
        row per ``self.time_limit_cuts & self.valid``, in that mask's order."""
        cut = self.time_limit_cuts & self.valid
        if self.last_observations is None:
            if cut.any():
                raise ValueError(
                    "this batch has no last_observations, so the states its time limits cut episodes in are "
                    "unknown: give them (from_episodes' final_observations), or bootstrap mean or none"
                )
            return self.observations[cut]  # no state to give
        following = torch.cat([self.observations[1:], self.last_observations[None]])
        return following[cut]

    @classmethod
    def from_episodes(
        cls,
        episodes: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
        truncated: Sequence[bool] | None = None,
        final_observations: Sequence[np.ndarray] | None = None,
    ) -> EpisodeBatch:
        """Pack episodes, one column each.

        :param episodes: each ``(observations, actions, rewards)``, one entry per step; for Box actions
            the raw samples, neither clipped nor squashed (``ReinforceAgent.sample`` returns them).
        :param truncated: per episode, whether a time limit ended it (default: every one terminated).
        :param final_observations: per episode, the observation its last step returned (``bootstrap="value"``
            needs them; default: not recorded).
        """
        if not episodes:
            raise ValueError("an EpisodeBatch needs at least one episode")
        lengths = [len(rewards) for _, _, rewards in episodes]
        if min(lengths) < 1:
            raise ValueError("every episode needs at least one step")
        for i, (obs, acts, rews) in enumerate(episodes):
            if not len(obs) == len(acts) == len(rews):
                raise ValueError(
                    f"episode {i} has {len(obs)} observations, {len(acts)} actions and {len(rews)} rewards: "
                    "give one of each per step"
                )
            for name, values, first in (("observations", obs, episodes[0][0]), ("actions", acts, episodes[0][1])):
                if np.shape(values)[1:] != np.shape(first)[1:]:
                    raise ValueError(
                        f"episode {i}'s {name} have shape {np.shape(values)[1:]} per step, episode 0's "
                        f"{np.shape(first)[1:]}: give every episode's the same shape"
                    )
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
        last_observations = None
        if final_observations is not None:
            if len(final_observations) != n:
                raise ValueError(
                    f"final_observations has {len(final_observations)} entries, the episodes {n}: give one per episode"
                )
            # the row after each episode's last step (padding, not valid), or the grid's last_observations
            following = torch.zeros(horizon + 1, n, obs_dim)
            for i, final in enumerate(final_observations):
                if np.size(final) != obs_dim:
                    raise ValueError(
                        f"episode {i}'s final observation has {np.size(final)} values, its steps {obs_dim}"
                    )
                following[lengths[i], i] = torch.as_tensor(np.asarray(final, dtype=np.float32)).reshape(-1)
            observations = torch.where(valid[..., None], observations, following[:horizon])
            last_observations = following[horizon]
        was_truncated = torch.tensor(truncated if truncated is not None else [False] * n, dtype=torch.bool)
        return cls(
            observations=observations,
            actions=actions,
            rewards=rewards,
            terminated=ends & ~was_truncated,
            truncated=ends & was_truncated,
            valid=valid,
            last_observations=last_observations,
        )


def check_one_per_step(observations: torch.Tensor, actions: torch.Tensor, advantages: torch.Tensor) -> None:
    """A one-line ``ValueError`` unless per-step observations, actions and ``(B,)`` advantages all have one
    entry per step (a length-1 tensor would otherwise broadcast over the others)."""
    if not len(observations) == len(actions) == len(advantages) or advantages.dim() != 1:
        raise ValueError(
            f"observations, actions and advantages need one entry per step: got {len(observations)}, "
            f"{len(actions)} and advantages of shape {tuple(advantages.shape)}"
        )


def episode_ids(ends: torch.Tensor) -> torch.Tensor:
    """A distinct integer for every episode of a ``(T, N)`` grid (episodes end at ``ends``)."""
    n_streams = ends.shape[1]
    finished_before = ends.long().cumsum(0) - ends.long()
    return finished_before * n_streams + torch.arange(n_streams)
