"""An environment's settings as one object, ``EnvConfig``: what training, evaluation, the GIF and ``--watch``
need to build it."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import gymnasium as gym
from gymnasium.vector import VectorEnv

from envs.factory import EnvFactory, check_env_id, env_name, made_spec, make_env, make_vector_env, time_limit


@dataclass(frozen=True)
class EnvConfig:
    """An environment and how a run builds it, as one object: what training, evaluation, the GIF and
    ``--watch`` all need.

    :param env: a Gymnasium id, ``module:EnvId`` (see ``check_env_id``), or a callable that makes one
        environment (a class of one's own needs no registration).
    :param max_episode_steps: the time limit (None: the environment's own).
    :param vectorization: one of ``VECTORIZATIONS``.
    :param action_bins: discretise Box actions into this many values per dimension (None: keep them).
    """

    env: str | EnvFactory
    max_episode_steps: int | None = None
    vectorization: str = "auto"
    action_bins: int | None = None

    @property
    def name(self) -> str:
        """The id, or the callable's name."""
        return env_name(self.env)

    @functools.cached_property
    def spec(self) -> gym.envs.registration.EnvSpec | None:
        """The registry entry (for a callable: of what it makes, None for an instance of one's own class)."""
        return check_env_id(self.env) if isinstance(self.env, str) else made_spec(self.env)

    def time_limit(self) -> int:
        """The most steps an episode lasts (see ``time_limit``), found once."""
        return self._time_limit

    @functools.cached_property
    def _time_limit(self) -> int:
        return time_limit(self.env, self.max_episode_steps)

    def make(self, render_mode: str | None = None) -> gym.Env:
        """One environment (see ``make_env``)."""
        return make_env(self.env, self.max_episode_steps, render_mode, self.action_bins)

    def make_vector(self, num_envs: int) -> VectorEnv:
        """``num_envs`` environments stepped together (see ``make_vector_env``)."""
        return make_vector_env(self.env, num_envs, self.max_episode_steps, self.vectorization, self.action_bins)
