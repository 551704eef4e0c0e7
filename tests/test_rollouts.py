"""Environments and rollouts: construction and its errors, the vector rollout's masking against single-env
replays, time limits and episodes that never end, the notebook's heuristic."""

import multiprocessing
import os
import re
import signal
import threading
import time

import gymnasium as gym
import numpy as np
import pytest
from builders import EndlessEnv, FiveStepEnv
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from agents import AgentConfig, EpisodeBatch, ReinforceAgent
from envs import (
    CARTPOLE_OBSERVATION,
    EnvConfig,
    collect_episodes,
    lean_policy,
    make_env,
    make_vector_env,
    play,
    play_episode,
    split_episodes,
)
from envs.workers import _SigtermWatcher, in_worker
from training.logs import describe_returns


def split_columns(rollout):
    """Every episode of a rollout as (column, observations, actions, rewards, terminated, truncated)."""
    batch = rollout.batch
    episodes = []
    for n in range(batch.valid.shape[1]):
        rows = []
        for t in range(batch.valid.shape[0]):
            if batch.valid[t, n]:
                rows.append(t)
                if batch.ends[t, n]:
                    idx = np.array(rows)
                    episodes.append(
                        (
                            n,
                            batch.observations[idx, n].numpy(),
                            batch.actions[idx, n].numpy(),
                            batch.rewards[idx, n].numpy(),
                            batch.terminated[idx, n].numpy(),
                            batch.truncated[idx, n].numpy(),
                        )
                    )
                    rows = []
        assert rows == [], "a valid step outside a complete episode"
    return episodes


def random_actions(seed):
    rng = np.random.default_rng(seed)

    def act(obs):
        actions = rng.integers(0, 2, len(obs))
        return actions, actions

    return act


def test_split_episodes():
    assert split_episodes(10, 4).tolist() == [3, 3, 2, 2]
    assert split_episodes(5, 5).tolist() == [1] * 5


def test_sync_rollout_equals_single_env_replay():
    """Each collected episode is exactly the one a single env with the same seed and actions plays."""
    quotas = np.array([2, 1, 3])
    env = make_vector_env("CartPole-v1", 3, max_episode_steps=30, vectorization="sync")
    rollout = collect_episodes(env, random_actions(0), quotas, seed=10)
    episodes = split_columns(rollout)
    assert np.bincount([e[0] for e in episodes]).tolist() == quotas.tolist()
    assert rollout.batch.num_steps == sum(len(e[3]) for e in episodes) == rollout.episode_lengths.sum()
    assert sorted(rollout.episode_returns) == sorted(float(e[3].sum()) for e in episodes)

    singles = [gym.make("CartPole-v1", max_episode_steps=30) for _ in range(3)]
    first = [True] * 3
    for n, observations, actions, rewards, terminated, truncated in episodes:
        obs, _ = singles[n].reset(seed=10 + n if first[n] else None)
        first[n] = False
        for t, action in enumerate(actions):
            np.testing.assert_array_equal(obs, observations[t])
            obs, reward, term, trunc, _ = singles[n].step(int(action))
            assert (reward, term, trunc) == (rewards[t], terminated[t], truncated[t])
        assert term or trunc


def test_native_vector_rollout_masks_reset_steps():
    """CartPole's native vector env: replay each episode from its first observation (its state)."""
    env = make_vector_env("CartPole-v1", 4, vectorization="vector_entry_point")
    rollout = collect_episodes(env, random_actions(1), np.array([3, 3, 3, 3]), seed=0)
    episodes = split_columns(rollout)
    assert len(episodes) == 12
    single = gym.make("CartPole-v1")
    for _, observations, actions, rewards, terminated, _truncated in episodes:
        single.reset()
        single.unwrapped.state = observations[0].astype(np.float64)
        assert (rewards == 1.0).all()  # a masked reset step would show up as a reward of 0
        for t, action in enumerate(actions):
            obs, reward, term, trunc, _ = single.step(int(action))
            if t + 1 < len(actions):
                np.testing.assert_allclose(obs, observations[t + 1], atol=1e-5)
            assert term == terminated[t]
        assert term


def test_a_second_rollout_continues_the_random_streams():
    env, same = (make_vector_env("CartPole-v1", 2, vectorization="sync") for _ in range(2))
    first = collect_episodes(env, random_actions(2), np.array([1, 1]), seed=3)
    second = collect_episodes(env, random_actions(2), np.array([1, 1]))
    collect_episodes(same, random_actions(2), np.array([1, 1]), seed=3)
    continued, _ = same.reset()  # Gymnasium's own streams, after the same first rollout
    reseeded = [make_vector_env("CartPole-v1", 2, vectorization="sync").reset(seed=seed)[0] for seed in (0, 3)]
    starts = second.batch.observations[0].numpy()
    np.testing.assert_array_equal(starts, continued)
    assert not any(np.array_equal(starts, start) for start in [first.batch.observations[0].numpy(), *reseeded])


