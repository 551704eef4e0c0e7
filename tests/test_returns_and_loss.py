"""The algorithm against definitions and slow references: discounted returns, advantage normalisation, the
loss and its gradient (the guard against non-finite updates: test_guard.py)."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from builders import FiveStepEnv, gaussian_agent
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from agents import (
    AgentConfig,
    EpisodeBatch,
    ReinforceAgent,
    discounted_returns,
    normalize_advantages,
    reinforce_loss,
)
from agents.batch import episode_ids
from envs import collect_episodes


def slow_returns(rewards, gamma):
    """G_t = sum_k gamma^k r_{t+k}, straight from the definition."""
    return [sum(gamma**k * r for k, r in enumerate(rewards[t:])) for t in range(len(rewards))]


def notebook_discount(rewards, gamma):
    """The seed notebook's discount_all_rewards for one episode, indexing bug included."""
    discounted = [rewards[-1]]
    for i in range(len(rewards) - 1):
        discounted.append(rewards[-i + 1] + gamma * discounted[i])
    return discounted[::-1]


@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.95, 1.0])
def test_discounted_returns_match_definition(gamma):
    rng = np.random.default_rng(0)
    for length in range(1, 51):
        rewards = rng.normal(size=length).astype(np.float32)
        got = discounted_returns(torch.from_numpy(rewards), gamma)
        np.testing.assert_allclose(got.numpy(), slow_returns(rewards.tolist(), gamma), rtol=1e-5, atol=1e-5)


def test_notebook_indexing_is_wrong_for_non_constant_rewards():
    rewards = [1.0, 2.0, 3.0, 4.0]
    assert notebook_discount(rewards, 0.9) != pytest.approx(slow_returns(rewards, 0.9))
    assert discounted_returns(torch.tensor(rewards), 0.9).tolist() == pytest.approx(slow_returns(rewards, 0.9))


def random_grid(rng, horizon=40, streams=5):
    """A (T, N) grid where each column holds several episodes of random length, then padding."""
    rewards = rng.normal(size=(horizon, streams)).astype(np.float32)
    ends = np.zeros((horizon, streams), dtype=bool)
    valid = np.zeros((horizon, streams), dtype=bool)
    for n in range(streams):
        t = 0
        while True:
            length = int(rng.integers(1, 12))
            if t + length > horizon - 3:
                break
            valid[t : t + length, n] = True
            ends[t + length - 1, n] = True
            t += length + int(rng.integers(0, 2))  # sometimes a masked reset step between episodes
    return rewards, ends, valid


def episodes_of(rewards, ends, valid):
    """(column, first row, last row) of every episode in the grid."""
    out = []
    for n in range(rewards.shape[1]):
        start = None
        for t in range(rewards.shape[0]):
            if valid[t, n] and start is None:
                start = t
            if ends[t, n] and valid[t, n]:
                out.append((n, start, t))
                start = None
    return out


@pytest.mark.parametrize("gamma", [0.0, 0.9, 1.0])
def test_grid_returns_restart_at_every_episode_end(gamma):
    rewards, ends, valid = random_grid(np.random.default_rng(1))
    got = discounted_returns(torch.from_numpy(rewards), gamma, torch.from_numpy(ends)).numpy()
    episodes = episodes_of(rewards, ends, valid)
    assert len(episodes) > 10
    for n, start, stop in episodes:
        expected = slow_returns(rewards[start : stop + 1, n].tolist(), gamma)
        np.testing.assert_allclose(got[start : stop + 1, n], expected, rtol=1e-5, atol=1e-5)


def test_normalization_modes_against_numpy():
    rng = np.random.default_rng(2)
    rewards, ends, valid = random_grid(rng)
    returns = torch.from_numpy(rewards * 10 + 3)
    valid_t, ends_t = torch.from_numpy(valid), torch.from_numpy(ends)
    values = (rewards * 10 + 3)[valid]

    batch = normalize_advantages(returns, valid_t, "batch").numpy()
    np.testing.assert_allclose(batch[valid], (values - values.mean()) / values.std(), rtol=1e-4, atol=1e-5)
    assert (batch[~valid] == 0).all()

    none = normalize_advantages(returns, valid_t, "none").numpy()
    np.testing.assert_allclose(none[valid], values)

    per_episode = normalize_advantages(returns, valid_t, "episode", episode_ids(ends_t)).numpy()
    for n, start, stop in episodes_of(rewards, ends, valid):
        episode = (rewards * 10 + 3)[start : stop + 1, n]
        if len(episode) < 2:
            expected = np.zeros(1)
        else:
            expected = (episode - episode.mean()) / episode.std()
        np.testing.assert_allclose(per_episode[start : stop + 1, n], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["batch", "episode", "none"])
