"""The seed notebook's hard-coded CartPole policy, kept as a baseline."""

from __future__ import annotations

import numpy as np

from envs.config import EnvConfig
from envs.rollout import collect_episodes, split_episodes

CARTPOLE_OBSERVATION = ("cart position", "cart velocity", "pole angle", "pole angular velocity")


def lean_policy(observations: np.ndarray) -> np.ndarray:
    """Push the cart toward the side the pole leans: right (1) if the pole angle is positive.

    :param observations: CartPole observations, one ``(4,)`` or a batch ``(n, 4)``.
    :return: the actions, 0 (left) or 1 (right), one per observation, as ``int64``.
    """
    return (np.asarray(observations)[..., 2] > 0).astype(np.int64)


def run_heuristic(env: EnvConfig, episodes: int, seed: int) -> np.ndarray:
    """The returns of episodes of CartPole played by ``lean_policy``; prints the first observation, named, as
    the notebook did.

    :param env: a CartPole environment (any other raises a one-line ``ValueError``).
    :param episodes: how many episodes to play, one per sub-environment.
    :param seed: seeds the environments.
    :return: each episode's undiscounted return.
    """
    if not env.name.startswith("CartPole"):
        raise ValueError(f"the hard-coded policy reads CartPole's pole angle: it cannot play {env.name}")
    vector = env.make_vector(episodes)
    observations, _ = vector.reset(seed=seed)
    print("first observation:", ", ".join(f"{n} {v:+.4f}" for n, v in zip(CARTPOLE_OBSERVATION, observations[0])))
    quotas, limit = split_episodes(episodes, vector.num_envs), env.time_limit()
    rollout = collect_episodes(vector, lambda obs: (lean_policy(obs),) * 2, quotas, seed=seed, max_episode_steps=limit)
    vector.close()
    return rollout.episode_returns
