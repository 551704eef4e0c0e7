"""Collecting complete episodes from a vector environment, and evaluating an agent.

Gymnasium's vector environments autoreset NEXT_STEP: the step after an episode ends returns the new
episode's first observation, with reward 0, and ignores the action. That step is not a transition;
it is masked out of everything (returns, log-probabilities, statistics, the env-step count). Its
observation is the state the episode ended in, which a value bootstrap after a time limit reads.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv

from agents import EpisodeBatch, ReinforceAgent
from agents.batch import episode_ids
from envs.contract import EnvironmentFailed, environment_failed
from envs.factory import LONGEST_EPISODE, episode_too_long


@dataclass
class Rollout:
    """What ``collect_episodes`` played."""

    batch: EpisodeBatch
    episode_returns: np.ndarray  # undiscounted, one per episode
    episode_lengths: np.ndarray


def split_episodes(total: int, num_envs: int) -> np.ndarray:
    """How many episodes each environment plays so that they add up to ``total``, as evenly as they can: the
    first ``total % num_envs`` environments play one more than the others.

    :param total: the episodes to play in all.
    :param num_envs: the environments that share them.
    :return: one count per environment, ``(num_envs,)``.
    """
    quotas = np.full(num_envs, total // num_envs)
    quotas[: total % num_envs] += 1
    return quotas


def collect_episodes(
    env: VectorEnv,
    act: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    episodes_per_env: np.ndarray,
    seed: int | None = None,
    max_episode_steps: int = LONGEST_EPISODE,
) -> Rollout:
    """Reset ``env`` and play exactly ``episodes_per_env[i]`` complete episodes in sub-environment i.

    ``act`` maps observations to ``(actions for the environment, actions to record)``, as
    ``ReinforceAgent.sample`` does: they differ where continuous actions are clipped or squashed into the space. It runs
    at every step: for an environment made for the agent's spaces, ``ReinforceAgent.sample_unchecked``
    spares it ``sample``'s check of the observations' shape.

    Every environment plays its whole quota whatever the episodes' lengths, so the batch is an
    unbiased sample of the current policy (stopping at the first N finished episodes would favour
    short ones). Environments that are done idle, masked, until the last one finishes.

    :param env: a vector environment that autoresets NEXT_STEP (``make_vector_env`` makes them).
    :param act: observations -> ``(actions for the environment, actions to record)``.
    :param episodes_per_env: episodes for each sub-environment (``split_episodes`` spreads a total).
    :param seed: reseeds the environments (give a new one per call); without it, their random streams
        continue.
    :param max_episode_steps: the environment's time limit (or any bound of its episodes' lengths): an
        episode that runs longer raises a one-line ``ValueError`` instead of filling the memory, as an
        environment without a time limit whose episodes never end would.
    :return: the episodes as an ``EpisodeBatch``, with each episode's undiscounted return and length.
    """
    if env.metadata.get("autoreset_mode") != AutoresetMode.NEXT_STEP:
        raise ValueError("collect_episodes needs a vector environment that autoresets NEXT_STEP")
    quotas = np.asarray(episodes_per_env, dtype=np.int64)
    remaining = quotas.copy()
    try:
        observations, _ = env.reset(seed=seed)
    except (Exception, SystemExit) as error:  # the environment's code: one line names it (SystemExit: a quit handler)
        raise environment_failed("reset", error) from error
    obs_steps, action_steps, reward_steps, term_steps, trunc_steps = [], [], [], [], []
    most_steps = int(quotas.max()) * (max_episode_steps + 1)  # every episode of a quota, each with its reset step
    # The hot loop only steps and stores; masks and statistics are derived afterwards, vectorised.
    # A NEXT_STEP reset step reports terminated = truncated = False, so every True is an episode end.
    while remaining.max() > 0:
        if len(reward_steps) == most_steps:
            raise episode_too_long(max_episode_steps)
        try:
            actions, recorded = act(observations)
        except ValueError as error:  # the encoder refuses what the space cannot hold (a Discrete one out of range)
            raise EnvironmentFailed(f"the environment's observations do not fit its space: {error}") from error
        obs_steps.append(observations)
        action_steps.append(recorded)
        try:
            observations, rewards, terminated, truncated, _ = env.step(actions)
        except (Exception, SystemExit) as error:
            raise environment_failed("step", error) from error
        reward_steps.append(rewards)
        term_steps.append(terminated)
        trunc_steps.append(truncated)
        remaining -= terminated | truncated
    terminated, truncated = np.stack(term_steps), np.stack(trunc_steps)
    ends = terminated | truncated
    after_end = np.zeros_like(ends)
    after_end[1:] = ends[:-1]
    ended_before = np.cumsum(ends, axis=0) - ends
    valid = ~after_end & (ended_before < quotas)
    rewards = np.stack(reward_steps).astype(np.float32, copy=False)
    batch = EpisodeBatch(
        observations=torch.from_numpy(np.stack(obs_steps).astype(np.float32, copy=False)),
        actions=torch.from_numpy(_as_learnt(np.stack(action_steps))),
        rewards=torch.from_numpy(rewards),
        terminated=torch.from_numpy(terminated),
        truncated=torch.from_numpy(truncated),
        valid=torch.from_numpy(valid),
        last_observations=torch.from_numpy(np.asarray(observations, dtype=np.float32)),
    )
    _, episode = np.unique(episode_ids(batch.ends)[batch.valid].numpy(), return_inverse=True)
    return Rollout(batch, np.bincount(episode, rewards[valid]), np.bincount(episode))


def _as_learnt(actions: np.ndarray) -> np.ndarray:
    """Discrete actions as int64 and continuous ones as float32, the dtypes ``EpisodeBatch`` holds."""
    return actions.astype(np.float32 if actions.dtype.kind == "f" else np.int64, copy=False)


def evaluate(
    agent: ReinforceAgent,
    env: VectorEnv,
    n_episodes: int,
    deterministic: bool,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    max_episode_steps: int = LONGEST_EPISODE,
) -> np.ndarray:
    """Returns of ``n_episodes`` episodes played greedily (``deterministic``) or by sampling.

    Give the evaluation its own ``env`` and ``rng`` so that training runs identically whether or
    not, and however often, it is evaluated.

    :param agent: the agent that acts.
    :param env: a NEXT_STEP vector environment for evaluation only.
    :param n_episodes: complete episodes to play, spread over the sub-environments.
    :param deterministic: the most likely actions instead of samples.
    :param rng: the generator to sample with (default: the agent's own).
    :param seed: reseeds the environments.
    :param max_episode_steps: the environment's time limit (see ``collect_episodes``).
    """
    quotas = split_episodes(n_episodes, env.num_envs)
    act = functools.partial(agent.sample_unchecked, deterministic=deterministic, rng=rng)
    rollout = collect_episodes(env, act, quotas, seed, max_episode_steps)
    return rollout.episode_returns