def test_zero_spread_never_gives_nan(mode):
    # a one-step episode, a constant-return episode (gamma 0), and a batch of a single step
    for rewards, ends in (
        ([[5.0]], [[True]]),
        ([[0.1], [0.1], [0.1]], [[True], [True], [True]]),
        ([[0.0, 0.0], [0.0, 0.0]], [[False, False], [True, True]]),
    ):
        returns = torch.tensor(rewards)
        ends_t = torch.tensor(ends)
        valid = torch.ones_like(ends_t)
        out = normalize_advantages(returns, valid, mode, episode_ids(ends_t))
        assert torch.isfinite(out).all(), (mode, rewards)
        if mode != "none":
            assert out.abs().max() < 1e-6  # nothing to scale by: centred only, so all zero


def test_one_step_episodes_train_without_nan():
    agent = ReinforceAgent(spaces.Box(-1, 1, (3,)), spaces.Discrete(2), AgentConfig(), seed=0)
    batch = EpisodeBatch.from_episodes([(np.ones((1, 3)), [1], [1.0]), (np.zeros((1, 3)), [0], [1.0])])
    stats = agent.update(batch)
    assert all(np.isfinite(v) for v in stats.values())
    assert all(torch.isfinite(p).all() for p in agent.policy.parameters())


@pytest.mark.parametrize("n_actions, normalize", [(2, "batch"), (2, "episode"), (3, "none"), (3, "batch")])
def test_loss_gradient_equals_notebook_per_step_method(n_actions, normalize):
    """One backward() on the batch loss gives the notebook's average of per-step gradients."""
    rng = np.random.default_rng(3)
    agent = ReinforceAgent(
        spaces.Box(-5, 5, (4,)),
        spaces.Discrete(n_actions),
        AgentConfig(hidden_sizes=(16,), normalize=normalize, entropy_coef=0.0),
        0,
    )
    episodes = []
    for length in (7, 1, 12, 4):
        obs = rng.normal(size=(length, 4)).astype(np.float32)
        episodes.append((obs, agent.act(obs), rng.normal(size=length)))
    batch = EpisodeBatch.from_episodes(episodes)
    advantages = agent.advantages(batch)
    valid = batch.valid

    agent.policy.zero_grad()
    agent.loss(batch.observations[valid], batch.actions[valid], advantages[valid]).backward()
    batched = [p.grad.clone() for p in agent.policy.parameters()]

    # the notebook: at every step, the gradient of -log pi(a|s); weight by the advantage; average
    per_step = [torch.zeros_like(p) for p in agent.policy.parameters()]
    steps = 0
    for t, n in zip(*torch.nonzero(valid, as_tuple=True)):
        agent.policy.zero_grad()
        log_prob = agent.policy(batch.observations[t, n][None]).log_prob(batch.actions[t, n][None])
        (-log_prob.sum()).backward()
        for total, p in zip(per_step, agent.policy.parameters()):
            total += advantages[t, n] * p.grad
        steps += 1
    assert steps == sum(len(e[2]) for e in episodes)
    for got, expected in zip(batched, per_step):
        torch.testing.assert_close(got, expected / steps, atol=1e-6, rtol=1e-5)


def test_returns_of_an_empty_sequence_are_empty():
    assert discounted_returns(torch.zeros(0, 3), 0.9).shape == (0, 3)
    assert discounted_returns(torch.zeros(0), 0.9).shape == (0,)


@pytest.mark.parametrize("rewards", [[0.0] * 5, [1.0] * 5, [2.5]])
def test_constant_and_zero_rewards_train_without_nan(rewards):
    agent = ReinforceAgent(spaces.Box(-1, 1, (2,)), spaces.Discrete(3), AgentConfig(normalize_observations=True), 1)
    n = len(rewards)
    episodes = [(np.ones((n, 2)) * k, [k % 3] * n, rewards) for k in range(3)]
    for _ in range(3):
        stats = agent.update(EpisodeBatch.from_episodes(episodes))
        assert stats["skipped_steps"] == 0 and all(np.isfinite(v) for v in stats.values())
    assert all(torch.isfinite(v).all() for v in agent.policy.state_dict().values())


