"""Evaluating an agent during and after training, and deciding when the environment is solved."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
from gymnasium.vector import VectorEnv

from agents import ReinforceAgent
from envs import EnvConfig, evaluate
from training.seeding import BEST_EVALUATION, EVALUATION, SAMPLED_EVALUATION, derive_seed
from training.settings import Config


def target_return(config: Config, env: EnvConfig | None = None) -> float | None:
    """The mean greedy return that counts as solved: ``--target-return``, else the environment's
    ``reward_threshold`` (475 for CartPole-v1) when the episodes keep their registered time limit, else
    none. A threshold belongs to its limit: at 200 steps CartPole cannot reach 475, and Acrobot cut at 50
    steps would "solve" at once.

    :param config: the run's settings (``target_return``, ``env``, ``max_episode_steps``).
    :param env: the run's environment, when it is not ``config``'s id (an unregistered one has no threshold).
    :return: the target, or None when there is none.
    """
    if config.target_return is not None:
        return config.target_return
    spec = (env or config.env_config()).spec
    if spec is None:  # an environment of one's own class, unregistered
        return None
    return spec.reward_threshold if config.max_episode_steps in (None, spec.max_episode_steps) else None


def no_target_reason(config: Config, env: EnvConfig | None = None) -> str | None:
    """Why a run has no target (said at its start), or None when it has one."""
    if target_return(config, env) is not None:
        return None
    env = env or config.env_config()
    spec = env.spec
    if spec is None or spec.reward_threshold is None:
        return f"no target: {env.name} has no reward_threshold; give --target-return R for one"
    return (
        f"no target: {env.name}'s reward_threshold {spec.reward_threshold:g} is for its "
        f"{spec.max_episode_steps}-step episodes, not --max-episode-steps {config.max_episode_steps}; "
        "give --target-return R for one"
    )


def solves(returns: np.ndarray, target: float | None) -> bool:
    """Whether an evaluation's returns reach the target: their mean, over every episode, is at least ``target``.

    :param returns: the returns of the evaluation's episodes.
    :param target: the mean return that counts as solved (None: nothing solves, see ``target_return``).
    """
    return target is not None and float(np.mean(returns)) >= target


@dataclass
class Evaluation:
    """One check: the returns of the greedy and of the sampled episodes, at ``env_steps``."""

    env_steps: int
    greedy: np.ndarray
    sampled: np.ndarray


class Evaluator:
    """Evaluation episodes on environments of their own, each evaluation seeded afresh (environments
    and sampling) from the run's seed, so that evaluating, however often, never changes training. The
    greedy and the sampled evaluations are counted on streams of their own.

    :param config: the run's settings (``eval_episodes``, ``eval_every_steps``, seed).
    :param env: the run's environment (default: ``config``'s).
    """

    def __init__(self, config: Config, env: EnvConfig | None = None) -> None:
        self.config, self.env_config = config, env or config.env_config()
        self.next_check = config.eval_every_steps
        self.evaluations = {True: 0, False: 0}  # made so far, greedy (deterministic) and sampled
        self.last: Evaluation | None = None

    @functools.cached_property
    def env(self) -> VectorEnv:  # made on first use: under torchrun only the main worker evaluates
        env = self.env_config
        if env.vectorization == "async":  # one environment per episode: not a process each (100 by default)
            env = dataclasses.replace(env, vectorization="sync")  # the same episodes as async (tested)
        return env.make_vector(self.config.eval_episodes)

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
        stream = EVALUATION if deterministic else SAMPLED_EVALUATION
        seed = derive_seed(self.config.seed, stream, self.evaluations[deterministic])
        self.evaluations[deterministic] += 1
        return self._episodes(agent, deterministic, seed)

    def reevaluate(self, agent: ReinforceAgent) -> np.ndarray:
        """The greedy returns of ``eval_episodes`` fresh episodes, on a stream of their own: the best check's
        agent measured again, since a best chosen among noisy checks is an optimistic estimate."""
        return self._episodes(agent, True, derive_seed(self.config.seed, BEST_EVALUATION))

    def _episodes(self, agent: ReinforceAgent, deterministic: bool, seed: int) -> np.ndarray:
        """The returns of ``eval_episodes`` episodes, environments and sampling seeded from ``seed``."""
        rng, limit = np.random.default_rng(seed), self.env_config.time_limit()
        return evaluate(agent, self.env, self.config.eval_episodes, deterministic, rng, seed, limit)

    def check(self, agent: ReinforceAgent, env_steps: int) -> tuple[Evaluation, bool]:
        """The greedy and the sampled evaluations of the agent at ``env_steps``, and whether they are new:
        a check already made at this step is given again (one evaluation per step: the final one after a
        solving check is that check)."""
        if self.last is not None and self.last.env_steps == env_steps:
            return self.last, False
        self.last = Evaluation(env_steps, self(agent), self(agent, deterministic=False))
        return self.last, True

    def state_dict(self) -> dict:
        """The schedule, the counts and the last check, for the run's checkpoint."""
        last = self.last and [self.last.env_steps, self.last.greedy.tolist(), self.last.sampled.tolist()]
        return {
            "next_check": self.next_check,
            "greedy": self.evaluations[True],
            "sampled": self.evaluations[False],
            "last": last,
        }

    def load_state_dict(self, state: dict | list) -> None:
        if isinstance(state, list):  # a checkpoint of the version with one stream: [greedy evaluations, next check]
            state = {"greedy": state[0], "sampled": 0, "next_check": state[1], "last": None}
        self.next_check = int(state["next_check"])
        self.evaluations = {True: int(state["greedy"]), False: int(state["sampled"])}
        last = state["last"]
        self.last = last and Evaluation(int(last[0]), np.asarray(last[1]), np.asarray(last[2]))

    def close(self) -> None:
        if "env" in self.__dict__:
            self.env.close()
