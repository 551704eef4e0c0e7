"""The public REINFORCE agent: act, learn from a batch of episodes, save and load.

It needs the observation and action spaces, never an environment, so it drops into any loop.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from agents.reinforce import (
    ACTIVATIONS,
    NORMALIZATIONS,
    Actor,
    EpisodeBatch,
    Normalization,
    Policy,
    discounted_returns,
    episode_ids,
    normalize_advantages,
    policy_gradient_loss,
)

CHECKPOINT_FORMAT = "reinforce-agent/1"


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or does not fit what it is loaded for."""


@dataclass
class AgentConfig:
    """Hyper-parameters of the agent (the environment-side settings live in ``train.py``)."""

    hidden_sizes: tuple[int, ...] = field(default=(64,), metadata={"help": "units of each hidden layer"})
    activation: str = field(default="tanh", metadata={"help": "hidden activation", "choices": tuple(ACTIVATIONS)})
    learning_rate: float = field(default=0.03, metadata={"help": "Adam learning rate"})
    gamma: float = field(default=0.99, metadata={"help": "discount factor of the returns"})
    normalize: Normalization = field(
        default="batch", metadata={"help": "advantage normalisation: over the batch, per episode, or none"}
    )
    normalize_observations: bool = field(
        default=True, metadata={"help": "scale the policy's inputs by running statistics, updated after each update"}
    )
    passes: int = field(
        default=1, metadata={"help": "gradient passes over each batch (1: textbook; more reuse slightly stale data)"}
    )
    minibatch_size: int | None = field(
        default=None, metadata={"help": "steps per gradient step within a pass (none: the whole batch)"}
    )

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(int(size) for size in self.hidden_sizes)
        if any(size < 1 for size in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be positive, got {list(self.hidden_sizes)}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}: choose one of {', '.join(ACTIVATIONS)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"unknown normalize {self.normalize!r}: choose one of {', '.join(NORMALIZATIONS)}")
        if self.passes < 1:
            raise ValueError(f"passes must be >= 1, got {self.passes}")
        if self.minibatch_size is not None and self.minibatch_size < 1:
            raise ValueError(f"minibatch_size must be >= 1 or none, got {self.minibatch_size}")


def check_spaces(observation_space: spaces.Space, action_space: spaces.Space) -> None:
    """Raise a one-line ``ValueError`` unless the agent supports these spaces."""
    if not isinstance(observation_space, spaces.Box):
        raise ValueError(f"unsupported observation space {observation_space}: the agent supports Box observations")
    if not isinstance(action_space, spaces.Discrete) or action_space.n < 2:
        raise ValueError(f"unsupported action space {action_space}: the agent supports Discrete(n) actions, n >= 2")


def space_to_dict(space: spaces.Space) -> dict[str, Any]:
    """A space as plain data, so that checkpoints load with ``weights_only=True``."""
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "low": space.low.tolist(),
            "high": space.high.tolist(),
            "dtype": str(space.dtype),
        }
    raise ValueError(f"cannot store space {space}")


def space_from_dict(data: dict[str, Any]) -> spaces.Space:
    if data["type"] == "Discrete":
        return spaces.Discrete(data["n"], start=data["start"])
    if data["type"] == "Box":
        dtype = np.dtype(data["dtype"])
        return spaces.Box(np.array(data["low"], dtype=dtype), np.array(data["high"], dtype=dtype), dtype=dtype)
    raise CheckpointError(f"unknown space type {data['type']!r} in checkpoint")


