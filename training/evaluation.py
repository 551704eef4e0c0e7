"""Evaluating an agent during and after training, and deciding when the environment is solved."""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorEnv

from agents import ReinforceAgent
from envs import evaluate, make_vector_env, time_limit
from training.seeding import EVALUATION, derive_seed
from training.settings import Config


def target_return(config: Config) -> float | None:
    """The mean greedy return that counts as solved: ``--target-return``, else the environment's
    ``reward_threshold`` (475 for CartPole-v1) when the episodes keep their registered time limit, else
    none. A threshold belongs to its limit: at 200 steps CartPole cannot reach 475, and Acrobot cut at 50
    steps would "solve" at once."""
    if config.target_return is not None:
        return config.target_return
    spec = gym.spec(config.env)
    return spec.reward_threshold if config.max_episode_steps in (None, spec.max_episode_steps) else None


def no_target_reason(config: Config) -> str | None:
    """Why a run has no target (said at its start), or None when it has one."""
    if target_return(config) is not None:
        return None
    spec = gym.spec(config.env)
    if spec.reward_threshold is None:
        return f"no target: {config.env} has no reward_threshold; give --target-return R for one"
    return (
        f"no target: {config.env}'s reward_threshold {spec.reward_threshold:g} is for its "
        f"{spec.max_episode_steps}-step episodes, not --max-episode-steps {config.max_episode_steps}; "
        "give --target-return R for one"
    )


def solves(returns: np.ndarray, target: float | None) -> bool:
    """Whether an evaluation's returns reach the target (their mean, over every episode)."""
    return target is not None and float(np.mean(returns)) >= target


class Evaluator:
    """Evaluation episodes on environments of their own, each evaluation seeded afresh (environments
    and sampling) from the run's seed, so that evaluating, however often, never changes training.

    :param config: the run's settings (environment, ``eval_episodes``, ``eval_every_steps``, seed).
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.next_check = config.eval_every_steps
        self.evaluations = 0

    @functools.cached_property
    def env(self) -> VectorEnv:  # made on first use: under torchrun only the main worker evaluates
        config = self.config
        return make_vector_env(config.env, config.eval_episodes, config.max_episode_steps, config.vectorization)

    def due(self, env_steps: int) -> bool:
        """Whether an update that brought the run to ``env_steps`` is the first at or after the next
        multiple of ``eval_every_steps`` (then the next check moves on)."""
        if env_steps < self.next_check:
            return False
        every = self.config.eval_every_steps
        self.next_check = (env_steps // every + 1) * every
        return True

    def __call__(self, agent: ReinforceAgent, deterministic: bool = True) -> np.ndarray:
        """The returns of ``eval_episodes`` episodes, greedy (``deterministic``) or sampled."""
        seed = derive_seed(self.config.seed, EVALUATION, self.evaluations)
        self.evaluations += 1
        env, config = self.env, self.config
        limit = time_limit(config.env, config.max_episode_steps)
        return evaluate(agent, env, config.eval_episodes, deterministic, np.random.default_rng(seed), seed, limit)

    def close(self) -> None:
        if "env" in self.__dict__:
            self.env.close()
