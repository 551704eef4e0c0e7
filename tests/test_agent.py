"""The public agent: its heads, acting and sampling (through the numpy copy of the policy), updating,
the observation normaliser, the spaces it supports."""

import math

import numpy as np
import pytest
import torch
from builders import CARTPOLE_OBS, gaussian_agent, make_agent, one_line
from gymnasium import spaces
from torch.distributions import Bernoulli, Categorical

from agents import (
    AgentConfig,
    EpisodeBatch,
    ReinforceAgent,
)
from agents.reinforce import LOG_STD_RANGE


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
    observation = np.array([0.3, -0.2, 0.1, 0.5], dtype=np.float32)
    draws = agent.act(np.repeat(observation[None], 40_000, axis=0))
    frequencies = np.bincount(draws, minlength=n_actions) / len(draws)
    probs = agent.policy(torch.from_numpy(observation)[None])
    probs = torch.stack([1 - probs.probs, probs.probs], -1) if n_actions == 2 else probs.probs
    np.testing.assert_allclose(frequencies, probs[0].detach().numpy(), atol=0.01)


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
        ({"bootstrap": "value"}, "unknown bootstrap"),
        ({"bootstrap": "mean", "gamma": 1.0}, "bootstrap mean needs gamma < 1"),
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


def test_gaussian_sampling_follows_mean_and_std():
    agent = gaussian_agent(spaces.Box(-100.0, 100.0, (2,), np.float32))
    with torch.no_grad():
        agent.policy.log_std.copy_(torch.tensor([-1.0, 0.5]))
    obs = np.tile(np.array([[0.2, -0.1, 0.3]], np.float32), (50_000, 1))
    _, drawn = agent.sample(obs)
    mean = agent.policy.net(torch.from_numpy(obs[:1])).detach().numpy()[0]
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


def test_discrete_observations_outside_the_space_are_refused():
    agent = ReinforceAgent(spaces.Discrete(5, start=1), spaces.Discrete(2), AgentConfig(hidden_sizes=(8,)), seed=0)
    for outside in (0, 6):
        with pytest.raises(ValueError, match="observations outside Discrete") as error:
            agent.act(outside)
        one_line(error.value)


@pytest.mark.parametrize("shape", [(2, 2), (8,), (2,), (3, 2, 2)])
def test_act_and_sample_refuse_observations_of_another_shape(shape):
    """Today's encoder would regroup the numbers: (2, 2) into one observation, (8,) into two."""
    agent = make_agent()
    for method in (agent.act, agent.sample):
        with pytest.raises(
            ValueError, match=r"give one observation of shape \(4,\) or a batch of shape \(n, 4\)"
        ) as error:
            method(np.zeros(shape, np.float32))
        one_line(error.value)
    assert agent.act(np.zeros((3, 4), np.float32)).shape == (3,)  # a batch, as documented
    discrete = ReinforceAgent(spaces.Discrete(5), spaces.Discrete(2), AgentConfig(hidden_sizes=(8,)), seed=0)
    with pytest.raises(ValueError, match=r"shape \(\) or a batch of shape \(n,\)"):
        discrete.act(np.array([[1, 2]]))


def unchanged(agent, before):
    """Whether the policy's weights and input statistics equal ``before`` and Adam never stepped."""
    return all(torch.equal(before[k], v) for k, v in agent.policy.state_dict().items()) and not agent.optimizer.state


@pytest.mark.parametrize("n_actions, action", [(2, 5), (2, -1), (2, 0.5), (2, math.nan), (3, 3), (3, -1), (3, 1.5)])
def test_update_refuses_actions_outside_the_space_and_moves_nothing(n_actions, action):
    agent = make_agent(n_actions)
    before = {k: v.clone() for k, v in agent.policy.state_dict().items()}
    rng = np.random.default_rng(0)
    batch = EpisodeBatch.from_episodes([(rng.normal(size=(4, 4)), np.array([0, 1, action, 0]), rng.normal(size=4))])
    with pytest.raises(ValueError, match=rf"action {action} is not in Discrete\({n_actions}\)") as error:
        agent.update(batch)
    one_line(error.value)
    assert unchanged(agent, before)
    with pytest.raises(ValueError, match="is not in Discrete"):
        agent.loss(batch.observations[batch.valid], batch.actions[batch.valid], torch.zeros(4))