def test_gaussian_log_prob_and_entropy_match_the_formula():
    agent = gaussian_agent()
    with torch.no_grad():
        agent.policy.log_std.copy_(torch.tensor([-0.3, 0.4]))
    obs = torch.randn(7, 3)
    actions = torch.randn(7, 2) * 3
    distribution = agent.policy(obs)
    mean, std = agent.policy.net(obs), torch.tensor([-0.3, 0.4]).exp()
    by_hand = (-((actions - mean) ** 2) / (2 * std**2) - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
    torch.testing.assert_close(distribution.log_prob(actions), by_hand)
    torch.testing.assert_close(distribution.entropy(), (0.5 + 0.5 * math.log(2 * math.pi) + std.log()).sum().expand(7))
    reference = torch.distributions.Normal(mean, std)
    torch.testing.assert_close(distribution.log_prob(actions), reference.log_prob(actions).sum(-1))


def test_the_baseline_advantages_are_returns_minus_values():
    agent = gaussian_agent(baseline=True, normalize="none")
    rng = np.random.default_rng(1)
    episodes = [(rng.normal(size=(n, 3)), rng.normal(size=(n, 2)), rng.normal(size=n)) for n in (4, 9, 1)]
    batch = EpisodeBatch.from_episodes(episodes)
    returns = discounted_returns(batch.rewards, agent.config.gamma, batch.ends)
    values = agent.values(batch.observations[batch.valid])
    expected = returns[batch.valid] - values.detach()
    torch.testing.assert_close(agent.advantages(batch)[batch.valid], expected)
    stats = agent.update(batch)
    assert {"value_loss", "explained_variance"} <= set(stats) and stats["skipped_steps"] == 0


def test_entropy_bonus_and_gradient_clipping():
    rng = np.random.default_rng(3)
    batch = EpisodeBatch.from_episodes(
        [(rng.normal(size=(6, 3)), rng.normal(size=(6, 2)) * 5, rng.normal(size=6) * 100)]
    )
    plain = gaussian_agent(normalize="none", entropy_coef=0.0, passes=1)
    bonus = gaussian_agent(normalize="none", entropy_coef=0.5, passes=1)
    plain_stats, bonus_stats = plain.update(batch), bonus.update(batch)
    assert bonus_stats["policy_loss"] == pytest.approx(plain_stats["policy_loss"] - 0.5 * plain_stats["entropy"])
    clipped = gaussian_agent(normalize="none", max_grad_norm=0.1, learning_rate=1.0)
    stepped_norms, step = [], clipped.optimizer.step

    def recording_step(*args, **kwargs):  # the norm of the gradient Adam steps with
        stepped_norms.append(torch.cat([p.grad.flatten() for p in clipped.policy.parameters()]).norm().item())
        return step(*args, **kwargs)

    clipped.optimizer.step = recording_step
    before = [p.detach().clone() for p in clipped.policy.parameters()]
    stats = clipped.update(batch)
    assert stats["grad_norm"] > 1.0  # the logged norm is the one before clipping
    assert len(stepped_norms) == 2 and all(norm == pytest.approx(0.1, rel=1e-5) for norm in stepped_norms)
    sgd_like = torch.cat([(p.detach() - b).flatten() for p, b in zip(clipped.policy.parameters(), before)])
    assert torch.isfinite(sgd_like).all()


def test_an_update_with_its_own_entropy_weight_is_the_update_of_an_agent_built_with_it():
    rng = np.random.default_rng(4)
    batch = EpisodeBatch.from_episodes(
        [(rng.normal(size=(n, 3)), rng.normal(size=(n, 2)), rng.normal(size=n)) for n in (5, 3)]
    )
    scheduled, built = gaussian_agent(entropy_coef=0.02), gaussian_agent(entropy_coef=0.3)
    assert scheduled.update(batch, entropy_coef=0.3) == built.update(batch)
    for name, tensor in built.policy.state_dict().items():
        assert torch.equal(tensor, scheduled.policy.state_dict()[name]), name
    with pytest.raises(ValueError, match="entropy_coef must be >= 0 and finite, got -0.1"):
        scheduled.update(batch, entropy_coef=-0.1)


def test_one_loss_with_named_terms_serves_agent_loss_and_the_update():
    agent = gaussian_agent(entropy_coef=0.1, baseline=True, normalize_observations=False, passes=1)
    rng = np.random.default_rng(5)
    batch = EpisodeBatch.from_episodes(
        [(rng.normal(size=(n, 3)), rng.normal(size=(n, 2)), rng.normal(size=n)) for n in (4, 7)]
    )
    valid = batch.valid
    observations, actions, advantages = batch.observations[valid], batch.actions[valid], agent.advantages(batch)[valid]
    distribution = agent.policy(observations)
    by_hand = -(advantages * distribution.log_prob(actions)).mean() - 0.1 * distribution.entropy().mean()
    returns = discounted_returns(batch.rewards, agent.config.gamma, batch.ends)[valid]
    terms = reinforce_loss(distribution, actions, advantages, 0.1, agent.values(observations), returns)
    assert set(terms) == {"policy_loss", "entropy", "value_loss", "loss"}
    torch.testing.assert_close(terms["policy_loss"], by_hand)
    torch.testing.assert_close(terms["loss"], terms["policy_loss"] + terms["value_loss"])
    torch.testing.assert_close(agent.loss(observations, actions, advantages), by_hand)  # no value term
    stats = agent.update(batch)  # one gradient step: its statistics are the terms before the step
    assert stats["policy_loss"] == pytest.approx(terms["policy_loss"].item(), rel=1e-6)
    assert stats["value_loss"] == pytest.approx(terms["value_loss"].item(), rel=1e-6)
    assert stats["entropy"] == pytest.approx(terms["entropy"].item(), rel=1e-6)


@pytest.mark.parametrize("gamma", [0.0, 0.9, 0.99])
def test_bootstrapped_returns_add_the_discounted_tail_after_the_last_step(gamma):
    rewards, ends, valid = random_grid(np.random.default_rng(6))
    tails = np.where(ends, np.random.default_rng(7).normal(size=ends.shape) * 10, 0.0).astype(np.float32)
    got = discounted_returns(torch.from_numpy(rewards), gamma, torch.from_numpy(ends), torch.from_numpy(tails))
    for n, start, stop in episodes_of(rewards, ends, valid):
        episode = rewards[start : stop + 1, n].tolist()
        expected = [
            g + gamma ** (len(episode) - t) * tails[stop, n] for t, g in enumerate(slow_returns(episode, gamma))
        ]
        np.testing.assert_allclose(got.numpy()[start : stop + 1, n], expected, rtol=1e-5, atol=1e-4)


def truncated_constant_batch():
    """Every episode cut by the time limit with the same reward at every step: nothing in it says which
    actions were better, yet Monte-Carlo returns fall with the time left."""
    rng = np.random.default_rng(8)
    episodes = [(rng.normal(size=(30, 4)), rng.integers(0, 2, 30), np.ones(30)) for _ in range(4)]
    return EpisodeBatch.from_episodes(episodes, truncated=[True] * 4)


def test_a_truncated_constant_batch_moves_the_plain_policy_but_not_the_bootstrapped_one():
    moved = {}
    for bootstrap in ("none", "mean"):
        config = AgentConfig(bootstrap=bootstrap, normalize_observations=False, entropy_coef=0.0, passes=1)
        agent = ReinforceAgent(spaces.Box(-5, 5, (4,)), spaces.Discrete(2), config, seed=0)
        before = [p.detach().clone() for p in agent.policy.parameters()]
        advantages = agent.advantages(truncated_constant_batch())
        agent.update(truncated_constant_batch())
        moved[bootstrap] = max((p - b).abs().max().item() for p, b in zip(agent.policy.parameters(), before))
        if bootstrap == "mean":  # every return is 1 / (1 - gamma): no advantage anywhere
            assert advantages.abs().max() < 1e-6
        else:  # the time-only signal: early steps look better than late ones, whatever the state
            assert advantages[0].min() > 1 and advantages[29].max() < -1
    assert moved["none"] > 1e-3 and moved["mean"] < 1e-6


def test_with_the_defaults_a_truncated_constant_batch_only_raises_the_entropy():
    """No advantage anywhere, so the only force on the policy is the entropy bonus: the update keeps
    exploring instead of drifting toward a deterministic policy that no reward asked for."""
    config = AgentConfig(init="default")  # the defaults' orthogonal start is already near uniform
    agent = ReinforceAgent(spaces.Box(-5, 5, (4,)), spaces.Discrete(2), config, seed=0)
    batch = truncated_constant_batch()
    observations = batch.observations[batch.valid]
    entropy_before = agent.policy(agent._inputs(observations)).entropy()
    stats = agent.update(truncated_constant_batch())
    entropy_after = agent.policy(agent._inputs(observations)).entropy()
    assert agent.advantages(truncated_constant_batch()).abs().max() < 1e-6
    assert stats["policy_loss"] == pytest.approx(-agent.config.entropy_coef * stats["entropy"], rel=1e-5)
    assert entropy_after.mean() > entropy_before.mean() + 1e-4


def test_discounted_returns_take_lists_and_arrays_as_well_as_tensors():
    expected = torch.tensor(slow_returns([1.0, 0.0, 2.0], 0.9), dtype=torch.float64)
    for rewards in ([1.0, 0.0, 2.0], np.array([1.0, 0.0, 2.0]), torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64)):
        torch.testing.assert_close(discounted_returns(rewards, 0.9).double(), expected)
    ends = np.array([[False], [True], [True]])
    torch.testing.assert_close(
        discounted_returns(np.ones((3, 1)), 0.5, ends, np.full((3, 1), 4.0)).double().flatten(),
        torch.tensor([1 + 0.5 * (1 + 0.5 * 4), 1 + 0.5 * 4, 1 + 0.5 * 4], dtype=torch.float64),
    )


