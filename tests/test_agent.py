"""The public agent: its heads, acting and sampling (through the numpy copy of the policy), updating,
the observation normaliser, the spaces it supports."""

import math

import numpy as np
import pytest
import torch
from builders import CARTPOLE_OBS, gaussian_agent, make_agent, one_line, squashed
from gymnasium import spaces
from torch.distributions import Bernoulli, Categorical

from agents import (
    AgentConfig,
    EpisodeBatch,
    ReinforceAgent,
)
from agents.config import LOG_STD_RANGE


def test_two_actions_use_the_notebooks_head_and_size():
    agent = make_agent(2)
    assert sum(p.numel() for p in agent.policy.parameters()) == 97
    distribution = agent.policy(torch.zeros(5, 4))
    assert isinstance(distribution, Bernoulli)
    assert distribution.sample().dtype == torch.long


def test_more_actions_use_a_categorical_head():
    agent = make_agent(3)
    distribution = agent.policy(torch.zeros(5, 4))
    assert isinstance(distribution, Categorical)
    assert distribution.probs.shape == (5, 3)


@pytest.mark.parametrize("n_actions", [2, 3])
def test_act_shapes_and_modes(n_actions):
    agent = make_agent(n_actions)
    batch = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    actions = agent.act(batch)
    assert actions.shape == (64,) and actions.dtype == np.int64
    assert set(actions.tolist()) <= set(range(n_actions))
    single = agent.act(batch[0])
    assert np.ndim(single) == 0
    greedy = agent.act(batch, deterministic=True)
    expected = agent.policy(torch.from_numpy(batch)).mode
    np.testing.assert_array_equal(greedy, expected.numpy())
    np.testing.assert_array_equal(agent.act(batch, deterministic=True), greedy)


@pytest.mark.parametrize("n_actions", [2, 3])
def test_sampling_follows_the_policys_probabilities(n_actions):
    agent = make_agent(n_actions, AgentConfig(hidden_sizes=(8,)))
    with torch.no_grad():  # far from the near-uniform first policy: a sampler that ignores the logits fails
        agent.policy.net[-1].bias.copy_(torch.tensor([1.5] if n_actions == 2 else [1.5, 0.0, -1.0]))
    observation = np.array([0.3, -0.2, 0.1, 0.5], dtype=np.float32)
    draws = agent.act(np.repeat(observation[None], 40_000, axis=0))
    frequencies = np.bincount(draws, minlength=n_actions) / len(draws)
    probs = agent.policy(torch.from_numpy(observation)[None])
    probs = (torch.stack([1 - probs.probs, probs.probs], -1) if n_actions == 2 else probs.probs)[0].detach().numpy()
    assert np.abs(probs - 1 / n_actions).max() > 0.2
    np.testing.assert_allclose(frequencies, probs, atol=0.01)


def test_discrete_action_start_is_respected():
    agent = ReinforceAgent(CARTPOLE_OBS, spaces.Discrete(3, start=-1), seed=0)
    actions = agent.act(np.zeros((100, 4), np.float32))
    assert set(actions.tolist()) <= {-1, 0, 1}
    batch = EpisodeBatch.from_episodes([(np.zeros((100, 4)), actions, np.arange(100.0))])
    assert np.isfinite(agent.update(batch)["policy_loss"])


def test_same_seed_same_agent_whatever_the_global_rng():
    torch.manual_seed(123)
    first = make_agent(seed=7)
    torch.manual_seed(456)
    second = make_agent(seed=7)
    for a, b in zip(first.policy.parameters(), second.policy.parameters()):
        assert torch.equal(a, b)
    obs = np.zeros((50, 4), np.float32)
    np.testing.assert_array_equal(first.act(obs), second.act(obs))