@pytest.mark.parametrize("action_shape", [(3,), (), (2, 1)])
def test_update_refuses_box_actions_of_another_shape(action_shape):
    agent = gaussian_agent()
    rng = np.random.default_rng(1)
    batch = EpisodeBatch.from_episodes([(rng.normal(size=(5, 3)), rng.normal(size=(5, *action_shape)), np.ones(5))])
    with pytest.raises(ValueError, match=r"give actions of shape \(2,\)") as error:
        agent.update(batch)
    one_line(error.value)
    assert not agent.optimizer.state


def test_update_refuses_a_batch_without_a_valid_step():
    agent = make_agent()
    before = {k: v.clone() for k, v in agent.policy.state_dict().items()}
    no_steps = EpisodeBatch(
        torch.zeros(0, 2, 4),
        torch.zeros(0, 2, dtype=torch.long),
        torch.zeros(0, 2),
        *[torch.zeros(0, 2, dtype=bool)] * 3,
    )
    all_masked = EpisodeBatch.from_episodes([(np.ones((3, 4)), [0, 1, 0], [1.0, 2.0, 3.0])])
    all_masked.valid[:] = False
    for batch in (no_steps, all_masked):
        with pytest.raises(ValueError, match="the batch has no valid step") as error:
            agent.update(batch)
        one_line(error.value)
    assert unchanged(agent, before)


@pytest.mark.parametrize("step_shape", [(8,), (2,)])
def test_update_loss_and_advantages_refuse_observations_of_another_shape(step_shape):
    agent = make_agent(config=AgentConfig(hidden_sizes=(8,), baseline=True))
    before = {k: v.clone() for k, v in agent.policy.state_dict().items()}
    rng = np.random.default_rng(2)
    batch = EpisodeBatch.from_episodes([(rng.normal(size=(4, *step_shape)), [0, 1, 1, 0], rng.normal(size=4))])
    for call in (agent.update, agent.advantages):
        with pytest.raises(ValueError, match=rf"observations of shape \({step_shape[0]},\) per step") as error:
            call(batch)
        one_line(error.value)
    assert unchanged(agent, before)
    with pytest.raises(ValueError, match=r"observations of shape \(2, 2\) per step"):  # flattened, it would pass
        agent.loss(torch.zeros(4, 2, 2), torch.zeros(4, dtype=torch.long), torch.zeros(4))
    with pytest.raises(ValueError, match="one entry per step") as error:  # one advantage would broadcast
        agent.loss(torch.zeros(4, 4), torch.zeros(4, dtype=torch.long), torch.zeros(1))
    one_line(error.value)


def test_episode_batches_refuse_parts_that_do_not_line_up():
    with pytest.raises(ValueError, match="episode 1 has 5 observations, 4 actions and 4 rewards") as error:
        EpisodeBatch.from_episodes([(np.zeros((2, 4)), [0, 1], [1.0, 1.0]), (np.zeros((5, 4)), [0] * 4, [1.0] * 4)])
    one_line(error.value)
    grid = torch.zeros(3, 2, dtype=torch.bool)
    parts = dict(
        observations=torch.zeros(3, 2, 4), actions=torch.zeros(3, 2, dtype=torch.long), rewards=torch.zeros(3, 2)
    )
    for name, wrong, message in [
        ("valid", torch.zeros(4, 2, dtype=torch.bool), "valid must be a bool tensor of the rewards' shape"),
        ("terminated", torch.zeros(3, 2), "terminated must be a bool tensor"),
        ("observations", torch.zeros(4, 2, 4), "observations of shape"),
        ("rewards", torch.zeros(3), "rewards must be a"),
    ]:
        flags = dict(terminated=grid, truncated=grid, valid=grid)
        with pytest.raises(ValueError, match=message) as error:
            EpisodeBatch(**{**parts, **flags, name: wrong})
        one_line(error.value)