def test_time_limit_is_truncation_not_termination():
    env = make_vector_env("CartPole-v1", 2, max_episode_steps=5)
    rollout = collect_episodes(env, lambda obs: (lean_policy(obs),) * 2, np.array([1, 1]), seed=0)
    assert rollout.episode_lengths.tolist() == [5, 5]
    assert rollout.batch.truncated.sum() == 2 and not rollout.batch.terminated[rollout.batch.valid].any()


@pytest.mark.parametrize("vectorization", ["sync", "vector_entry_point"])
def test_the_batch_holds_the_state_each_time_limit_cut_an_episode_in(vectorization):
    """Replayed from its first state, each truncated episode ends in the state the batch gives for it, the
    episode whose end stops the rollout too (its state comes after the grid's last row)."""
    env = make_vector_env("CartPole-v1", 3, max_episode_steps=8, vectorization=vectorization)
    batch = collect_episodes(env, random_actions(4), np.array([2, 1, 3]), seed=5).batch
    cut = batch.time_limit_cuts & batch.valid
    assert cut.sum() >= 4 and cut[-1].any()
    single = gym.make("CartPole-v1")
    expected = []
    for t, n in cut.nonzero().tolist():  # the mask's order
        start = t
        while start > 0 and batch.valid[start - 1, n] and not batch.ends[start - 1, n]:
            start -= 1
        single.reset()
        single.unwrapped.state = batch.observations[start, n].numpy().astype(np.float64)
        for action in batch.actions[start : t + 1, n].tolist():
            observation, *_ = single.step(action)
        expected.append(observation)
    np.testing.assert_allclose(batch.truncation_states().numpy(), np.array(expected), atol=1e-5)


@pytest.mark.parametrize(
    "env_id, message",
    [("CartPol-v1", "did you mean CartPole-v1"), ("NoSuchThing-v0", "unknown environment id")],
)
def test_unknown_environment_ids(env_id, message):
    with pytest.raises(ValueError, match=message) as error:
        make_vector_env(env_id, 2)
    assert "\n" not in str(error.value)


def test_unsupported_spaces_fail_at_construction():
    with pytest.raises(ValueError, match="unsupported observation space Tuple"):
        make_vector_env("Blackjack-v1", 2)
    with pytest.raises(ValueError, match="unsupported observation space Tuple"):
        make_env("Blackjack-v1")


def test_heuristic_matches_the_notebook():
    env = make_vector_env("CartPole-v1", 100, max_episode_steps=200)
    returns = collect_episodes(
        env, lambda obs: (lean_policy(obs),) * 2, np.ones(100, dtype=int), seed=0
    ).episode_returns
    assert len(returns) == 100
    assert 30 <= returns.mean() <= 60  # the notebook printed about 43 on its 200-step cap
    line = describe_returns(returns)
    assert line.startswith("Mean: ") and ", Std: " in line and ", Min: " in line and ", Max: " in line
    assert CARTPOLE_OBSERVATION == ("cart position", "cart velocity", "pole angle", "pole angular velocity")
    assert lean_policy(np.array([[0, 0, 0.1, 0], [0, 0, -0.1, 0]])).tolist() == [1, 0]


def test_async_vector_env_collects_the_same_episodes_as_sync():
    batches = []
    for mode in ("sync", "async"):
        env = make_vector_env("CartPole-v1", 3, vectorization=mode)
        batches.append(collect_episodes(env, random_actions(4), np.array([2, 1, 2]), seed=5).batch)
        env.close()
    sync, asynchronous = batches
    for name in ("observations", "actions", "rewards", "terminated", "truncated", "valid"):
        assert (getattr(sync, name) == getattr(asynchronous, name)).all(), name


def forced_close_exit_statuses(env):
    """Gymnasium's forced close of an async vector environment (within 30 s), then its workers' exit statuses."""
    workers = list(env.processes)
    closing = threading.Thread(target=env.close, kwargs={"terminate": True}, daemon=True)
    closing.start()
    closing.join(timeout=30)
    assert not closing.is_alive(), "the forced close hangs"
    return [worker.exitcode for worker in workers]


