"""The training iteration that ``train.py`` and ``bench/`` share: collect complete episodes, update the
agent, count; and the signals that stop it between two iterations."""

from __future__ import annotations

import functools
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from agents import AgentConfig, EpisodeBatch, ReinforceAgent
from envs import collect_episodes, make_vector_env, split_episodes, time_limit
from training.seeding import update_seeds
from training.settings import Config
from training.workers import Workers


@dataclass
class RunState:
    """The counters of a run, over all workers: with the agent's state, all a resumed run needs (each
    update's episodes are seeded from the run's seed and the update's index, so no environment state is
    kept)."""

    updates: int = 0
    env_steps: int = 0
    episodes: int = 0
    train_seconds: float = 0.0
    solved_at: int | None = None
    skipped_updates: int = 0
    skipped_in_a_row: int = 0


@dataclass
class Update:
    """What one iteration learnt from and reported."""

    batch: EpisodeBatch  # this worker's episodes
    episode_returns: np.ndarray  # undiscounted, every worker's episodes
    episode_lengths: np.ndarray
    stats: dict[str, float]  # the agent's update statistics

    @property
    def skipped(self) -> bool:
        """Whether a change was skipped or undone as not finite (the same on every worker)."""
        return self.stats["skipped_steps"] > 0


class Trainer:
    """The training environments, the agent and the run's counters, and one ``step`` at a time.

    :param config: the run's settings; the environments and the agent are seeded from ``config.seed``, so
        every worker starts from the same weights.
    :param workers: this process's place among torchrun's workers (each plays its own episodes, and the
        agent's update is combined across them).
    """

    def __init__(self, config: Config, workers: Workers | None = None) -> None:
        if config.threads is not None:
            check_threads(config.threads)
            torch.set_num_threads(config.threads)
        self.config, self.workers = config, workers or Workers()
        self.env = make_vector_env(
            config.env, config.num_envs, config.max_episode_steps, config.vectorization, config.discretize_actions
        )
        self.episode_limit = time_limit(config.env, config.max_episode_steps)
        space = self.env.single_observation_space, self.env.single_action_space
        try:
            check_memory(*space, config.agent_config())
        except ValueError:
            self.env.close()
            raise
        self.agent = ReinforceAgent(*space, config.agent_config(), seed=config.seed)
        self.state = RunState()
        self.quotas = split_episodes(config.episodes_per_update, config.num_envs)

    def within_budget(self) -> bool:
        config, state = self.config, self.state
        return state.env_steps < config.total_env_steps and (
            config.max_updates is None or state.updates < config.max_updates
        )

    def step(self) -> Update:
        """Collect ``episodes_per_update`` complete episodes and make one update from them. Only this is
        training time: what happens between steps (logging, evaluating, checkpointing) is not."""
        config, state, workers = self.config, self.state, self.workers
        started = time.perf_counter()
        seed, sampling = update_seeds(config.seed, state.updates, workers.rank, workers.size)
        # unchecked: it runs at every step, on observations of environments made for the agent's spaces
        sample = self.agent.sample_unchecked
        act = sample if sampling is None else functools.partial(sample, rng=sampling)
        rollout = collect_episodes(self.env, act, self.quotas, seed=seed, max_episode_steps=self.episode_limit)
        if config.anneal_lr:
            self.anneal_learning_rates()
        stats = self.agent.update(rollout.batch, distributed=workers.size > 1)
        state.train_seconds += time.perf_counter() - started
        returns, lengths = (workers.concatenate(x) for x in (rollout.episode_returns, rollout.episode_lengths))
        update = Update(rollout.batch, returns, lengths, stats)
        steps, episodes = workers.sum([rollout.batch.num_steps, len(rollout.episode_returns)])
        state.updates += 1
        state.env_steps += steps
        state.episodes += episodes
        state.skipped_updates += update.skipped
        state.skipped_in_a_row = state.skipped_in_a_row + 1 if update.skipped else 0
        return update

    def anneal_learning_rates(self) -> None:
        """Set each optimizer's rate to its setting times the budget's share still to train (by env steps,
        before this update): the first update at the full rate, none at 0. Set afresh from the run's
        counters at every update, so a resumed run follows the same schedule."""
        config, agent = self.config, self.agent
        remaining = 1.0 - self.state.env_steps / config.total_env_steps
        rates = [(agent.optimizer, config.learning_rate)]
        if agent.value is not None:
            rates.append((agent.value_optimizer, config.value_learning_rate))
        for optimizer, rate in rates:
            for group in optimizer.param_groups:
                group["lr"] = rate * remaining

    def close(self) -> None:
        self.env.close()


def check_threads(threads: int) -> None:
    """A one-line ``ValueError`` if ``threads`` exceeds the CPUs this process may use: more threads than
    cores only wait for each other, and far more fail to start (torch crashes on 100,000)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if threads > cpus:
        raise ValueError(f"threads ({threads}) exceeds the {cpus} CPU(s) this process can use: give --threads {cpus}")


# While training, every parameter is held about 8 times over, in float32: the weights, their gradient, Adam's
# two moments, the update guard's copies of all three (agents/guard.py) and the numpy copy that acts.
BYTES_PER_PARAMETER = 8 * 4


def check_memory(observation_space: spaces.Space, action_space: spaces.Space, config: AgentConfig) -> None:
    """A one-line ``ValueError`` if the agent's networks cannot fit in this machine's memory: a typo such as
    ``--hidden-sizes 100000 100000`` (10**10 parameters) would otherwise fail deep in an allocation, or be
    allocated and then swap. The limit is the machine's, not a judgement on how large a network should be."""
    with torch.device("meta"):  # shapes only: counting allocates nothing
        probe = ReinforceAgent(observation_space, action_space, config)
    networks = [probe.policy] if probe.value is None else [probe.policy, probe.value]
    parameters = sum(p.numel() for network in networks for p in network.parameters())
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no way to ask (Windows): let the allocation decide
        return
    if parameters * BYTES_PER_PARAMETER > memory:
        raise ValueError(
            f"hidden_sizes {list(config.hidden_sizes)} make {parameters:,} parameters, which need about "
            f"{parameters * BYTES_PER_PARAMETER / 1e9:,.0f} GB to train, more than this machine's "
            f"{memory / 1e9:,.0f} GB: give smaller --hidden-sizes"
        )


class _Signals:
    """SIGINT and SIGTERM handled by ``_handle`` while active, as they were before afterwards."""

    def _handle(self, signum: int, frame: Any) -> None:
        raise NotImplementedError

    def __enter__(self) -> _Signals:
        self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class StopSignals(_Signals):
    """While active, a first SIGINT or SIGTERM only asks the loop to stop after the current update
    (``received``); a second one exits at once (checkpoints are written atomically, so the last one
    stays intact)."""

    def __init__(self) -> None:
        self.received: int | None = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            os._exit(128 + signum)
        self.received = signum


class Interrupted(BaseException):
    """A SIGINT or SIGTERM under ``InterruptingSignals`` (a BaseException, like KeyboardInterrupt, so that
    no ``except Exception`` swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class InterruptingSignals(_Signals):
    """While active, a SIGINT or SIGTERM abandons the work at once by raising ``Interrupted``: for what
    has nothing to save half-way (evaluating, recording, watching)."""

    def _handle(self, signum: int, frame: Any) -> None:
        raise Interrupted(signum)