def test_the_value_bootstrap_adds_the_baselines_value_of_the_state_each_time_limit_cut():
    rng = np.random.default_rng(9)
    lengths, cut, gamma = [5, 3, 4], [True, False, True], 0.9
    episodes = [(rng.normal(size=(n, 4)), rng.integers(0, 2, n), rng.normal(size=n)) for n in lengths]
    finals = [rng.normal(size=4) * 3 for _ in lengths]
    batch = EpisodeBatch.from_episodes(episodes, truncated=cut, final_observations=finals)
    config = AgentConfig(baseline=True, bootstrap="value", normalize="none", gamma=gamma, init="default")
    agent = ReinforceAgent(spaces.Box(-5, 5, (4,)), spaces.Discrete(2), config, seed=0)

    def value(observation):
        return agent.values(torch.tensor(np.array([observation]), dtype=torch.float32)).item()

    tails = [value(final) if was_cut else 0.0 for final, was_cut in zip(finals, cut)]
    assert min(abs(tails[0]), abs(tails[2])) > 1e-3  # a tail that is zero would test nothing
    got = agent.advantages(batch)
    for i, (observations, _, rewards) in enumerate(episodes):
        for t, g in enumerate(slow_returns(rewards.tolist(), gamma)):
            expected = g + gamma ** (len(rewards) - t) * tails[i] - value(observations[t])
            assert got[t, i].item() == pytest.approx(expected, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("bootstrap", ["mean", "value"])
def test_an_episode_that_terminates_on_the_last_step_its_time_limit_allows_is_not_bootstrapped(bootstrap):
    """Gymnasium's TimeLimit reports such a step as truncated too; nothing follows a terminal state, so the
    returns are the Monte-Carlo ones."""
    env = SyncVectorEnv([lambda: gym.wrappers.TimeLimit(FiveStepEnv(), 5)] * 2, autoreset_mode=AutoresetMode.NEXT_STEP)
    batch = collect_episodes(env, lambda obs: (np.ones(len(obs), dtype=np.int64),) * 2, np.array([1, 1]), seed=0).batch
    assert int((batch.terminated & batch.truncated).sum()) == 2
    advantages = {}
    for name in (bootstrap, "none"):
        config = AgentConfig(baseline=True, bootstrap=name, normalize="none", init="default", gamma=0.9)
        agent = ReinforceAgent(FiveStepEnv.observation_space, FiveStepEnv.action_space, config, seed=0)
        advantages[name] = agent.advantages(batch)
    torch.testing.assert_close(advantages[bootstrap], advantages["none"])
