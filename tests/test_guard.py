"""The update's guards. Against non-finite updates: a batch, a step or a refresh of the input statistics that
would leave anything non-finite is undone, the weights and Adam's state as they were. Against steps too large:
``target_kl`` scales a step back until the policy's mean KL divergence from the sampling one is within it."""

import copy
import math

import numpy as np
import pytest
import torch
from gymnasium import spaces

from agents import (
    AgentConfig,
    EpisodeBatch,
    ReinforceAgent,
)


@pytest.mark.parametrize("poison", ["reward", "observation"])
def test_a_non_finite_batch_never_reaches_the_weights(poison):
    agent = ReinforceAgent(spaces.Box(-1, 1, (3,)), spaces.Discrete(2), AgentConfig(normalize_observations=True), 0)
    rng = np.random.default_rng(4)
    obs, rewards = rng.normal(size=(6, 3)), rng.normal(size=6)
    if poison == "reward":
        rewards[2] = np.nan
    else:
        obs[4, 1] = np.inf
    before = {k: v.clone() for k, v in agent.policy.state_dict().items()}
    stats = agent.update(EpisodeBatch.from_episodes([(obs, [0, 1, 1, 0, 1, 0], rewards)]))
    assert stats["skipped_steps"] == agent.config.passes == 2  # every pass's step (the default: 2 passes)
    after = agent.policy.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and input statistics alike
    assert not agent.optimizer.state  # Adam's moments were not touched either


def adam_states(optimizer):
    return [{k: v.clone() for k, v in state.items()} for state in optimizer.state.values()]


@pytest.mark.parametrize("network", ["policy", "value"])
@pytest.mark.parametrize("learning_rate", [1e38, math.inf])
def test_a_step_that_would_leave_a_weight_or_adams_state_non_finite_is_undone(network, learning_rate):
    """A finite loss and gradient, yet the step overflows: at 1e38 torch refuses Adam's float32 step size
    half-way through the parameters, at infinity (set on the optimizer, past the config's check) the
    weights become NaN. Every weight and Adam moment of both networks is put back."""
    agent = ReinforceAgent(spaces.Box(-1, 1, (3,)), spaces.Discrete(2), AgentConfig(baseline=True), seed=0)
    rng = np.random.default_rng(4)
    batch = EpisodeBatch.from_episodes([(rng.normal(size=(6, 3)), [0, 1, 1, 0, 1, 0], rng.normal(size=6))])
    agent.update(batch)  # a good step first, so that Adam has moments to put back
    (agent.optimizer if network == "policy" else agent.value_optimizer).param_groups[0]["lr"] = learning_rate
    networks = {"policy": agent.policy, "value": agent.value}
    before = {name: {k: v.clone() for k, v in net.state_dict().items()} for name, net in networks.items()}
    moments = [adam_states(agent.optimizer), adam_states(agent.value_optimizer)]
    stats = agent.update(batch)
    assert stats["skipped_steps"] == agent.config.passes  # every pass's step overflows
    for name, net in networks.items():
        assert all(torch.equal(before[name][k], v) for k, v in net.state_dict().items()), name
    for saved, optimizer in zip(moments, (agent.optimizer, agent.value_optimizer)):
        now = adam_states(optimizer)
        assert len(now) == len(saved) and all(torch.equal(a[k], b[k]) for a, b in zip(saved, now) for k in a)
    assert np.isfinite(agent.numpy_policy().outputs(np.zeros((1, 3), np.float32))).all()


def test_input_statistics_that_would_overflow_the_first_layer_are_undone():
    """Observations near float32's limit train a finite step, but folding their mean into the first layer
    (so that the policy keeps computing the same function) would overflow its biases."""
    config = AgentConfig(init="default")  # PyTorch's initial weights: the folded mean overflows their biases
    agent = ReinforceAgent(spaces.Box(-np.inf, np.inf, (4,)), spaces.Discrete(2), config, 0)
    batch = EpisodeBatch.from_episodes([(np.full((6, 4), 3.3e38), [0, 1, 1, 0, 1, 0], np.arange(6.0))])
    stats = agent.update(batch)
    assert stats["skipped_steps"] == 1
    assert all(torch.isfinite(v).all() for v in agent.policy.state_dict().values())
    assert agent.policy.normalizer.count == 0  # the statistics were not refreshed


def kl_from(sampling, agent, observations):
    """The mean KL divergence from the ``sampling`` policy to the agent's, at the batch's states, by definition:
    sum over actions of p log(p / q) (two actions: a Bernoulli on action 1)."""
    inputs = torch.as_tensor(observations, dtype=torch.float32)
    with torch.no_grad():
        p, q = (torch.sigmoid(policy.net(policy.normalizer(inputs)).squeeze(-1)) for policy in (sampling, agent.policy))
    p, q = p.double(), q.double()
    return float((p * torch.log(p / q) + (1 - p) * torch.log((1 - p) / (1 - q))).mean())


def kl_batch(seed=4):
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(40, 3)).astype(np.float32)
    episodes = [(part, rng.integers(0, 2, len(part)), rng.normal(size=len(part))) for part in (obs[:25], obs[25:])]
    return obs, EpisodeBatch.from_episodes(episodes)


@pytest.mark.parametrize("target", [1e-3, 1e-4])
def test_a_step_beyond_the_kl_target_is_scaled_back_and_ends_the_passes(target):
    config = AgentConfig(learning_rate=0.3, passes=4, target_kl=target, normalize_observations=False)
    agent = ReinforceAgent(spaces.Box(-5, 5, (3,)), spaces.Discrete(2), config, seed=1)
    sampling = copy.deepcopy(agent.policy)
    observations, batch = kl_batch()
    stats = agent.update(batch)
    kl = kl_from(sampling, agent, observations)
    assert 0 < kl <= target and stats["kl"] == pytest.approx(kl, rel=1e-4)
    assert kl > target / 2.5  # halved until within: no smaller than the halving needs (KL ~ step squared)
    assert all(state["step"] == 1 for state in agent.optimizer.state.values())  # one Adam step, no more passes


def test_a_step_within_the_kl_target_is_kept_whole():
    observations, batch = kl_batch()
    free = ReinforceAgent(spaces.Box(-5, 5, (3,)), spaces.Discrete(2), AgentConfig(), seed=1)
    limited = ReinforceAgent(spaces.Box(-5, 5, (3,)), spaces.Discrete(2), AgentConfig(target_kl=10.0), seed=1)
    sampling = copy.deepcopy(limited.policy)
    free.update(batch)
    stats = limited.update(batch)
    for name, tensor in free.policy.state_dict().items():
        assert torch.equal(tensor, limited.policy.state_dict()[name]), name
    assert stats["kl"] == pytest.approx(kl_from(sampling, limited, observations), rel=1e-4)


@pytest.mark.parametrize("target", [0.0, -1.0, math.inf, math.nan])
def test_a_kl_target_must_be_positive_and_finite(target):
    with pytest.raises(ValueError, match="target_kl must be > 0 and finite"):
        AgentConfig(target_kl=target)