def test_a_forced_close_still_ends_the_async_workers():
    """The workers take SIGTERM only from the process that owns them, and Gymnasium's forced close is that one.
    The main process, where Gymnasium makes an environment too, keeps its own signal handling."""
    before = signal.getsignal(signal.SIGINT), signal.pthread_sigmask(signal.SIG_BLOCK, [])
    env = make_vector_env("CartPole-v1", 2, vectorization="async")
    assert (signal.getsignal(signal.SIGINT), signal.pthread_sigmask(signal.SIG_BLOCK, [])) == before
    assert forced_close_exit_statuses(env) == [128 + signal.SIGTERM] * 2


@pytest.mark.skipif(
    not hasattr(signal, "sigtimedwait") or multiprocessing.get_start_method() != "fork",
    reason="the workers take the slow watcher from this process only when forked; without sigtimedwait, no watcher",
)
def test_a_forced_close_ends_the_workers_with_the_sigterm_status_even_before_their_watchers_run(monkeypatch):
    """The forced close's SIGTERM comes before the end of the pipes; a worker whose loop meets the closed pipe
    first, its watcher thread still asleep, ends as the SIGTERM would end it, not with status 1 and a traceback."""
    watch = _SigtermWatcher._watch

    def late(self, closing):
        time.sleep(1.0)
        watch(self, closing)

    monkeypatch.setattr(_SigtermWatcher, "_watch", late)
    env = make_vector_env("CartPole-v1", 2, vectorization="async")
    assert forced_close_exit_statuses(env) == [128 + signal.SIGTERM] * 2


def _close_then_wait_for_a_sigterm(main_pid, closed, sender):
    env = in_worker(FiveStepEnv, main_pid)
    env.close()
    closed.set()
    if sender == "self":
        os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.5 if sender == "self" else 30)


@pytest.mark.skipif(not hasattr(signal, "sigtimedwait"), reason="without sigtimedwait, SIGTERM simply ends a worker")
@pytest.mark.parametrize("sender, exitcode", [("main", 128 + signal.SIGTERM), ("self", 0)])
def test_a_closed_worker_still_obeys_the_main_process_sigterm_and_only_it(sender, exitcode):
    """Gymnasium closes a worker's environment before the worker exits; a forced close that comes after it
    must still end the worker, and a SIGTERM from anyone else still must not."""
    context = multiprocessing.get_context("fork")
    closed = context.Event()
    worker = context.Process(target=_close_then_wait_for_a_sigterm, args=(os.getpid(), closed, sender))
    worker.start()
    assert closed.wait(30)
    if sender == "main":
        worker.terminate()
    worker.join(10)
    assert worker.exitcode == exitcode


def test_environments_that_need_a_missing_package_say_what_to_install():
    try:
        import Box2D  # noqa: F401

        pytest.skip("Box2D is installed here, so LunarLander cannot show the missing-package message")
    except ImportError:
        pass
    with pytest.raises(
        ValueError, match=r'needs a package that is not installed: run pip install "gymnasium\[box2d\]"'
    ):
        make_vector_env("LunarLander-v3", 2)


def test_an_environment_without_a_time_limit_is_built_only_with_one():
    for make in (make_env, lambda env_id, **limit: make_vector_env(env_id, 2, **limit)):
        with pytest.raises(ValueError, match="CliffWalking-v1 has no time limit, so an episode may never end"):
            make("CliffWalking-v1")  # Gymnasium registers it without one
        make("CliffWalking-v1", max_episode_steps=20).close()


def test_loops_over_an_environment_whose_episodes_never_end_are_bounded():
    env = SyncVectorEnv([EndlessEnv, EndlessEnv], autoreset_mode=AutoresetMode.NEXT_STEP)
    with pytest.raises(ValueError, match="an episode ran past 50 steps without ending"):
        collect_episodes(env, random_actions(0), np.array([2, 1]), seed=0, max_episode_steps=50)
    agent = ReinforceAgent(EndlessEnv.observation_space, EndlessEnv.action_space, seed=0)
    with pytest.raises(ValueError, match="an episode ran past 50 steps without ending"):
        play_episode(agent, EndlessEnv(), max_episode_steps=50)


def test_a_single_episode_says_whether_a_time_limit_cut_it():
    terminating = FiveStepEnv()  # ends in a terminal state at its fifth step
    agent = ReinforceAgent(terminating.observation_space, terminating.action_space, seed=0)
    assert not play_episode(agent, terminating, seed=0).truncated
    cut = gym.wrappers.TimeLimit(FiveStepEnv(), max_episode_steps=3)
    episode = play_episode(agent, cut, seed=0)
    assert episode.truncated and episode.length == 3