def test_update_changes_weights_and_reports_statistics():
    agent = make_agent()
    before = [p.clone() for p in agent.policy.parameters()]
    rng = np.random.default_rng(0)
    episodes = [(rng.normal(size=(n, 4)), rng.integers(0, 2, n), rng.normal(size=n)) for n in (5, 9, 3)]
    stats = agent.update(EpisodeBatch.from_episodes(episodes))
    assert set(stats) == {"policy_loss", "entropy", "grad_norm", "skipped_steps"} and stats["skipped_steps"] == 0
    assert 0 < stats["entropy"] <= np.log(2) + 1e-6 and stats["grad_norm"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.policy.parameters()))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"gamma": 1.5}, "gamma"),
        ({"hidden_sizes": (0,)}, "hidden_sizes"),
        ({"activation": "swish"}, "activation"),
        ({"normalize": "global"}, "normalize"),
        ({"bootstrap": "learnt"}, "unknown bootstrap"),
        ({"bootstrap": "value"}, r"bootstrap value needs the baseline's V\(s\): turn the baseline on"),
        ({"action_bound": "sigmoid"}, "unknown action_bound 'sigmoid': choose one of clip, tanh"),
        ({"bootstrap": "mean", "gamma": 1.0}, "bootstrap mean needs gamma < 1.*or bootstrap none"),
        # not finite: they would put NaN or infinity into the weights at the first update
        ({"learning_rate": math.inf}, "learning_rate must be > 0 and finite, got inf"),
        ({"learning_rate": math.nan}, "learning_rate must be > 0 and finite, got nan"),
        ({"value_learning_rate": math.inf}, "value_learning_rate must be > 0 and finite"),
        ({"entropy_coef": math.inf}, "entropy_coef must be >= 0 and finite"),
        ({"max_grad_norm": math.inf}, r"max_grad_norm must be > 0 and finite, or none \(no clipping\)"),
        ({"max_grad_norm": math.nan}, "max_grad_norm must be > 0 and finite"),
        ({"gamma": math.nan}, r"gamma must be in \[0, 1\], got nan"),
    ],
)
def test_impossible_hyperparameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        AgentConfig(**kwargs)
    one_line(error.value)


@pytest.mark.parametrize(
    "observation_space, action_space, named",
    [
        (spaces.Dict({"a": spaces.Discrete(2)}), spaces.Discrete(2), "observation"),
        (CARTPOLE_OBS, spaces.MultiBinary(3), "action"),
        (spaces.Tuple((spaces.Discrete(2), spaces.Discrete(3))), spaces.Discrete(2), "observation"),
        (spaces.Text(5), spaces.Discrete(2), "observation"),
        (CARTPOLE_OBS, spaces.Discrete(1), "action"),
        (spaces.Box(0.0, 1.0, (0,)), spaces.Discrete(2), "observation"),  # no input: it failed mid-run
        (CARTPOLE_OBS, spaces.Box(0.0, 1.0, (3, 0)), "action"),
    ],
)
def test_unsupported_spaces_are_named(observation_space, action_space, named):
    with pytest.raises(ValueError, match=f"unsupported {named} space") as error:
        ReinforceAgent(observation_space, action_space)
    one_line(error.value)


