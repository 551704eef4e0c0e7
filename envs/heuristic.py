"""The seed notebook's hard-coded CartPole policy, kept as a baseline."""

from __future__ import annotations

import numpy as np

from envs.factory import make_vector_env, time_limit
from envs.rollout import collect_episodes, split_episodes

CARTPOLE_OBSERVATION = ("cart position", "cart velocity", "pole angle", "pole angular velocity")


def lean_policy(observations: np.ndarray) -> np.ndarray:
    """Push the cart toward the side the pole leans: right (1) if the pole angle is positive."""
    return (np.asarray(observations)[..., 2] > 0).astype(np.int64)


def run_heuristic(env_id: str, episodes: int, max_episode_steps: int | None, seed: int) -> np.ndarray:
    """The returns of ``episodes`` episodes of CartPole played by ``lean_policy``; prints the first
    observation, named, as the notebook did."""
    if not env_id.startswith("CartPole"):
        raise ValueError(f"the hard-coded policy reads CartPole's pole angle: it cannot play {env_id}")
    env = make_vector_env(env_id, episodes, max_episode_steps)
    observations, _ = env.reset(seed=seed)
    print("first observation:", ", ".join(f"{n} {v:+.4f}" for n, v in zip(CARTPOLE_OBSERVATION, observations[0])))
    quotas, limit = split_episodes(episodes, env.num_envs), time_limit(env_id, max_episode_steps)
    rollout = collect_episodes(env, lambda obs: (lean_policy(obs),) * 2, quotas, seed=seed, max_episode_steps=limit)
    env.close()
    return rollout.episode_returns
