"""The README's Python examples run as written: ``fit`` on CartPole and on an environment class of a user's own,
the vector-env loop, and the ten-line loop on an environment of a user's own (a tiny one defined here, with
non-constant rewards)."""

import math
import re
from pathlib import Path

import gymnasium as gym
import numpy as np

from agents import ReinforceAgent

README = Path(__file__).resolve().parent.parent / "README.md"


def examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_fit_example_runs_as_train_py_does(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    example = examples()[0]
    assert len([line for line in example.splitlines() if line.strip()]) <= 5
    exec(compile(example, "README.md", "exec"), {})
    solved_at, run_dir = capsys.readouterr().out.strip().splitlines()[-1].split()
    assert solved_at == re.search(r"# (\d+) runs/", example).group(1)  # the number the README shows
    assert run_dir.startswith("runs/CartPole-v1__reinforce__3__") and (tmp_path / run_dir / "model.pt").is_file()


def test_readme_vector_env_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(examples()[2], "README.md", "exec"), namespace)
    assert (tmp_path / "cartpole.pt").is_file()
    assert all(math.isfinite(v) for v in namespace["stats"].values())


class DriftEnv(gym.Env):
    """Push a point toward 0 in ten steps; each step's reward is minus the distance left."""

    observation_space = gym.spaces.Box(-10.0, 10.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = self.np_random.uniform(-3, 3), 0
        return np.array([self.x], np.float32), {}

    def step(self, action):
        self.x = float(np.clip(self.x + float(action[0]), -10, 10))
        self.t += 1
        return np.array([self.x], np.float32), -abs(self.x), False, self.t >= 10, {}


def greedy_return(agent, env, episodes=50):
    from envs import play_episode

    return np.mean([play_episode(agent, env).total_reward for _ in range(episodes)])


def test_readme_fit_on_an_environment_class_of_ones_own_learns(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    example = examples()[1]
    env = DriftEnv()
    env.reset(seed=0)
    untrained = ReinforceAgent(env.observation_space, env.action_space, seed=0)
    namespace: dict = {"YourEnv": DriftEnv}
    exec(compile(example, "README.md", "exec"), namespace)
    printed = float(capsys.readouterr().out.strip().splitlines()[-1].split()[-1])
    result = namespace["result"]
    assert printed == result.summary["final_eval"]["greedy"]["mean"] and result.summary["env_id"] == "DriftEnv"
    # standing still from a start in [-3, 3] costs about 15 an episode; moving to 0 costs about 3
    before = greedy_return(untrained, env)
    assert printed > before + 3 and printed > -8, (before, printed)


def test_readme_own_environment_example_learns(capsys):
    example = examples()[3]
    assert len([line for line in example.splitlines() if line.strip()]) <= 10
    env = DriftEnv()
    env.reset(seed=0)
    untrained = ReinforceAgent(env.observation_space, env.action_space, seed=0)
    namespace: dict = {"YourEnv": DriftEnv}
    exec(compile(example, "README.md", "exec"), namespace)
    assert "greedy return:" in capsys.readouterr().out
    before, after = greedy_return(untrained, env), greedy_return(namespace["agent"], env)
    # standing still from a start in [-3, 3] costs about 15 an episode; moving to 0 costs about 3
    assert after > before + 3 and after > -8, (before, after)
