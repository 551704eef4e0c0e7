"""What the agent's public API refuses, before anything changes: observations and actions that do not fit
the spaces, batches without a valid step or whose parts do not line up (one-line ``ValueError``s)."""

import math
import re

import numpy as np
import pytest
import torch
from builders import gaussian_agent, make_agent, one_line
from gymnasium import spaces

import training.trainer
from agents import (
    AgentConfig,
    EpisodeBatch,
    ReinforceAgent,
)


def test_discrete_observations_outside_the_space_are_refused():
    agent = ReinforceAgent(spaces.Discrete(5, start=1), spaces.Discrete(2), AgentConfig(hidden_sizes=(8,)), seed=0)
    for outside in (0, 6):
        with pytest.raises(ValueError, match="observations outside Discrete") as error:
            agent.act(outside)
        one_line(error.value)


@pytest.mark.parametrize("shape", [(2, 2), (8,), (2,), (3, 2, 2)])
def test_act_and_sample_refuse_observations_of_another_shape(shape):
    """Unchecked, the encoder would regroup the numbers: (2, 2) into one observation, (8,) into two."""
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


def test_a_value_bootstrap_refuses_a_batch_without_the_states_its_time_limits_cut():
    agent = make_agent(config=AgentConfig(hidden_sizes=(8,), baseline=True, bootstrap="value"))
    before = {k: v.clone() for k, v in agent.policy.state_dict().items()}
    episode = (np.ones((3, 4)), [0, 1, 0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="this batch has no last_observations.*final_observations") as error:
        agent.update(EpisodeBatch.from_episodes([episode], truncated=[True]))
    one_line(error.value)
    assert unchanged(agent, before)
    agent.update(EpisodeBatch.from_episodes([episode]))  # nothing truncated, nothing to bootstrap
    with pytest.raises(
        ValueError, match="final_observations has 2 entries, the episodes 1: give one per episode"
    ) as error:
        EpisodeBatch.from_episodes([episode], final_observations=[np.ones(4)] * 2)
    one_line(error.value)
    with pytest.raises(ValueError, match="episode 0's final observation has 3 values, its steps 4"):
        EpisodeBatch.from_episodes([episode], final_observations=[np.ones(3)])


def test_episode_batches_refuse_parts_that_do_not_line_up():
    with pytest.raises(ValueError, match="episode 1 has 5 observations, 4 actions and 4 rewards") as error:
        EpisodeBatch.from_episodes([(np.zeros((2, 4)), [0, 1], [1.0, 1.0]), (np.zeros((5, 4)), [0] * 4, [1.0] * 4)])
    one_line(error.value)
    with pytest.raises(ValueError, match=r"episode 1's observations have shape \(3,\) per step, episode 0's \(4,\)"):
        EpisodeBatch.from_episodes([(np.zeros((2, 4)), [0, 1], [1.0, 1.0]), (np.zeros((2, 3)), [0, 1], [1.0, 1.0])])
    grid = torch.zeros(3, 2, dtype=torch.bool)
    parts = dict(
        observations=torch.zeros(3, 2, 4), actions=torch.zeros(3, 2, dtype=torch.long), rewards=torch.zeros(3, 2)
    )
    for name, wrong, message in [
        ("valid", torch.zeros(4, 2, dtype=torch.bool), "valid must be a bool tensor of the rewards' shape"),
        ("terminated", torch.zeros(3, 2), "terminated must be a bool tensor"),
        ("observations", torch.zeros(4, 2, 4), "observations of shape"),
        ("rewards", torch.zeros(3), "rewards must be a"),
        ("last_observations", torch.zeros(3, 4), r"last_observations must have shape \(2, 4\)"),
    ]:
        flags = dict(terminated=grid, truncated=grid, valid=grid)
        with pytest.raises(ValueError, match=message) as error:
            EpisodeBatch(**{**parts, **flags, name: wrong})
        one_line(error.value)


@pytest.mark.parametrize("seed", [10**30, 2**64, -1, 1.5, True, "1"])
def test_seeds_that_torch_numpy_or_gymnasium_cannot_take_are_refused(seed):
    with pytest.raises(ValueError, match=r"seed must be an integer from 0 to 2\*\*64 - 1"):
        make_agent(seed=seed)
    assert make_agent(seed=2**64 - 1).act(np.zeros(4)) in (0, 1) and make_agent(seed=np.int64(3)) is not None


def test_act_refuses_observations_that_are_not_finite():
    """Unchecked, a NaN observation would give action 0 on a Discrete space and a NaN action, outside the space,
    on a Box one."""
    for agent in (make_agent(), gaussian_agent()):
        observation = np.zeros(agent.observation_space.shape, np.float32)
        observation[0] = np.nan
        for method in (agent.act, agent.sample):
            with pytest.raises(ValueError, match="observations hold NaN or infinity") as error:
                method(observation)
            one_line(error.value)
        observation[0] = np.inf
        with pytest.raises(ValueError, match="NaN or infinity"):
            agent.act(observation[None])


def test_saving_into_a_missing_folder_names_the_file_asked_for(tmp_path):
    target = tmp_path / "no_such_folder" / "model.pt"
    with pytest.raises(FileNotFoundError, match=f"cannot write {target}: No such file or directory") as error:
        make_agent().save(target)
    one_line(error.value)


def test_networks_too_large_for_the_free_memory_are_refused_naming_the_cause(monkeypatch):
    """The activations of the output layer count, against the memory free: a Discrete(10**7) action space has
    20.8 GB of parameters, less than 25.3 GB of free memory, yet with its activations a run needs more."""
    monkeypatch.setattr(training.trainer, "_free_memory", lambda: 10 * 10**9)
    box = spaces.Box(-1.0, 1.0, (4,), np.float32)
    cases = [
        (box, spaces.Discrete(10**7), AgentConfig(), "the action space Discrete(10000000), one output per action"),
        (spaces.Box(-1.0, 1.0, (10**7,), np.float32), spaces.Discrete(2), AgentConfig(), "the observation space"),
        (box, spaces.Discrete(2), AgentConfig(hidden_sizes=(10**5, 10**5)), "hidden_sizes [100000, 100000]"),
    ]
    for observation_space, action_space, config, cause in cases:
        with pytest.raises(ValueError, match=re.escape(f"the size comes from {cause}")) as error:
            training.trainer.check_memory(observation_space, action_space, config, episodes_per_update=8)
        one_line(error.value)
    training.trainer.check_memory(box, spaces.Discrete(10**5), AgentConfig(), episodes_per_update=8)  # 0.2 GB