def save_atomically(state: dict[str, Any], path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, flushed and synced, then renamed over
    ``path``: a crash at any point leaves either the old file or the new one, never half of one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            torch.save(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_safely(path: str | os.PathLike) -> Any:
    """``torch.load(weights_only=True)``, which never runs code from the file, with one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: give the path of a model.pt or of a run folder")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # an untrusted file can fail the unpickler in many ways; all mean "unreadable"
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"{path} is not a readable checkpoint (corrupt, truncated or unsafe: {reason[:100]})"
        ) from None


class ReinforceAgent:
    """Vanilla policy gradient (REINFORCE, Williams 1992) for discrete actions.

    >>> agent = ReinforceAgent(env.single_observation_space, env.single_action_space, AgentConfig())
    >>> actions = agent.act(observations)             # sample from the policy
    >>> stats = agent.update(batch)                   # one Adam step on a batch of complete episodes
    >>> agent.save("model.pt"); agent = ReinforceAgent.load("model.pt")

    Args:
        observation_space: a ``Box``; observations are flattened.
        action_space: ``Discrete(n)``, n >= 2.
        config: the hyper-parameters.
        seed: seeds the initial weights and the agent's own random generator (sampling, shuffling), so
            that the same seed gives the same agent whatever the global random state.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        config: AgentConfig | None = None,
        seed: int | None = None,
    ) -> None:
        check_spaces(observation_space, action_space)
        self.observation_space = observation_space
        self.action_space = action_space
        self.config = config or AgentConfig()
        self.obs_dim = int(np.prod(observation_space.shape))
        self._action_start = int(action_space.start)
        self.rng = np.random.default_rng(seed)
        with torch.random.fork_rng():
            if seed is not None:
                torch.manual_seed(seed)
            self.policy = Policy(
                self.obs_dim,
                int(action_space.n),
                self.config.hidden_sizes,
                self.config.activation,
                self.config.normalize_observations,
            )
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.config.learning_rate)
        self._actor: Actor | None = None
        self._actor_key: tuple = ()
        self._policy_tensors = [*self.policy.parameters(), *self.policy.buffers()]

    def _observations(self, observations: np.ndarray | torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(observations, dtype=torch.float32).reshape(-1, self.obs_dim)

    def act(
        self,
        observations: np.ndarray,
        deterministic: bool = False,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """Actions for one observation or a batch of them (numpy in, numpy out).

        Sampling uses ``rng`` if given, else the agent's own; ``deterministic`` takes the most likely
        action instead. Acting runs on a numpy snapshot of the policy (see ``Actor``), taken again
        whenever a parameter or statistic of the policy has changed.
        """
        single = np.shape(observations) == self.observation_space.shape
        actions = self.actor()(np.reshape(observations, (-1, self.obs_dim)), deterministic, rng or self.rng)
        if self._action_start:
            actions = actions + self._action_start
        return actions[0] if single else actions

    def actor(self) -> Actor:
        """The numpy snapshot of the current policy, taken again after any in-place change of its
        tensors (an optimizer step, ``load_state_dict``, a normaliser update bump their ``_version``)."""
        key = tuple(t._version for t in self._policy_tensors)
        if key != self._actor_key:
            self._actor, self._actor_key = Actor(self.policy), key
        return self._actor

    def loss(self, observations: torch.Tensor, actions: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
        """The REINFORCE loss on flat per-step tensors (see ``policy_gradient_loss``)."""
        distribution = self.policy(self._observations(observations))
        return policy_gradient_loss(distribution.log_prob(actions - self._action_start), advantages)

    def advantages(self, batch: EpisodeBatch) -> torch.Tensor:
        """Discounted returns of every step of ``batch``, normalised as configured."""
        ends = batch.ends
        returns = discounted_returns(batch.rewards, self.config.gamma, ends)
        ids = episode_ids(ends) if self.config.normalize == "episode" else None
        return normalize_advantages(returns, batch.valid, self.config.normalize, ids)

    def update(self, batch: EpisodeBatch) -> dict[str, float]:
        """Learn from a batch of complete episodes; returns loss, entropy, gradient norm and the
        number of gradient steps skipped because their loss or gradient was not finite.

        By default this is one gradient step on the whole batch, the textbook update. With ``passes`` >
        1 or a ``minibatch_size``, it makes several steps over shuffled minibatches of the same data
        (advantages normalised once, over the whole batch); the statistics are then means over the steps.
        With ``normalize_observations``, the batch's observations update the input statistics after
        the gradient steps, so that the steps use the statistics the actions were sampled with.
        """
        valid = batch.valid
        advantages = self.advantages(batch)[valid]
        observations = self._observations(batch.observations[valid])
        actions = batch.actions[valid] - self._action_start
        n_steps = len(advantages)
        size = n_steps if self.config.minibatch_size is None else min(self.config.minibatch_size, n_steps)
        totals = {"policy_loss": 0.0, "entropy": 0.0, "grad_norm": 0.0}
        gradient_steps = skipped = 0
        for _ in range(self.config.passes):
            if size == n_steps:
                minibatches = [(observations, actions, advantages)]
            else:
                order = torch.from_numpy(self.rng.permutation(n_steps))
                minibatches = [(observations[idx], actions[idx], advantages[idx]) for idx in order.split(size)]
            for minibatch in minibatches:
                stats, applied = self._gradient_step(*minibatch)
                for name, value in stats.items():
                    totals[name] += value
                gradient_steps += 1
                skipped += not applied
        if self.config.normalize_observations and not skipped:
            self.policy.update_normalizer(observations)
        return {name: total / gradient_steps for name, total in totals.items()} | {"skipped_steps": skipped}

    def _gradient_step(
        self, observations: torch.Tensor, actions: torch.Tensor, advantages: torch.Tensor
    ) -> tuple[dict[str, float], bool]:
        """One Adam step, unless the loss or the gradient is not finite: then the weights stay as they
        are and the step reports ``False``."""
        distribution = self.policy(observations)
        loss = policy_gradient_loss(distribution.log_prob(actions), advantages)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), float("inf"))
        applied = bool(torch.isfinite(loss) and torch.isfinite(grad_norm))
        if applied:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        stats = {
            "policy_loss": loss.item(),
            "entropy": distribution.entropy().mean().item(),
            "grad_norm": grad_norm.item(),
        }
        return stats, applied

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to act and to continue training, as tensors and plain Python data."""
        return {
            "format": CHECKPOINT_FORMAT,
            "config": asdict(self.config),
            "observation_space": space_to_dict(self.observation_space),
            "action_space": space_to_dict(self.action_space),
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": self.rng.bit_generator.state,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the agent to ``path`` atomically: a crash mid-write leaves any older file intact."""
        save_atomically(self.state_dict(), path)

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> ReinforceAgent:
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"not a {CHECKPOINT_FORMAT} checkpoint")
        try:
            known = {f.name for f in fields(AgentConfig)}
            config = AgentConfig(**{k: v for k, v in state["config"].items() if k in known})
            agent = cls(space_from_dict(state["observation_space"]), space_from_dict(state["action_space"]), config)
            agent.policy.load_state_dict(state["policy"])
            agent.optimizer.load_state_dict(state["optimizer"])
            agent.rng.bit_generator.state = state["rng"]
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise CheckpointError(f"checkpoint does not fit the agent ({type(error).__name__}: {error})") from None
        return agent

    @classmethod
    def load(cls, path: str | os.PathLike) -> ReinforceAgent:
        """Load an agent saved by ``save``; never runs code from the file (``weights_only=True``)."""
        state = load_safely(path)
        try:
            return cls.from_state_dict(state)
        except CheckpointError as error:
            raise CheckpointError(f"{path}: {error}") from None
