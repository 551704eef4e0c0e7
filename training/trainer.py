"""One training iteration: collect complete episodes, update the agent, count (the loop of ``training.fit``
runs them); and the checks that the threads and the networks fit the machine."""

from __future__ import annotations

import functools
import os
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces

from agents import AgentConfig, EpisodeBatch, ReinforceAgent
from envs import EnvConfig, collect_episodes, split_episodes
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
    best_return: float | None = None  # the best greedy check's mean return so far (its agent: best_model.pt)
    best_at: int | None = None  # and its env step


@dataclass
class Update:
    """What one iteration learnt from and reported."""

    batch: EpisodeBatch  # this worker's episodes
    episode_returns: np.ndarray  # undiscounted, every worker's episodes
    episode_lengths: np.ndarray
    stats: dict[str, float]  # the agent's update statistics
    learning_rate: float  # the policy's, in this update
    entropy_coef: float  # the entropy bonus's weight, in this update

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

    def __init__(self, config: Config, env: EnvConfig | None = None, workers: Workers | None = None) -> None:
        if config.threads is not None:
            check_threads(config.threads)
        self.config, self.workers = config, workers or Workers()
        self.env_config = env or config.env_config()
        self.env = self.env_config.make_vector(config.num_envs)
        try:
            self.episode_limit = self.env_config.time_limit()
            space = self.env.single_observation_space, self.env.single_action_space
            check_memory(*space, config.agent_config(), config.episodes_per_update)
        except ValueError:
            self.env.close()
            raise
        self.quotas = split_episodes(config.episodes_per_update, config.num_envs)
        self.threads_before = torch.get_num_threads()  # put back by close: a run leaves the process as it found it
        torch.set_num_threads(config.threads or self.threads_before)
        self.restore(ReinforceAgent(*space, config.agent_config(), seed=config.seed), RunState())

    def restore(self, agent: ReinforceAgent, state: RunState) -> None:
        """Train ``agent`` on from ``state`` (a fresh one, or a resumed run's)."""
        self.agent, self.state = agent, state
        # --anneal-lr: each optimizer's rate, as Adam was built with it, times the budget's share still to train
        self.schedules = [
            torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: self.share_to_train())
            for optimizer in (agent.optimizers if self.config.anneal_lr else [])
        ]

    def share_to_train(self) -> float:
        """The budget's share still to train, by env steps before the next update: 1 at the first update,
        never below 0. The annealed schedules scale by it; they follow the run's counters, so a resumed run
        follows the same schedule."""
        return max(0.0, 1.0 - self.state.env_steps / self.config.total_env_steps)

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
        learning_rate = self.agent.optimizer.param_groups[0]["lr"]
        entropy_coef = config.entropy_coef * (self.share_to_train() if config.anneal_entropy else 1.0)
        stats = self.agent.update(rollout.batch, distributed=workers.size > 1, entropy_coef=entropy_coef)
        state.train_seconds += time.perf_counter() - started
        returns, lengths = (workers.concatenate(x) for x in (rollout.episode_returns, rollout.episode_lengths))
        update = Update(rollout.batch, returns, lengths, stats, learning_rate, entropy_coef)
        steps, episodes = workers.sum([rollout.batch.num_steps, len(rollout.episode_returns)])
        state.updates += 1
        state.env_steps += steps
        state.episodes += episodes
        state.skipped_updates += update.skipped
        state.skipped_in_a_row = state.skipped_in_a_row + 1 if update.skipped else 0
        with warnings.catch_warnings():  # torch's hint for a first update whose step was undone as not finite
            warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step")
            for schedule in self.schedules:  # the next update's rates
                schedule.step()
        return update

    def close(self) -> None:
        self.env.close()
        torch.set_num_threads(self.threads_before)


def check_threads(threads: int) -> None:
    """A one-line ``ValueError`` if ``threads`` exceeds the CPUs this process may use: more threads than
    cores only wait for each other, and far more fail to start (torch crashes on 100,000)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if threads > cpus:
        raise ValueError(f"threads ({threads}) exceeds the {cpus} CPU(s) this process can use: give --threads {cpus}")


# While training, every parameter is held about 8 times over, in float32: the weights, their gradient, Adam's
# two moments, the update guard's copies of all three (agents/guard.py) and the numpy copy that acts; and
# every unit's output about 4 times per step of a batch (the value, its gradient, the softmax's and the loss's
# copies), counted for at least ten steps per episode of a batch.
BYTES_PER_PARAMETER, BYTES_PER_ACTIVATION, LEAST_STEPS_PER_EPISODE = 8 * 4, 4 * 4, 10


def check_memory(
    observation_space: spaces.Space, action_space: spaces.Space, config: AgentConfig, episodes_per_update: int
) -> None:
    """A one-line ``ValueError`` if training the agent's networks would not fit in the memory this machine has
    free, naming the setting that makes them large: a typo such as ``--hidden-sizes 100000 100000`` (10**10
    parameters), or an action space of ten million actions, would otherwise fail deep in an allocation or be
    killed by the kernel. An estimate that errs on the safe side: the limit is the machine's, not a judgement on
    how large a network should be."""
    with torch.device("meta"):  # shapes only: counting allocates nothing
        probe = ReinforceAgent(observation_space, action_space, config)
    networks = [probe.policy] if probe.value is None else [probe.policy, probe.value]
    layers = [m for network in networks for m in network.modules() if isinstance(m, torch.nn.Linear)]
    parameters = sum(p.numel() for network in networks for p in network.parameters())
    units = sum(layer.out_features for layer in layers)
    steps = episodes_per_update * LEAST_STEPS_PER_EPISODE
    need = parameters * BYTES_PER_PARAMETER + steps * units * BYTES_PER_ACTIVATION
    memory = _free_memory()
    if memory is None or need <= memory:
        return
    policy_layers = [m for m in probe.policy.modules() if isinstance(m, torch.nn.Linear)]
    largest = max(layers, key=lambda layer: layer.weight.numel())
    cause = f"hidden_sizes {list(config.hidden_sizes)}: give smaller --hidden-sizes"
    if largest is policy_layers[-1]:
        cause = f"the action space {action_space}, one output per action: give the environment fewer actions"
    elif largest is policy_layers[0] and largest.in_features > largest.out_features:
        cause = f"the observation space {observation_space}, one input per number: give smaller observations"
    raise ValueError(
        f"{parameters:,} parameters and their activations need about {need / 1e9:,.0f} GB to train, more than "
        f"the {memory / 1e9:,.0f} GB this machine has free; the size comes from {cause}"
    )


def _free_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux's MemAvailable), else the physical memory; None
    where neither can be asked (Windows: the allocation decides)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
