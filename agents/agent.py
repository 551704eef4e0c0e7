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

from agents.distributed import all_sum, world_size
from agents.reinforce import (
    ACTIVATIONS,
    NORMALIZATIONS,
    Actor,
    EpisodeBatch,
    Normalization,
    Policy,
    discounted_returns,
    episode_ids,
    mlp,
    moments,
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
    baseline: bool = field(
        default=False,
        metadata={"help": "subtract a learnt state value V(s) from the returns (REINFORCE with baseline)"},
    )
    value_learning_rate: float = field(default=0.01, metadata={"help": "Adam learning rate of the baseline V(s)"})
    entropy_coef: float = field(default=0.0, metadata={"help": "weight of the entropy bonus in the loss"})
    max_grad_norm: float | None = field(
        default=None, metadata={"help": "clip each network's gradient to this norm (none: no clipping)"}
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
        if not self.value_learning_rate > 0:
            raise ValueError(f"value_learning_rate must be > 0, got {self.value_learning_rate}")
        if not self.entropy_coef >= 0:
            raise ValueError(f"entropy_coef must be >= 0, got {self.entropy_coef}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0 or none, got {self.max_grad_norm}")


def check_spaces(observation_space: spaces.Space, action_space: spaces.Space) -> None:
    """Raise a one-line ``ValueError`` unless the agent supports these spaces."""
    if not isinstance(observation_space, (spaces.Box, spaces.Discrete)):
        raise ValueError(
            f"unsupported observation space {observation_space}: the agent supports Box (flattened) and "
            "Discrete (one-hot) observations"
        )
    supported = "Discrete(n) with n >= 2, or Box"
    if isinstance(action_space, spaces.Discrete) and action_space.n < 2:
        raise ValueError(f"unsupported action space {action_space}: the agent supports {supported}")
    if not isinstance(action_space, (spaces.Box, spaces.Discrete)):
        raise ValueError(f"unsupported action space {action_space}: the agent supports {supported}")


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
        self._one_hot = isinstance(observation_space, spaces.Discrete)
        self.obs_dim = int(observation_space.n) if self._one_hot else int(np.prod(observation_space.shape))
        self._continuous = isinstance(action_space, spaces.Box)
        self._action_start = 0 if self._continuous else int(action_space.start)
        self.rng = np.random.default_rng(seed)
        config = self.config
        with torch.random.fork_rng():
            if seed is not None:
                torch.manual_seed(seed)
            self.policy = Policy(
                self.obs_dim,
                None if self._continuous else int(action_space.n),
                config.hidden_sizes,
                config.activation,
                config.normalize_observations,
                action_dim=int(np.prod(action_space.shape)) if self._continuous else None,
            )
            # the baseline V(s) reads the policy's normalised inputs
            self.value = mlp(self.obs_dim, 1, config.hidden_sizes, config.activation) if config.baseline else None
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.learning_rate)
        if self.value is not None:
            self.value_optimizer = torch.optim.Adam(self.value.parameters(), lr=config.value_learning_rate)
        self._actor: Actor | None = None
        self._actor_key: tuple = ()
        self._policy_tensors = [*self.policy.parameters(), *self.policy.buffers()]

    def _observations(self, observations: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Observations as the policy's flat float inputs (Discrete ones one-hot)."""
        if self._one_hot:
            index = torch.as_tensor(observations).long().reshape(-1) - int(self.observation_space.start)
            return torch.nn.functional.one_hot(index, self.obs_dim).float()
        return torch.as_tensor(observations, dtype=torch.float32).reshape(-1, self.obs_dim)

    def _numpy_observations(self, observations: np.ndarray) -> np.ndarray:
        if self._one_hot:
            index = np.asarray(observations).reshape(-1) - int(self.observation_space.start)
            return np.eye(self.obs_dim, dtype=np.float32)[index]
        return np.reshape(observations, (-1, self.obs_dim))

    def _policy_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """Actions as the policy's distribution scores them: indices from 0, or flat float vectors."""
        if self._continuous:
            return actions.float().reshape(-1, self.policy.net[-1].out_features)
        return actions.reshape(-1) - self._action_start

    def act(
        self,
        observations: np.ndarray,
        deterministic: bool = False,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """Actions for one observation or a batch of them (numpy in, numpy out), inside the action
        space: sampled with ``rng`` if given, else with the agent's own generator, or the most likely
        ones (the Gaussian's mean) if ``deterministic``."""
        return self.sample(observations, deterministic, rng)[0]

    def sample(
        self,
        observations: np.ndarray,
        deterministic: bool = False,
        rng: np.random.Generator | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(actions for the environment, actions to learn from)``: for a Box action space the first
        are clipped to its bounds and the second are the Gaussian's unclipped samples, whose
        log-probabilities the update needs; for Discrete actions they are the same.

        Acting runs on a numpy snapshot of the policy (see ``Actor``), taken again whenever a
        parameter or statistic of the policy has changed.
        """
        single = np.shape(observations) == self.observation_space.shape
        drawn = self.actor()(self._numpy_observations(observations), deterministic, rng or self.rng)
        if self._continuous:
            drawn = drawn.reshape(-1, *self.action_space.shape)
            taken = np.clip(drawn, self.action_space.low, self.action_space.high).astype(self.action_space.dtype)
        else:
            taken = drawn = drawn + self._action_start if self._action_start else drawn
        return (taken[0], drawn[0]) if single else (taken, drawn)

    def check_workers(self, processes: int) -> None:
        """Raise a one-line ``ValueError`` unless the agent can share its updates among ``processes``."""
        if self.config.minibatch_size is not None and processes > 1:  # ranks would take different numbers of steps
            raise ValueError("minibatch_size is not supported with several processes yet: leave it unset")

    def check_fits(self, observation_space: spaces.Space, action_space: spaces.Space, env_id: str) -> None:
        """Raise a one-line ``CheckpointError`` unless the agent was built for these spaces."""
        if (self.observation_space, self.action_space) != (observation_space, action_space):
            raise CheckpointError(
                f"the agent was saved for other spaces than {env_id}'s: use the environment it was trained on"
            )

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
        return policy_gradient_loss(distribution.log_prob(self._policy_actions(actions)), advantages)

    def advantages(self, batch: EpisodeBatch) -> torch.Tensor:
        """The advantage of every step of ``batch``: its discounted return, minus the baseline's value
        of its state if ``baseline``, normalised as configured (zero at invalid steps)."""
        return self._returns_and_advantages(batch)[2]

    def values(self, observations: torch.Tensor) -> torch.Tensor:
        """The baseline's V(s) for flat per-step observations."""
        return self.value(self.policy.normalizer(self._observations(observations))).squeeze(-1)

    def _returns_and_advantages(self, batch: EpisodeBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns, returns minus the baseline's values (the returns without a baseline), and the
        normalised advantages, all as ``(T, N)`` grids."""
        ends, valid = batch.ends, batch.valid
        returns = discounted_returns(batch.rewards, self.config.gamma, ends)
        deltas = returns
        if self.value is not None:
            with torch.no_grad():
                deltas = returns.clone()
                deltas[valid] -= self.values(batch.observations[valid])
        ids = episode_ids(ends) if self.config.normalize == "episode" else None
        return returns, deltas, normalize_advantages(deltas, valid, self.config.normalize, ids, all_sum)

    def update(self, batch: EpisodeBatch) -> dict[str, float]:
        """Learn from a batch of complete episodes; returns loss, entropy, gradient norm (before any
        clipping), with a baseline its value loss and explained variance, and the number of gradient
        steps skipped because a loss or gradient was not finite.

        By default this is one gradient step on the whole batch, the textbook update. With ``passes`` >
        1 or a ``minibatch_size``, it makes several steps over shuffled minibatches of the same data
        (advantages normalised once, over the whole batch); the statistics are then means over the steps.
        With ``normalize_observations``, the batch's observations update the input statistics after
        the gradient steps, so that the steps use the statistics the actions were sampled with.

        Under ``torch.distributed`` each process passes its own episodes and every statistic is global:
        the loss is the mean over the steps of all processes' batches (each process's part weighted by
        its share of the steps), the normalisations use all-reduced sums, and the all-reduced gradient
        gives every process the same step, the one a single process would take on all the episodes.
        """
        valid = batch.valid
        returns, deltas, advantages = (x[valid] for x in self._returns_and_advantages(batch))
        observations = self._observations(batch.observations[valid])
        actions = self._policy_actions(batch.actions[valid])
        extra = {}
        if self.value is not None:  # how much of the returns' variance the baseline explains
            extra["explained_variance"] = (1 - moments(deltas, all_sum)[2] / moments(returns, all_sum)[2]).item()
        n_steps = len(advantages)
        self.check_workers(world_size())
        weight = n_steps / all_sum(torch.tensor(float(n_steps), dtype=torch.float64)).item()
        size = n_steps if self.config.minibatch_size is None else min(self.config.minibatch_size, n_steps)
        totals: dict[str, float] = {}
        gradient_steps = skipped = 0
        for _ in range(self.config.passes):
            order = torch.from_numpy(self.rng.permutation(n_steps)) if size < n_steps else None
            for idx in order.split(size) if order is not None else [slice(None)]:
                minibatch = (observations[idx], actions[idx], advantages[idx], returns[idx])
                stats, applied = self._gradient_step(*minibatch, weight)
                for name, value in stats.items():
                    totals[name] = totals.get(name, 0.0) + value
                gradient_steps += 1
                skipped += not applied
        if self.config.normalize_observations and not skipped:
            self.policy.update_normalizer(observations, [self.value[0]] if self.value is not None else [], all_sum)
        means = {name: total / gradient_steps for name, total in totals.items()}
        return means | extra | {"skipped_steps": skipped}

    def _gradient_step(
        self,
        observations: torch.Tensor,
        actions: torch.Tensor,
        advantages: torch.Tensor,
        returns: torch.Tensor,
        weight: float = 1.0,
    ) -> tuple[dict[str, float], bool]:
        """One Adam step of the policy (and of the baseline), unless a loss or a gradient is not
        finite: then no weight moves and the step reports ``False``. ``weight`` is this process's share
        of the steps of all processes (1 for one process)."""
        distribution = self.policy(observations)
        entropy = distribution.entropy().mean() * weight
        pg_loss = policy_gradient_loss(distribution.log_prob(actions), advantages) * weight
        loss = pg_loss - self.config.entropy_coef * entropy
        losses, networks, optimizers = [loss], [self.policy], [self.optimizer]
        if self.value is not None:
            predicted = self.value(self.policy.normalizer(observations)).squeeze(-1)
            losses.append(torch.nn.functional.mse_loss(predicted, returns) * weight)
            networks.append(self.value)
            optimizers.append(self.value_optimizer)
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        sum(losses).backward()  # the networks share no parameter: each gets its own loss's gradient
        limit = self.config.max_grad_norm or float("inf")
        norms = []
        for network in networks:
            parameters = [p for p in network.parameters() if p.grad is not None]
            if world_size() > 1:
                flat = all_sum(torch.cat([p.grad.reshape(-1) for p in parameters]))
                for p, g in zip(parameters, flat.split([p.numel() for p in parameters])):
                    p.grad.copy_(g.view_as(p))
            norms.append(torch.nn.utils.clip_grad_norm_(parameters, limit))
        totals = [all_sum(x.detach().clone()) for x in losses]
        applied = all(bool(torch.isfinite(x)) for x in [*totals, *norms])
        for optimizer in optimizers:
            if applied:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        stats = {"policy_loss": totals[0].item(), "entropy": all_sum(entropy.detach()).item()}
        stats["grad_norm"] = norms[0].item()
        if self.value is not None:
            stats["value_loss"] = totals[1].item()
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
        } | (
            {"value": self.value.state_dict(), "value_optimizer": self.value_optimizer.state_dict()}
            if self.value is not None
            else {}
        )

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
            if agent.value is not None:
                agent.value.load_state_dict(state["value"])
                agent.value_optimizer.load_state_dict(state["value_optimizer"])
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