def test_a_single_episode_keeps_the_state_a_time_limit_cut_it_in_for_the_value_bootstrap():
    env = gym.make("CartPole-v1", max_episode_steps=3)
    config = AgentConfig(baseline=True, bootstrap="value")
    agent = ReinforceAgent(env.observation_space, env.action_space, config, seed=0)
    episode = play_episode(agent, env, seed=4, deterministic=False)
    replay = gym.make("CartPole-v1")
    replay.reset(seed=4)
    for action in episode.actions:
        observation, *_ = replay.step(int(action))
    assert episode.truncated
    np.testing.assert_array_equal(episode.final_observation, observation)
    batch = EpisodeBatch.from_episodes([episode.transitions()], [episode.truncated], [episode.final_observation])
    np.testing.assert_array_equal(batch.truncation_states().numpy(), [observation])
    agent.update(batch)  # the value bootstrap has the state it needs


def test_a_single_episode_measures_how_far_the_body_moved_along_x_as_mujoco_reports_it():
    env = gym.make("Hopper-v5")
    agent = ReinforceAgent(env.observation_space, env.action_space, seed=0)
    episode = play_episode(agent, env, seed=3)
    reference = gym.make("Hopper-v5")  # the definition: the torso's x coordinate, before and after
    observation, _ = reference.reset(seed=3)
    start, steps, done = reference.unwrapped.data.qpos[0], 0, False
    while not done:
        observation, _, terminated, truncated, _ = reference.step(agent.sample(observation, True)[0])
        steps, done = steps + 1, terminated or truncated
    assert episode.length == steps
    assert episode.x_travelled == pytest.approx(reference.unwrapped.data.qpos[0] - start, abs=1e-12)
    assert episode.x_travelled != 0.0
    unreported = FiveStepEnv()  # an environment that reports no x
    agent = ReinforceAgent(unreported.observation_space, unreported.action_space, seed=0)
    assert play_episode(agent, unreported, seed=0).x_travelled is None


class StridingEnv(FiveStepEnv):
    """Reports its x position as MuJoCo's locomotion tasks do: it starts at 3 and moves 0.5 at every step."""

    def x_position(self):
        return 3.0 + 0.5 * self.t

    def reset(self, *, seed=None, options=None):
        observation, _ = super().reset(seed=seed)
        return observation, {"x_position": self.x_position()}

    def step(self, action):
        observation, reward, terminated, truncated, _ = super().step(action)
        return observation, reward, terminated, truncated, {"x_position": self.x_position()}


class UnmeasurableEnv(StridingEnv):
    """Reports an x position that is not a number."""

    def x_position(self):
        return "far"


def test_watching_says_how_far_the_body_moved_where_the_environment_reports_it(tmp_path, capsys):
    agent = ReinforceAgent(FiveStepEnv.observation_space, FiveStepEnv.action_space, seed=0)
    play(agent, EnvConfig(StridingEnv, max_episode_steps=10), 2, 0, tmp_path)
    played = [line for line in capsys.readouterr().out.splitlines() if line.startswith("episode")]
    assert len(played) == 2 and all(line.endswith(" in 5 steps (limit 10), moved +2.50 m along x") for line in played)
    for unreported in (FiveStepEnv, UnmeasurableEnv):
        play(agent, EnvConfig(unreported, max_episode_steps=10), 1, 0, tmp_path)
        assert re.search(r"^episode 1: return \S+ in 5 steps \(limit 10\)$", capsys.readouterr().out, re.M)


def test_an_environment_whose_module_is_missing_names_it():
    gym.register("MissingModule-v0", entry_point="no_such_module_for_this_test:Env", max_episode_steps=10)
    for make in (make_env, lambda env_id: make_vector_env(env_id, 2)):
        with pytest.raises(ValueError, match="needs the module no_such_module_for_this_test, which is not installed"):
            make("MissingModule-v0")


def test_discretized_actions_step_the_environment_with_the_bin_centres():
    # Pendulum's torque in [-2, 2], 5 bins: the centres -1.6, -0.8, 0, 0.8, 1.6, as a categorical agent's actions
    for make in (
        lambda: make_env("Pendulum-v1", action_bins=5),
        lambda: make_vector_env("Pendulum-v1", 1, action_bins=5),
    ):
        env, raw = make(), make_env("Pendulum-v1")
        space = env.single_action_space if hasattr(env, "single_action_space") else env.action_space
        assert space == gym.spaces.Discrete(5)
        for index, torque in enumerate([-1.6, -0.8, 0.0, 0.8, 1.6]):
            env.reset(seed=index)
            raw.reset(seed=index)
            action = np.array([index]) if hasattr(env, "single_action_space") else index
            observation = env.step(action)[0]
            expected = raw.step(np.array([torque], np.float32))[0]
            np.testing.assert_allclose(np.reshape(observation, -1), expected, atol=1e-6)
        env.close()
        raw.close()
