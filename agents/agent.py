"""``ReinforceAgent``: act, learn from a batch of complete episodes, save and load.

It needs the observation and action spaces, never an environment, so it drops into any loop.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from agents.batch import EpisodeBatch, check_one_per_step, episode_ids
from agents.config import AgentConfig, check_entropy_coef, check_seed
from agents.distributed import LOCAL, PROCESS_GROUP, Combiner
from agents.files import CheckpointError, agent_from_state, agent_state, load_safely, save_atomically
from agents.guard import apply_or_undo, limit_kl, step_or_undo
from agents.network import initialize_orthogonally, mlp
from agents.numpy_policy import Actor, NumpyPolicy
from agents.reinforce import (
    Moments,
    Policy,
    discounted_returns,
    group_moments,
    normalize_advantages,
    reinforce_loss,
)
from agents.spaces import (
    check_spaces,
    check_step_actions,
    check_step_observations,
    input_size,
    is_one_observation,
    observation_encoder,
)


class ReinforceAgent:
    """Vanilla policy gradient (REINFORCE, Williams 1992), with an optional learnt baseline.

    >>> agent = ReinforceAgent(env.single_observation_space, env.single_action_space, AgentConfig())
    >>> actions = agent.act(observations)             # sample from the policy
    >>> stats = agent.update(batch)                   # `passes` Adam steps on a batch of complete episodes
    >>> agent.save("model.pt"); agent = ReinforceAgent.load("model.pt")

    :param observation_space: a ``Box`` (observations are flattened) or a ``Discrete`` (one-hot).
    :param action_space: ``Discrete(n)`` with n >= 2 (a Bernoulli head for 2, else a Categorical), or a
        ``Box`` (a diagonal Gaussian; the environment gets its samples clipped to the bounds, or squashed
        into them: ``AgentConfig.action_bound``).
    :param config: the hyper-parameters (default: ``AgentConfig()``).
    :param seed: seeds the initial weights and the agent's own random generator (sampling, shuffling), so
        that the same seed gives the same agent whatever the global random state.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        config: AgentConfig | None = None,
        seed: int | None = None,
    ) -> None:
        config = config or AgentConfig()
        check_spaces(observation_space, action_space, config.action_bound)
        self.observation_space = observation_space
        self.action_space = action_space
        self.config = config
        self.obs_dim = input_size(observation_space)
        self.encode = observation_encoder(observation_space)  # the one encoder, for acting and learning
        self.rng = np.random.default_rng(check_seed(seed))
        continuous = isinstance(action_space, spaces.Box)
        with torch.random.fork_rng():
            if seed is not None:
                torch.manual_seed(seed)
            self.policy = Policy(
                self.obs_dim,
                None if continuous else int(action_space.n),
                config.hidden_sizes,
                config.activation,
                config.normalize_observations,
                action_dim=int(np.prod(action_space.shape)) if continuous else None,
                log_std_init=config.log_std_init,
            )
            # the baseline V(s) reads the policy's normalised inputs
            self.value = mlp(self.obs_dim, 1, config.hidden_sizes, config.activation) if config.baseline else None
            if config.init == "orthogonal":  # a near-uniform first policy
                initialize_orthogonally(self.policy.net, 0.01)
                if self.value is not None:
                    initialize_orthogonally(self.value, 1.0)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.learning_rate)
        if self.value is not None:
            self.value_optimizer = torch.optim.Adam(self.value.parameters(), lr=config.value_learning_rate)
        self._networks = [self.policy, self.value] if self.value is not None else [self.policy]  # what a step changes
        self.optimizers = [self.optimizer, self.value_optimizer] if self.value is not None else [self.optimizer]
        self.actor = Actor(self.policy, action_space, config.action_bound)  # acting's numpy path, unchecked

    # ----------------------------------------------------------------------------- acting
    def act(
        self, observations: np.ndarray, deterministic: bool = False, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Actions inside the action space for one observation or a batch of them (numpy in, numpy out).

        :param observations: one observation of the observation space's shape, or a batch ``(n, *shape)`` of
            them; any other shape is refused with a one-line ``ValueError`` naming the shapes it takes.
        :param deterministic: the most likely actions (the Gaussian's mean, clipped or squashed) instead of
            samples.
        :param rng: the generator to sample with (default: the agent's own).
        """
        return self.sample(observations, deterministic, rng)[0]

    def sample(
        self, observations: np.ndarray, deterministic: bool = False, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(actions for the environment, actions to learn from)``, with ``act``'s parameters. For a Box
        action space the first are clipped to its bounds (or squashed into them) and the second are the
        Gaussian's raw samples, whose log-probabilities the update needs; for Discrete actions they are the
        same."""
        one = is_one_observation(observations, self.observation_space)
        if not np.isfinite(observations).all():  # a NaN would reach the policy as a NaN action, or as action 0
            raise ValueError("observations hold NaN or infinity: the policy has no action for them")
        env_actions, policy_actions = self.sample_unchecked(observations, deterministic, rng)
        return (env_actions[0], policy_actions[0]) if one else (env_actions, policy_actions)

    def sample_unchecked(
        self, observations: np.ndarray, deterministic: bool = False, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``sample`` for a batch ``(n, *observation_shape)``, without checking its shape: for callers whose
        observations have that shape by construction, such as a rollout of a vector environment made for
        the agent's spaces, which calls it at every step."""
        return self.actor(self.encode(observations), deterministic, rng or self.rng)

    def numpy_policy(self) -> NumpyPolicy:
        """The numpy copy of the current policy that acts, taken again after any change of the policy."""
        return self.actor.numpy_policy()

    # ----------------------------------------------------------------------------- learning
    def _inputs(self, observations: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Per-step observations, checked, as the policy's flat float inputs, for learning."""
        observations = torch.as_tensor(observations).detach().cpu().numpy()
        check_step_observations(observations, self.observation_space)
        return torch.from_numpy(self.encode(observations))

    def _policy_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """Per-step actions, checked, as the policy's distribution scores them: indices from 0, or flat floats."""
        check_step_actions(actions, self.action_space)
        if self.actor.continuous:
            return actions.float().reshape(-1, self.policy.head.outputs)
        return actions.reshape(-1) - self.actor.start

    def _values(self, inputs: torch.Tensor) -> torch.Tensor:
        """The baseline's V(s) of encoded inputs (through the policy's input normaliser)."""
        return self.value(self.policy.normalizer(inputs)).squeeze(-1)

    def values(self, observations: torch.Tensor) -> torch.Tensor:
        """The baseline's V(s) for a batch of per-step observations."""
        return self._values(self._inputs(observations))

    def _loss_terms(
        self,
        inputs: torch.Tensor,
        actions: torch.Tensor,
        advantages: torch.Tensor,
        returns: torch.Tensor | None,
        entropy_coef: float | None = None,
    ) -> dict[str, torch.Tensor]:
        """The training forward every loss path uses: the policy (and baseline) on encoded inputs, then
        ``reinforce_loss``'s named terms (the value term when ``returns`` are given), with the entropy bonus
        weighed by ``entropy_coef`` (default: the config's)."""
        values = self._values(inputs) if self.value is not None and returns is not None else None
        coef = self.config.entropy_coef if entropy_coef is None else entropy_coef
        return reinforce_loss(self.policy(inputs), actions, advantages, coef, values, returns)

    def loss(self, observations: torch.Tensor, actions: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
        """The scalar the policy's update minimises on per-step tensors: ``reinforce_loss``'s ``loss``
        (the policy-gradient loss minus the entropy bonus; no value term).

        :param observations: ``(B, *observation_shape)`` observations.
        :param actions: ``(B,)`` actions taken (for Box actions, the raw samples).
        :param advantages: ``(B,)`` advantages, e.g. ``agent.advantages(batch)[batch.valid]``.
        """
        check_one_per_step(observations, actions, advantages)
        return self._loss_terms(self._inputs(observations), self._policy_actions(actions), advantages, None)["loss"]

    def advantages(self, batch: EpisodeBatch) -> torch.Tensor:
        """The advantage of every step of ``batch`` as a ``(T, N)`` grid: its discounted return, minus
        the baseline's value of its state if there is one, normalised as configured (zero at invalid
        steps)."""
        return self._advantages(batch, self._inputs(batch.observations[batch.valid]), LOCAL)[2]

    def _advantages(
        self, batch: EpisodeBatch, inputs: torch.Tensor, combine: Combiner
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns, returns minus the baseline's values (the returns without a baseline), and the
        normalised advantages, all as ``(T, N)`` grids; ``inputs`` are the valid steps' encoded
        observations."""
        valid, normalize, gamma = batch.valid, self.config.normalize, self.config.gamma
        tails = None
        if self.config.bootstrap == "mean":  # an endless future at the batch's mean reward per step
            per_step = combine.moments(Moments.of(batch.rewards[valid])).mean
            tails = torch.where(batch.time_limit_cuts, (per_step / (1 - gamma)).float(), 0.0)
        elif self.config.bootstrap == "value":  # the baseline's value of the state the time limit cut
            tails = torch.zeros_like(batch.rewards)
            with torch.no_grad():
                tails[batch.time_limit_cuts & valid] = self.values(batch.truncation_states())
        returns = discounted_returns(batch.rewards, gamma, batch.ends, tails)
        advantages = returns
        if self.value is not None:
            with torch.no_grad():
                advantages = returns.clone()
                advantages[valid] -= self._values(inputs)
        ids = episode_ids(batch.ends) if normalize == "episode" else None
        # batch moments computed as normalize_advantages computes its own (bitwise), then combined
        moments = combine.moments(group_moments(advantages[valid])) if normalize == "batch" else None
        return returns, advantages, normalize_advantages(advantages, valid, normalize, ids, moments)

    def update(
        self, batch: EpisodeBatch, distributed: bool = False, entropy_coef: float | None = None
    ) -> dict[str, float]:
        """Learn from a batch of complete episodes.

        One gradient step on the whole batch per pass (``passes``: 2 by default, 1 is the textbook
        update), or with a ``minibatch_size`` several steps per pass over shuffled minibatches; the
        advantages are computed and normalised once, over the whole batch. With ``normalize_observations``,
        the batch's observations update the input statistics after the gradient steps, which use the
        statistics the actions were sampled with. A gradient step (or refresh of the statistics) whose
        loss, gradient or result is not finite is skipped or undone. A batch that does not fit the spaces,
        or has no valid step, raises a one-line ``ValueError`` before anything changes.

        :param batch: complete episodes played by the current policy.
        :param distributed: combine the update with every process of the ``torch.distributed`` process
            group, each passing its own episodes (see ``agents.distributed``): every process must call
            ``update`` the same number of times.
        :param entropy_coef: the entropy bonus's weight in this update, for a schedule (default: the config's
            ``entropy_coef``).
        :return: ``policy_loss``, ``entropy``, ``grad_norm`` (the policy's, before clipping), with a baseline
            ``value_loss`` and ``explained_variance``, each a mean over the gradient steps, with ``target_kl``
            ``kl`` (the mean KL divergence from the sampling policy after the last step), and
            ``skipped_steps``, the changes skipped or undone as not finite.
        """
        combine = PROCESS_GROUP if distributed else LOCAL
        if entropy_coef is not None:
            check_entropy_coef(entropy_coef)
        if distributed:
            self.config.check_distributed()
        valid = batch.valid
        if not bool(valid.any()):
            raise ValueError("the batch has no valid step: give at least one step of a complete episode")
        inputs = self._inputs(batch.observations[valid])
        actions = self._policy_actions(batch.actions[valid])
        returns, advantages, normalized = (x[valid] for x in self._advantages(batch, inputs, combine))
        extra = {}
        if self.value is not None:  # how much of the returns' variance the baseline explains
            residual, total = (combine.moments(Moments.of(x)).var for x in (advantages, returns))
            extra["explained_variance"] = (1 - residual / total).item()
        n_steps = len(normalized)
        share = combine.share(n_steps)
        size = n_steps if self.config.minibatch_size is None else min(self.config.minibatch_size, n_steps)
        totals: dict[str, float] = {}
        gradient_steps = skipped = 0
        target = self.config.target_kl
        if target is not None:  # the policy that sampled the batch, which the steps may not move too far from
            with torch.no_grad():
                sampling = self.policy(inputs)
        limited = False
        for _ in range(self.config.passes):
            order = torch.from_numpy(self.rng.permutation(n_steps)) if size < n_steps else None
            for idx in order.split(size) if order is not None else [slice(None)]:
                before = [p.detach().clone() for p in self.policy.parameters()] if target is not None else []
                stats, applied = self._gradient_step(
                    inputs[idx], actions[idx], normalized[idx], returns[idx], share, combine, entropy_coef
                )
                if target is not None:
                    extra["kl"], limited = limit_kl(self.policy, sampling, inputs, before, target, combine)
                for name, value in stats.items():
                    totals[name] = totals.get(name, 0.0) + value
                gradient_steps += 1
                skipped += not applied
                if limited:  # the step reached the target: the batch's remaining passes are skipped
                    break
            if limited:
                break
        if self.config.normalize_observations and not skipped:
            preserve = [self.value[0]] if self.value is not None else []
            refresh = functools.partial(self.policy.update_normalizer, combine.moments(Moments.of(inputs)), preserve)
            skipped += not apply_or_undo(refresh, [self.policy, *preserve])
        means = {name: total / gradient_steps for name, total in totals.items()}
        return means | extra | {"skipped_steps": skipped}

    def _gradient_step(
        self,
        inputs: torch.Tensor,
        actions: torch.Tensor,
        advantages: torch.Tensor,
        returns: torch.Tensor,
        share: float,
        combine: Combiner,
        entropy_coef: float | None,
    ) -> tuple[dict[str, float], bool]:
        """One Adam step of the policy (and of the baseline), unless a loss or a gradient is not finite, or
        the step would leave a weight or Adam's state non-finite: then no weight moves and the step reports
        ``False``. ``share`` weighs this process's loss by its share of all the processes' steps (1 for one)."""
        terms = self._loss_terms(inputs, actions, advantages, returns, entropy_coef)
        terms = {name: term * share for name, term in terms.items()}
        networks, optimizers = self._networks, self.optimizers
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        limit = self.config.max_grad_norm or float("inf")
        norms = []
        for network in networks:
            parameters = [p for p in network.parameters() if p.grad is not None]
            combine.gradients(parameters)
            norms.append(torch.nn.utils.clip_grad_norm_(parameters, limit))
        stats = {name: combine.sum(terms[name].detach().clone()) for name in terms if name != "loss"}
        finite = all(bool(torch.isfinite(x)) for x in [*stats.values(), *norms])
        applied = finite and step_or_undo(networks, optimizers)
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        return {name: value.item() for name, value in stats.items()} | {"grad_norm": norms[0].item()}, applied

    # ----------------------------------------------------------------------------- saving and loading
    def check_fits(self, observation_space: spaces.Space, action_space: spaces.Space, env_id: str) -> None:
        """Raise a one-line ``CheckpointError`` unless the agent was built for these spaces."""
        if (self.observation_space, self.action_space) != (observation_space, action_space):
            raise CheckpointError(
                f"the agent was saved for other spaces than {env_id}'s: use the environment it was trained on"
            )

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to act and to continue training, as tensors and plain Python data (the format
        is ``agents.files``')."""
        return agent_state(self)

    def save(self, path: str | os.PathLike) -> None:
        """Write the agent to ``path`` atomically: a crash mid-write leaves any older file intact."""
        save_atomically(self.state_dict(), path)

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> ReinforceAgent:
        """The agent ``state_dict`` described; a one-line ``CheckpointError`` if it does not fit or is not finite."""
        return agent_from_state(cls, state)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ReinforceAgent:
        """Load an agent saved by ``save``; never runs code from the file (``weights_only=True``)."""
        state = load_safely(path, "a file saved by ReinforceAgent.save, such as the model.pt in a run folder")
        try:
            return cls.from_state_dict(state)
        except CheckpointError as error:
            raise CheckpointError(f"{path}: {error}") from None
