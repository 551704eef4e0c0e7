"""The public agent: policy heads, acting, updating, saving and loading."""

import pickle

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch.distributions import Bernoulli, Categorical

from agents import AgentConfig, CheckpointError, EpisodeBatch, ReinforceAgent

CARTPOLE_OBS = spaces.Box(-np.inf, np.inf, (4,), np.float32)
NOTEBOOK = AgentConfig(hidden_sizes=(16,), activation="elu")


def make_agent(n_actions=2, config=NOTEBOOK, seed=0):
    return ReinforceAgent(CARTPOLE_OBS, spaces.Discrete(n_actions), config, seed=seed)


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


def test_save_load_round_trip(tmp_path):
    agent = make_agent(3, AgentConfig(hidden_sizes=(8, 8), learning_rate=0.003, gamma=0.9))
    rng = np.random.default_rng(0)
    agent.update(EpisodeBatch.from_episodes([(rng.normal(size=(6, 4)), rng.integers(0, 3, 6), rng.normal(size=6))]))
    agent.save(tmp_path / "model.pt")
    loaded = ReinforceAgent.load(tmp_path / "model.pt")
    assert loaded.config == agent.config
    assert loaded.observation_space == agent.observation_space and loaded.action_space == agent.action_space
    for a, b in zip(agent.policy.parameters(), loaded.policy.parameters()):
        assert torch.equal(a, b)
    assert loaded.optimizer.state_dict()["state"][0]["step"] == agent.optimizer.state_dict()["state"][0]["step"]
    obs = rng.normal(size=(200, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.act(obs), agent.act(obs))  # same sampling stream too
    np.testing.assert_array_equal(loaded.act(obs, deterministic=True), agent.act(obs, deterministic=True))
    assert not list(tmp_path.glob("*.tmp"))  # the atomic write leaves no temporary file behind


def one_line(error):
    assert "\n" not in str(error) and len(str(error)) < 300
    return str(error)


def test_missing_corrupt_and_truncated_checkpoints_give_one_line_errors(tmp_path):
    with pytest.raises(CheckpointError) as missing:
        ReinforceAgent.load(tmp_path / "nope.pt")
    assert "no checkpoint" in one_line(missing.value)

    make_agent().save(tmp_path / "good.pt")
    data = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.pt").write_bytes(b"this is not a checkpoint")
    for name in ("truncated.pt", "garbage.pt"):
        with pytest.raises(CheckpointError) as error:
            ReinforceAgent.load(tmp_path / name)
        assert "not a readable checkpoint" in one_line(error.value)

    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError) as other:
        ReinforceAgent.load(tmp_path / "other.pt")
    assert "not a reinforce-agent" in one_line(other.value)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_malicious_pickle_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    with open(tmp_path / "evil.pt", "wb") as file:
        torch.save({"format": "reinforce-agent/1", "payload": _Exploit(str(marker))}, file, pickle_module=pickle)
    with pytest.raises(CheckpointError) as error:
        ReinforceAgent.load(tmp_path / "evil.pt")
    one_line(error.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"gamma": 1.5}, "gamma"),
        ({"hidden_sizes": (0,)}, "hidden_sizes"),
        ({"activation": "swish"}, "activation"),
        ({"normalize": "global"}, "normalize"),
    ],
)
def test_impossible_hyperparameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AgentConfig(**kwargs)


@pytest.mark.parametrize(
    "observation_space, action_space, named",
    [
        (spaces.Dict({"a": spaces.Discrete(2)}), spaces.Discrete(2), "observation"),
        (CARTPOLE_OBS, spaces.MultiBinary(3), "action"),
        (spaces.Tuple((spaces.Discrete(2), spaces.Discrete(3))), spaces.Discrete(2), "observation"),
        (spaces.Text(5), spaces.Discrete(2), "observation"),
        (CARTPOLE_OBS, spaces.Discrete(1), "action"),
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