def test_observation_normalizer_tracks_the_running_statistics_without_changing_the_policy():
    agent = make_agent(3, AgentConfig(hidden_sizes=(8,), normalize_observations=True))
    rng = np.random.default_rng(5)
    probe = torch.from_numpy(rng.normal(size=(50, 4)).astype(np.float32))
    seen = []
    for shift, spread in ((3.0, 0.1), (-1.0, 2.0), (0.0, 1.0)):
        obs = (rng.normal(size=(40, 4)) * spread * np.array([1, 5, 0.05, 1]) + shift).astype(np.float32)
        seen.append(obs)
        before = agent.policy(probe).logits
        agent.policy.update_normalizer(torch.from_numpy(obs))
        torch.testing.assert_close(agent.policy(probe).logits, before, atol=1e-4, rtol=1e-4)
    everything = np.concatenate(seen).astype(np.float64)
    normalizer = agent.policy.normalizer
    np.testing.assert_allclose(normalizer.mean.numpy(), everything.mean(0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(normalizer.var.numpy(), everything.var(0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(normalizer.scale.numpy(), 1 / everything.std(0), rtol=1e-5)


def test_update_refreshes_the_normalizer_after_the_gradient_step(tmp_path):
    agent = make_agent(2, AgentConfig(hidden_sizes=(8,), normalize_observations=True))
    rng = np.random.default_rng(6)
    obs = rng.normal(size=(30, 4)) * 0.1
    agent.update(EpisodeBatch.from_episodes([(obs, rng.integers(0, 2, 30), rng.normal(size=30))]))
    np.testing.assert_allclose(agent.policy.normalizer.mean.numpy(), obs.mean(0), rtol=1e-5, atol=1e-7)
    agent.save(tmp_path / "model.pt")
    loaded = ReinforceAgent.load(tmp_path / "model.pt")
    assert torch.equal(loaded.policy.normalizer.scale, agent.policy.normalizer.scale)
    probe = rng.normal(size=(20, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.act(probe, deterministic=True), agent.act(probe, deterministic=True))


@pytest.mark.parametrize("activation", ["elu", "relu", "tanh", "gelu", "silu"])
@pytest.mark.parametrize("n_actions", [2, 4])
def test_the_numpy_actor_computes_the_policys_logits(activation, n_actions):
    agent = make_agent(n_actions, AgentConfig(hidden_sizes=(16, 8), activation=activation, normalize_observations=True))
    rng = np.random.default_rng(7)
    agent.policy.update_normalizer(torch.from_numpy(rng.normal(size=(64, 4)).astype(np.float32) * 3 + 1))
    obs = rng.normal(size=(32, 4)).astype(np.float32)
    expected = agent.policy.net(agent.policy.normalizer(torch.from_numpy(obs))).detach().numpy()
    np.testing.assert_allclose(agent.numpy_policy().outputs(obs), expected, rtol=1e-5, atol=1e-5)


def test_acting_follows_every_change_of_the_policy():
    agent = make_agent(3, AgentConfig(hidden_sizes=(8,)))
    obs = np.random.default_rng(8).normal(size=(64, 4)).astype(np.float32)

    def greedy_from_torch():
        return agent.policy(torch.from_numpy(obs)).mode.numpy()

    np.testing.assert_array_equal(agent.act(obs, deterministic=True), greedy_from_torch())
    with torch.no_grad():
        agent.policy.net[-1].bias.copy_(torch.tensor([5.0, 0.0, 0.0]))  # an in-place change from outside
    np.testing.assert_array_equal(agent.act(obs, deterministic=True), np.zeros(64))
    rng = np.random.default_rng(0)
    agent.update(EpisodeBatch.from_episodes([(obs, rng.integers(0, 3, 64), rng.normal(size=64))]))
    np.testing.assert_array_equal(agent.act(obs, deterministic=True), greedy_from_torch())


def test_the_log_std_is_clamped_so_it_cannot_give_nan():
    agent = gaussian_agent()
    for extreme in (-1e4, 1e4):
        with torch.no_grad():
            agent.policy.log_std.fill_(extreme)
        std = agent.policy.std()
        assert torch.all((std >= math.exp(LOG_STD_RANGE[0]) - 1e-9) & (std <= math.exp(LOG_STD_RANGE[1]) + 1e-6))
        assert torch.isfinite(agent.policy(torch.randn(4, 3)).log_prob(torch.randn(4, 2) * 100)).all()


def test_actions_sent_to_the_env_stay_in_bounds_and_the_unclipped_samples_are_learnt():
    space = spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 0.5], np.float32))
    agent = gaussian_agent(space)
    with torch.no_grad():
        agent.policy.log_std.fill_(1.5)  # wide: many samples fall outside the bounds
    obs = np.random.default_rng(0).normal(size=(500, 3)).astype(np.float32)
    taken, drawn = agent.sample(obs)
    assert taken.shape == drawn.shape == (500, 2) and taken.dtype == np.float32
    assert np.all(taken >= space.low) and np.all(taken <= space.high)
    assert np.any(drawn < space.low) and np.any(drawn > space.high)
    np.testing.assert_array_equal(taken, np.clip(drawn, space.low, space.high))
    assert space.contains(agent.act(obs[0])) and space.contains(agent.act(obs[0], deterministic=True))
    mean = agent.numpy_policy().outputs(obs[:1])[0]
    np.testing.assert_allclose(agent.act(obs[0], deterministic=True), np.clip(mean, space.low, space.high))


def test_tanh_squashes_the_samples_into_the_bounds_and_the_raw_samples_are_learnt():
    space = spaces.Box(np.array([-0.4, 0.0], np.float32), np.array([0.4, 2.0], np.float32))  # asymmetric
    agent = gaussian_agent(space, action_bound="tanh")
    with torch.no_grad():
        agent.policy.log_std.fill_(1.5)  # wide: many raw samples fall outside the bounds
    obs = np.random.default_rng(0).normal(size=(500, 3)).astype(np.float32)
    taken, drawn = agent.sample(obs)
    assert taken.shape == drawn.shape == (500, 2) and taken.dtype == np.float32
    assert np.all(taken >= space.low) and np.all(taken <= space.high)
    assert np.any(drawn < space.low) and np.any(drawn > space.high)
    np.testing.assert_allclose(taken, squashed(drawn, space), rtol=0, atol=1e-6)
    mean = agent.numpy_policy().outputs(obs[:1])[0]
    np.testing.assert_allclose(agent.act(obs[0], deterministic=True), squashed(mean, space), rtol=0, atol=1e-6)
    # the loss does not depend on the bound: on the same raw samples it is the clipping agent's
    clipping = gaussian_agent(space)  # the same seed: the same weights
    with torch.no_grad():
        clipping.policy.log_std.fill_(1.5)
    advantages = torch.from_numpy(np.random.default_rng(1).normal(size=500)).float()
    losses = [a.loss(torch.from_numpy(obs), torch.from_numpy(drawn), advantages) for a in (agent, clipping)]
    torch.testing.assert_close(losses[0], losses[1], rtol=0, atol=0)
    batch = EpisodeBatch.from_episodes([(obs[:5], drawn[:5], np.arange(5.0))])
    assert agent.update(batch)["skipped_steps"] == 0


def test_tanh_squashes_into_bounds_near_the_float64_limit():
    space = spaces.Box(np.array([-1e300, 0.0]), np.array([1e300, 1e-9]), dtype=np.float64)
    agent = gaussian_agent(space, action_bound="tanh")
    obs = np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32)
    taken, drawn = agent.sample(obs)
    assert taken.dtype == np.float64 and np.all(np.isfinite(taken)) and all(space.contains(a) for a in taken)
    np.testing.assert_allclose(taken[:, 1], squashed(drawn, space)[:, 1], rtol=1e-12)
    assert np.all(np.isfinite(agent.act(obs, deterministic=True)))


def test_tanh_is_refused_for_unbounded_actions():
    with pytest.raises(ValueError, match="action_bound tanh squashes actions into finite bounds") as error:
        gaussian_agent(spaces.Box(np.array([-1.0, -np.inf]), np.array([1.0, 1.0])), action_bound="tanh")
    assert "use action_bound clip" in one_line(error.value)
    assert gaussian_agent(spaces.Box(-np.inf, np.inf, (2,)), action_bound="clip").act(np.zeros(3)).shape == (2,)


def test_gaussian_sampling_follows_mean_and_std():
    agent = gaussian_agent(spaces.Box(-100.0, 100.0, (2,), np.float32))
    with torch.no_grad():
        agent.policy.log_std.copy_(torch.tensor([-1.0, 0.5]))
        agent.policy.net[-1].bias.copy_(torch.tensor([1.0, -2.0]))  # far from 0: a sampler must add the mean
    obs = np.tile(np.array([[0.2, -0.1, 0.3]], np.float32), (50_000, 1))
    _, drawn = agent.sample(obs)
    mean = agent.policy.net(torch.from_numpy(obs[:1])).detach().numpy()[0]
    assert np.all(np.abs(mean) > 0.9)
    np.testing.assert_allclose(drawn.mean(0), mean, atol=0.03)
    np.testing.assert_allclose(drawn.std(0), np.exp([-1.0, 0.5]), rtol=0.02)


def test_multi_dimensional_box_actions():
    space = spaces.Box(-1.0, 1.0, (2, 3), np.float32)
    agent = gaussian_agent(space)
    obs = np.zeros((5, 3), np.float32)
    taken, drawn = agent.sample(obs)
    assert taken.shape == (5, 2, 3) and space.contains(taken[0])
    batch = EpisodeBatch.from_episodes([(obs, drawn, np.arange(5.0))])
    assert batch.actions.shape == (5, 1, 2, 3)
    assert agent.update(batch)["skipped_steps"] == 0


def test_discrete_observations_are_one_hot():
    agent = ReinforceAgent(spaces.Discrete(5, start=1), spaces.Discrete(2), AgentConfig(hidden_sizes=(8,)), seed=0)
    encoded = agent._inputs(torch.tensor([1, 3, 5]))  # the one encoder, for learning and for acting
    torch.testing.assert_close(encoded, torch.eye(5)[[0, 2, 4]])
    np.testing.assert_array_equal(agent.encode(np.array([1, 3, 5])), np.eye(5)[[0, 2, 4]])
    assert np.ndim(agent.act(3)) == 0 and agent.act(np.array([1, 2, 5])).shape == (3,)
    batch = EpisodeBatch.from_episodes([(np.array([1, 2, 3]), [0, 1, 1], [1.0, 0.0, 2.0])])
    assert agent.update(batch)["skipped_steps"] == 0


def test_the_baseline_learns_the_returns():
    agent = gaussian_agent(baseline=True, value_learning_rate=0.05)
    rng = np.random.default_rng(2)
    obs = rng.normal(size=(64, 3))
    rewards = obs[:, 0] * 2.0  # one-step episodes: the return is a function of the state
    batch = EpisodeBatch.from_episodes(
        [(obs[i : i + 1], rng.normal(size=(1, 2)), rewards[i : i + 1]) for i in range(64)]
    )
    first = agent.update(batch)["explained_variance"]
    for _ in range(200):
        last = agent.update(batch)["explained_variance"]
    assert first < 0.5 < 0.9 < last
